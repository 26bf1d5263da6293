"""Model server processes of local serving: start one per revision, check it, signal it, know whether it runs.

Each server is a ``python -m serving`` process on a free loopback port, in a process group of its own but in
local serving's session, so ``ctcd down`` finds it even after serving itself died.  It is forked from the warm
parent (:mod:`serving.local.warm`), which has imported the serving stack once, so that revisions share those
pages; when the parent cannot be reached, a process of its own is started instead.  A pid is only ever
signalled together with the start time recorded for it, so a reused pid is never taken for a server.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

_logger = logging.getLogger(__name__)
QUIET_MATH = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # a thread per server
REFUSED = 3  # the predictor's exit code for an artifact it refuses (sha256 mismatch, not a model folder)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server(Protocol):
    """A running model server: a process of its own, whether started afresh or forked from the warm parent."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None:
        """Its exit code once it ended, else None."""


def arguments(name: str, folder: Path, sha256: str, port: int) -> list[str]:
    """``python -m serving``'s arguments for one revision."""
    return ["--model_name", name, "--model_dir", str(folder), "--sha256", sha256, "--http_port", str(port)]


def start(name: str, folder: Path, sha256: str, port: int, log: Path, warm: Warm | None = None) -> Server:
    """Start a model server for ``name`` serving ``folder`` on ``port``, its output appended to ``log``.

    Forked from the warm parent when it answers; else a process of its own, which imports everything itself.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = arguments(name, folder, sha256, port)
    forked = warm.fork(argv, log) if warm is not None else None
    if forked is not None:
        return forked
    with open(log, "ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "serving", *argv],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
            env={**os.environ, **QUIET_MATH},
        )


@dataclass
class Forked:
    """A model server forked by the warm parent (not our child: its exit code comes from the parent's record)."""

    pid: int
    exits: Path
    returncode: int | None = None

    def poll(self) -> int | None:
        """Its exit code once it ended (-9 when the parent recorded none), else None."""
        if self.returncode is None and not alive(self.pid):
            try:
                self.returncode = int((self.exits / str(self.pid)).read_text())
            except (OSError, ValueError):
                self.returncode = -signal.SIGKILL
        return self.returncode


@dataclass
class Warm:
    """The warm parent (:mod:`serving.local.warm`): started once, asked to fork each model server.

    Attributes:
        root: Local serving's folder; the socket and the exit records live under ``root/warm``.
        pid: The parent's pid (0 before it is started), with its start time, so a reused pid is never signalled.
    """

    root: Path
    pid: int = 0
    started: float = 0.0
    wait: float = 60.0  # how long a fork request may wait while the parent imports (then: a process of its own)

    @property
    def socket(self) -> Path:
        """The parent's Unix socket."""
        return self.root / "warm" / "fork.sock"

    @staticmethod
    def fits(root: Path) -> bool:
        """Whether a Unix socket can live under ``root`` (its path must stay under the kernel's 108 bytes)."""
        return len(os.fsencode(Warm(root).socket)) < 100

    def ensure(self) -> None:
        """Start the parent unless it runs (its imports take a few seconds; requests wait for them)."""
        if self.pid and alive(self.pid) and abs(create_time(self.pid) - self.started) <= 0.5:
            return
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        with open(self.root / "warm" / "warm.log", "ab") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "serving.local.warm", str(self.socket)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
                env={**os.environ, **QUIET_MATH},
            )
        self.pid, self.started = proc.pid, create_time(proc.pid)

    def fork(self, argv: list[str], log: Path) -> Forked | None:
        """A model server forked from the parent, or None when the parent cannot be reached in time."""
        deadline = time.monotonic() + self.wait
        while not self.socket.exists() and alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(max(1.0, deadline - time.monotonic()))
                conn.connect(str(self.socket))
                conn.sendall(json.dumps({"argv": argv, "log": str(log)}).encode() + b"\n")
                reply = json.loads(conn.makefile("rb").readline())
        except (OSError, ValueError):
            return None
        return Forked(int(reply["pid"]), self.socket.parent / "exits")

    def stop(self) -> None:
        """Stop the parent (its children, in their own groups, are stopped one by one)."""
        kill_group(self.pid, self.started, signal.SIGTERM)
        self.pid = 0


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


def warm_parent(root: Path) -> Warm | None:
    """The warm parent for local serving's folder, or None when its socket's path would be too long."""
    if Warm.fits(root):
        return Warm(root)
    _logger.warning("the state folder's path is too long for the warm parent's socket: a process per revision")
    return None
