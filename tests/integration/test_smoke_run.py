"""`ctcd submit --from workflowtemplate/smoke --wait` runs the compiled template against real S3 and MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hera.workflows.models import Workflow
from mlflow.tracking import MlflowClient

from tests.conftest import settings_env
from workflows.platform.s3 import s3_client
from workflows.settings import Settings

CTCD = [sys.executable, "-m", "workflows.cli"]


def one_step_workflow(folder: Path, prefix: str, shell: str) -> Path:
    """Write a Workflow whose only template runs ``sh -c SHELL``; return its path."""
    path = folder / f"{prefix}.yaml"
    path.write_text(
        f"apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{generateName: {prefix}-}}\n"
        "spec:\n  entrypoint: main\n  templates:\n  - name: main\n"
        f"    container: {{image: x, command: [sh, -c, '{shell}']}}\n"
    )
    return path


def ctcd(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CTCD, *args], env=settings_env(settings), capture_output=True, text=True, timeout=300)


def test_smoke_template_through_cli(platform: Settings) -> None:
    submitted = ctcd(platform, "submit", "--from", "workflowtemplate/smoke", "-p", "rows=7", "--wait", "-o", "name")
    assert submitted.returncode == 0, submitted.stderr + submitted.stdout
    name = submitted.stdout.strip().splitlines()[-1]
    assert name.startswith("smoke-")

    assert name in ctcd(platform, "runs", "list", "-o", "name").stdout.split()
    record = json.loads(ctcd(platform, "runs", "get", name, "-o", "json").stdout)
    status = Workflow.model_validate(record).status
    assert status is not None and status.phase == "Succeeded" and status.nodes is not None
    pods = {n.display_name: n for n in status.nodes.values() if n.type == "Pod"}
    assert set(pods) == {"probe-s3", "probe-mlflow", "summarize"}

    # outputs flowed between steps, and the data really is in S3 and MLflow
    s3_out = {p.name: p.value for p in pods["probe-s3"].outputs.parameters}  # type: ignore[union-attr]
    body = s3_client(platform).get_object(Bucket=platform.datasets_bucket, Key=s3_out["key"])["Body"].read()
    assert body.decode().count("\n") == 8  # header + 7 rows
    run_id = pods["probe-mlflow"].outputs.parameters[0].value  # type: ignore[index,union-attr]
    client = MlflowClient(tracking_uri=platform.mlflow_tracking_uri)
    assert client.get_run(run_id).data.metrics["sum_of_squares"] == sum(i * i for i in range(7))
    assert "mlflow ok" in pods["summarize"].outputs.result  # type: ignore[operator,union-attr]

    tree = ctcd(platform, "runs", "get", name).stdout
    assert "✔ probe-s3" in tree and "Succeeded" in tree
    logs = ctcd(platform, "runs", "logs", name, "--node", "summarize").stdout
    assert logs.startswith("summarize: [ctcd-engine] image 'ghcr.io/ctcd/trainer:")


def test_failed_run_exits_non_zero_with_wait(platform: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = one_step_workflow(tmp_path, "fail", "exit 4")
    result = ctcd(platform, "submit", str(spec), "--wait")
    assert result.returncode == 1
    assert "Error (exit code 4)" in result.stdout

    quiet = ctcd(platform, "submit", str(spec), "--wait", "-o", "name")  # for scripts: the id on stdout, why on stderr
    name = quiet.stdout.strip()
    assert quiet.returncode == 1 and name.startswith("fail-") and "\n" not in name
    assert f"{name} Failed" in quiet.stderr and "Error (exit code 4)" in quiet.stderr
    assert f"logs: ctcd runs logs {name}" in quiet.stderr


def test_unsupported_spec_is_refused_before_running(platform: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: bad-}\n"
        "spec:\n  entrypoint: main\n  templates:\n  - name: main\n"
        "    resource: {action: create, manifest: 'kind: Pod'}\n"
    )
    before = ctcd(platform, "runs", "list", "-o", "name").stdout
    result = ctcd(platform, "submit", str(spec))
    assert result.returncode == 1
    assert "spec.templates[0].resource: resource templates create Kubernetes objects, which need a cluster" in (
        result.stderr
    )
    assert ctcd(platform, "runs", "list", "-o", "name").stdout == before


def test_a_dead_worker_ends_the_run_in_error(platform: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal

    from workflows.local import runs

    spec = one_step_workflow(tmp_path, "slow", "sleep 30")
    workflow = runs.submit(platform, str(spec), {}, from_ref=False)
    name = workflow["metadata"]["name"]
    folder = platform.state_dir / "runs" / name
    pid = json.loads((folder / "worker.json").read_text())["pid"]
    runs.wait(platform, name, on_update=None, timeout=1.0)
    os.killpg(pid, signal.SIGKILL)  # the worker and its step, as a crash would
    final = runs.wait(platform, name, timeout=30)
    assert final["status"]["phase"] == "Error"
    assert "engine worker exited" in final["status"]["message"]
