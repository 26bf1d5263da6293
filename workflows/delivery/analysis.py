"""Canary analysis that acts: the readout of a live canary decides to step it up, roll it out, or roll it back.

The rule, per metric, is shaped like an Argo Rollouts AnalysisTemplate: a ``successCondition`` and a
``failureCondition`` over the metric's figures, written ``<figure> <op> <number>`` (``low >= -0.02``). Conditions
are parsed, never evaluated as code. The metrics:

- ``accuracy-difference``: the canary's accuracy on confirmed labels minus the version it splits against, with
  its always-valid 95% interval (figures ``estimate``, ``low``, ``high``, ``labelled``);
- ``errors-5xx``: the canary's share of 5xx answers (figure ``value``).

A metric that meets neither condition is inconclusive. Any failure rolls the canary back; every metric passing
moves it to the next traffic step, or rolls it out after the last; otherwise it stays where it is. Because the
intervals are confidence sequences, deciding at whichever round first looks decided keeps the error rate at alpha.
Each action is one commit through the promotion code, whose trailers carry the decision and its evidence, and is
taken only while main still pins the canary that was analysed (a canary git moved on from is left alone).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workflows.delivery import overlays

CONDITION = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|==|<|>)\s*(-?[0-9.]+)\s*$")
OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
DEFAULT_SPEC: dict[str, Any] = {
    "steps": [20, 50, 100],
    "metrics": [
        {"name": "accuracy-difference", "successCondition": "low >= -0.02", "failureCondition": "high < 0"},
        {"name": "errors-5xx", "successCondition": "value <= 0.01", "failureCondition": "value > 0.05"},
    ],
}


COMPARATIVE = {"accuracy-difference"}  # metrics that need a version to compare with (a first canary has none)


class AnalysisError(overlays.GitopsError):
    """The analysis spec is malformed; the message names the field."""


def condition(text: str) -> tuple[str, Any, float]:
    """``(figure, operator, number)`` of ``<figure> <op> <number>``.

    Raises:
        AnalysisError: Anything else (no code is ever evaluated).
    """
    match = CONDITION.match(text or "")
    if not match:
        raise AnalysisError(f"condition {text!r} must read <figure> <op> <number>, such as 'low >= -0.02'")
    return match.group(1), OPERATORS[match.group(2)], float(match.group(3))


def holds(text: str, figures: dict[str, float]) -> bool:
    """Whether a condition holds on a metric's figures (a missing or NaN figure never satisfies one)."""
    name, compare, number = condition(text)
    value = figures.get(name)
    return value is not None and value == value and bool(compare(value, number))


@dataclass
class Verdict:
    """One round's decision and why; ``measured`` is each metric's own outcome, kept as the step's history."""

    decision: str  # "pass", "fail" or "inconclusive"
    reasons: list[str] = field(default_factory=list)
    measured: dict[str, str] = field(default_factory=dict)
    escalation: str = ""  # why the canary now needs a person (count or inconclusiveLimit reached)

    def evidence(self) -> str:
        """One line for the commit's ``Analysis-Evidence`` trailer."""
        return "; ".join(self.reasons)


DURATION = re.compile(r"^(\d+)(s|m|h)$")


def seconds(interval: str) -> int:
    """A metric's ``interval`` (``30s``, ``10m``, ``1h``) in seconds.

    Raises:
        AnalysisError: Another shape.
    """
    match = DURATION.match(str(interval))
    if not match:
        raise AnalysisError(f"interval {interval!r} must read <number><s|m|h>, such as '10m'")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def check_limits(metric: dict[str, Any]) -> None:
    """A metric's ``count``, ``failureLimit`` and ``inconclusiveLimit`` are whole numbers, its ``interval`` a duration.

    Raises:
        AnalysisError: Naming the metric and the field.
    """
    for key in ("count", "failureLimit", "inconclusiveLimit"):
        value = metric.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise AnalysisError(f"metric {metric.get('name')!r}: {key} must be a whole number, not {value!r}")
    if "interval" in metric:
        seconds(metric["interval"])


