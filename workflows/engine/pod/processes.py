"""A step's host process: started (forked warm when it can be), its output pumped to the node's log, and killed.

The node ends when the step's own process exits, as a pod ends with its main container; whatever it left in
its process group is killed then.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.engine.state.nodes import Node, NodeError

if TYPE_CHECKING:
    from workflows.engine.context import RunContext

DRAIN_SECONDS = 2.0  # output a step's leftovers may still flush after it exited


class Child:
    """A step's running process, its output pumped to the node's log (and kept, for ``outputs.result``)."""

    def __init__(self, run: RunContext, node: Node, proc: Any, log_path: Path) -> None:
        self.run, self.node, self.proc = run, node, proc
        self.out: list[bytes] = []
        self.log = log_path.open("ab")
        self.pumps = [
            asyncio.ensure_future(_pump(proc.stdout, self.log, self.out)),
            asyncio.ensure_future(_pump(proc.stderr, self.log, None)),
        ]

    async def wait(self) -> tuple[int, str]:
        """Wait for the process to exit; kill what it left in its group; return its code and stdout."""
        try:
            await _exited(self.proc)
        finally:
            await self.stop()
        return exit_code(self.proc.returncode), b"".join(self.out).decode(errors="replace")

    async def stop(self) -> None:
        """Stop the process (if it still runs) and its group, then drain its output."""
        if self.proc.returncode is None:
            await _kill(self.proc)
        _kill_group(self.proc.pid)
        _, late = await asyncio.wait(self.pumps, timeout=DRAIN_SECONDS)
        for pump in late:
            pump.cancel()
        self.log.close()
        self.run.engine.store.forget_pod(self.run.name, self.node["id"])


async def start(run: RunContext, node: Node, argv: list[str], env: dict[str, str], cwd: Path) -> Child:
    """Start a step's process in the background (a daemon or sidecar) and return it."""
    cwd.mkdir(parents=True, exist_ok=True)
    log_path = run.engine.store.log_path(run.name, node["id"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc = await _start(run, node, argv, env, cwd)
    run.engine.store.record_pod(run.name, node["id"], proc.pid)
    return Child(run, node, proc, log_path)


async def spawn(run: RunContext, node: Node, argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run a step's process to its exit; whatever it left running in its process group is killed then.

    The node ends when the step's own process exits, as a pod ends with its main container: workers it
    forked (joblib/loky) that still hold its output pipes are killed with the group, and the output is
    drained for at most ``DRAIN_SECONDS`` more.
    """
    child = await start(run, node, argv, env, cwd)
    return await child.wait()


async def _start(run: RunContext, node: Node, argv: list[str], env: dict[str, str], cwd: Path) -> Any:
    """Start a step's process: forked from the warm launcher when it can be, else a fresh one."""
    launcher = run.engine.launcher
    if launcher is not None:
        try:
            child = await launcher.try_spawn(argv, env, str(cwd))
        except OSError as exc:
            run.log(node, f"warm start failed ({exc}); starting a fresh process")
        else:
            if child is not None:
                run.log(node, f"forked from the warm launcher as pid {child.pid}")
                return child
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except FileNotFoundError as exc:  # the container runtime's words, which Argo shows as the node's message
        missing = "executable file not found in $PATH" if "/" not in argv[0] else "no such file or directory"
        raise NodeError(f'failed to start the main container: exec: "{argv[0]}": {missing}') from exc
    except OSError as exc:
        raise NodeError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc


def exit_code(returncode: int | None) -> int:
    """A process's exit code as a container reports it: 128 + N for one ended by signal N (SIGTERM is 143)."""
    code = int(returncode or 0)
    return 128 - code if code < 0 else code


async def _pump(stream: asyncio.StreamReader | None, log: Any, sink: list[bytes] | None) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        log.write(chunk)
        log.flush()
        if sink is not None:
            sink.append(chunk)


async def _exited(proc: Any) -> None:
    """Return once the process itself has exited.

    ``asyncio``'s ``wait()`` (Python 3.11) also waits for the pipes to close, which a forked worker holding
    them would delay for ever; the exit status is known as soon as the process is reaped.
    """
    waiter = asyncio.ensure_future(proc.wait())
    try:
        while not waiter.done() and proc.returncode is None:
            await asyncio.wait([waiter], timeout=0.1)
    finally:
        if not waiter.done():
            waiter.cancel()


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a step's process group (nothing, usually)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), timeout=3)
            return
        except TimeoutError:
            continue
