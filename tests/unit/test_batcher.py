"""The predictor's micro-batcher: each request gets its own rows back, batches form only under load, and one
bad request never fails the others."""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest

from serving.batcher import Batcher


class Model:
    """Scores a frame of ``x`` values: label ``x * 10``, confidence ``x / 100``; ``x < 0`` breaks it."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, frame: Any) -> tuple[list[Any], list[float]]:
        self.calls.append(len(frame))
        if (frame["x"] < 0).any():
            raise ValueError("negative x")
        return [int(v) * 10 for v in frame["x"]], [float(v) / 100 for v in frame["x"]]


def _frame(*values: int) -> pd.DataFrame:
    return pd.DataFrame({"x": list(values)})


def test_a_lone_request_is_scored_alone() -> None:
    model = Model()
    batcher = Batcher(model, max_rows=100)
    assert asyncio.run(batcher.submit(_frame(1, 2))) == ([10, 20], [0.01, 0.02])
    assert model.calls == [2]


def test_concurrent_requests_share_one_call_and_get_their_own_rows() -> None:
    model = Model()
    batcher = Batcher(model, max_rows=100)

    async def burst() -> list[Any]:
        return await asyncio.gather(*(batcher.submit(_frame(i, i + 1)) for i in range(0, 20, 2)))

    results = asyncio.run(burst())
    assert results == [([i * 10, (i + 1) * 10], [i / 100, (i + 1) / 100]) for i in range(0, 20, 2)]
    assert model.calls == [20] and (batcher.batches, batcher.requests) == (1, 10)


def test_batches_never_exceed_max_rows() -> None:
    model = Model()
    batcher = Batcher(model, max_rows=5)

    async def burst() -> list[Any]:
        return await asyncio.gather(*(batcher.submit(_frame(i, i)) for i in range(6)))

    results = asyncio.run(burst())
    assert [r[0] for r in results] == [[i * 10, i * 10] for i in range(6)]
    assert max(model.calls) <= 5 and sum(model.calls) == 12


def test_one_bad_request_fails_alone() -> None:
    model = Model()
    batcher = Batcher(model, max_rows=100)

    async def burst() -> list[Any]:
        return await asyncio.gather(
            batcher.submit(_frame(1)), batcher.submit(_frame(-1)), batcher.submit(_frame(2)), return_exceptions=True
        )

    good, bad, other = asyncio.run(burst())
    assert good == ([10], [0.01]) and other == ([20], [0.02])
    with pytest.raises(ValueError, match="negative x"):
        raise bad


def test_a_request_whose_caller_stopped_waiting_is_skipped_not_scored() -> None:
    import time

    from serving.batcher import DeadlinePassed

    model = Model()
    batcher = Batcher(model, max_rows=100)

    async def main() -> list[Any]:
        late = batcher.submit(_frame(1), deadline=time.time() - 1)  # the gateway gave up already
        fresh = batcher.submit(_frame(2), deadline=time.time() + 60)
        return await asyncio.gather(late, fresh, return_exceptions=True)

    late, fresh = asyncio.run(main())
    assert isinstance(late, DeadlinePassed) and fresh == ([20], [0.02])
    assert model.calls == [1] and batcher.expired == 1  # only the request someone still waits for was scored
