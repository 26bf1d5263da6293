"""Security checks: no secret in the repository, injection-proof promotion inputs, constant-time webhook
signature checks, and non-root, capability-free pods in every manifest."""

from __future__ import annotations

import hmac
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import secret_scan
from workflows.delivery import overlays, promotion, webhook
from workflows.platform.gitrepo import GitError

ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_holds_no_secret() -> None:
    assert secret_scan.scan(ROOT) == []


@pytest.mark.parametrize(
    "line",
    [
        "aws_access_key_id = AKIA" + "ABCDEFGHIJKLMNOP",
        "-----BEGIN RSA " + "PRIVATE KEY-----",
        "token: ghp_" + "a" * 36,
        "url: https://hooks.slack.com/services/" + "T0000/B0000/" + "x" * 24,
        'password = "' + "Zx9" * 6 + '"',
        "AWS_SECRET_ACCESS_KEY: '" + "k" * 40 + "'",
    ],
)
def test_the_scan_finds_each_kind_of_planted_secret(line: str) -> None:
    assert secret_scan.scan_text(f"first\n{line}\n") and secret_scan.scan_text(line)[0][0] == 1


@pytest.mark.parametrize(
    "line",
    [
        "secretKeyRef: {name: ctcd-s3-credentials, key: AWS_SECRET_ACCESS_KEY}",
        'password = "${CTCD_PASSWORD}"',
        "token: '{{workflow.parameters.token}}'",
        "sha256: 02116356557c835d74ad64d4fe7e0c3bc1df9adfb9740751c8e5beaebf6a2c91",
    ],
)
def test_references_and_hashes_are_not_secrets(line: str) -> None:
    assert secret_scan.scan_text(line) == []


@pytest.mark.parametrize(
    "ref",
    [
        "--upload-pack=touch /tmp/x",
        "main\nkind: Secret",
        "a..b",
        "has space",
        "x.lock",
        "@{u}",
        "a:b",
        "end/",
        "-x",
        "",
    ],
)
def test_branch_names_that_could_inject_are_refused(ref: str) -> None:
    with pytest.raises(overlays.GitopsError, match="not a valid git branch name"):
        overlays.check_ref(ref)


@pytest.mark.parametrize("ref", ["main", "release/2026-11", "promote/production/intent-classifier/v3"])
def test_ordinary_branch_names_pass(ref: str) -> None:
    assert overlays.check_ref(ref) == ref


@pytest.mark.parametrize("version", ["1_0", " 7", "0", "-1", "3; rm -rf /", "v3", "1e3", ""])
def test_versions_must_be_plain_numbers(version: str) -> None:
    with pytest.raises(overlays.GitopsError, match="registry version number"):
        promotion.branch_name("staging", "intent-classifier", version)


@pytest.mark.parametrize("technique", ["Intent", "a\nkind: Secret", "../etc", "x" * 64, "-lead", "a_b"])
def test_technique_names_must_be_dns_labels(technique: str) -> None:
    with pytest.raises(overlays.GitopsError, match="DNS-1123"):
        promotion.branch_name("staging", technique, "1")


@pytest.mark.parametrize(
    "branch",
    [
        "main",
        "promote/../v1",
        "promote/intent-classifier/v1",
        "promote/staging/intent-classifier/v1/x",
        "promote/staging/intent-classifier/v01",
        "promote/qa/intent-classifier/v1",
        "--all",
    ],
)
def test_merge_refuses_anything_but_a_promotion_branch_before_touching_git(branch: str, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="is not a promotion branch"):
        promotion.merge(str(tmp_path / "no-remote.git"), "main", branch)


def test_webhook_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhook.hmac, "compare_digest", spy)
    stamp = str(int(time.time()))
    good = {"X-MLflow-Signature": webhook.sign("s3cr3t", "d1", stamp, "{}"), "X-MLflow-Delivery-Id": "d1"}
    good["X-MLflow-Timestamp"] = stamp
    assert webhook.verify("s3cr3t", good, "{}") == ""
    assert webhook.verify("s3cr3t", {**good, "X-MLflow-Signature": "v1,forged"}, "{}") == "signature does not match"
    assert len(calls) == 2


def _docs(folder: str) -> list[dict[str, Any]]:
    return [d for p in sorted((ROOT / folder).rglob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def test_every_workflow_pod_and_step_runs_as_non_root_without_capabilities() -> None:
    templates = [d for d in _docs("gitops/platform/workflow-templates") if d["kind"] == "WorkflowTemplate"]
    assert len(templates) >= 7
    for doc in templates:
        assert doc["spec"]["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        for template in doc["spec"]["templates"]:
            body = template.get("script") or template.get("container")
            if body is None:
                continue
            context = body["securityContext"]
            assert context["runAsNonRoot"] and context["allowPrivilegeEscalation"] is False, template["name"]
            assert context["capabilities"]["drop"] == ["ALL"], template["name"]


def test_the_serving_runtime_runs_as_non_root_without_capabilities() -> None:
    runtime = next(d for d in _docs("gitops/platform") if d["kind"] == "ClusterServingRuntime")
    for container in runtime["spec"]["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] and context["capabilities"]["drop"] == ["ALL"]
