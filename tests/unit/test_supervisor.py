"""The supervisor finds a service's whole session and never takes a stranger's process for it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

from workflows.local import supervisor

SLEEPER = [
    sys.executable,
    "-c",
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)",
]


def test_the_tree_holds_children_and_outlives_its_leader(tmp_path: Path) -> None:
    leader = supervisor.start(tmp_path, "svc", SLEEPER, {}, tmp_path, tmp_path / "svc.log")
    try:
        deadline = time.monotonic() + 10
        while len(supervisor.tree(tmp_path, "svc").members) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        found = supervisor.tree(tmp_path, "svc")
        assert found.state == "running" and len(found.members) == 2
        leader.kill()
        leader.wait(5)
        orphaned = supervisor.tree(tmp_path, "svc")
        assert orphaned.state == "orphaned" and len(orphaned.members) == 1
        assert supervisor.stop(tmp_path, "svc") is True
        assert supervisor.tree(tmp_path, "svc").state == "stopped"
    finally:
        for proc in supervisor.tree(tmp_path, "svc").members:
            proc.kill()


def test_a_reused_pid_leading_another_session_is_left_alone(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        created = psutil.Process(stranger.pid).create_time()
        record = supervisor.record_path(tmp_path, "svc")
        record.write_text(json.dumps({"pid": stranger.pid, "create_time": created - 5}))  # an older process's record
        assert supervisor.tree(tmp_path, "svc").members == []
        assert supervisor.stop(tmp_path, "svc") is False
        assert stranger.poll() is None
    finally:
        stranger.kill()


def test_a_stopped_process_its_parent_has_not_reaped_counts_as_gone() -> None:
    """``ctcd down`` from another shell than the ``up`` that started a service sees zombies, not live processes."""
    parent = subprocess.Popen(SLEEPER)  # its child is not ours, and it never reaps that child
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = psutil.Process(parent.pid).children()[0]
        child.kill()
        while child.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.status() == psutil.STATUS_ZOMBIE  # exited, waiting for its parent
        assert supervisor.wait_gone([child], timeout=0) == []
    finally:
        parent.kill()
        parent.wait(10)
