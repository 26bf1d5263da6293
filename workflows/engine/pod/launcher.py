"""Warm start for Python steps: fork each step from a process that has already imported the heavy libraries.

A step pod on a cluster pays its imports (MLflow, scikit-learn, pandas: seconds) on every start.  Locally the
engine instead keeps one *launcher* per run: a process started with ``python -m workflows.engine.pod.launcher`` that
imports the preload list once and then forks a fresh child for each ``python -m MODULE …`` or ``python SCRIPT
…`` step.  Each child is still its own process and session, with the step's own environment, working folder,
stdin, stdout and stderr, and exits with the step's exit code; only the import time is gone.  Project code
(``workflows``, ``models``) is never preloaded, so a run always executes the code on disk.

Protocol: the engine sends each request (argv, env, cwd) as one packet on a ``SOCK_SEQPACKET`` socket pair,
with three descriptors attached: a reply socket and the write ends of the stdout and stderr pipes.  The launcher
answers on the reply socket with the child's pid, then with its exit code.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import json
import os
import random
import runpy
import selectors
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Mapping
from typing import Any

# Libraries the ctcd steps import; each is optional (a missing one is simply not preloaded).
PRELOAD = (
    "hera.workflows.runner",
    "pandas",
    "pyarrow.parquet",
    "boto3",
    "mlflow",
    "mlflow.sklearn",
    "sklearn.pipeline",
    "sklearn.linear_model",
    "sklearn.feature_extraction.text",
    "sklearn.model_selection",
    "sklearn.metrics",
    "matplotlib.pyplot",
)
# Variables read when a library is imported: a step that sets them differently starts a process of its own.
IMPORT_TIME_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "PYTHONWARNINGS",
    "PYTHONDONTWRITEBYTECODE",
    "MPLBACKEND",
)
_PACKET = 1 << 20
READY = b"ready"
READY_WAIT = 30.0  # seconds a step waits for a preloading launcher before it starts afresh


# --- the launcher process ----------------------------------------------------------------------------


def main(control_fd: int, modules: list[str]) -> None:
    """Preload ``modules``, then serve fork requests on the control socket until the engine closes it."""
    if "matplotlib.pyplot" in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module("matplotlib").use("Agg")  # what the steps' plots use; no display here
    for module in modules:
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    control = socket.socket(fileno=control_fd)
    try:
        control.send(READY)
    except OSError:
        return  # the engine finished before the preload did
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, None)
    while True:
        for key, _ in selector.select():
            if key.data is None:
                if not _serve(control, selector):
                    return
            else:
                _reap(selector, key.fd, *key.data)


def _serve(control: socket.socket, selector: selectors.BaseSelector) -> bool:
    """Fork one requested step; return False once the engine has closed the control socket."""
    packet, fds, _, _ = socket.recv_fds(control, _PACKET, 3)
    if not packet:
        return False
    reply_fd, out_fd, err_fd = fds
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        control.close()
        os.close(reply_fd)
        _child(json.loads(packet), out_fd, err_fd)
    os.close(out_fd)
    os.close(err_fd)
    reply = socket.socket(fileno=reply_fd)
    reply.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    selector.register(os.pidfd_open(pid), selectors.EVENT_READ, (pid, reply))
    return True


def _reap(selector: selectors.BaseSelector, pidfd: int, pid: int, reply: socket.socket) -> None:
    """Send a finished child's exit code to the engine."""
    selector.unregister(pidfd)
    os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    with contextlib.suppress(OSError), reply:
        reply.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")


