"""Conformance: run Argo's own upstream examples on the local engine and count those that reach Argo's outcome.

The selection is Argo's e2e examples test: every ``kind: Workflow`` under ``examples/`` without the
``workflows.argoproj.io/no-test`` label, each expected to Succeed, after the ConfigMaps, PVCs,
WorkflowTemplates and ClusterWorkflowTemplates found there are applied.  Each example is submitted exactly
as a user would (``ctcd template create`` for the objects, ``ctcd submit FILE`` for the workflow) to a fresh
embedded platform.

Usage::

    python -m tests.bench.argo_examples PATH/TO/argo-workflows/examples [--jobs 4] [--timeout 240] [NAME...]

It prints one line per example (outcome, seconds, and the first failure), then the tally, and writes
``bench-results/argo-examples.json``.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import free_port_block, make_settings, settings_env
from workflows.settings import Settings

APPLIED = ("ConfigMap", "PersistentVolumeClaim", "WorkflowTemplate", "ClusterWorkflowTemplate")
NO_TEST = "workflows.argoproj.io/no-test"


def quick_start(examples: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The artifact repositories ConfigMap of Argo's quick-start install, which its examples expect to be there."""
    path = examples.parent / "manifests" / "quick-start" / "base" / "artifact-repositories-configmap.yaml"
    return (
        [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)] if path.exists() else []
    )


def documents(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every YAML document under ``root`` with the file it came from."""
    found = []
    for path in sorted(root.rglob("*.y*ml")):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        except yaml.YAMLError:
            continue
        found += [(path, doc) for doc in docs]
    return found


def selected(found: list[tuple[Path, dict[str, Any]]], only: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The Workflows Argo's e2e suite runs, named by their path (and index when a file holds several)."""
    chosen = []
    for path, doc in found:
        labels = (doc.get("metadata") or {}).get("labels") or {}
        if doc.get("kind") != "Workflow" or NO_TEST in labels:
            continue
        name = str(path.with_suffix(""))
        name = name[name.index("examples/") + len("examples/") :] if "examples/" in name else path.stem
        if only and not any(o == name or o == path.stem for o in only):
            continue
        chosen.append((name, doc))
    return chosen


def failure(settings: Settings, workflow: dict[str, Any]) -> str:
    """The run's message, the first failed node's message and the last lines of its log."""
    from workflows.engine.state.store import RunStore

    status = workflow.get("status") or {}
    bad = [n for n in (status.get("nodes") or {}).values() if n.get("phase") in ("Failed", "Error")]
    first = min(bad, key=lambda n: n.get("finishedAt", "")) if bad else None
    detail = f"{first['displayName']}: {first.get('message', '')}" if first else ""
    if first:
        log = RunStore(settings.state_dir).log_path(workflow["metadata"]["name"], first["id"])
        lines = log.read_text(errors="replace").splitlines()[-2:] if log.exists() else []
        detail += " | log: " + " / ".join(lines)
    return " | ".join(x for x in (status.get("message", ""), detail) if x)[:900]


def run_one(settings: Settings, name: str, doc: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Submit one example and wait for its end (or stop it at ``timeout``)."""
    from workflows.engine.state.store import RunStore
    from workflows.local import runs

    start = time.monotonic()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(doc, handle)
    try:
        submitted = runs.submit(settings, handle.name, {}, from_ref=False)
    except Exception as exc:  # a refusal: the error names the field
        return {"example": name, "outcome": "Refused", "seconds": 0.0, "detail": str(exc)[:400]}
    finally:
        os.unlink(handle.name)
    run = submitted["metadata"]["name"]
    workflow = runs.wait(settings, run, timeout=timeout)
    phase = workflow["status"].get("phase", "")
    if phase not in ("Succeeded", "Failed", "Error"):
        worker = RunStore(settings.state_dir).worker(run)
        if worker:
            os.killpg(int(worker["pid"]), signal.SIGKILL)
        phase = "Timeout"
    seconds = round(time.monotonic() - start, 1)
    return {"example": name, "outcome": phase, "seconds": seconds, "detail": failure(settings, workflow), "run": run}


def main(argv: list[str] | None = None) -> int:
    """Run the examples and print the tally."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("examples", type=Path)
    parser.add_argument("--only", nargs="*", default=[], help="example names (or paths under examples/) to run")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args(argv)
    from workflows.local import applied, stack

    found = documents(args.examples)
    chosen = selected(found, args.only)
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp) / "state", free_port_block(), engine_parallelism=4)
        os.environ.update(settings_env(settings))
        stack.up(settings)
        try:
            applied.apply(
                settings, [doc for _, doc in [*found, *quick_start(args.examples)] if doc.get("kind") in APPLIED]
            )
            with ThreadPoolExecutor(args.jobs) as pool:
                results = list(pool.map(lambda c: _report(run_one(settings, *c, args.timeout)), chosen))
        finally:
            stack.down(settings)
    return _summary(results)


def _report(result: dict[str, Any]) -> dict[str, Any]:
    mark = "ok  " if result["outcome"] == "Succeeded" else "FAIL"
    print(f"{mark} {result['example']:<58} {result['outcome']:<9} {result['seconds']:>6}s  {result['detail'][:900]}")
    sys.stdout.flush()
    return result


def _summary(results: list[dict[str, Any]]) -> int:
    passed = sum(r["outcome"] == "Succeeded" for r in results)
    by_outcome: dict[str, int] = {}
    for r in results:
        by_outcome[r["outcome"]] = by_outcome.get(r["outcome"], 0) + 1
    print(f"\n{passed}/{len(results)} examples reach Argo's outcome (Succeeded); by outcome: {by_outcome}")
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "argo-examples.json").write_text(json.dumps({"passed": passed, "total": len(results), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
