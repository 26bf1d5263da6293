"""Benchmark: one registry-bridge reconcile pass over 10 and 100 registered models with 20 versions each.

On a platform of its own (real MLflow server, real git remote): every model gets 20 versions, v20 in stage
Staging and alias ``champion``, and the git remote pins v20 in both environments, so a pass finds everything in
agreement and does the lookups the CronWorkflow does every few minutes: alias, versions, the pinned version
file and the agreed-state tag, per model and environment.  Registration goes straight to the MLflow database
(setup, not measured); the pass goes through the server's REST API as the bridge does.  Time is wall time;
memory is the peak of Python allocations (tracemalloc).  Writes bench-results/registry_sync.json.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from tests.conftest import free_port_block, make_settings

RESULTS = Path("bench-results") / "registry_sync.json"
MODELS, VERSIONS = 100, 20
SHA = "b" * 64


def names(count: int) -> list[str]:
    return [f"bench-model-{i:03d}" for i in range(count)]


def register(db: Path, bucket: str) -> None:
    """Register MODELS x VERSIONS versions directly in the MLflow database."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    for name in names(MODELS):
        client.create_registered_model(name)
        for v in range(1, VERSIONS + 1):
            tags = {"ctcd.model_sha256": SHA, "ctcd.run_id": f"run{v}", "ctcd.dataset_version": "d1"}
            client.create_model_version(name, f"s3://{bucket}/mlflow/bench/{name}/{v}/artifacts/model", tags=tags)
        client.transition_model_version_stage(name, str(VERSIONS), "Staging")
        client.set_registered_model_alias(name, "champion", str(VERSIONS))


def pin_everything(settings: Any) -> None:
    """One commit that gives every model a base and pins v20 in both environments."""
    from workflows.delivery import overlays
    from workflows.platform import gitrepo

    pin = overlays.Pin(
        str(VERSIONS), f"s3://{settings.artifacts_bucket}/mlflow/bench/m/20/artifacts/model", SHA, "r", "d1"
    )
    files: dict[str, str] = {}
    for name in names(MODELS):
        folder = f"gitops/models/{name}"
        files.update({f"{folder}/{rel}": text for rel, text in overlays.base_files(name).items()})
        for env in overlays.ENVIRONMENTS:
            overlay = overlays.overlay_files(overlays.Desired(name, env, "full", pin))
            files.update({f"{folder}/{rel}": text for rel, text in overlay.items()})
    with gitrepo.scratch_clone(settings.git_remote, settings.git_branch) as repo:
        gitrepo.write_files(repo, files)
        gitrepo.commit(repo, f"Pin {MODELS} bench models", {})
        gitrepo.git(repo, "push", "--quiet", "origin", settings.git_branch)


def reconcile(settings: Any, count: int) -> dict[str, float]:
    """Time one steady pass over ``count`` models (after :func:`main`'s first pass recorded the agreed state)."""
    from workflows.delivery import bridge

    if os.environ.get("CTCD_BENCH_PROFILE"):
        import cProfile

        cProfile.runctx("bridge.reconcile(settings, names(count))", globals(), locals(), sort="cumtime")
    tracemalloc.start()
    start = time.perf_counter()
    actions = bridge.reconcile(settings, names(count))
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    kinds = {a.kind for a in actions}
    if kinds != {"in-sync"}:
        raise RuntimeError(f"expected every model in sync, got {kinds}: {actions[:3]}")
    return {
        "seconds": round(elapsed, 2),
        "ms_per_model": round(elapsed / count * 1000, 1),
        "peak_kib": round(peak / 1024),
    }


def main() -> None:
    """Bring up a platform, register, pin, time the passes, print and write the figures."""
    from workflows.local import stack

    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp) / "state", free_port_block())
        stack.up(settings)
        try:
            start = time.perf_counter()
            register(settings.state_dir / "mlflow.db", settings.artifacts_bucket)
            pin_everything(settings)
            from workflows.delivery import bridge

            bridge.reconcile(settings, names(MODELS))  # records every marker in the bridge state, warms the server
            setup = time.perf_counter() - start
            rows = {str(n): reconcile(settings, n) for n in (10, MODELS)}
        finally:
            stack.down(settings)
    small, large = rows.values()
    print(f"registry sync, {VERSIONS} versions per model, 2 environments (setup {setup:.0f}s, not measured)")
    print(f"{'models':>8}{'seconds':>9}{'ms/model':>10}{'peak KiB':>10}")
    for count, figures in rows.items():
        print(f"{count:>8}{figures['seconds']:>9}{figures['ms_per_model']:>10}{figures['peak_kib']:>10}")
    print(
        f"growth 10 -> {MODELS} models: time {large['seconds'] / small['seconds']:.1f}x, "
        f"memory {large['peak_kib'] / max(small['peak_kib'], 1):.1f}x (linear would be {MODELS // 10}x)"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
