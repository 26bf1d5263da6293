"""The compute limit a model server works against, and where a server's time goes.

- **Limit**: the served pipeline's ``predict_proba`` called directly in a process pinned to the server core, no
  HTTP, no JSON: rows per second for one row per call, and for each batch size up to 512 (the best is the
  ceiling for 32-row requests batched together).  A server's share of it is what it reaches of that ceiling.
- **Profile**: py-spy samples the ctcd predictor while the load generator sends it single-row requests (after
  start-up, so imports do not count); the shares of the samples by part of serving, and the hottest functions.
"""

from __future__ import annotations

import os
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


def record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Start py-spy sampling ``pid`` for ``seconds`` (100 Hz, folded stacks written to ``output``)."""
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100"]
    return subprocess.Popen([*command, "--format", "raw", "--output", str(output)], stdout=subprocess.DEVNULL)


PARTS = {  # the part of serving a sample is in: the innermost of these its stack passes through
    "the model (predict_proba)": "predict_proba",
    "the predictor's input checks and frame": "_frame_from_v1",
    "KServe's data plane and model wrapper": "kserve/",
    "FastAPI and Starlette": "starlette/",
    "uvicorn and HTTP parsing": "uvicorn/",
}
MODEL_PARTS = {  # inside the model, inclusive
    "spaCy normalization": "normalize_frame",
    "TF-IDF": "TfidfVectorizer",
    "WordLlama embeddings": "embeddings.py",
    "the linear SVM": "decision_function",
}


def _part(stack: str) -> str:
    """The innermost part of serving the stack passes through ('the event loop and the rest' when none)."""
    found = {part: stack.rfind(marker) for part, marker in PARTS.items()}
    part, where = max(found.items(), key=lambda item: item[1])
    return part if where >= 0 else "the event loop and the rest"


def hot_spots(folded: Path, top: int = 8) -> list[str]:
    """Shares of the samples: by part of serving (each sample once), inside the model, and the hottest leaves."""
    stacks: list[tuple[str, int]] = []
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack, int(count)))
    total = sum(n for _, n in stacks) or 1
    parts: dict[str, int] = {}
    for stack, n in stacks:
        parts[_part(stack)] = parts.get(_part(stack), 0) + n
    lines = [f"{n / total:6.1%}  {part}" for part, n in sorted(parts.items(), key=lambda item: -item[1])]
    lines += [f"{sum(n for s, n in stacks if m in s) / total:6.1%}    model: {p}" for p, m in MODEL_PARTS.items()]
    leaves: dict[str, int] = {}
    for stack, n in stacks:
        leaf = stack.split(";")[-1]
        leaves[leaf] = leaves.get(leaf, 0) + n
    ranked = sorted(leaves.items(), key=lambda item: item[1], reverse=True)[:top]
    return [*lines, "on CPU most (leaf frames):", *(f"{n / total:6.1%}  {leaf}" for leaf, n in ranked)]


if __name__ == "__main__":
    print("\n".join(hot_spots(Path(sys.argv[1]))))
