"""Unit tests of Argo's small languages: substitution, `when`, `depends` and durations."""

from __future__ import annotations

import pytest

from workflows.engine.language.conditions import evaluate_depends, evaluate_retry, evaluate_when, expand_depends
from workflows.engine.language.durations import parse_duration
from workflows.engine.language.errors import ExpressionError
from workflows.engine.language.tags import substitute, substitute_all


def test_substitute_trims_whitespace_and_keeps_unknown_tags() -> None:
    scope = {"inputs.parameters.x": "1", "workflow.name": "wf"}
    assert substitute("{{ inputs.parameters.x }}-{{workflow.name}}-{{pod.name}}", scope) == "1-wf-{{pod.name}}"


def test_substitute_strict_prefix_raises_naming_the_tag() -> None:
    with pytest.raises(ExpressionError, match=r"failed to resolve \{\{tasks.A.outputs.result\}\}"):
        substitute("{{tasks.A.outputs.result}}", {}, ("tasks.",))


def test_substitute_all_walks_nested_values() -> None:
    value = {"a": ["{{item}}", {"b": "x{{item}}"}], "n": 3}
    assert substitute_all(value, {"item": "7"}) == {"a": ["7", {"b": "x7"}], "n": 3}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("heads == heads", True),
        ("heads == tails", False),
        ("'a b' != 'a c'", True),
        ("5 > 3", True),
        ("10 > 9", True),  # numeric, not string, comparison
        ("2.5 <= 2.5 && !(1 == 2)", True),
        ("false || true", True),
        ("Succeeded != Succeeded", False),
        ("abc =~ '^a'", True),
        ("abc !~ 'z'", True),
        ("-1 < 0", True),
    ],
)
def test_when(expression: str, expected: bool) -> None:
    assert evaluate_when(expression) is expected


@pytest.mark.parametrize("expression", ["", "a ==", "(true", "a > b", "x"])
def test_when_rejects_malformed(expression: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate_when(expression)


def test_dependencies_expand_to_argo_logic_with_continue_on() -> None:
    logic, names = expand_depends(None, ["A", "B"], {"B": {"failed": True}})
    assert names == ["A", "B"]
    assert logic == ("(A.Succeeded || A.Skipped || A.Daemoned) && (B.Succeeded || B.Skipped || B.Daemoned || B.Failed)")


def test_depends_keeps_explicit_results_and_dashed_names() -> None:
    logic, names = expand_depends("task-a.Succeeded && (b || c.Failed)", None, {})
    assert names == ["task-a", "b", "c"]
    assert logic == "task-a.Succeeded && ((b.Succeeded || b.Skipped || b.Daemoned) || c.Failed)"


def test_depends_unknown_result_is_refused() -> None:
    with pytest.raises(ExpressionError, match="unknown task result A.Finished"):
        expand_depends("A.Finished", None, {})


def _r(phase: str) -> dict[str, bool]:
    return {"Succeeded": phase == "Succeeded", "Failed": phase == "Failed", "Skipped": phase == "Skipped"}


@pytest.mark.parametrize(
    ("depends", "results", "expected"),
    [
        ("A && (C.Succeeded || C.Failed)", {"A": "Succeeded", "C": "Failed"}, True),
        ("B && C", {"B": "Succeeded", "C": "Failed"}, False),
        ("B || C", {"B": "Succeeded", "C": "Failed"}, True),
        ("!A.Failed", {"A": "Skipped"}, True),
        ("A", {"A": "Omitted"}, False),  # an omitted task has no result at all
    ],
)
def test_depends_evaluation(depends: str, results: dict[str, str], expected: bool) -> None:
    logic, _ = expand_depends(depends, None, {})
    assert evaluate_depends(logic, {k: _r(v) for k, v in results.items()}) is expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10", 10.0), ("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), (5, 5.0), (None, 0.0)],
)
def test_parse_duration(text: str | int | None, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(ExpressionError, match="is not a duration"):
        parse_duration("ten seconds")


@pytest.mark.parametrize(
    ("expression", "last", "expected"),
    [
        ("asInt(lastRetry.exitCode) != 2", {"exitCode": "2"}, False),
        ("asInt(lastRetry.exitCode) != 2", {"exitCode": "75"}, True),
        ("lastRetry.status == Error || asInt(lastRetry.exitCode) > 1", {"status": "Failed", "exitCode": "1"}, False),
        ("lastRetry.message =~ 'timed out'", {"message": "it timed out"}, True),
        ("asInt(lastRetry.duration) < 60", {"duration": "12"}, True),
    ],
)
def test_retry_expressions_read_the_last_attempt(expression: str, last: dict[str, str], expected: bool) -> None:
    assert evaluate_retry(expression, last) is expected


def test_an_unknown_last_retry_field_is_refused() -> None:
    with pytest.raises(ExpressionError, match="lastRetry.podName is not one of"):
        evaluate_retry("lastRetry.podName == x", {})
