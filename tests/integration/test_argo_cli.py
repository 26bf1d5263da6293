"""Argo's CLI verbs on the real local platform: lint, template, runs stop|terminate|retry|resubmit|delete, cron.

Each test drives ``ctcd`` as a user's shell would and then asserts what the user relies on: the run's phase and
nodes in ``runs get``, the templates ``template list`` shows, and the runs the scheduler starts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ctcd
from workflows.engine.state.store import RunStore
from workflows.local import applied, runs, scheduler
from workflows.settings import Settings

pytestmark = pytest.mark.usefixtures("platform")

HELLO_TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "cli-hello"},
    "spec": {
        "entrypoint": "say",
        "arguments": {"parameters": [{"name": "message", "value": "hello"}]},
        "templates": [
            {
                "name": "say",
                "inputs": {"parameters": [{"name": "message"}]},
                "container": {
                    "image": "alpine:3.20",
                    "command": ["sh", "-c"],
                    "args": ["echo {{inputs.parameters.message}}"],
                },
            }
        ],
    },
}


def _workflow(name: str, steps: list[dict[str, Any]], templates: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    main = {"name": "main", "steps": [[step] for step in steps]}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": f"{name}-"},
        "spec": {"entrypoint": "main", "templates": [main, *templates], **spec},
    }


def _shell(name: str, script: str) -> dict[str, Any]:
    return {"name": name, "container": {"image": "alpine:3.20", "command": ["sh", "-c"], "args": [script]}}


def _write(path: Path, *docs: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def _submit(settings: Settings, path: Path) -> str:
    done = ctcd(settings, "submit", str(path), "-o", "name")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _get(settings: Settings, name: str) -> dict[str, Any]:
    done = ctcd(settings, "runs", "get", name, "-o", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _phases(workflow: dict[str, Any]) -> dict[str, str]:
    return {node["displayName"]: node["phase"] for node in workflow["status"]["nodes"].values()}


def _until(settings: Settings, name: str, check: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        workflow = _get(settings, name)
        if check(workflow) or time.monotonic() > deadline:
            return workflow
        time.sleep(0.3)


def test_lint_names_each_problem(platform: Settings, tmp_path: Path) -> None:
    good = _write(tmp_path / "good.yaml", HELLO_TEMPLATE)
    ok = ctcd(platform, "lint", str(good))
    assert ok.returncode == 0 and "WorkflowTemplate/cli-hello: ok" in ok.stdout

    broken = {**HELLO_TEMPLATE, "spec": {**HELLO_TEMPLATE["spec"], "entrypoint": 3, "templatez": []}}
    bad = ctcd(platform, "lint", str(_write(tmp_path / "bad.yaml", broken)))
    assert bad.returncode == 1 and "problems" in bad.stdout
    assert "entrypoint" in bad.stdout and "templatez" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr

    (tmp_path / "junk.yaml").write_text("kind: [unclosed\n")
    junk = ctcd(platform, "lint", str(tmp_path / "junk.yaml"))
    assert junk.returncode != 0 and "junk.yaml" in junk.stdout + junk.stderr
    assert "Traceback" not in junk.stdout + junk.stderr

    resource = _workflow(
        "res",
        [{"name": "make", "template": "make"}],
        [{"name": "make", "resource": {"action": "create", "manifest": "kind: ConfigMap"}}],
    )
    refused = ctcd(platform, "lint", str(_write(tmp_path / "resource.yaml", resource)))
    assert refused.returncode == 1 and "local engine" in refused.stdout and "resource" in refused.stdout


def test_template_create_submit_from_and_delete(platform: Settings, tmp_path: Path) -> None:
    created = ctcd(platform, "template", "create", str(_write(tmp_path / "hello.yaml", HELLO_TEMPLATE)))
    assert created.returncode == 0, created.stderr
    listed = ctcd(platform, "template", "list")
    assert any(line.split() == ["cli-hello", "added"] for line in listed.stdout.splitlines())
    assert "train" in listed.stdout  # the repo's own library is listed beside it
    shown = yaml.safe_load(ctcd(platform, "template", "get", "cli-hello").stdout)
    assert shown["spec"]["entrypoint"] == "say"

    run = ctcd(
        platform, "submit", "--from", "workflowtemplate/cli-hello", "-p", "message=from-the-cli", "--wait", "-o", "name"
    )
    assert run.returncode == 0, run.stderr
    name = run.stdout.strip().splitlines()[0]
    logs = ctcd(platform, "runs", "logs", name)
    assert "from-the-cli" in logs.stdout

    invalid = {**HELLO_TEMPLATE, "metadata": {"name": "cli-broken"}, "spec": {"templates": "nope"}}
    refused = ctcd(platform, "template", "create", str(_write(tmp_path / "broken.yaml", invalid)))
    assert refused.returncode != 0 and "not valid" in refused.stdout + refused.stderr
    assert "cli-broken" not in applied.names(platform, "WorkflowTemplate")  # nothing half-written

    assert ctcd(platform, "template", "delete", "cli-hello").returncode == 0
    assert "cli-hello" not in ctcd(platform, "template", "list").stdout
    gone = ctcd(platform, "template", "get", "cli-hello")
    assert gone.returncode != 0 and "template list" in gone.stdout + gone.stderr


def test_terminate_then_retry_then_resubmit_then_delete(platform: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "go"
    spec = _workflow(
        "cli-retry",
        [{"name": "first", "template": "first"}, {"name": "gate", "template": "gate"}],
        [
            _shell("first", "echo first-ran >> " + str(tmp_path / "first.log")),
            _shell("gate", f"test -f {marker} || sleep 300"),
        ],
    )
    name = _submit(platform, _write(tmp_path / "wf.yaml", spec))
    _until(platform, name, lambda wf: _phases(wf).get("gate") == "Running")
    assert ctcd(platform, "runs", "terminate", name).returncode == 0
    ended = _until(platform, name, lambda wf: wf["status"]["phase"] in ("Failed", "Error"))
    assert ended["status"]["phase"] == "Failed" and _phases(ended)["first"] == "Succeeded"
    assert ended["status"]["message"] == "Stopped with strategy 'Terminate'"  # Argo's own words

    again = ctcd(platform, "runs", "stop", name)  # a finished run cannot be stopped, and says why
    assert again.returncode != 0 and "already ended" in again.stdout + again.stderr

    marker.touch()
    memoized = ctcd(platform, "runs", "resubmit", name, "--memoized", "--wait")  # argo resubmit --memoized
    assert memoized.returncode == 0, memoized.stdout + memoized.stderr
    again_run = _get(platform, memoized.stdout.strip().splitlines()[0])
    first = next(n for n in again_run["status"]["nodes"].values() if n["displayName"] == "first")
    assert first["phase"] == "Skipped" and first["message"].startswith("original pod: ")
    assert _phases(again_run)["gate"] == "Succeeded"
    assert (tmp_path / "first.log").read_text().count("first-ran") == 1  # the Succeeded step was not run again

    retried = ctcd(platform, "runs", "retry", name, "--wait")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    final = _get(platform, name)
    assert final["status"]["phase"] == "Succeeded" and _phases(final)["gate"] == "Succeeded"
    assert (tmp_path / "first.log").read_text().count("first-ran") == 1  # the Succeeded step was kept, not rerun

    refused = ctcd(platform, "runs", "resubmit", name, "--memoized")
    assert refused.returncode != 0 and "must be Failed/Error to resubmit in memoized mode" in refused.stderr
    fresh = ctcd(platform, "runs", "resubmit", name, "--wait")
    assert fresh.returncode == 0, fresh.stderr
    names = [r["metadata"]["name"] for r in json.loads(ctcd(platform, "runs", "list", "-o", "json").stdout)]
    resubmitted = [n for n in names if n != name and n.startswith("cli-retry-")]
    assert len(resubmitted) == 2 and (tmp_path / "first.log").read_text().count("first-ran") == 2

    assert ctcd(platform, "runs", "delete", name).returncode == 0
    missing = ctcd(platform, "runs", "get", name)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_stop_runs_the_exit_handler_and_terminate_does_not(platform: Settings, tmp_path: Path) -> None:
    for verb in ("stop", "terminate"):
        log = tmp_path / f"{verb}.log"
        spec = _workflow(
            f"cli-{verb}",
            [{"name": "wait", "template": "wait"}],
            [_shell("wait", "sleep 300"), _shell("bye", f"echo bye > {log}")],
            onExit="bye",
        )
        name = _submit(platform, _write(tmp_path / f"{verb}.yaml", spec))
        _until(platform, name, lambda wf: _phases(wf).get("wait") == "Running")
        assert ctcd(platform, "runs", verb, name).returncode == 0
        ended = _until(platform, name, lambda wf: wf["status"]["phase"] not in ("Pending", "Running"))
        assert ended["status"]["phase"] == "Failed"
        assert log.exists() == (verb == "stop")


def test_suspend_and_resume_with_a_value(platform: Settings, tmp_path: Path) -> None:
    approve = {
        "name": "approve",
        "suspend": {},
        "outputs": {"parameters": [{"name": "answer", "valueFrom": {"supplied": {}}}]},
    }
    show = {
        **_shell("show", "echo answer={{inputs.parameters.answer}}"),
        "inputs": {"parameters": [{"name": "answer"}]},
    }
    spec = _workflow(
        "cli-approve",
        [
            {"name": "approve", "template": "approve"},
            {
                "name": "show",
                "template": "show",
                "arguments": {
                    "parameters": [{"name": "answer", "value": "{{steps.approve.outputs.parameters.answer}}"}]
                },
            },
        ],
        [approve, show],
    )
    name = _submit(platform, _write(tmp_path / "approve.yaml", spec))
    _until(platform, name, lambda wf: _phases(wf).get("approve") == "Running")
    refused = ctcd(platform, "runs", "resume", name)  # Argo refuses a resume that leaves a supplied output unset
    assert refused.returncode == 1 and "raw output parameter 'answer' has not been set" in refused.stderr
    assert _phases(_until(platform, name, lambda wf: True)).get("approve") == "Running"
    resumed = ctcd(platform, "runs", "resume", name, "-p", "answer=yes")
    assert resumed.returncode == 0, resumed.stderr
    final = _until(platform, name, lambda wf: wf["status"]["phase"] == "Succeeded")
    assert final["status"]["phase"] == "Succeeded"
    assert "answer=yes" in ctcd(platform, "runs", "logs", name).stdout


CRON = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "CronWorkflow",
    "metadata": {"name": "cli-cron"},
    "spec": {
        "schedules": ["* * * * *"],
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 120,
        "workflowSpec": {"entrypoint": "tick", "templates": [_shell("tick", "sleep 30")]},
    },
}


def _cron_runs(settings: Settings) -> list[str]:
    listed = RunStore(settings.state_dir).list()
    return [
        w["metadata"]["name"]
        for w in listed
        if (w["metadata"].get("labels") or {}).get("workflows.argoproj.io/cron-workflow") == "cli-cron"
    ]


def test_cron_fires_on_schedule_and_honours_its_policies(platform: Settings, tmp_path: Path) -> None:
    assert ctcd(platform, "cron", "create", str(_write(tmp_path / "cron.yaml", CRON))).returncode == 0
    listed = json.loads(ctcd(platform, "cron", "list", "-o", "json").stdout)
    assert [(r["name"], r["schedules"], r["suspended"]) for r in listed if r["name"] == "cli-cron"] == [
        ("cli-cron", ["* * * * *"], False)
    ]
    try:
        now = time.time()
        scheduler.tick(platform, now)  # the first tick only starts the clock
        assert _cron_runs(platform) == []
        scheduler.save_state(
            platform, "cli-cron", {**scheduler.load_state(platform, "cli-cron"), "checkedUntil": now - 61}
        )
        first = scheduler.tick(platform, now)
        assert first and _cron_runs(platform) == first

        scheduler.save_state(
            platform, "cli-cron", {**scheduler.load_state(platform, "cli-cron"), "checkedUntil": now - 61}
        )
        assert scheduler.tick(platform, now) == []  # Forbid: the first is still running

        ctcd(platform, "runs", "terminate", first[0])
        runs.wait(platform, first[0], timeout=30)
        scheduler.save_state(
            platform, "cli-cron", {**scheduler.load_state(platform, "cli-cron"), "checkedUntil": now - 600}
        )
        assert scheduler.tick(platform, now) == []  # the fire was missed by more than startingDeadlineSeconds

        assert ctcd(platform, "cron", "suspend", "cli-cron").returncode == 0
        scheduler.save_state(
            platform, "cli-cron", {**scheduler.load_state(platform, "cli-cron"), "checkedUntil": now - 61}
        )
        assert scheduler.tick(platform, now) == []
        rows = json.loads(ctcd(platform, "cron", "list", "-o", "json").stdout)
        assert [r["suspended"] for r in rows if r["name"] == "cli-cron"] == [True]

        triggered = ctcd(platform, "cron", "trigger", "cli-cron")
        assert triggered.returncode == 0 and triggered.stdout.strip() in _cron_runs(platform)
        ctcd(platform, "runs", "terminate", triggered.stdout.strip())
    finally:
        assert ctcd(platform, "cron", "delete", "cli-cron").returncode == 0
    missing = ctcd(platform, "cron", "trigger", "cli-cron")
    assert missing.returncode != 0 and "cron list" in missing.stdout + missing.stderr


def test_apply_a_configmap_that_a_run_reads(platform: Settings, tmp_path: Path) -> None:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cli-settings"},
        "data": {"greeting": "bonjour"},
    }
    applied_now = ctcd(platform, "apply", str(_write(tmp_path / "cm.yaml", configmap)))
    assert applied_now.returncode == 0 and "configmap/cli-settings created" in applied_now.stdout
    ref = {"configMapKeyRef": {"name": "cli-settings", "key": "greeting"}}
    reader = {
        **_shell("read", "echo {{inputs.parameters.greeting}}"),
        "inputs": {"parameters": [{"name": "greeting", "valueFrom": ref}]},
    }
    name = _submit(
        platform,
        _write(tmp_path / "reader.yaml", _workflow("cli-cm", [{"name": "read", "template": "read"}], [reader])),
    )
    assert runs.wait(platform, name, timeout=60)["status"]["phase"] == "Succeeded"
    assert "bonjour" in ctcd(platform, "runs", "logs", name).stdout

    library = [  # as Argo's clustertemplates.yaml: several in one file, none with an entrypoint, a numeric limit
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ClusterWorkflowTemplate",
            "metadata": {"name": f"cli-cluster-{i}"},
            "spec": {"templates": [{**_shell("say", "echo hi"), "retryStrategy": {"limit": 10}}]},
        }
        for i in (1, 2)
    ]
    cluster = tmp_path / "clustertemplates.yaml"
    cluster.write_text(yaml.safe_dump_all(library))
    applied_cluster = ctcd(platform, "apply", str(cluster))
    assert applied_cluster.returncode == 0, applied_cluster.stdout + applied_cluster.stderr
    assert "clusterworkflowtemplate/cli-cluster-2 created" in applied_cluster.stdout

    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    refused = ctcd(
        platform, "apply", str(_write(tmp_path / "svc.yaml", configmap | {"metadata": {"name": "cli-other"}}, service))
    )
    assert refused.returncode != 0 and "Service 'web' cannot be added here" in refused.stdout + refused.stderr
    assert "cli-other" not in applied.names(platform, "ConfigMap")  # all checked first: nothing half-applied
