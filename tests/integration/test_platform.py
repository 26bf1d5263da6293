"""The embedded platform through the `ctcd` CLI: up, status, idempotence, loopback-only, clean down."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from tests.conftest import free_port_block, make_settings, settings_env
from workflows.engine.state.store import RunStore
from workflows.local import scheduler, stack
from workflows.settings import Settings

CTCD = [sys.executable, "-m", "workflows.cli"]


def ctcd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CTCD, *args], env=env, capture_output=True, text=True, timeout=180)


def test_lifecycle_up_status_down(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "state", free_port_block(), scheduler=True)
    env = settings_env(settings)
    first = ctcd(env, "up")
    assert first.returncode == 0, first.stderr
    try:
        status = json.loads(ctcd(env, "status", "-o", "json").stdout)
        assert [(s["name"], s["state"], s["healthy"]) for s in status] == [
            ("s3", "running", True),
            ("mlflow", "running", True),
            ("serving", "running", True),
            ("bridge", "running", True),
            ("scheduler", "running", True),
        ]
        assert status[1]["url"] == f"http://127.0.0.1:{settings.mlflow_port}"
        pids = [s["pid"] for s in status]

        again = ctcd(env, "up")  # idempotent: nothing restarted
        assert again.returncode == 0 and again.stdout.count("already running") == 5
        assert [s["pid"] for s in json.loads(ctcd(env, "status", "-o", "json").stdout)] == pids

        # the MLflow UI opens at the URL status prints
        page = httpx.get(status[1]["url"] + "/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()

        # every socket of every platform process listens on loopback only
        family = [p for pid in pids for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]]
        listening = [c for proc in family for c in _sockets(proc) if c.status == psutil.CONN_LISTEN]
        assert listening and {c.laddr.ip for c in listening} == {"127.0.0.1"}

        # the credentials are generated, private, and outside git
        creds = settings.credentials_file
        assert creds.stat().st_mode & 0o777 == 0o600
        assert set(json.loads(creds.read_text())) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}

        _the_scheduler_fires_and_survives_kill_9(settings, env, tmp_path / "cron.yaml")
        pids = [s["pid"] for s in json.loads(ctcd(env, "status", "-o", "json").stdout)]
    finally:
        down = ctcd(env, "down")
    assert down.returncode == 0 and "mlflow" in down.stdout and "s3" in down.stdout
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
    after = json.loads(ctcd(env, "status", "-o", "json").stdout)
    assert [s["state"] for s in after] == ["stopped"] * 5


def test_port_taken_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    base = free_port_block()
    settings = make_settings(tmp_path / "state", base)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", settings.mlflow_port))
        blocker.listen()
        with pytest.raises(
            stack.PlatformError, match=rf"port {settings.mlflow_port} for mlflow is already in use.*CTCD_MLFLOW_PORT"
        ):
            stack.up(settings)
    assert [s["state"] for s in stack.status(settings)] == ["stopped", "stopped", "stopped", "stopped"]


def test_down_never_kills_a_process_it_did_not_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "state", free_port_block())
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        record = settings.state_dir / "pids" / "s3.json"
        record.parent.mkdir(parents=True)
        # a stale record whose pid now belongs to another process (different start time)
        record.write_text(json.dumps({"pid": bystander.pid, "create_time": 1.0}))
        assert stack.down(settings) == []
        assert bystander.poll() is None
    finally:
        bystander.kill()


def test_status_of_unhealthy_platform_exits_non_zero(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "state", free_port_block())
    result = ctcd(settings_env(settings), "status")
    assert result.returncode == 3
    assert "stopped" in result.stdout


def _scheduled_runs(settings: Settings, cron: str) -> list[str]:
    return [
        w["metadata"]["name"]
        for w in RunStore(settings.state_dir).list()
        if (w["metadata"].get("labels") or {}).get("workflows.argoproj.io/cron-workflow") == cron
    ]


def _the_scheduler_fires_and_survives_kill_9(settings: Settings, env: dict[str, str], cron: Path) -> None:
    cron.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "CronWorkflow",
                "metadata": {"name": "every-minute"},
                "spec": {
                    "schedules": ["* * * * *"],
                    "workflowSpec": {
                        "entrypoint": "hi",
                        "templates": [{"name": "hi", "container": {"image": "alpine", "command": ["echo", "hi"]}}],
                    },
                },
            }
        )
    )
    assert ctcd(env, "cron", "create", str(cron)).returncode == 0
    assert _wait(lambda: "checkedUntil" in scheduler.load_state(settings, "every-minute"))
    state = scheduler.load_state(settings, "every-minute")  # as if the platform had been up for a minute
    scheduler.save_state(settings, "every-minute", {**state, "checkedUntil": state["checkedUntil"] - 61})
    assert _wait(lambda: _scheduled_runs(settings, "every-minute"))

    pid = next(s["pid"] for s in stack.status(settings) if s["name"] == "scheduler")
    psutil.Process(pid).kill()  # kill -9: status tells the truth, and `up` brings it back
    assert _wait(lambda: ctcd(env, "status").returncode == 3)
    assert ctcd(env, "up").returncode == 0
    assert _wait(lambda: ctcd(env, "status").returncode == 0)


def _sockets(proc: psutil.Process) -> list[Any]:
    """A process's inet sockets; none for a short-lived child that ended since it was listed."""
    try:
        return list(proc.connections(kind="inet"))
    except psutil.NoSuchProcess:
        return []


def _wait(check: Callable[[], object], timeout: float = 45) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True
