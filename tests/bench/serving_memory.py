"""Benchmark: local serving's memory per live revision, and how fast predictions come back after a kill -9.

Local serving's reconciler runs N InferenceServices of the intent classifier (a model of its own for each, as
after N promotions), once with model servers forked from the warm parent and once with a process of its own per
revision, side by side in one run.  For 3 and for 10 live revisions it prints the servers' total memory:

- RSS, summed over processes: counts every shared page once per process, so it overstates forked servers;
- PSS (proportional set size): each shared page split among the processes that share it; the sum is what the
  machine spends, and the figure the goal is checked against;
- USS: the pages only that process holds.

The cost of one more revision is (total at 10 − total at 3) / 7.  Goal: at most 80 MB.

Recovery: with 10 live revisions, everything of serving is killed -9 (the servers and the warm parent) and a new
reconciler takes the same state folder, as ``ctcd up`` starts serving again; the time is until every revision
answers a prediction.  It is measured on a quiet machine and again while a training run uses both cores.
Goal: within 15 s on a quiet machine.  Repeats give the spread.  Writes bench-results/serving_memory.json.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from serving.local.reconcile import Reconciler
from tests.bench.serving_peers import train_model

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "serving_memory.json"
GOAL_MB, RECOVERY_GOAL_S, REPEATS = 80.0, 15.0, 3


def services(count: int, sha: str) -> list[dict[str, Any]]:
    """``count`` InferenceServices, each pinning a model of its own."""
    return [
        {
            "kind": "InferenceService",
            "metadata": {"name": f"m{i}", "namespace": "ctcd-staging", "annotations": {"ctcd.io/model-sha256": sha}},
            "spec": {"predictor": {"model": {"storageUri": f"s3://bench/m{i}"}}},
        }
        for i in range(count)
    ]


def converge(reconciler: Reconciler, timeout: float = 300.0) -> None:
    """Step the reconciler until every revision that serves is Ready."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        reconciler.step()
        states = [r.state for s in reconciler.services.values() for r in s.revisions]
        if states and all(state == "Ready" for state in states):
            return
        time.sleep(0.1)
    raise RuntimeError(f"serving did not converge: {reconciler.problems()}")


def memory(reconciler: Reconciler) -> dict[str, float]:
    """RSS, PSS and USS in MB summed over the model servers (and the warm parent, when there is one)."""
    pids = [r.pid for s in reconciler.services.values() for r in s.revisions if r.pid]
    if reconciler.warm is not None and reconciler.warm.pid:
        pids.append(reconciler.warm.pid)
    totals = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
    for pid in pids:
        info = psutil.Process(pid).memory_full_info()
        for key in totals:
            totals[key] += getattr(info, key) / 2**20
    return totals


def answers(reconciler: Reconciler, text: str) -> bool:
    """Whether every revision answers a prediction."""
    for service in reconciler.services.values():
        for revision in service.revisions:
            url = f"http://127.0.0.1:{revision.port}/v1/models/{service.name}:predict"
            try:
                if httpx.post(url, json={"instances": [{"text": text}]}, timeout=5).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
    return True


def _fetcher(model_dir: Path) -> Any:
    return lambda uri, folder: shutil.copytree(model_dir, folder)


def measure_memory(folder: Path, model_dir: Path, sha: str, warm: bool) -> dict[str, dict[str, float]]:
    """Serving's memory with 3 and with 10 live revisions."""
    reconciler = Reconciler(folder, _fetcher(model_dir), "http://127.0.0.1:1", warm=warm)
    found = {}
    try:
        for count in (3, 10):
            reconciler.apply(f"c{count}", services(count, sha))
            converge(reconciler)
            time.sleep(2.0)  # let each server settle after its first requests
            found[str(count)] = memory(reconciler)
    finally:
        reconciler.stop_all()
    return found


def recovery(folder: Path, model_dir: Path, sha: str, text: str) -> float:
    """Seconds from a new reconciler over a killed serving's state to every one of 10 revisions answering."""
    first = Reconciler(folder, _fetcher(model_dir), "http://127.0.0.1:1")
    first.apply("c10", services(10, sha))
    converge(first)
    for revision in (r for s in first.services.values() for r in s.revisions):
        os.killpg(revision.pid, signal.SIGKILL)
    if first.warm is not None:
        os.killpg(first.warm.pid, signal.SIGKILL)
    started = time.monotonic()
    second = Reconciler(folder, _fetcher(model_dir), "http://127.0.0.1:1")  # what `ctcd up` starts
    try:
        while not answers(second, text):
            second.step()
            time.sleep(0.1)
        return time.monotonic() - started
    finally:
        second.stop_all()


def _busy() -> subprocess.Popen[bytes]:
    """A second load on both cores: the intent classifier training over and over."""
    code = (
        "from models.contract import get\n"
        "t = get('intent-classifier'); f = t.generate(4000, seed=1)\n"
        "while True: t.fit(f, {'cv_folds': 2}, seed=0)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL)


def main() -> None:
    """Print memory per revision (warm parent against separate processes) and the recovery time."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        model_dir, sha, texts = train_model(base)
        figures: dict[str, Any] = {}
        for warm in (True, False):
            runs = [measure_memory(base / f"m-{warm}-{n}", model_dir, sha, warm) for n in range(REPEATS)]
            figures["warm parent" if warm else "process per revision"] = runs
        quiet = [recovery(base / f"r-{n}", model_dir, sha, texts[0]) for n in range(REPEATS)]
        burner = _busy()
        try:
            loaded = [recovery(base / f"rl-{n}", model_dir, sha, texts[0]) for n in range(REPEATS)]
        finally:
            burner.kill()
    figures["recovery"] = {"quiet": quiet, "under training": loaded}
    print("\n".join(report(figures)))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=1))


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f})"


def report(figures: dict[str, Any]) -> list[str]:
    """The table: memory at 3 and 10 revisions, the cost of one more, and recovery, each beside its goal."""
    lines = ["serving memory, MB (median of runs, min and max)", "| servers | at 3 | at 10 | per extra revision |"]
    lines.append("| --- | --- | --- | --- |")
    per: dict[str, list[float]] = {}
    for name in ("warm parent", "process per revision"):
        for kind in ("pss", "rss"):
            at3 = [run["3"][kind] for run in figures[name]]
            at10 = [run["10"][kind] for run in figures[name]]
            per[f"{name} {kind}"] = [(b - a) / 7 for a, b in zip(at3, at10, strict=True)]
            extra = _spread(per[f"{name} {kind}"])
            lines.append(f"| {name}, {kind.upper()} | {_spread(at3)} | {_spread(at10)} | {extra} |")
    best = statistics.median(per["warm parent pss"])
    ratio = statistics.median(per["process per revision pss"]) / best if best else float("inf")
    verdict = "met" if best <= GOAL_MB else "missed"
    lines.append(f"per extra revision (PSS), warm parent: {best:.1f} MB, goal <= {GOAL_MB:.0f} MB: {verdict}")
    lines.append(f"a process per revision costs {ratio:.1f}x as much per revision")
    for load, values in figures["recovery"].items():
        verdict = "met" if statistics.median(values) <= RECOVERY_GOAL_S else "missed"
        goal = f", goal <= {RECOVERY_GOAL_S:.0f} s: {verdict}" if load == "quiet" else ""
        lines.append(f"recovery of 10 revisions after kill -9, {load}: {_spread(values)} s{goal}")
    return lines


if __name__ == "__main__":
    main()
