"""Argo's expression language, case by case from Argo's variables/expression docs and expr-lang's language page."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.engine.language.errors import ExpressionError, Missing
from workflows.engine.language.expressions import evaluate
from workflows.engine.language.tags import expand_tags, substitute

SCOPE = {
    "inputs.parameters.num": "3",
    "inputs.parameters.should-print": "true",
    "steps.flip-coin.outputs.result": "heads",
    "steps.heads.outputs.result": "it was heads",
    "steps.heads.status": "Succeeded",
    "tasks.producer.status": "Skipped",
    "workflow.name": "wf-abc12",
    "workflow.creationTimestamp": "2026-12-02T10:11:12Z",
    "workflow.parameters.config": '{"a": 1, "employees": [{"name": "Baris", "age": 43}, {"name": "Mo", "age": 28}]}',
    "item": "7",
}

CASES: list[tuple[str, Any]] = [
    # literals and arithmetic (expr-lang)
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("7 / 2", 3.5),
    ("7 % 4", 3),
    ("2 ** 3", 8.0),
    ("-3 + 1", -2),
    ("'a' + \"b\"", "ab"),
    ("[1, 2, 3][1]", 2),
    ("[1, 2, 3, 4][1:3]", [2, 3]),
    ("{a: 1, 'b': 2}.b", 2),
    ("1..3", [1, 2, 3]),
    ("nil ?? 'x'", "x"),
    ("'y' ?? 'x'", "y"),
    # comparisons, logic and membership
    ("1 < 2 && 2 <= 2 and not (3 > 4)", True),
    ("false || !false", True),
    ("2 in [1, 2]", True),
    ("'k' in {k: 1}", True),
    ("3 not in [1, 2]", True),
    ("'heads' matches '^hea'", True),
    ("'heads' contains 'ad'", True),
    ("'heads' startsWith 'he' && 'heads' endsWith 'ds'", True),
    ("1 == 1.0", True),
    ("'1' == 1", False),
    ("true ? 'yes' : 'no'", "yes"),
    ("1 > 2 ? 'a' : 2 > 1 ? 'b' : 'c'", "b"),
    # closures and builtins
    ("map([1, 2], {# * 2})", [2, 4]),
    ("filter([1, 2, 3], {# > 1})", [2, 3]),
    ("all([2, 4], {# % 2 == 0})", True),
    ("any([1, 2], {# > 1})", True),
    ("none([1, 2], {# > 5})", True),
    ("count([1, 2, 3], {# > 1})", 2),
    ("map([{n: 1}, {n: 2}], {.n})", [1, 2]),
    ("len('abc') + len([1])", 4),
    ("upper('a') + lower('B') + trim('  c ')", "Abc"),
    ("split('a,b', ',')", ["a", "b"]),
    ("join(['a', 'b'], '-')", "a-b"),
    ("keys({x: 1})", ["x"]),
    # Argo's functions, over a run's variables
    ("asInt(inputs.parameters.num) * 10", 30),
    ("asFloat('1.5') + 1", 2.5),
    ("string(42)", "42"),
    ("toJson([1, 'a'])", '[1,"a"]'),
    ("inputs.parameters['should-print'] == 'true'", True),
    ("steps['flip-coin'].outputs.result == 'heads' ? steps.heads.outputs.result : 'no'", "it was heads"),
    ("tasks.producer.outputs.parameters.msg ?? 'fallback'", "fallback"),
    ("jsonpath(workflow.parameters.config, '$.a')", 1),
    ("jsonpath(workflow.parameters.config, '$.employees[*].name')", ["Baris", "Mo"]),
    ("jsonpath(workflow.parameters.config, '$.employees[?(@.age>42 && @.age<44)].name')", ["Baris"]),
    ("asInt(item) + 1", 8),
    # sprig, as Argo exposes it
    ("sprig.upper('abc')", "ABC"),
    ("sprig.trim('  x ')", "x"),
    ("sprig.replace('a', 'b', 'banana')", "bbnbnb"),
    ("sprig.b64dec(sprig.b64enc('hi'))", "hi"),
    ("sprig.add(1, 2, 3)", 6),
    ("sprig.max(3, 9, 1)", 9),
    ("sprig.date('2006-01-02', workflow.creationTimestamp)", "2026-12-02"),
    ("sprig.splitList(',', 'a,b')", ["a", "b"]),
    ("sprig.default('d', '')", "d"),
    # the pipe (expr-lang): `x | f(y)` is `f(x, y)`, lowest of all operators
    ("[1, 'a'] | toJSON()", '[1,"a"]'),
    ("'a,b' | split(',') | join('-')", "a-b"),
    ("1 + 2 | string()", "3"),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_expressions_evaluate_as_argo_documents(source: str, expected: Any) -> None:
    assert evaluate(source, SCOPE) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1 +", "unexpected"),
        ("'a' - 1", "mismatched types"),
        ("unknownFn(1)", "unknown function"),
        ("sprig.nope(1)", "unknown function sprig.nope"),
        ("1 / 0", "division by zero"),
        ("'x' && true", "not a boolean"),
        ("[1][5]", "out of range"),
        ("filter([1], 2)", "closure"),
        ("jsonpath('{}', '$.a')", "matched nothing"),
        ("1 | 2", "a pipe needs a function call"),
    ],
)
def test_bad_expressions_are_named_errors(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate(source, SCOPE)


def test_an_unknown_variable_is_missing_and_can_wait() -> None:
    with pytest.raises(Missing, match="'tasks'"):
        evaluate("tasks.a.outputs.result", {})
    assert expand_tags("x {{= tasks.a.outputs.result }} y", {}) == "x {{= tasks.a.outputs.result }} y"
    with pytest.raises(ExpressionError, match="failed to evaluate"):
        expand_tags("{{= tasks.a.outputs.result }}", {}, ("tasks",))


def test_expression_tags_render_as_argo_prints_values() -> None:
    text = "n={{=asInt(inputs.parameters.num) * 2}} f={{=7/2}} l={{=[1,2]}} s={{= 'a' }} w={{=2.0 * 2}}"
    assert substitute(text, SCOPE) == "n=6 f=3.5 l=[1,2] s=a w=4"


def test_tags_with_braces_inside_are_one_tag() -> None:
    assert substitute("{{=toJson(map([1], { {k: #} }))}}!", SCOPE) == '[{"k":1}]!'


def test_no_python_eval_is_reachable() -> None:
    with pytest.raises(ExpressionError):
        evaluate("__import__('os').system('true')", SCOPE)
