"""The canary-analysis step: one round of canary analysis for every technique in an environment.

No `from __future__ import annotations` here: hera reads the real annotations of step functions.
"""

import json
import logging

from hera.workflows import Input

from workflows.steps.common import RETRY, require, step
from workflows.steps.pods import git_env

_logger = logging.getLogger(__name__)


class AnalyzeInput(Input):
    """Which environment's canaries to judge."""

    environment: str = "staging"


@step(env=git_env(), retry_strategy=RETRY)
def canary_analysis(inputs: AnalyzeInput) -> str:
    """Judge each live canary on its own traffic and act by a commit; return the rounds, as JSON."""
    from dataclasses import asdict

    from models.contract import discover
    from workflows.delivery import canary
    from workflows.platform.s3 import s3_client
    from workflows.settings import get_settings

    settings = get_settings()
    require(settings, ("s3", "mlflow"))
    client = s3_client(settings)
    rounds = [canary.run(settings, client, name, inputs.environment) for name in sorted(discover())]
    for done in rounds:
        _logger.info("%s/%s: %s: %s", done.environment, done.technique, done.decision, done.action)
    canary.announce(settings, rounds)
    return json.dumps([asdict(r) for r in rounds])
