"""Benchmark: single-request latency of the predictor, directly and through the local gateway.

Needs a running platform with served models (after `make run`). Sequential v1 requests of one row, a
bounded count, loopback only. Prints p50/p99 and writes bench-results/serving_latency.json.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import httpx

from workflows.settings import get_settings

REQUESTS = 1000
BODY = {"instances": ["please block my credit card, it was stolen"]}


def measure(url: str) -> dict[str, float]:
    timings = []
    with httpx.Client(timeout=10) as client:
        for _ in range(50):  # warm-up
            client.post(url, json=BODY)
        for _ in range(REQUESTS):
            start = time.perf_counter()
            reply = client.post(url, json=BODY)
            timings.append((time.perf_counter() - start) * 1000)
            reply.raise_for_status()
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[int(len(timings) * 0.99)], 2),
        "mean_ms": round(statistics.fmean(timings), 2),
    }


def main() -> None:
    settings = get_settings()
    status_file = settings.state_dir / "serving" / "status.json"
    if not status_file.exists():
        raise SystemExit("no served models: run `make run` first")
    routes = json.loads(status_file.read_text())["routes"]["intent-classifier"]
    port = routes[0][1]
    figures = {
        "predictor (direct)": measure(f"http://127.0.0.1:{port}/v1/models/intent-classifier:predict"),
        "through the gateway": measure(f"{settings.gateway_url}/v1/models/intent-classifier:predict"),
    }
    print(f"intent-classifier, {REQUESTS} sequential single-row v1 requests")
    for name, row in figures.items():
        print(f"{name:<22} p50 {row['p50_ms']:>6} ms   p99 {row['p99_ms']:>6} ms   mean {row['mean_ms']:>6} ms")
    Path("bench-results").mkdir(exist_ok=True)
    Path("bench-results/serving_latency.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
