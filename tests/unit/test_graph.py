"""Local InferenceGraph routing: the GJSON condition subset, Switch and Splitter walks, the x-channel header."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from serving.local import graph
from serving.local.gateway import with_channel


@pytest.mark.parametrize(
    ("condition", "doc", "matches"),
    [
        ("@this", {}, True),
        ("parameters.channel", {"parameters": {"channel": "chat"}}, True),
        ("parameters.channel", {"parameters": {}}, False),
        ("instances.0", {"instances": ["hi"]}, True),
        ('[@this].#(parameters.channel=="chat")', {"parameters": {"channel": "chat"}}, True),
        ('[@this].#(parameters.channel=="chat")', {"parameters": {"channel": "web"}}, False),
        ('[@this].#(parameters.channel=="chat")', {"instances": []}, False),
        ('[@this].#(parameters.channel!="chat")', {"parameters": {"channel": "web"}}, True),
        ('[@this].#(parameters.channel!="chat")', {}, False),
        ("[@this].#(score>=0.5)", {"score": 0.5}, True),
        ("[@this].#(score<0.5)", {"score": 0.5}, False),
        ("[@this].#(score>1)", {"score": "2"}, False),
        ("[@this].#(flag==true)", {"flag": True}, True),
        ("[@this].#(flag==1)", {"flag": True}, False),
    ],
)
def test_conditions_find_what_gjson_finds(condition: str, doc: dict[str, Any], matches: bool) -> None:
    assert graph.compile_condition(condition)(doc) is matches


@pytest.mark.parametrize("condition", ['instances.#(text%"hi*")', "..", "[@this].#(a==[1])", "[@this].#(a==hi)"])
def test_an_unsupported_condition_is_refused_naming_the_forms_that_work(condition: str) -> None:
    with pytest.raises(graph.GraphError, match=r"not supported by local serving|is not a quoted string|must be a"):
        graph.compile_condition(condition)


def switch_graph(weights: dict[str, int]) -> dict[str, Any]:
    split = [{"name": s, "serviceName": s, "weight": w} for s, w in weights.items()]
    return {
        "metadata": {"name": "intents"},
        "spec": {
            "nodes": {
                "root": {
                    "routerType": "Switch",
                    "steps": [
                        {"name": "chat", "condition": '[@this].#(parameters.channel=="chat")', "serviceName": "b"},
                        {"name": "default", "condition": "@this", "nodeName": "split"},
                    ],
                },
                "split": {"routerType": "Splitter", "steps": split},
            }
        },
    }


def test_a_channel_goes_to_its_technique_and_the_rest_split_by_weight() -> None:
    routes = switch_graph({"a": 70, "b": 30})
    graph.check(routes)
    rng = random.Random(7)
    chat = {"instances": [{"text": "hi"}], "parameters": {"channel": "chat"}}
    assert {graph.choose(routes, chat, rng) for _ in range(200)} == {"b"}
    counts = Counter(graph.choose(routes, {"instances": []}, rng) for _ in range(4000))
    assert 2600 < counts["a"] < 3000 and counts["a"] + counts["b"] == 4000  # 70% ± 6 sigma-ish
    assert graph.services(routes) == {"a", "b"}
    assert graph.needs_body(routes)


def test_no_matching_switch_step_is_a_no_route_as_kserve_answers() -> None:
    routes = switch_graph({"a": 100})
    routes["spec"]["nodes"]["root"]["steps"].pop()  # no default step
    with pytest.raises(graph.NoRoute, match="None of the routes matched"):
        graph.choose(routes, {"parameters": {"channel": "web"}}, random.Random(1))


def test_a_graph_local_serving_cannot_route_is_refused_at_check() -> None:
    routes = switch_graph({"a": 100})
    routes["spec"]["nodes"]["root"]["steps"][1]["nodeName"] = "nowhere"
    with pytest.raises(graph.GraphError, match="names no node 'nowhere'"):
        graph.check(routes)
    routes = switch_graph({"a": 100})
    routes["spec"]["nodes"]["split"]["routerType"] = "Ensemble"
    with pytest.raises(graph.GraphError, match="routes Splitter and Switch nodes, not 'Ensemble'"):
        graph.check(routes)
    with pytest.raises(graph.GraphError, match="has no root node"):
        graph.check({"metadata": {"name": "x"}, "spec": {"nodes": {}}})


def test_a_cycle_stops_at_the_depth_bound() -> None:
    loop = {
        "metadata": {"name": "loop"},
        "spec": {"nodes": {"root": {"routerType": "Switch", "steps": [{"condition": "@this", "nodeName": "root"}]}}},
    }
    with pytest.raises(graph.GraphError, match="loops"):
        graph.choose(loop, {}, random.Random(1))


def test_the_channel_header_stands_in_only_when_the_body_names_none() -> None:
    body = {"instances": [{"text": "hi"}]}
    assert with_channel(body, b"chat") == {"instances": [{"text": "hi"}], "parameters": {"channel": "chat"}}
    assert body == {"instances": [{"text": "hi"}]}  # the forwarded body is untouched
    named = {"parameters": {"channel": "web", "top_k": 1}}
    assert with_channel(named, b"chat") is named
    assert with_channel({"parameters": {"top_k": 1}}, b"app") == {"parameters": {"top_k": 1, "channel": "app"}}
    assert with_channel(body, None) is body
