"""The champion gate: is the challenger better than the champion by the technique's minimum improvement?"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from workflows.platform import mlflow_tags


@dataclass(frozen=True)
class Decision:
    """The gate's verdict and its evidence (stored as tags on the registered version).

    Attributes:
        decision: ``better`` (eligible for promotion) or ``not-better``.
        challenger: The challenger's metric on the frozen test split.
        champion: The champion's metric on the same split (None without a champion).
        delta: Improvement in the metric's good direction (positive is better; None without a champion).
        threshold: The minimum improvement required.
        reason: One sentence for people.
    """

    decision: Literal["better", "not-better"]
    challenger: float
    champion: float | None
    delta: float | None
    threshold: float
    reason: str

    def tags(self) -> dict[str, str]:
        """The decision as MLflow version tags."""
        return {mlflow_tags.GATE + k: "" if v is None else str(v) for k, v in asdict(self).items()}


def decide(challenger: float, champion: float | None, direction: str, min_improvement: float) -> Decision:
    """Decide whether the challenger beats the champion by at least ``min_improvement``.

    Args:
        challenger: The challenger's metric.
        champion: The champion's metric, or None when there is no champion.
        direction: ``maximize`` or ``minimize``.
        min_improvement: The required improvement (in metric units, >= 0).

    Returns:
        The decision with its evidence.

    Raises:
        ValueError: A metric is not a finite number, or the direction is unknown.
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be maximize or minimize, not {direction!r}")
    if not math.isfinite(challenger) or (champion is not None and not math.isfinite(champion)):
        raise ValueError(f"metrics must be finite numbers (challenger={challenger}, champion={champion})")
    if champion is None:
        return Decision(
            "better", challenger, None, None, min_improvement, "no champion yet: the challenger is eligible"
        )
    delta = challenger - champion if direction == "maximize" else champion - challenger
    delta = round(delta, 12)
    if delta >= min_improvement and delta > 0:
        reason = f"improves on the champion by {delta:.4f} (needs {min_improvement:.4f})"
        return Decision("better", challenger, champion, delta, min_improvement, reason)
    reason = f"improvement {delta:.4f} is below the required {min_improvement:.4f}"
    return Decision("not-better", challenger, champion, delta, min_improvement, reason)


def from_tags(tags: dict[str, Any]) -> dict[str, str]:
    """The gate's tags of a version, without their prefix."""
    return {k.removeprefix(mlflow_tags.GATE): str(v) for k, v in tags.items() if k.startswith(mlflow_tags.GATE)}


def leader(scores: dict[str, float], direction: str) -> str | None:
    """A task's leader: the technique whose champion scores best by the metric's direction (None when none has one)."""
    sign = 1 if direction == "maximize" else -1
    return max(scores, key=lambda name: sign * scores[name], default=None)