def figures(found: dict[str, Any], canary: str, previous: str) -> dict[str, dict[str, float]]:
    """Each metric's figures for the canary version against the one it splits against, from a readout."""
    from workflows.delivery import readout

    arms = {a["model_version"]: a for a in found["arms"]}
    mine, theirs = arms.get(canary), arms.get(previous)
    shown: dict[str, dict[str, float]] = {"errors-5xx": {"value": mine["errors_5xx"] if mine else float("nan")}}
    if mine and theirs:
        gap = readout.difference(mine, theirs)
        shown["accuracy-difference"] = {"estimate": gap.estimate, "low": gap.low, "high": gap.high, "labelled": gap.n}
    else:
        shown["accuracy-difference"] = {}
    return shown


def _outcome(metric: dict[str, Any], shown: dict[str, float]) -> str:
    if holds(metric["failureCondition"], shown):
        return "fail"
    return "pass" if holds(metric["successCondition"], shown) else "inconclusive"


def decide(spec: dict[str, Any], found: dict[str, dict[str, float]], earlier: Sequence[dict[str, str]] = ()) -> Verdict:
    """Fail if any metric fails; pass if every metric passes; else inconclusive.

    As in an Argo Rollouts AnalysisTemplate, ``earlier`` measurements of the same step count: a metric fails only
    once its failures pass ``failureLimit`` (0), and a step measured ``count`` times, or inconclusive more than
    ``inconclusiveLimit`` times, without a decision is handed to a person (the canary stays).
    """
    verdict, outcomes = Verdict("inconclusive"), []
    for metric in spec.get("metrics", []):
        name, shown = metric["name"], found.get(metric["name"], {})
        if name not in found:
            raise AnalysisError(f"metric {name!r} is not one the analysis computes (accuracy-difference, errors-5xx)")
        said = ", ".join(f"{k} {v:.4g}" for k, v in shown.items()) or "no data"
        outcome = verdict.measured[name] = _outcome(metric, shown)
        past = [m.get(name) for m in earlier]
        failures, limit = past.count("fail") + (outcome == "fail"), int(metric.get("failureLimit", 0))
        if outcome == "fail" and failures <= limit:
            outcome, said = "inconclusive", f"{said}; failure {failures} of {limit} allowed"
        condition = {"fail": metric["failureCondition"], "pass": metric["successCondition"]}.get(outcome, "")
        verdict.reasons.append(f"{name} {outcome_word(outcome)} ({condition + '; ' if condition else ''}{said})")
        outcomes.append(outcome)
        verdict.escalation = verdict.escalation or _exhausted(metric, outcome, past)
    if "fail" in outcomes:
        verdict.decision = "fail"
    elif outcomes and all(o == "pass" for o in outcomes):
        verdict.decision = "pass"
    return verdict


def outcome_word(outcome: str) -> str:
    """``passed``, ``failed`` or ``inconclusive``."""
    return {"pass": "passed", "fail": "failed"}.get(outcome, "inconclusive")


def _exhausted(metric: dict[str, Any], outcome: str, past: list[str | None]) -> str:
    """Why a metric still undecided needs a person now ('' while it may wait for more data)."""
    if outcome != "inconclusive":
        return ""
    measured, undecided = len(past) + 1, past.count("inconclusive") + 1
    if "count" in metric and measured >= int(metric["count"]):
        return f"{metric['name']} measured {measured} times (count {metric['count']}) without a decision"
    if "inconclusiveLimit" in metric and undecided > int(metric["inconclusiveLimit"]):
        return f"{metric['name']} inconclusive {undecided} times (inconclusiveLimit {metric['inconclusiveLimit']})"
    return ""


def next_step(steps: list[int], percent: int) -> int | None:
    """The canary's next traffic percent after ``percent`` (None: roll out)."""
    later = [s for s in sorted(steps) if s > percent]
    return None if not later or later[0] >= 100 else later[0]