def _child(request: Mapping[str, Any], out_fd: int, err_fd: int) -> None:
    """In the forked child: become the step's process, run it like ``python`` would, and exit."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (out_fd, 1), (err_fd, 2)):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _reseed()
        code = _run(request["argv"])
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reseed() -> None:
    """Give the child its own random state (every fork would otherwise share the launcher's)."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _run(argv: list[str]) -> int:
    """Run ``python -m MODULE ARGS`` or ``python SCRIPT ARGS`` in this process; return its exit code."""
    try:
        if argv[1] == "-m":
            sys.argv = argv[2:]
            sys.path[0] = os.getcwd()
            runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        else:
            sys.argv = argv[1:]
            sys.path[0] = os.path.dirname(os.path.abspath(argv[1]))
            runpy.run_path(argv[1], run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]  # join non-daemon threads, as interpreter exit does
        atexit._run_exitfuncs()
    return code


def _exit_code(value: object) -> int:
    """The process exit code ``sys.exit(value)`` gives."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


# --- the engine's side -----------------------------------------------------------------------------


class WarmChild:
    """A step forked by the launcher, shaped like :class:`asyncio.subprocess.Process` for the engine."""

    def __init__(self, pid: int, stdout: asyncio.StreamReader, stderr: asyncio.StreamReader, done: Any) -> None:
        self.pid, self.stdout, self.stderr = pid, stdout, stderr
        self.returncode: int | None = None
        self._done = done

    async def wait(self) -> int:
        """Wait for the step to exit; return its exit code (-1 if the launcher vanished first)."""
        code: int = await asyncio.shield(self._done)
        self.returncode = code
        return code


class Launcher:
    """The engine's handle on one launcher process, started as a run starts (or by its first Python step).

    Steps that arrive while it is still importing wait for it (up to ``READY_WAIT`` seconds): a step started
    afresh would pay the same imports on the same cores, and two or three of them at once slowed the launcher
    and each other (measured: the first steps of ``train-all`` took 2.3-3.4 s started afresh, 0.5 s forked).
    A step that needs none of the preloaded libraries waits for them once per run.

    Args:
        env: The environment the launcher imports under (steps whose import-time variables differ from it are
            not forked from it).
        modules: What to preload.
    """

    def __init__(self, env: Mapping[str, str], modules: tuple[str, ...] = PRELOAD) -> None:
        self.env = dict(env)
        self.modules = modules
        self.ready = False
        self._proc: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._starting: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def accepts(self, argv: list[str], env: Mapping[str, str]) -> bool:
        """Whether a step can be forked: ``python -m MODULE`` or ``python SCRIPT``, with the same import-time env."""
        if len(argv) < 2 or argv[0] != sys.executable or (argv[1].startswith("-") and argv[1] != "-m"):
            return False
        if argv[1] == "-m" and len(argv) < 3:
            return False
        return all(env.get(name) == self.env.get(name) for name in IMPORT_TIME_ENV)

    async def try_spawn(self, argv: list[str], env: Mapping[str, str], cwd: str) -> WarmChild | None:
        """Fork a step from the launcher; None when it cannot take it, and the caller starts it itself.

        A request made while the launcher preloads waits for it, up to ``READY_WAIT`` seconds.

        Raises:
            OSError: The launcher failed the request.
        """
        if not self.accepts(argv, env):
            return None
        self.start()
        if not self.ready and self._starting is not None:
            # A step started afresh pays the same imports the launcher is paying, on the same cores: waiting
            # for the launcher is the quicker way to a started step, unless it takes too long or dies.
            await asyncio.wait({self._starting}, timeout=READY_WAIT)
        if not self.ready or self._control is None:
            return None
        loop = asyncio.get_running_loop()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ours, theirs = socket.socketpair()
        try:
            packet = json.dumps({"argv": argv, "env": dict(env), "cwd": cwd}).encode()
            async with self._lock:
                await asyncio.to_thread(socket.send_fds, self._control, [packet], [theirs.fileno(), out_w, err_w])
        except OSError:
            self.ready = False
            for fd in (out_r, err_r):
                os.close(fd)
            ours.close()
            raise
        finally:
            for fd in (out_w, err_w):
                os.close(fd)
            theirs.close()
        reply, writer = await asyncio.open_unix_connection(sock=ours)
        pid = json.loads(await reply.readline() or b'{"pid": 0}')["pid"]
        stdout, stderr = await _pipe_reader(loop, out_r), await _pipe_reader(loop, err_r)
        if not pid:
            writer.close()
            self.ready = False
            raise OSError("the step launcher closed the request without starting the step")
        return WarmChild(pid, stdout, stderr, asyncio.ensure_future(_exit_of(reply, writer)))

    def start(self) -> None:
        """Begin preloading now (the engine calls it as a run starts, so the first steps find it ready sooner)."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())

    async def _start(self) -> None:
        """Start the launcher and mark it ready once it has preloaded (never, if it dies first)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "workflows.engine.pod.launcher",
                str(theirs.fileno()),
                *self.modules,
                pass_fds=(theirs.fileno(),),
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            ours.close()
            return
        finally:
            theirs.close()
        self._control = ours
        self.ready = await asyncio.to_thread(ours.recv, 16) == READY

    async def close(self) -> None:
        """Stop the launcher (closing the control socket ends it; its forked steps are the engine's to end)."""
        was_ready, self.ready = self.ready, False
        if self._proc is not None and self._proc.returncode is None and not was_ready:
            self._proc.kill()  # still importing: nothing was forked from it
        if self._control is not None:
            self._control.shutdown(socket.SHUT_RDWR)
            self._control.close()
            self._control = None
        if self._starting is not None:
            await self._starting
        if self._proc is not None and self._proc.returncode is None:
            try:
                await asyncio.wait_for(self._proc.wait(), timeout=5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()


async def _pipe_reader(loop: asyncio.AbstractEventLoop, fd: int) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0))
    return reader


async def _exit_of(reply: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    try:
        line = await reply.readline()
    finally:
        writer.close()
    return int(json.loads(line)["exit"]) if line else -1


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
