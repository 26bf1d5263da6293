"""Model server processes of local serving: start one per revision, check it, signal it, know whether it runs.

Each server is a ``python -m serving`` process on a free loopback port, in a process group of its own but in
local serving's session, so ``ctcd down`` finds it even after serving itself died.  A pid is only ever
signalled together with the start time recorded for it, so a reused pid is never taken for a server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

REFUSED = 3  # the predictor's exit code for an artifact it refuses (sha256 mismatch, not a model folder)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(name: str, folder: Path, sha256: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start a model server for ``name`` serving ``folder`` on ``port``, its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving",
                "--model_name",
                name,
                "--model_dir",
                str(folder),
                "--sha256",
                sha256,
                "--http_port",
                str(port),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )


def ready(port: int) -> bool:
    """Whether the server on ``port`` answers its v2 readiness check."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def kill_group(pid: int, started: float, sig: int = signal.SIGKILL) -> None:
    """Signal a model server's process group (it leads one) if that very process still runs."""
    import psutil

    try:
        if not pid or abs(psutil.Process(pid).create_time() - started) > 0.5:
            return
        os.killpg(pid, sig)
    except (psutil.Error, ProcessLookupError, PermissionError):
        pass


def create_time(pid: int) -> float:
    """A process's start time (0 when it is gone)."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as dead)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return True


def last_line(log: Path) -> str:
    """The last line a server logged ('' when it logged nothing)."""
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""
