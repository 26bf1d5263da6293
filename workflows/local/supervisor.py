"""Process supervision for the embedded platform: start a service, find its whole tree, tell its state, stop it.

Every service starts as the leader of a session of its own, so everything it starts that does not leave the
session (MLflow's uvicorn worker, local serving's model servers) is found by session id even after the leader
died and its children were re-parented.  A pid record (``<state>/pids/<name>.json``) keeps the leader's pid and
start time; a member of that session started after the leader is the service's, so a reused pid is never
taken for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

_START_SLACK = 0.5  # seconds: psutil's create_time is rounded to clock ticks


@dataclass(frozen=True)
class Tree:
    """What is running of one service.

    Attributes:
        leader: The process that was started, if it is still that very process (and not a zombie).
        members: Every live process of its session, the leader included.
    """

    leader: psutil.Process | None
    members: list[psutil.Process]

    @property
    def state(self) -> str:
        """``running`` (leader alive), ``orphaned`` (leader gone, members left) or ``stopped``."""
        if self.leader is not None:
            return "running"
        return "orphaned" if self.members else "stopped"

    def rss(self) -> int:
        """Resident memory of every member, in bytes."""
        total = 0
        for member in self.members:
            try:
                total += member.memory_info().rss
            except psutil.Error:
                continue
        return total


def record_path(pids_dir: Path, name: str) -> Path:
    """The pid record of one service."""
    return pids_dir / f"{name}.json"


def start(pids_dir: Path, name: str, command: list[str], env: dict[str, str], cwd: Path, log: Path) -> psutil.Process:
    """Start ``command`` as a new session's leader, its output appended to ``log``, and record it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        popen = subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    proc = psutil.Process(popen.pid)
    pids_dir.mkdir(parents=True, exist_ok=True)
    record = {"pid": popen.pid, "create_time": proc.create_time(), "command": command}
    tmp = record_path(pids_dir, f".{name}.tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(record_path(pids_dir, name))
    return proc


def _record(pids_dir: Path, name: str) -> dict[str, float] | None:
    path = record_path(pids_dir, name)
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def session_members(sid: int, since: float) -> list[psutil.Process]:
    """Live processes of session ``sid`` started at or after ``since`` (epoch seconds)."""
    found = []
    for proc in psutil.process_iter(["create_time"]):
        try:
            if os.getsid(proc.pid) != sid or proc.info["create_time"] < since - _START_SLACK:
                continue
        except (OSError, psutil.Error):
            continue
        if _alive(proc):
            found.append(proc)
    return found


def tree(pids_dir: Path, name: str) -> Tree:
    """The leader and members of a service, from its pid record (an empty tree when there is none)."""
    record = _record(pids_dir, name)
    if record is None:
        return Tree(None, [])
    pid, created = int(record["pid"]), float(record["create_time"])
    members = session_members(pid, created) if created >= psutil.boot_time() - _START_SLACK else []
    leader = next((p for p in members if p.pid == pid), None)
    if leader is not None and abs(leader.create_time() - created) >= _START_SLACK:
        members, leader = [], None  # the pid was reused by another session's leader: nothing here is ours
    if not members:
        record_path(pids_dir, name).unlink(missing_ok=True)
    return Tree(leader, members)


def stop(pids_dir: Path, name: str, timeout: float = 15.0) -> bool:
    """Stop every process of a service (SIGTERM, then SIGKILL after ``timeout``); True when anything ran."""
    found = tree(pids_dir, name)
    if not found.members:
        return False
    terminate(found.members, timeout)
    leftovers = tree(pids_dir, name).members  # anything started while it was stopping
    terminate(leftovers, 5.0)
    record_path(pids_dir, name).unlink(missing_ok=True)
    return True


def terminate(processes: list[psutil.Process], timeout: float) -> None:
    """SIGTERM each process, wait up to ``timeout`` seconds, then SIGKILL the ones left."""
    for proc in processes:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            continue
    alive = wait_gone(processes, timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            continue
    wait_gone(alive, 5.0)


def _gone(proc: psutil.Process) -> bool:
    """Whether a process has exited; a zombie has (its parent, perhaps the ``up`` that started it, reaps it later)."""
    try:
        if proc.status() != psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return True
    try:
        proc.wait(timeout=0)  # reaps it when it is our own child; otherwise its parent will
    except (psutil.Error, ChildProcessError):
        pass
    return True


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` seconds for the processes to exit; return those still running."""
    end = time.monotonic() + timeout
    alive = [p for p in processes if not _gone(p)]
    while alive and time.monotonic() < end:
        time.sleep(0.05)
        alive = [p for p in alive if not _gone(p)]
    return alive
