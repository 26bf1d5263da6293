"""The local Argo engine: executes a compiled Workflow as Argo's controller would, with local processes.

The input is the Workflow object Argo would receive.  DAGs, steps, loops, conditions, retries, deadlines,
parallelism, exit handlers, parameters and S3 artifacts follow Argo's documented semantics; the resulting
``status`` (phases, node tree, outputs) uses Argo's own schema so tools written for ``argo get -o json``
can read it.  :class:`Engine` holds what every run shares; :class:`~workflows.engine.run.Run` is one run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

from workflows.engine.pod.launcher import PRELOAD, Launcher
from workflows.engine.run import Run
from workflows.engine.state.cache import Cache
from workflows.engine.state.locks import Locks
from workflows.engine.state.objects import LocalObjects
from workflows.engine.state.store import RunStore


class Engine:
    """Runs Workflow objects locally and keeps their records in a :class:`RunStore`.

    Args:
        store: Where run records go.
        library: WorkflowTemplates that ``workflowTemplateRef`` and ``templateRef`` resolve against.
        s3: A factory returning a boto3 S3 client (called only when a run uses artifacts).
        artifacts_bucket: Default bucket of the artifact repository.
        objects: Local stand-ins for the cluster's ConfigMaps and Secrets.
        base_env: Environment every step gets (the platform's endpoints).
        parallelism: Most steps running at once.
        warm: Fork Python steps from a launcher that has preloaded the heavy libraries (see ``launcher``).
        preload: The modules that launcher imports.
    """

    def __init__(
        self,
        store: RunStore,
        library: Any,
        s3: Callable[[], Any],
        artifacts_bucket: str,
        objects: LocalObjects | None = None,
        base_env: Mapping[str, str] | None = None,
        parallelism: int = 2,
        warm: bool = False,
        preload: tuple[str, ...] = PRELOAD,
    ) -> None:
        self.store = store
        self.library = library
        self._s3_factory = s3
        self._s3_client: Any = None
        self.artifacts_bucket = artifacts_bucket
        self.objects = objects or LocalObjects()
        self.base_env = dict(base_env or {})
        self.parallelism = parallelism
        self.locks = Locks(store.root.parent / "locks")
        self.cache = Cache(store.root.parent / "cache")
        self.warm, self.preload = warm, preload
        self._launchers: dict[asyncio.AbstractEventLoop, Launcher] = {}

    @property
    def launcher(self) -> Launcher | None:
        """The warm launcher of the run on this thread's event loop (runs going on at once each have their own)."""
        try:
            return self._launchers.get(asyncio.get_running_loop())
        except RuntimeError:  # no run on this thread
            return None

    def thread_env(self) -> dict[str, str]:
        """Thread limits for one step: its share of the cores, as a CPU limit gives a pod on a cluster.

        Without them, parallel steps that each start one thread per core (OpenMP, BLAS) oversubscribe the
        machine and slow each other down many times over. A template's own ``env`` still overrides them.
        """
        share = str(max(1, (os.cpu_count() or 1) // self.parallelism))
        return {name: share for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}

    def s3(self) -> Any:
        """The S3 client, created on first use."""
        if self._s3_client is None:
            self._s3_client = self._s3_factory()
        return self._s3_client

    def run(self, workflow: dict[str, Any]) -> dict[str, Any]:
        """Execute a prepared Workflow to the end and return it with its final status."""
        asyncio.run(self._execute(workflow))
        return workflow

    async def _execute(self, workflow: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        if self.warm:
            self._launchers[loop] = Launcher({**os.environ, **self.base_env, **self.thread_env()}, self.preload)
            self._launchers[loop].start()
        try:
            await Run(workflow, self).execute()
        finally:
            launcher = self._launchers.pop(loop, None)
            if launcher is not None:
                await launcher.close()
