"""Benchmark: the local engine's overhead per step on a 20-step DAG, against running the same commands directly.

Engine overhead per step = (engine wall time - direct wall time of the same processes) / steps.
Two shapes: a 20-step chain (sequential, so the overhead adds up) and a 20-step fan-out (parallel).
Run with ``make bench``; figures are printed, never asserted.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workflows.engine.executor import Engine
from workflows.engine.spec.library import TemplateLibrary
from workflows.engine.spec.submit import prepare
from workflows.engine.state.store import RunStore

STEPS = 20
COMMAND = ["python", "-c", "pass"]


def dag_workflow(tasks: list[dict[str, Any]], step: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A Workflow whose entrypoint ``main`` is a DAG of ``tasks``, each running the template ``step``."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "bench-"},
        "spec": {"entrypoint": "main", **spec, "templates": [{"name": "main", "dag": {"tasks": tasks}}, step]},
    }


def dag(chain: bool) -> dict[str, Any]:
    tasks = []
    for i in range(STEPS):
        task: dict[str, Any] = {"name": f"s{i}", "template": "step"}
        if chain and i:
            task["dependencies"] = [f"s{i - 1}"]
        tasks.append(task)
    return dag_workflow(tasks, {"name": "step", "container": {"image": "python:3.11", "command": COMMAND}})


def direct(parallel: int) -> float:
    argv = [sys.executable, *COMMAND[1:]]
    start = time.perf_counter()
    if parallel == 1:
        for _ in range(STEPS):
            subprocess.run(argv, check=True)
    else:
        procs: list[subprocess.Popen[bytes]] = []
        for _ in range(STEPS):
            if len(procs) >= parallel:
                procs.pop(0).wait()
            procs.append(subprocess.Popen(argv))
        for proc in procs:
            proc.wait()
    return time.perf_counter() - start


def engine_run(chain: bool, parallel: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        lib = TemplateLibrary([])
        engine = Engine(RunStore(Path(tmp)), lib, s3=lambda: None, artifacts_bucket="unused", parallelism=parallel)
        workflow = prepare(lib, dag(chain), {})
        start = time.perf_counter()
        engine.run(workflow)
        elapsed = time.perf_counter() - start
        assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
        return elapsed


def main(repeats: int = 5) -> dict[str, Any]:
    results = {}
    for label, chain, parallel in (("chain (sequential)", True, 1), ("fan-out (2 at a time)", False, 2)):
        eng = statistics.median(engine_run(chain, parallel) for _ in range(repeats))
        ref = statistics.median(direct(parallel) for _ in range(repeats))
        results[label] = {
            "engine_s": round(eng, 3),
            "direct_s": round(ref, 3),
            "overhead_per_step_ms": round((eng - ref) / STEPS * 1000, 1),
            "ratio": round(eng / ref, 2),
        }
    return results


if __name__ == "__main__":
    figures = main()
    print(f"local engine overhead, {STEPS}-step DAG of `python -c pass`, median of 5 runs")
    print(f"{'shape':<24}{'engine s':>10}{'direct s':>10}{'overhead/step':>15}{'ratio':>8}")
    for shape, row in figures.items():
        per_step = f"{row['overhead_per_step_ms']} ms"
        print(f"{shape:<24}{row['engine_s']:>10}{row['direct_s']:>10}{per_step:>15}{row['ratio']:>8}")
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "engine_overhead.json").write_text(json.dumps(figures, indent=2))
