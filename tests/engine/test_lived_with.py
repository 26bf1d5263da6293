"""The engine when steps misbehave and workers die: no run hangs, none stays Running, no lock stays held."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import settings_env
from tests.engine.test_examples import EXAMPLES, node, run
from workflows.engine.executor import Engine
from workflows.engine.state.store import RunStore
from workflows.settings import Settings

CTCD = [sys.executable, "-m", "workflows.cli"]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_step_that_exits_ends_its_node_and_its_leftover_children(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "leftover.pid"
    monkeypatch.setenv("LEFTOVER_PID_FILE", str(pid_file))
    started = time.monotonic()
    wf = run(engine, "leftover-child")
    took = time.monotonic() - started
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    assert node(wf, "after")["phase"] == "Succeeded"
    leftover = int(pid_file.read_text())
    assert _gone(leftover), "the forked child outlived its step"
    print(f"step with a leftover child ended its node; run took {took:.1f}s")


def _ctcd(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CTCD, *args], env=settings_env(settings), capture_output=True, text=True, timeout=120)


def _wait(predicate: object, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_run_whose_worker_is_killed_ends_in_error_everywhere(session_settings: Settings) -> None:
    submitted = _ctcd(session_settings, "submit", str(EXAMPLES / "held-mutex.yaml"), "-o", "name")
    assert submitted.returncode == 0, submitted.stderr
    name = submitted.stdout.strip().splitlines()[-1]
    store = RunStore(session_settings.state_dir)
    folder = store.run_dir(name)
    _wait(lambda: any(n.get("phase") == "Running" for n in store.load(name)["status"]["nodes"].values()))
    _wait(lambda: any((folder / "pods").glob("*.json")))
    step_pid = json.loads(next((folder / "pods").glob("*.json")).read_text())["pid"]
    worker = json.loads((folder / "worker.json").read_text())["pid"]
    os.kill(worker, signal.SIGKILL)
    _wait(lambda: _gone(worker), 10)

    listed = json.loads(_ctcd(session_settings, "runs", "list", "-o", "json").stdout)
    mine = next(w for w in listed if w["metadata"]["name"] == name)
    assert mine["status"]["phase"] == "Error" and "engine worker exited" in mine["status"]["message"]
    got = json.loads(_ctcd(session_settings, "runs", "get", name, "-o", "json").stdout)
    assert got["status"]["phase"] == "Error"
    assert all(n["phase"] != "Running" for n in got["status"]["nodes"].values())
    _wait(lambda: _gone(step_pid), 10)  # the orphaned step was killed with its worker's run

    second = _ctcd(session_settings, "submit", str(EXAMPLES / "held-mutex.yaml"), "-o", "name")
    other = second.stdout.strip().splitlines()[-1]
    try:  # the mutex is free again: the next run starts its step instead of waiting
        _wait(lambda: any(n.get("phase") == "Running" for n in store.load(other)["status"]["nodes"].values()), 30)
    finally:
        os.kill(json.loads((store.run_dir(other) / "worker.json").read_text())["pid"], signal.SIGKILL)
        _wait(lambda: store.load(other)["status"]["phase"] == "Error", 20)
