"""Benchmark: the ``train`` workflow through the local engine against the same step functions called directly.

On a platform of its own with a 10,000-row intent dataset: a direct run first (it registers the first champion),
then the engine run and a second direct run, both of which re-score that champion, so the two compared runs do
the same work.  The memoization cache is emptied before the engine run, so nothing is reused.  Overhead =
engine / direct - 1.  Target: at most 10%.  Writes bench-results/pipeline.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.cold_start import node_seconds
from tests.conftest import free_port_block, make_settings, settings_env

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "pipeline.json"
TECHNIQUE = "intent-classifier"
ROWS = 10_000


def direct(run_name: str) -> dict[str, float]:
    """Call the train DAG's step functions in order, in this process; return seconds per step."""
    from workflows.steps import promote as promote_step
    from workflows.steps import train as steps

    times: dict[str, float] = {}

    def timed(name: str, call: Any) -> Any:
        start = time.perf_counter()
        result = call()
        times[name] = time.perf_counter() - start
        return result

    keys = timed("fingerprint", lambda: steps.fingerprint(steps.FingerprintInput(technique=TECHNIQUE)))
    data = timed("load-data", lambda: steps.load_data(steps.DataInput(technique=TECHNIQUE)))
    version = data.dataset_version
    fitted = timed(
        "train",
        lambda: steps.train(steps.TrainInput(technique=TECHNIQUE, dataset_version=version, workflow_name=run_name)),
    )
    metric = timed(
        "evaluate",
        lambda: steps.evaluate(
            steps.EvaluateInput(
                technique=TECHNIQUE, dataset_version=version, run_id=fitted.run_id, model_uri=fitted.model_uri
            )
        ),
    )
    champion = timed(
        "score-champion",
        lambda: steps.score_champion(
            steps.ChampionInput(technique=TECHNIQUE, dataset_version=version, champion_version=keys.champion_version)
        ),
    )
    decision = timed(
        "decide",
        lambda: steps.decide(
            steps.DecideInput(technique=TECHNIQUE, challenger_metric=str(metric), champion_metric=champion.metric)
        ),
    )
    registered = timed(
        "register",
        lambda: steps.register(
            steps.RegisterInput(
                technique=TECHNIQUE,
                run_id=fitted.run_id,
                model_uri=fitted.model_uri,
                model_sha256=fitted.model_sha256,
                dataset_version=version,
                workflow_name=run_name,
                decision=decision,
                champion_version=champion.version,
            )
        ),
    )
    if registered.decision == "better":
        timed(
            "promote-canary",
            lambda: promote_step.promote(
                promote_step.PromoteInput(
                    technique=TECHNIQUE,
                    version=registered.version,
                    environment="staging",
                    strategy="canary",
                    canary_percent=20,
                )
            ),
        )
    return times


def engine(env: dict[str, str], state: Path) -> tuple[float, dict[str, float]]:
    """Submit the train template and wait; return wall seconds and seconds per step (longest attempt)."""
    shutil.rmtree(state / "cache", ignore_errors=True)
    ctcd = [sys.executable, "-m", "workflows.cli"]
    start = time.perf_counter()
    done = subprocess.run(
        [*ctcd, "submit", "--from", "workflowtemplate/train", "-p", f"technique={TECHNIQUE}", "--wait", "-o", "name"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    run = json.loads(
        subprocess.run(
            [*ctcd, "runs", "get", done.stdout.split()[-1], "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    steps: dict[str, float] = {}
    for node in run["status"]["nodes"].values():
        if node["type"] == "Pod" and node.get("finishedAt"):
            seconds = node_seconds(node)
            steps[node["templateName"]] = max(steps.get(node["templateName"], 0.0), seconds)
    return wall, steps


def main() -> None:
    """Bring up a platform, seed 10,000 rows, compare, print and write the figures."""
    from workflows.platform import stack

    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp) / "state", free_port_block())
        env = settings_env(settings)
        os.environ.update({k: v for k, v in env.items() if k.startswith(("CTCD_", "MLFLOW_", "AWS_"))})
        stack.up(settings)
        try:
            os.environ.update(stack.load_credentials(settings))  # what the engine hands steps from the Secret
            subprocess.run(
                [sys.executable, "-m", "workflows.cli", "data", "seed", TECHNIQUE, "--rows", str(ROWS)],
                env=env,
                check=True,
                capture_output=True,
            )
            direct("bench-direct-warmup")
            engine_wall, engine_steps = engine(env, settings.state_dir)
            start = time.perf_counter()
            direct_steps = direct("bench-direct")
            direct_wall = time.perf_counter() - start
        finally:
            stack.down(settings)
    overhead = engine_wall / direct_wall - 1
    print(f"train workflow, {TECHNIQUE}, {ROWS} rows: engine {engine_wall:.1f}s, direct {direct_wall:.1f}s")
    print(f"engine overhead {overhead:+.1%} (target <= 10%)")
    print(f"{'step':<16}{'engine s':>10}{'direct s':>10}")
    for step in direct_steps:
        print(f"{step:<16}{engine_steps.get(step, float('nan')):>10.1f}{direct_steps[step]:>10.1f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "engine_s": round(engine_wall, 1),
                "direct_s": round(direct_wall, 1),
                "overhead": round(overhead, 3),
                "engine_steps": engine_steps,
                "direct_steps": direct_steps,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
