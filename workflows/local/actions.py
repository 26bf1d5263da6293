"""What a user does to a local run after submitting it, as Argo's CLI verbs do.

``stop`` / ``terminate`` (stop runs the exit handler, terminate does not), ``suspend`` / ``resume``, ``retry``
(the failed steps run again, the Succeeded ones keep their outputs), ``resubmit`` (a new run of the same spec)
and ``delete``.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Mapping
from typing import Any

from workflows.engine import TERMINAL, RunStore, artifact_garbage, collect_artifacts, signals, unsupplied
from workflows.errors import CtcdError
from workflows.local import runs
from workflows.settings import Settings


class RunActionError(CtcdError, ValueError):
    """The run cannot take this action in its present phase; the message says which phase it is in."""


def _load(store: RunStore, name: str) -> dict[str, Any]:
    try:
        return store.load(name)  # settles a run whose worker died
    except KeyError as exc:
        raise RunActionError(str(exc.args[0])) from exc


def _running(settings: Settings, name: str, verb: str) -> dict[str, Any]:
    workflow = _load(RunStore(settings.state_dir), name)
    phase = workflow["status"].get("phase")
    if phase in TERMINAL:
        raise RunActionError(
            f"cannot {verb} {name}: it already ended ({phase})", hint="`ctcd runs retry` runs it again"
        )
    return workflow


def stop(settings: Settings, name: str, strategy: str) -> None:
    """Stop (exit handler runs) or terminate (it does not) a running run."""
    _running(settings, name, strategy)
    signals.request(RunStore(settings.state_dir).run_dir(name), strategy)


def suspend_run(settings: Settings, name: str) -> None:
    """Suspend a running run: no new step starts until it is resumed."""
    _running(settings, name, "suspend")
    signals.suspend_run(RunStore(settings.state_dir).run_dir(name))


def resume(settings: Settings, name: str, values: Mapping[str, str]) -> None:
    """Resume a suspended run, or its suspend steps (supplying their output parameters)."""
    workflow = _running(settings, name, "resume")
    problems = unsupplied(workflow, values)
    if problems:
        raise RunActionError(
            f"cannot resume {name}: {'; '.join(problems)}", hint=f"ctcd runs resume {name} -p NAME=VALUE"
        )
    signals.resume(RunStore(settings.state_dir).run_dir(name), values)


def retry(settings: Settings, name: str) -> dict[str, Any]:
    """Run a Failed or Errored run again under the same name, keeping the outputs of its Succeeded steps."""
    store = RunStore(settings.state_dir)
    workflow = _load(store, name)
    phase = workflow["status"].get("phase")
    if phase not in ("Failed", "Error"):
        raise RunActionError(f"cannot retry {name}: it is {phase}", hint="only a Failed or Errored run can be retried")
    for marker in (*signals.STRATEGIES, signals.RESUME, signals.SUSPENDED):
        (store.run_dir(name) / marker).unlink(missing_ok=True)
    store.save(signals.for_retry(workflow))
    runs._start_worker(settings, name)
    return workflow


def resubmit(settings: Settings, name: str, memoized: bool = False) -> dict[str, Any]:
    """Submit the spec of a run again, as a new run; ``memoized`` takes its Succeeded steps as they were."""
    old = _load(RunStore(settings.state_dir), name)
    if memoized and old["status"].get("phase") not in ("Failed", "Error"):
        raise RunActionError(
            f"cannot resubmit {name} --memoized: workflow must be Failed/Error to resubmit in memoized mode",
            hint=f"`ctcd runs resubmit {name}` runs every step again",
        )
    meta = old["metadata"]
    labels = {**(meta.get("labels") or {}), "workflows.argoproj.io/resubmitted-from-workflow": name}
    generate = meta.get("generateName") or f"{name}-"
    fresh = {
        "apiVersion": old.get("apiVersion", "argoproj.io/v1alpha1"),
        "kind": "Workflow",
        "metadata": {"generateName": generate, "labels": labels},
        "spec": copy.deepcopy(old["spec"]),
    }
    reuse = (lambda new: signals.for_resubmit(old, new)) if memoized else None
    return runs.submit_workflow(settings, fresh, reuse=reuse)


def delete(settings: Settings, name: str) -> None:
    """Delete a run's record (a running run is terminated first)."""
    store = RunStore(settings.state_dir)
    workflow = _load(store, name)
    if workflow["status"].get("phase") not in TERMINAL:
        signals.request(store.run_dir(name), "terminate")
        runs.wait(settings, name, timeout=30)
        workflow = _load(store, name)
    garbage = artifact_garbage(workflow, "OnWorkflowDeletion")
    if garbage:  # artifactGC: OnWorkflowDeletion
        from workflows.platform.s3 import s3_client

        collect_artifacts(s3_client(settings), garbage)
    shutil.rmtree(store.run_dir(name))
