"""The promote sequence, written once: a registered version read from the registry, pinned by a git commit.

The ``ctcd promote`` command and the training workflow's promote step both go through :func:`pin_version`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from workflows.delivery import promotion
from workflows.platform import registry

if TYPE_CHECKING:
    from workflows.settings import Settings


@dataclass(frozen=True)
class Request:
    """Which registered version goes to which environment, and how it takes traffic."""

    technique: str
    version: str
    environment: str = "staging"
    strategy: str = "canary"
    canary_percent: int = 20
    b_version: str = ""
    weights: str = "50,50"


def pin_version(
    settings: Settings,
    request: Request,
    evidence: dict[str, str],
    to_main: bool | None = None,
    registry_metrics: bool = False,
) -> promotion.Result:
    """Read the version from the registry, commit the environment's version file, and say where it went.

    It goes to main when the environment merges by itself (``CTCD_AUTO_MERGE``) unless ``to_main`` says, else to
    a promotion branch; ``registry_metrics`` adds the version's own metrics to the commit's evidence trailers.

    Raises:
        CtcdError: A bad strategy, percent, split or name, or the git remote refused.
        ValueError: The version has no ctcd sha256 tag, or lies outside the S3 artifact store.
    """
    client = registry.client(settings.mlflow_tracking_uri)
    desired = promotion.from_registry(
        client,
        settings.artifacts_bucket,
        request.technique,
        request.version,
        request.environment,
        request.strategy,
        request.canary_percent,
        request.b_version,
        request.weights,
    )
    if registry_metrics:
        evidence = {**registry.metric_evidence(client, request.technique, request.version), **evidence}
    direct = settings.merges_by_itself(request.environment) if to_main is None else to_main
    return promotion.promote(settings.git_remote, settings.git_branch, desired, evidence, to_main=direct)
