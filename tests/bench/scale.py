"""Benchmark: how ctcd grows with size — the engine on a 50- vs 500-node DAG, compiling 10 vs 100 techniques.

Time is wall time; memory is the peak of Python allocations during the run (tracemalloc), so it measures
ctcd's own structures, not the child processes.  Each figure is printed with its growth factor between the
small and the large size (10x more work; linear growth would be 10x).  Writes bench-results/scale.json.
"""

from __future__ import annotations

import json
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.bench.engine_overhead import dag_workflow
from workflows.delivery import manifests, overlays
from workflows.engine.executor import Engine
from workflows.engine.spec.library import TemplateLibrary
from workflows.engine.spec.submit import prepare
from workflows.engine.state.store import RunStore

RESULTS = Path("bench-results") / "scale.json"


def _measure(work: Callable[[], object]) -> dict[str, float]:
    tracemalloc.start()
    start = time.perf_counter()
    work()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"seconds": round(elapsed, 2), "peak_kib": round(peak / 1024)}


def _layered_dag(nodes: int, width: int = 10) -> dict[str, Any]:
    """``nodes`` tasks in layers of ``width``; each depends on two tasks of the layer before (a real DAG)."""
    tasks = []
    for i in range(nodes):
        task: dict[str, Any] = {"name": f"t{i}", "template": "step"}
        if i >= width:
            layer = i // width - 1
            task["dependencies"] = sorted({f"t{layer * width + (i % width)}", f"t{layer * width + (i + 1) % width}"})
        tasks.append(task)
    step = {"name": "step", "script": {"image": "python:3.11", "command": ["sh"], "source": "true"}}
    return dag_workflow(tasks, step, parallelism=2)


def engine(nodes: int) -> dict[str, float]:
    """Run a ``nodes``-task DAG of trivial shell steps through the local engine."""
    with tempfile.TemporaryDirectory() as tmp:
        library = TemplateLibrary([])
        runner = Engine(RunStore(Path(tmp)), library, s3=lambda: None, artifacts_bucket="unused", parallelism=2)
        workflow = prepare(library, _layered_dag(nodes), {})
        figures = _measure(lambda: runner.run(workflow))
        if workflow["status"]["phase"] != "Succeeded":
            raise RuntimeError(workflow["status"].get("message"))
        return figures


def compile_techniques(count: int) -> dict[str, float]:
    """Render every technique's KServe base and an overlay, validating the overlay, as compile and promotion do."""
    pin = overlays.Pin("3", "s3://ctcd-artifacts/mlflow/1/abc/artifacts/model", "a" * 64, "abc", "0123456789abcdef")

    def work() -> None:
        for i in range(count):
            name = f"technique-{i:03d}"
            overlays.base_files(name)  # rendered like every file; the unpinned base is not a servable manifest
            for path, text in overlays.overlay_files(overlays.Desired(name, "staging", "full", pin)).items():
                docs = [d for d in yaml.safe_load_all(text) if d and d.get("apiVersion", "").startswith("serving")]
                manifests.validate(docs, path)

    return _measure(work)


def main() -> None:
    """Print the table and write the JSON."""
    rows = {
        "engine DAG nodes": {str(n): engine(n) for n in (50, 500)},
        "techniques compiled": {str(n): compile_techniques(n) for n in (10, 100)},
    }
    print(f"{'what':<22}{'size':>6}{'seconds':>9}{'peak KiB':>10}{'time growth':>13}{'memory growth':>15}")
    for what, sizes in rows.items():
        small, large = sizes.values()
        for size, figures in sizes.items():
            grow = figures is large
            time_growth = f"{large['seconds'] / small['seconds']:.1f}x" if grow else ""
            memory_growth = f"{large['peak_kib'] / max(small['peak_kib'], 1):.1f}x" if grow else ""
            print(
                f"{what:<22}{size:>6}{figures['seconds']:>9}{figures['peak_kib']:>10}{time_growth:>13}{memory_growth:>15}"
            )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
