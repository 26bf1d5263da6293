"""Opportunistic micro-batching for the predictor: requests waiting while the model is busy are scored together.

A lone request is scored at once (no added latency, no timer).  Under load, every request that arrived while
the previous batch was being scored goes into one vectorized call, which costs little more than a single row,
so throughput grows with concurrency.  Results are split back per request in order; if a combined call fails,
each request is scored on its own so one bad request never fails another.  A request may carry a deadline (the
time its caller stops waiting): one still queued past it is dropped with :class:`DeadlinePassed`, never scored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

_logger = logging.getLogger(__name__)
Scores = tuple[list[Any], list[float]]
Pending = tuple[Any, "asyncio.Future[Scores]", float]


class DeadlinePassed(RuntimeError):
    """The request's caller stopped waiting before the model reached it; it was not scored."""


class Batcher:
    """Queues frames and scores them in batches of at most ``max_rows`` rows.

    Args:
        score: Scores one frame; returns labels and confidences, one per row.
        max_rows: The most rows one combined call may hold.
    """

    def __init__(self, score: Callable[[Any], Scores], max_rows: int) -> None:
        self.score = score
        self.max_rows = max_rows
        self.batches = 0
        self.requests = 0
        self._pending: deque[Pending] = deque()
        self.expired = 0
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, frame: Any, deadline: float = float("inf")) -> Scores:
        """Score ``frame`` (possibly together with other waiting requests) unless ``deadline`` (Unix time) passes first.

        Raises:
            DeadlinePassed: The deadline passed while the request waited.
        """
        loop = asyncio.get_running_loop()
        if self._wake is None or self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._run(self._wake))
        future: asyncio.Future[Scores] = loop.create_future()
        self._pending.append((frame, future, deadline))
        self._wake.set()
        return await future

    async def _run(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            await asyncio.sleep(0)  # let requests the server has already read join this batch
            while self._pending:
                self._score_batch(self._take())

    def _take(self) -> list[tuple[Any, asyncio.Future[Scores]]]:
        batch = [self._pending.popleft()]
        rows = len(batch[0][0])
        while self._pending and rows + len(self._pending[0][0]) <= self.max_rows:
            batch.append(self._pending.popleft())
            rows += len(batch[-1][0])
        now = time.time()
        for _, future, deadline in batch:
            if deadline < now and not future.done():
                self.expired += 1
                future.set_exception(DeadlinePassed("the caller stopped waiting before the model reached this request"))
        return [(frame, future) for frame, future, _ in batch if not future.done()]

    def _score_batch(self, batch: list[tuple[Any, asyncio.Future[Scores]]]) -> None:
        if not batch:
            return
        self.batches += 1
        self.requests += len(batch)
        if len(batch) == 1:
            self._settle(*batch[0])
            return
        import pandas as pd

        try:
            labels, confidence = self.score(pd.concat([frame for frame, _ in batch], ignore_index=True))
        except Exception:  # one request may hold what breaks the model: score each alone
            _logger.warning("a combined batch of %d requests failed; scoring them one by one", len(batch))
            for frame, future in batch:
                self._settle(frame, future)
            return
        start = 0
        for frame, future in batch:
            end = start + len(frame)
            if not future.done():
                future.set_result((labels[start:end], confidence[start:end]))
            start = end

    def _settle(self, frame: Any, future: asyncio.Future[Scores]) -> None:
        try:
            result = self.score(frame)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)
