"""Benchmark: the ``train`` workflow through the local engine against the same step functions called directly.

On a platform of its own with a 10,000-row intent dataset: a direct run first (it registers the first champion),
then the engine run and a second direct run, both of which re-score that champion, so the two compared runs do
the same work.  The direct run is one fresh Python process calling the step functions in order, so it pays the
library imports once, as the engine's warm launcher does; the steps' own time (imports excluded) is shown too.
The memoization cache is emptied before the engine run, so nothing is reused.  Overhead = engine / direct - 1.
Target: at most 10%.  The engine run is repeated with ``CTCD_ENGINE_WARM=false`` (a fresh interpreter per step,
as pods do) to show what the launcher saves.  Writes bench-results/pipeline.json.
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


def direct_process(env: dict[str, str], run_name: str) -> tuple[float, dict[str, float]]:
    """Run :func:`direct` in a fresh Python process; return its wall seconds and seconds per step."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.pipeline", "direct", run_name],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, json.loads(done.stdout.strip().splitlines()[-1])


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
    from workflows.local import credentials, stack

    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp) / "state", free_port_block())
        env = settings_env(settings)
        stack.up(settings)
        try:
            env.update(credentials.load_credentials(settings))  # what the engine hands steps from the Secret
            env.update({k: v for k, v in settings.as_env().items() if k.startswith(("CTCD_", "MLFLOW_"))})
            subprocess.run(
                [sys.executable, "-m", "workflows.cli", "data", "seed", TECHNIQUE, "--rows", str(ROWS)],
                env=env,
                check=True,
                capture_output=True,
            )
            direct_process(env, "bench-direct-warmup")
            engine_wall, engine_steps = engine(env, settings.state_dir)
            direct_wall, direct_steps = direct_process(env, "bench-direct")
            cold_wall, cold_steps = engine({**env, "CTCD_ENGINE_WARM": "false"}, settings.state_dir)
        finally:
            stack.down(settings)
    report(engine_wall, engine_steps, direct_wall, direct_steps, cold_wall, cold_steps)


def report(
    engine_wall: float,
    engine_steps: dict[str, float],
    direct_wall: float,
    direct_steps: dict[str, float],
    cold_wall: float,
    cold_steps: dict[str, float],
) -> None:
    """Print the comparison and write bench-results/pipeline.json."""
    overhead = engine_wall / direct_wall - 1
    steps_only = sum(direct_steps.values())
    print(f"train workflow, {TECHNIQUE}, {ROWS} rows, {os.cpu_count()} cores")
    print(f"  engine (warm launcher)   {engine_wall:6.1f}s")
    print(f"  engine (fresh per step)  {cold_wall:6.1f}s  ({cold_wall / engine_wall:.2f}x the warm engine)")
    imports = direct_wall - steps_only
    print(f"  direct, one process      {direct_wall:6.1f}s  (steps {steps_only:.1f}s + imports {imports:.1f}s)")
    print(f"engine overhead {overhead:+.1%} against one process (target <= 10%)")
    print(f"{'step':<16}{'warm s':>8}{'fresh s':>9}{'direct s':>10}")
    for step in direct_steps:
        nan = float("nan")
        print(
            f"{step:<16}{engine_steps.get(step, nan):>8.1f}{cold_steps.get(step, nan):>9.1f}{direct_steps[step]:>10.1f}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "engine_s": round(engine_wall, 1),
                "engine_fresh_per_step_s": round(cold_wall, 1),
                "direct_s": round(direct_wall, 1),
                "overhead": round(overhead, 3),
                "engine_steps": engine_steps,
                "engine_fresh_steps": cold_steps,
                "direct_steps": direct_steps,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["direct"]:
        print(json.dumps(direct(sys.argv[2])))
    else:
        main()
