"""Benchmark: a fresh clone to the first prediction, as ``make run`` does it, split into its phases.

Clones this repository into a temporary folder and runs there, on a free port block and a state folder of its
own: install (``make setup``: the venv from uv.lock; uv's cache makes a second install fast, so the first
figure on a new machine is larger), platform up, seeding data, training (``train-all``, whose promotion step
is reported apart from it), serving (until both InferenceServices are ready) and the first prediction.
Writes bench-results/cold_start.json.  Goal: within 45 s on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import free_port_block, make_settings, settings_env

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "cold_start.json"
GOAL_S = 45.0


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def node_seconds(node: dict[str, Any]) -> float:
    """Wall seconds of a finished node, from its Argo timestamps."""
    parse = datetime.fromisoformat
    return (
        parse(node["finishedAt"].replace("Z", "+00:00")) - parse(node["startedAt"].replace("Z", "+00:00"))
    ).total_seconds()


def main() -> None:
    """Time each phase of ``make run`` from a fresh clone."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "ctcd"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        settings = make_settings(Path(tmp) / "state", free_port_block())
        env = settings_env(settings)
        ctcd = [str(clone / ".venv" / "bin" / "ctcd")]
        phases: dict[str, float] = {}
        try:
            phases["install"], _ = _run(["make", "setup"], clone, env)
            phases["platform up"], _ = _run([*ctcd, "up"], clone, env)
            phases["seed data"], _ = _run([*ctcd, "data", "seed"], clone, env)
            train, out = _run(
                [*ctcd, "submit", "--from", "workflowtemplate/train-all", "--wait", "-o", "name"], clone, env
            )
            _, raw = _run([*ctcd, "runs", "get", out.strip().splitlines()[-1], "-o", "json"], clone, env)
            nodes = json.loads(raw)["status"]["nodes"].values()
            promotion = max((node_seconds(n) for n in nodes if n.get("templateName") == "promote"), default=0.0)
            phases["training"], phases["promotion"] = train - promotion, promotion
            phases["serving ready"], _ = _run([*ctcd, "serving", "wait"], clone, env)
            phases["first prediction"], _ = _run([*ctcd, "predict", "intent-classifier"], clone, env)
        finally:
            subprocess.run([*ctcd, "down"], cwd=clone, env=env, capture_output=True)
    total = sum(phases.values())
    verdict = "met" if total <= GOAL_S else "missed"
    print(f"fresh clone to first prediction: {total:.0f}s (goal <= {GOAL_S:.0f} s on 2 cores: {verdict})")
    for phase, seconds in phases.items():
        print(f"  {phase:<18}{seconds:>7.1f}s {seconds / total:>6.0%}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"total_s": round(total, 1), "phases": {k: round(v, 1) for k, v in phases.items()}}))


if __name__ == "__main__":
    main()
