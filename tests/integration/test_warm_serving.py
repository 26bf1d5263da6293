"""Model servers forked from the warm parent: real KServe servers, each revision still a process of its own.

A kill -9 of one revision's server leaves the others answering and that one is forked again; a refused artifact
is reported as Failed from the exit code the parent recorded; a killed parent is started again for the next
fork while the servers it forked keep serving; a child whose pid never reached local serving exits before it
takes a port; and ``stop_all`` leaves no process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from serving.local import servers
from serving.local.reconcile import Reconciler
from tests.integration.test_predictor import model_dir  # noqa: F401  (the fixture: a trained invoice-matcher)


def _sha(folder: Path) -> str:
    import hashlib

    return hashlib.sha256((folder / "model.pkl").read_bytes()).hexdigest()


def _isvc(name: str, sha: str) -> dict[str, Any]:
    return {
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "ctcd-staging", "annotations": {"ctcd.io/model-sha256": sha}},
        "spec": {"predictor": {"model": {"storageUri": f"s3://bench/{name}"}}},
    }


@pytest.fixture()
def reconciler(tmp_path: Path, model_dir: Path) -> Iterator[Reconciler]:  # noqa: F811
    found = Reconciler(tmp_path, lambda uri, folder: shutil.copytree(model_dir, folder), "http://127.0.0.1:1")
    yield found
    found.stop_all()


def _until(reconciler: Reconciler, check: Any, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        reconciler.step()
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached within {timeout}s: {reconciler.problems()}")


def _states(reconciler: Reconciler) -> dict[str, str]:
    return {s.name: s.revisions[-1].state for s in reconciler.services.values()}


def _ready_metadata(reconciler: Reconciler, name: str) -> int:
    revision = reconciler.services[f"ctcd-staging/{name}"].revisions[-1]
    return httpx.get(f"http://127.0.0.1:{revision.port}/v1/models/{name}", timeout=5).status_code


def test_forked_servers_are_isolated_and_a_refused_artifact_fails_alone(
    reconciler: Reconciler,
    model_dir: Path,  # noqa: F811
) -> None:
    sha = _sha(model_dir)
    reconciler.apply("c1", [_isvc("a", sha), _isvc("b", sha), _isvc("bad", "0" * 64)])
    _until(reconciler, lambda: _states(reconciler) == {"a": "Ready", "b": "Ready", "bad": "Failed"})
    assert reconciler.warm is not None
    parent = reconciler.warm.pid
    a, b = (reconciler.services[f"ctcd-staging/{n}"].revisions[-1] for n in ("a", "b"))
    assert {psutil.Process(r.pid).ppid() for r in (a, b)} == {parent}  # forked, not started afresh
    assert len({os.getpgid(r.pid) for r in (a, b)}) == 2  # a process group each
    bad = reconciler.services["ctcd-staging/bad"].revisions[-1]
    assert "refusing to serve" in bad.message and "sha256" in bad.message

    os.killpg(a.pid, signal.SIGKILL)
    assert _ready_metadata(reconciler, "b") == 200  # the other revision never noticed
    _until(reconciler, lambda: a.restarts == 1 and a.state == "Ready")
    assert _ready_metadata(reconciler, "a") == 200 and psutil.Process(a.pid).ppid() == parent

    os.killpg(parent, signal.SIGKILL)
    assert _ready_metadata(reconciler, "b") == 200  # what it forked keeps serving
    os.killpg(b.pid, signal.SIGKILL)
    _until(reconciler, lambda: b.restarts == 1 and b.state == "Ready")
    assert reconciler.warm.pid != parent and psutil.Process(b.pid).ppid() == reconciler.warm.pid

    pids = [a.pid, b.pid, reconciler.warm.pid]
    reconciler.stop_all()
    end = time.monotonic() + 10
    while any(servers.alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(servers.alive(p) for p in pids)


def test_without_the_warm_parent_each_revision_starts_a_process_of_its_own(
    tmp_path: Path,
    model_dir: Path,  # noqa: F811
) -> None:
    plain = Reconciler(tmp_path, lambda uri, folder: shutil.copytree(model_dir, folder), "http://x", warm=False)
    try:
        plain.apply("c1", [_isvc("a", _sha(model_dir))])
        _until(plain, lambda: _states(plain) == {"a": "Ready"})
        revision = plain.services["ctcd-staging/a"].revisions[-1]
        assert psutil.Process(revision.pid).ppid() == os.getpid() and plain.warm is None
    finally:
        plain.stop_all()


def test_a_state_folder_too_deep_for_a_unix_socket_starts_a_process_per_revision(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert Reconciler(deep, None, "http://x").warm is None
    assert Reconciler(tmp_path, None, "http://x").warm is not None


def test_a_fork_nobody_hears_about_exits_before_it_takes_a_port(
    tmp_path: Path,
    model_dir: Path,  # noqa: F811
) -> None:
    """Local serving gone before the parent's reply (a timeout, a kill -9): the child must not serve unknown."""
    import json
    import socket

    warm = servers.Warm(tmp_path)
    warm.ensure()
    try:
        port = servers.free_port()
        exits = warm.socket.parent / "exits"
        end = time.monotonic() + 90
        while not warm.socket.exists() and time.monotonic() < end:
            time.sleep(0.05)
        request = {"argv": servers.arguments("lost", model_dir, _sha(model_dir), port), "log": str(tmp_path / "l")}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(warm.socket))
            conn.sendall(json.dumps(request).encode() + b"\n")
        while not any(exits.iterdir()) and time.monotonic() < end:
            time.sleep(0.05)
        records = list(exits.iterdir())
        assert len(records) == 1, "the child nobody heard about is still running"
        assert records[0].read_text() == "1"  # it exited unacknowledged, before starting a server
        assert not servers.ready(port)
        fork = warm.fork(servers.arguments("heard", model_dir, _sha(model_dir), port), tmp_path / "h")
        assert fork is not None  # the parent serves the next request as before
        while not servers.ready(port) and time.monotonic() < end:
            time.sleep(0.1)
        assert servers.ready(port)
        servers.kill_group(fork.pid, servers.create_time(fork.pid))
    finally:
        warm.stop()
        for proc in psutil.process_iter(["cmdline"]):  # a child that outlived the test (when it fails) goes too
            if str(warm.socket) in (proc.info["cmdline"] or []):
                proc.kill()
