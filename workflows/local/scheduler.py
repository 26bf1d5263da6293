"""The local CronWorkflow scheduler: fires each CronWorkflow on its ``schedules`` while the platform is up.

It honours ``timezone``, ``suspend`` (and ``ctcd cron suspend``), ``concurrencyPolicy`` (Allow, Forbid,
Replace), ``startingDeadlineSeconds`` (a fire missed by more is skipped) and ``when`` (an expression over
``cronworkflow.lastScheduledTime``, ``cronworkflow.name`` and the counts of its runs).  Each CronWorkflow's
state (last fire, suspension, the runs it started) is kept in ``<state>/cron/<name>.json``.  A schedule missed
while the platform was down is not replayed: the first tick after ``up`` starts from now.

Run it as ``python -m workflows.local.scheduler`` (``ctcd up`` does).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from workflows.engine import TERMINAL, ExpressionError, RunStore, evaluate_bool, from_reference, names
from workflows.settings import Settings, get_settings

_logger = logging.getLogger(__name__)
HEARTBEAT = "scheduler.heartbeat"
TICK_SECONDS = 5.0


def state_path(settings: Settings, name: str) -> Path:
    """Where one CronWorkflow's scheduling state is kept."""
    return settings.state_dir / "cron" / f"{names.check('CronWorkflow', name)}.json"


def load_state(settings: Settings, name: str) -> dict[str, Any]:
    """One CronWorkflow's state (empty when it never fired)."""
    path = state_path(settings, name)
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def save_state(settings: Settings, name: str, state: dict[str, Any]) -> None:
    """Write one CronWorkflow's state atomically."""
    path = state_path(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def schedules(cron: dict[str, Any]) -> list[str]:
    """A CronWorkflow's schedules (v4's plural list, or v3's single ``schedule``)."""
    spec = cron.get("spec") or {}
    return list(spec.get("schedules") or ([spec["schedule"]] if spec.get("schedule") else []))


def next_fire(cron: dict[str, Any], after: float) -> float:
    """The first time after ``after`` (epoch seconds) that any of its schedules fires, in its timezone."""
    zone = ZoneInfo((cron.get("spec") or {}).get("timezone") or "UTC")
    start = datetime.fromtimestamp(after, zone)
    return float(min(croniter(s, start).get_next(datetime).timestamp() for s in schedules(cron)))


def suspended(settings: Settings, cron: dict[str, Any]) -> bool:
    """Whether it is suspended, in its spec or with ``ctcd cron suspend``."""
    name = cron["metadata"]["name"]
    return bool((cron.get("spec") or {}).get("suspend")) or bool(load_state(settings, name).get("suspended"))


def _counts(store: RunStore, runs: list[str]) -> tuple[list[str], int, int]:
    active, succeeded, failed = [], 0, 0
    for run in runs:
        try:
            phase = store.load(run)["status"].get("phase")
        except KeyError:
            continue
        if phase not in TERMINAL:
            active.append(run)
        succeeded += phase == "Succeeded"
        failed += phase in ("Failed", "Error")
    return active, succeeded, failed


def _when(cron: dict[str, Any], state: dict[str, Any], succeeded: int, failed: int) -> bool:
    condition = (cron.get("spec") or {}).get("when")
    if not condition:
        return True
    last = state.get("lastScheduledTime")
    values = {
        "cronworkflow.name": cron["metadata"]["name"],
        "cronworkflow.lastScheduledTime": datetime.fromtimestamp(last, UTC) if last else None,
        "cronworkflow.succeeded": succeeded,
        "cronworkflow.failed": failed,
    }
    text = condition.strip().removeprefix("{{=").removesuffix("}}") if "{{=" in condition else condition
    try:
        return evaluate_bool(text, {}, values)
    except ExpressionError as exc:
        _logger.warning("cronworkflow %s: when %r cannot be evaluated: %s", cron["metadata"]["name"], condition, exc)
        return False


def tick(settings: Settings, now: float) -> list[str]:
    """Fire every CronWorkflow that is due at ``now``; return the runs it started."""
    from workflows.local import actions, runs

    library = runs.library(settings)
    started = []
    for name in library.names("cronworkflow"):
        cron = library.get("cronworkflow", name)
        state = load_state(settings, name)
        if not schedules(cron) or "checkedUntil" not in state:
            save_state(settings, name, {**state, "checkedUntil": now})
            continue
        due = next_fire(cron, state["checkedUntil"])
        if due > now:
            continue
        state["checkedUntil"] = now
        run = _fire(settings, cron, state, due, now, actions, runs)
        if run:
            started.append(run)
        save_state(settings, name, state)
    return started


def _fire(
    settings: Settings, cron: dict[str, Any], state: dict[str, Any], due: float, now: float, actions: Any, runs: Any
) -> str | None:
    spec, name = cron.get("spec") or {}, cron["metadata"]["name"]
    deadline = spec.get("startingDeadlineSeconds")
    if suspended(settings, cron) or (deadline is not None and now - due > float(deadline)):
        return None
    active, succeeded, failed = _counts(RunStore(settings.state_dir), state.get("runs", []))
    if not _when(cron, state, succeeded, failed):
        return None
    policy = spec.get("concurrencyPolicy", "Allow")
    if active and policy == "Forbid":
        _logger.info("cronworkflow %s: skipped, %s still runs (concurrencyPolicy Forbid)", name, active[0])
        return None
    if policy == "Replace":
        for run in active:
            actions.stop(settings, run, "terminate")
    workflow = from_reference(runs.library(settings), f"cronworkflow/{name}")
    workflow["metadata"]["labels"]["workflows.argoproj.io/cron-workflow"] = name
    submitted = runs.submit_workflow(settings, workflow)["metadata"]["name"]
    state["lastScheduledTime"] = now
    state["runs"] = [*state.get("runs", [])[-50:], submitted]
    _logger.info("cronworkflow %s: started %s", name, submitted)
    return str(submitted)


def main() -> int:
    """Tick every few seconds until stopped, touching a heartbeat file that ``ctcd status`` reads."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = get_settings()
    heartbeat = settings.state_dir / HEARTBEAT
    while True:
        heartbeat.write_text(str(time.time()))
        try:
            tick(settings, time.time())
        except Exception:  # one bad CronWorkflow must not stop the others firing
            _logger.exception("scheduler tick failed")
        time.sleep(TICK_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
