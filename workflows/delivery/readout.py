"""The A/B readout: how each arm that served a task or technique answers, from the prediction log and the labels.

An arm is one model that answered: an InferenceService and the registry version behind it (a canary's two
revisions are two arms, a task graph's techniques are arms too). For each arm: requests, the 5xx rate, p50 and
p99 latency, the hand-off rate, the mean confidence, how far its predicted labels have moved from the reference arm
(the one with the most requests: total variation distance), and, on rows people labelled, how often its best
answer was right, with an always-valid 95% interval (:mod:`workflows.delivery.sequential`). Each other arm is
compared with the reference: the difference, its interval, and how many more labelled rows a decision needs.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, TypedDict

from models.contract import by_task, discover
from workflows.delivery import sequential
from workflows.settings import Settings
from workflows.training import feedback
from workflows.training.validation import DatasetError

ALPHA = 0.05


class Arm(TypedDict):
    """One arm's figures."""

    service: str
    model_version: str
    requests: int
    errors_5xx: float
    p50_ms: float
    p99_ms: float
    handoff_rate: float
    mean_confidence: float
    label_shift: float
    labelled: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    pair_low: float  # the accuracy's interval at alpha/2: what a difference of two arms combines
    pair_high: float


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _task_of(name: str) -> str:
    if name in by_task():
        return name
    if name in discover():
        return discover()[name].dataset
    raise DatasetError(f"{name!r} is neither a task nor a technique (tasks: {', '.join(sorted(by_task()))})")


def arms(
    client: Any, settings: Settings, name: str, namespace: str, since_days: int, after_ms: int = 0
) -> dict[str, Any]:
    """The readout of a task or a technique in one namespace over the last ``since_days`` days.

    ``after_ms``, when given, keeps only the records answered after it (a canary step's start).
    """
    from datetime import datetime

    task = _task_of(name)
    confirmed = {r["request_id"]: r["label"] for r in feedback.labelled(client, settings, task)}
    groups: dict[tuple[str, str], list[Any]] = {}
    for record in feedback.records(client, settings.predictions_bucket, task, namespace, since_days):
        if name != task and record["answered_by"] != name:
            continue
        if after_ms and datetime.fromisoformat(record["time"]).timestamp() * 1000 < after_ms:
            continue
        groups.setdefault((record["answered_by"], record["model_version"]), []).append(record)
    reference = max(groups, key=lambda k: len(groups[k]), default=None)
    reference_labels = _labels(groups[reference]) if reference else Counter()
    table = [_arm(key, records, confirmed, reference_labels) for key, records in sorted(groups.items())]
    return {"name": name, "task": task, "namespace": namespace, "arms": table, "differences": _differences(table)}


def _labels(records: list[Any]) -> Counter[str]:
    return Counter(
        label for r in records for label, handed in zip(r["labels"], r["handoffs"], strict=False) if not handed
    )


def _shift(mine: Counter[str], reference: Counter[str]) -> float:
    total_a, total_b = sum(mine.values()), sum(reference.values())
    if not total_a or not total_b:
        return math.nan
    return 0.5 * sum(abs(mine[k] / total_a - reference[k] / total_b) for k in set(mine) | set(reference))


def _arm(key: tuple[str, str], records: list[Any], confirmed: dict[str, str], reference: Counter[str]) -> Arm:
    rows = [(c, h) for r in records for c, h in zip(r["confidences"], r["handoffs"], strict=False)]
    right = [
        r["candidates"][0] == confirmed[r["request_id"]]
        for r in records
        if r["request_id"] in confirmed and r["candidates"]
    ]
    accuracy = sequential.adaptive_rate(right, ALPHA)
    pair = sequential.adaptive_rate(right, ALPHA / 2)
    return Arm(
        service=key[0],
        model_version=key[1],
        requests=len(records),
        errors_5xx=sum(r["status"] >= 500 for r in records) / len(records),
        p50_ms=_quantile([r["latency_ms"] for r in records], 0.5),
        p99_ms=_quantile([r["latency_ms"] for r in records], 0.99),
        handoff_rate=sum(h for _, h in rows) / len(rows) if rows else math.nan,
        mean_confidence=sum(c for c, _ in rows) / len(rows) if rows else math.nan,
        label_shift=_shift(_labels(records), reference),
        labelled=len(right),
        accuracy=accuracy.estimate,
        accuracy_low=accuracy.low,
        accuracy_high=accuracy.high,
        pair_low=pair.low,
        pair_high=pair.high,
    )


def difference(arm: Arm, other: Arm) -> sequential.Interval:
    """``arm``'s accuracy minus ``other``'s, with an always-valid interval at 1 - alpha (each arm at alpha/2)."""
    if not arm["labelled"] or not other["labelled"]:
        return sequential.Interval(math.nan, -1.0, 1.0, min(arm["labelled"], other["labelled"]))
    return sequential.Interval(
        arm["accuracy"] - other["accuracy"],
        arm["pair_low"] - other["pair_high"],
        arm["pair_high"] - other["pair_low"],
        min(arm["labelled"], other["labelled"]),
    )


def _variance(arm: Arm) -> float:
    p = arm["accuracy"] if arm["labelled"] else 0.5
    return p * (1 - p)


def _differences(table: list[Arm]) -> list[dict[str, Any]]:
    """Each arm against the one with the most requests: accuracy difference, interval, rows a decision needs."""
    if len(table) < 2:
        return []
    reference = max(table, key=lambda a: a["requests"])
    found = []
    for arm in table:
        if arm is reference:
            continue
        gap = difference(arm, reference)
        size = abs(gap.estimate) if not math.isnan(gap.estimate) and gap.estimate else 0.02
        needed = sequential.adaptive_rows_needed(size, (_variance(arm), _variance(reference)), ALPHA, gap.n)
        found.append(
            {
                "arm": f"{arm['service']} v{arm['model_version']}",
                "against": f"{reference['service']} v{reference['model_version']}",
                "accuracy_difference": gap.estimate,
                "low": gap.low,
                "high": gap.high,
                "decided": gap.excludes(0.0),
                "more_labelled_rows_needed": 0 if gap.excludes(0.0) else needed,
            }
        )
    return found
