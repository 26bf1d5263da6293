"""What a node kind or a pod sees of the run that executes it: a small Protocol, so that no kind imports the run.

:class:`~workflows.engine.run.Run` satisfies :class:`RunContext`; the node kinds (:mod:`workflows.engine.kinds`)
and the pod layer (:mod:`workflows.engine.pod`) are written against it, which keeps the engine's imports flowing
one way: the run imports the kinds, never the reverse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workflows.engine.frames import Frame, Scope
from workflows.engine.state.nodes import Node

if TYPE_CHECKING:
    from workflows.engine.state.cache import Cache
    from workflows.engine.state.locks import Locks
    from workflows.engine.state.objects import LocalObjects
    from workflows.engine.state.store import RunStore


class Process(Protocol):
    """A step's started process: asyncio's, or one forked from the warm launcher."""

    @property
    def pid(self) -> int:
        """The process id."""

    @property
    def returncode(self) -> int | None:
        """The exit code, once it exited."""

    @property
    def stdout(self) -> asyncio.StreamReader | None:
        """Its standard output."""

    @property
    def stderr(self) -> asyncio.StreamReader | None:
        """Its standard error."""

    async def wait(self) -> int:
        """Wait for the process to exit; return its exit code."""


class Spawner(Protocol):
    """The warm launcher, as the pod layer starts steps through it."""

    async def try_spawn(self, argv: list[str], env: Mapping[str, str], cwd: str) -> Process | None:
        """Fork a step from the launcher, or None when it cannot run this one."""


class EngineParts(Protocol):
    """What every run shares: the record store, cluster objects, S3, the step environment and the launcher."""

    store: RunStore
    library: Any
    artifacts_bucket: str
    objects: LocalObjects
    base_env: dict[str, str]

    @property
    def launcher(self) -> Spawner | None:
        """The warm launcher, while one runs."""

    locks: Locks
    cache: Cache
    parallelism: int

    def s3(self) -> Any:
        """The S3 client."""

    def thread_env(self) -> dict[str, str]:
        """Thread limits for one step."""


class RunContext(Protocol):
    """One run, as its node kinds and pods use it."""

    engine: EngineParts
    wf: dict[str, Any]
    name: str
    dir: Path
    spec: dict[str, Any]
    status: dict[str, Any]
    nodes: dict[str, Node]
    globals: dict[str, str]
    global_artifacts: dict[str, dict[str, Any]]
    daemons: dict[str, list[Any]]
    pod_slots: asyncio.Semaphore
    bucket: str
    estimates: dict[str, int]
    stopped: str | None

    def touch(self) -> None:
        """Mark the status as changed."""

    def new_node(self, name: str, display: str, kind: str, template: str, boundary: str | None) -> Node:
        """Create a Running node."""

    def finish(self, node: Node, phase: str, message: str | None = None) -> Node:
        """Set a node's final phase."""

    def log(self, node: Node, text: str) -> None:
        """Append an engine note to a node's log."""

    async def execute_template(
        self,
        name: str,
        display: str,
        invocation: Mapping[str, Any],
        scope: Scope,
        args: Mapping[str, Any],
        boundary: str | None,
        link: Callable[[Node], None] | None = None,
    ) -> Node:
        """Execute one template as a node and return it finished."""

    async def invoke(
        self,
        name: str,
        display: str,
        item: dict[str, Any],
        scope: Scope,
        frame: Frame,
        limiter: asyncio.Semaphore | None,
        boundary: str,
        link: Callable[[Node], None],
    ) -> Node:
        """Run one task or step after its ``when`` and references are resolved."""

    async def run_body(self, node: Node, tmpl: dict[str, Any], scope: Scope, attempt: int) -> Node:
        """Run a template's body by kind within its deadline."""
