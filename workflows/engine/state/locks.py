"""Argo ``synchronization`` for the local engine: mutexes and semaphores as file locks in the state folder.

The locks are ``flock`` files, so they hold across every run of the engine on this machine, each run being its
own process.  A semaphore's limit is read from the ConfigMap key it names (local stand-in values), as Argo does.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any


def requirements(sync: dict[str, Any], lookup: Callable[[str, dict[str, Any]], str]) -> list[tuple[str, int]]:
    """The locks a ``synchronization`` block needs: ``[(lock name, limit)]``, sorted (to avoid deadlocks)."""
    mutexes = ([sync["mutex"]] if "mutex" in sync else []) + list(sync.get("mutexes", []))
    semaphores = ([sync["semaphore"]] if "semaphore" in sync else []) + list(sync.get("semaphores", []))
    needs = [(f"mutex-{_safe(m['name'])}", 1) for m in mutexes]
    for semaphore in semaphores:
        ref = semaphore["configMapKeyRef"]
        limit = int(lookup("configMapKeyRef", ref))
        needs.append((f"semaphore-{_safe(ref['name'])}-{_safe(ref['key'])}", max(1, limit)))
    return sorted(needs)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class Locks:
    """All-or-nothing acquisition of the locks of one synchronization block."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def _try(self, name: str, limit: int) -> int | None:
        for slot in range(limit):
            fd = os.open(self.folder / f"{name}.{slot}", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        return None

    async def acquire(self, needs: list[tuple[str, int]], waiting: Callable[[str], None]) -> list[int]:
        """Hold every lock of ``needs``, calling ``waiting`` with a message while any is taken."""
        told = False
        while True:
            held: list[int] = []
            for name, limit in needs:
                fd = self._try(name, limit)
                if fd is None:
                    self.release(held)
                    if not told:
                        waiting(f"Waiting for {name.replace('-', ' ', 1)} lock")
                        told = True
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
