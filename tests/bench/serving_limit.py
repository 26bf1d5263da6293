"""The compute limit a model server works against, and where a server's time goes.

- **Limit**: the served pipeline's ``predict_proba`` called directly in a process pinned to the server core, no
  HTTP, no JSON: rows per second for one row per call, and for each batch size up to 512 (the best is the
  ceiling for 32-row requests batched together).  A server's share of it is what it reaches of that ceiling.
- **Profile**: ``cProfile`` on the ctcd predictor while the load generator sends it single-row requests; the
  functions with the most own time are printed (the profile is written when the server exits on SIGTERM).
"""

from __future__ import annotations

import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BATCHES = (1, 8, 32, 128, 512)


def _rows_per_second(model: Any, frame: Any, seconds: float = 1.5) -> float:
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.predict_proba(frame)
        calls += 1
    return calls * len(frame) / (time.perf_counter() - started)


def limit(model_dir: Path, texts: list[str], cores: set[int]) -> dict[str, float]:
    """``predict_proba`` alone, pinned to ``cores``: rows/s per batch size (median of three)."""
    import cloudpickle
    import pandas as pd

    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        model = cloudpickle.loads((model_dir / "model.pkl").read_bytes())
        found = {}
        for batch in BATCHES:
            frame = pd.DataFrame({"text": [texts[i % len(texts)] for i in range(batch)]})
            model.predict_proba(frame)
            found[str(batch)] = round(statistics.median(_rows_per_second(model, frame) for _ in range(3)), 1)
        return found
    finally:
        os.sched_setaffinity(0, mine)


def goals(figures: dict[str, dict[str, dict[str, Any]]], goal: float) -> list[str]:
    """The predictor against the best external peer, round by round: the ratio's median and range, and p99."""
    lines, external = [], [n for n in figures if not n.startswith("ctcd")]
    for rows in ("1", "32") if external else ():
        best = max(external, key=lambda n: figures[n][rows]["throughput_rps"])
        mine, theirs = figures["ctcd predictor"][rows], figures[best][rows]
        ratios = [a / b for a, b in zip(mine["rates"], theirs["rates"], strict=True)]
        low, high = min(ratios), max(ratios)
        verdict = "met" if low >= goal else "missed" if high < goal else "undecided: the rounds straddle it"
        p99 = "no worse" if mine["p99_ms"] <= theirs["p99_ms"] else "worse"
        lines.append(
            f"ctcd predictor / {best}, {rows}-row: {statistics.median(ratios):.2f}x (rounds {low:.2f}-{high:.2f}), "
            f"goal >= {goal}x: {verdict}; p99 {mine['p99_ms']} ms against {theirs['p99_ms']} ms: {p99}"
        )
    return lines


def shares(figures: dict[str, dict[str, dict[str, Any]]], ceiling: dict[str, float]) -> list[str]:
    """What each server reaches of the compute limit: 1-row requests of one row per call, 32-row of the best batch."""
    best = max(ceiling.values())
    lines = [
        f"compute limit (predict_proba alone, server core): 1 row per call {ceiling['1']:.0f} rows/s; best batch "
        f"{max(ceiling, key=lambda b: ceiling[b])} rows, {best:.0f} rows/s"
    ]
    for name, by_rows in figures.items():
        one, many = by_rows["1"]["throughput_rps"] / ceiling["1"], by_rows["32"]["rows_per_s"] / best
        lines.append(f"  {name}: 1-row {one:.0%} of one row per call, 32-row {many:.0%} of the best batch")
    return lines


def profiled_command(command: list[str], output: Path) -> list[str]:
    """``command`` (a ``python -m module …``) under cProfile, writing its stats to ``output`` on exit."""
    assert command[1] == "-m", command
    return [command[0], "-m", "cProfile", "-o", str(output), "-m", *command[2:]]


def hot_spots(stats: Path, top: int = 12) -> list[str]:
    """The functions with the most own time, as ``share  cumulative  function``."""
    profile = pstats.Stats(str(stats))
    entries = profile.stats  # type: ignore[attr-defined]
    total = sum(own for (_, _, own, _, _) in entries.values()) or 1.0
    ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    lines = []
    for (path, line, name), (_, _, own, cumulative, _) in ranked:
        where = f"{Path(path).parent.name}/{Path(path).name}:{line}" if line else path
        lines.append(f"{own / total:6.1%} own {cumulative:7.2f}s cum  {name} ({where})")
    return lines


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, so the profiled server exits normally and cProfile writes its stats."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


if __name__ == "__main__":
    print(hot_spots(Path(sys.argv[1])))
