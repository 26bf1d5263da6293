"""Argo ``synchronization`` for the local engine: mutexes and semaphores as file locks in the state folder.

The locks are ``flock`` files, so they hold across every run of the engine on this machine, each run being its
own process.  A semaphore's limit is read from the ConfigMap key it names (local stand-in values), as Argo does.
The holder writes its name into the slot it holds, so that a waiter can say whom it waits for.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Need:
    """One lock a synchronization block needs, named as Argo names it (``default/Mutex/m``)."""

    kind: str  # "mutex" or "semaphore"
    key: str
    limit: int

    @property
    def file(self) -> str:
        """The lock's file name in the locks folder."""
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.key.replace("/", "-"))


def requirements(sync: dict[str, Any], lookup: Callable[[str, dict[str, Any]], str], namespace: str) -> list[Need]:
    """The locks a ``synchronization`` block needs, sorted (to avoid deadlocks).

    A lock lives in a namespace, its own ``namespace`` or else the workflow's, as on a cluster: ``mutex: {name: a}``
    in two namespaces are two mutexes.  A semaphore's limit is read from the ConfigMap key it names.
    """
    mutexes = ([sync["mutex"]] if "mutex" in sync else []) + list(sync.get("mutexes", []))
    semaphores = ([sync["semaphore"]] if "semaphore" in sync else []) + list(sync.get("semaphores", []))
    needs = [Need("mutex", f"{m.get('namespace') or namespace}/Mutex/{m['name']}", 1) for m in mutexes]
    for semaphore in semaphores:
        ref = semaphore["configMapKeyRef"]
        limit = max(1, int(lookup("configMapKeyRef", ref)))
        key = f"{semaphore.get('namespace') or namespace}/ConfigMap/{ref['name']}/{ref['key']}"
        needs.append(Need("semaphore", key, limit))
    return sorted(needs, key=lambda n: n.key)


class Locks:
    """All-or-nothing acquisition of the locks of one synchronization block; each slot file names its holder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def _try(self, need: Need, holder: str) -> int | None:
        for slot in range(need.limit):
            fd = os.open(self.folder / f"{need.file}.{slot}", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
            return fd
        return None

    def holders(self, need: Need) -> list[str]:
        """Who holds the lock's slots now (a workflow's name, or a node's id)."""
        found = []
        for slot in range(need.limit):
            path = self.folder / f"{need.file}.{slot}"
            if not path.exists():
                continue
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                found.append(os.pread(fd, 512, 0).decode(errors="replace"))
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        return found

    async def acquire(self, needs: list[Need], holder: str, waiting: Callable[[Need, list[str]], None]) -> list[int]:
        """Hold every lock of ``needs`` for ``holder``; while one is taken, call ``waiting`` with it and its holders."""
        told: Need | None = None
        while True:
            held: list[int] = []
            for need in needs:
                fd = self._try(need, holder)
                if fd is None:
                    self.release(held)
                    if told != need:
                        waiting(need, self.holders(need))
                        told = need
                    break
                held.append(fd)
            else:
                return held
            await asyncio.sleep(0.2)

    @staticmethod
    def release(held: list[int]) -> None:
        """Let go of locks."""
        for fd in held:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
