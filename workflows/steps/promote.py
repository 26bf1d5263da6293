"""The promotion step: pin a registered version in an environment through a git commit.

No `from __future__ import annotations` here: hera reads the real annotations of step functions.
"""

import logging
from typing import Annotated

from hera.workflows import Input, Output, Parameter

from workflows.steps.common import step
from workflows.steps.pods import git_env

_logger = logging.getLogger(__name__)


class PromoteInput(Input):
    """Which version goes where, and how traffic moves to it."""

    technique: str
    version: str
    environment: str = "staging"
    strategy: str = "canary"
    canary_percent: int = 20
    b_version: str = ""
    weights: str = "50,50"
    metric: str = ""
    champion_metric: str = ""


class PromoteOutput(Output):
    """The commit that carries the promotion and where it is."""

    commit: Annotated[str, Parameter(name="commit")]
    branch: Annotated[str, Parameter(name="branch")]


@step(env=git_env())
def promote(inputs: PromoteInput) -> PromoteOutput:
    """Commit the environment's version file (to main where it merges by itself, else to a promotion branch)."""
    from workflows.delivery.pin import Request, pin_version
    from workflows.settings import get_settings

    settings = get_settings()
    request = Request(**inputs.model_dump(exclude={"metric", "champion_metric"}))  # the same fields, by name
    evidence = {k: v for k, v in (("Metric", inputs.metric), ("Champion-Metric", inputs.champion_metric)) if v}
    result = pin_version(settings, request, {**evidence, "Source": "training"})
    _logger.info(
        "%s v%s -> %s: %s on %s", inputs.technique, inputs.version, inputs.environment, result.commit, result.branch
    )
    _show_in_registry(settings, inputs.technique)
    return PromoteOutput(commit=result.commit, branch=result.branch)


def _show_in_registry(settings: object, technique: str) -> None:
    """Let the registry show the new state at once (the bridge would on its next pass; never fails the step)."""
    from workflows.delivery import bridge

    try:
        bridge.reconcile(settings, [technique])  # type: ignore[arg-type]
    except Exception as exc:  # the bridge's next pass does it
        _logger.warning("the registry will show %s's promotion on the bridge's next pass: %s", technique, exc)
