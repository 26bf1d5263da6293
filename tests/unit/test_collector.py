"""The collector: KServe's payload-logger events pair into records, and confirmed labels are checked at the door."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from workflows.delivery import collector
from workflows.training.validation import DatasetError

ANSWER = {"predictions": [{"label": "handoff", "confidence": 0.31, "candidate": "balance"}]}


def _event(kind: str, when: str, **extra: str) -> dict[str, str]:
    return {"ce-type": kind, "ce-id": "req-1", "ce-time": when, **extra}


def test_a_request_and_its_response_make_one_record_with_the_url_s_model_version() -> None:
    pairs = collector.Pairs()
    asked = _event(collector.REQUEST_TYPE, "2026-12-06T10:00:00.000Z")
    question = json.dumps({"instances": [{"text": "where is my card"}], "parameters": {"channel": "app"}}).encode()
    assert pairs.take(asked, question, "7") is None
    answered = _event(
        collector.RESPONSE_TYPE, "2026-12-06T10:00:00.025Z",
        **{"ce-inferenceservicename": "intent-classifier", "ce-namespace": "ctcd-production", "ce-endpoint": "rev-3"},
    )  # fmt: skip
    made = pairs.take(answered, json.dumps(ANSWER).encode(), "7")
    assert made is not None and not pairs.waiting
    assert (made["request_id"], made["service"], made["namespace"], made["model_version"]) == (
        "req-1", "intent-classifier", "ctcd-production", "7",
    )  # fmt: skip
    assert made["handoffs"] == [True] and made["candidates"] == ["balance"] and made["channel"] == "app"
    assert made["latency_ms"] == pytest.approx(25.0) and made["status"] == 200
    assert made["inputs"] == [{"text": "where is my card"}]


def test_a_lone_response_an_error_answer_and_too_many_waiting_requests() -> None:
    pairs = collector.Pairs(capacity=2)
    assert pairs.take(_event(collector.RESPONSE_TYPE, "x"), b"{}", "1") is None  # its request never came
    for n in range(3):
        pairs.take({"ce-type": collector.REQUEST_TYPE, "ce-id": f"r{n}"}, b"{}", "1")
    assert list(pairs.waiting) == ["r1", "r2"]  # the oldest went: the bound holds
    made = pairs.take({"ce-type": collector.RESPONSE_TYPE, "ce-id": "r2"}, b'{"error": "boom"}', "1")
    assert made is not None and made["status"] == 500 and made["labels"] == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "the body is not JSON"),
        (b'{"request_id": "a"}', "exactly request_id and label"),
        (b'[{"request_id": "a", "label": ""}]', "non-empty strings"),
        (b'{"request_id": "a", "label": "x", "extra": 1}', "exactly request_id and label"),
    ],
)
def test_bad_feedback_bodies_are_named(body: bytes, why: str) -> None:
    with pytest.raises(DatasetError, match=why):
        collector.parse_labels(body)


def test_one_label_or_a_list() -> None:
    assert collector.parse_labels(b'{"request_id": "a", "label": "x"}') == [("a", "x")]
    assert collector.parse_labels(b'[{"request_id": "a", "label": "x"}, {"request_id": "b", "label": "y"}]') == [
        ("a", "x"), ("b", "y"),
    ]  # fmt: skip


class _Desk:
    def __init__(self) -> None:
        self.given: list[Any] = []

    def confirm(self, pairs: list[tuple[str, str]]) -> tuple[str, int]:
        if pairs[0][0] == "unknown":
            raise DatasetError("row 1: request 'unknown' is not in the prediction log", hint="check the id")
        self.given += pairs
        return "feedback/intents/f.jsonl", len(pairs)


def _client(token: str | None) -> tuple[TestClient, _Desk]:
    desk = _Desk()
    return TestClient(Starlette(routes=[collector.feedback_route(desk, token)])), desk  # type: ignore[arg-type]


def test_a_token_is_required_when_one_is_set_and_refusals_are_422() -> None:
    client, desk = _client("s3cret")
    label = {"request_id": "a", "label": "balance"}
    assert client.post("/v1/feedback", json=label).status_code == 401
    assert client.post("/v1/feedback", json=label, headers={"authorization": "Bearer wrong"}).status_code == 401
    reply = client.post("/v1/feedback", json=label, headers={"authorization": "Bearer s3cret"})
    assert reply.status_code == 200 and reply.json() == {"labelled": 1, "stored": "feedback/intents/f.jsonl"}
    refused = client.post(
        "/v1/feedback", json={"request_id": "unknown", "label": "x"}, headers={"authorization": "Bearer s3cret"}
    )
    assert refused.status_code == 422 and "not in the prediction log" in refused.json()["error"]
    assert desk.given == [("a", "balance")]
