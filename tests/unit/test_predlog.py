"""The prediction log's writer: bounded, never blocking, partitioned, flushed by size, by time and at shutdown."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from serving import predlog


def record(n: int, service: str = "intent-classifier", when: str = "2026-12-06T15:04:05.000+00:00") -> Any:
    return predlog.Record(
        request_id=f"r{n}", time=when, namespace="ctcd-staging", service=service, answered_by=service,
        revision="rev-1", model_version="3", channel="", inputs=["hi"], labels=["greet"], confidences=[0.9],
        handoffs=[False], candidates=["greet"], latency_ms=1.0, status=200,
    )  # fmt: skip


class Store:
    def __init__(self, fail: bool = False, slow: float = 0.0) -> None:
        self.files: dict[str, bytes] = {}
        self.fail, self.slow = fail, slow

    def put(self, key: str, body: bytes) -> None:
        time.sleep(self.slow)
        if self.fail:
            raise OSError("S3 is down")
        self.files[key] = body

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for body in self.files.values() for line in body.splitlines()]


def test_records_land_partitioned_by_service_namespace_date_and_hour() -> None:
    store = Store()
    writer = predlog.LogWriter(store.put, batch=1000, every=60)
    writer.add(record(1))
    writer.add(record(2, service="intents", when="2026-12-06T16:00:00.000+00:00"))
    writer.close()
    folders = sorted(key.rsplit("/", 1)[0] for key in store.files)
    assert folders == [
        "intent-classifier/ctcd-staging/date=2026-12-06/hour=15",
        "intents/ctcd-staging/date=2026-12-06/hour=16",
    ]
    assert sorted(r["request_id"] for r in store.records()) == ["r1", "r2"]


def test_a_full_queue_drops_and_counts_and_never_blocks() -> None:
    store = Store(slow=0.5)
    writer = predlog.LogWriter(store.put, capacity=10, batch=10_000, every=60)
    started = time.perf_counter()
    accepted = [writer.add(record(n)) for n in range(25)]
    assert time.perf_counter() - started < 0.5  # adding never waits for storage
    assert accepted.count(True) == 10 and writer.dropped == 15
    writer.close()
    assert writer.written == 10 and len(store.records()) == 10


def test_flushed_by_size_and_by_time_without_close() -> None:
    store = Store()
    writer = predlog.LogWriter(store.put, batch=5, every=0.2)
    for n in range(5):
        writer.add(record(n))
    deadline = time.monotonic() + 5
    while writer.written < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer.written == 5  # the batch size woke the flusher
    writer.add(record(99))
    while writer.written < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer.written == 6  # and the timer took the single straggler
    writer.close()


def test_storage_down_counts_the_loss_and_serving_goes_on() -> None:
    writer = predlog.LogWriter(Store(fail=True).put, batch=1000, every=60)
    writer.add(record(1))
    writer.close()
    assert writer.failed == 1 and writer.written == 0


def test_concurrent_adds_lose_nothing_below_capacity() -> None:
    store = Store()
    writer = predlog.LogWriter(store.put, capacity=100_000, batch=200, every=0.05)
    threads = [
        threading.Thread(target=lambda k=k: [writer.add(record(k * 1000 + n)) for n in range(500)]) for k in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert len({r["request_id"] for r in store.records()}) == 4000 and writer.dropped == 0


def test_outputs_are_read_from_v1_and_v2_answers_and_errors_give_none() -> None:
    answers = [{"label": "handoff", "confidence": 0.2, "candidate": "mpg"}, {"label": "a", "confidence": 0.9}]
    v1 = json.dumps({"predictions": answers}).encode()
    assert predlog.outputs(v1) == (["handoff", "a"], [0.2, 0.9], [True, False], ["mpg", "a"])
    v2 = json.dumps({"outputs": [{"name": "label", "data": ["b"]}, {"name": "confidence", "data": [0.7]}]}).encode()
    assert predlog.outputs(v2) == (["b"], [0.7], [False], ["b"])
    assert predlog.outputs(b'{"error": "bad"}') == ([], [], [], []) and predlog.outputs(b"[" * 5000) == ([], [], [], [])


def test_a_sensitive_input_is_a_keyed_hash() -> None:
    one, two = predlog.keyed_hash("my card 1234", b"k1"), predlog.keyed_hash("my card 1234", b"k2")
    assert one != two and one == predlog.keyed_hash("my card 1234", b"k1") and "1234" not in one


def test_sensitive_inputs_are_logged_only_as_keyed_hashes() -> None:
    privacy = predlog.Privacy.of_techniques(b"k" * 32)
    assert privacy.sensitive["invoice-matcher"] == {"payer_name", "customer_name"}
    assert privacy.sensitive["invoice-matcher-b"] == privacy.sensitive["invoice-matcher"]  # its A/B service too
    assert "intent-classifier" not in privacy.sensitive and "intents" not in privacy.sensitive
    row = {"payer_name": "Ada Lovelace", "customer_name": "Ada Lovelace", "invoice_amount": 120.5}
    (kept,), hashed = predlog.redact([row], privacy.sensitive["invoice-matcher"], privacy.key)
    assert hashed == ["customer_name", "payer_name"] and kept["invoice_amount"] == 120.5
    assert "Ada" not in json.dumps(kept) and kept["payer_name"] == kept["customer_name"]  # equal inputs still match
    (other,), _ = predlog.redact([row], privacy.sensitive["invoice-matcher"], b"another key")
    assert other["payer_name"] != kept["payer_name"]  # without the key, no dictionary attack on names
    assert predlog.redact(["Ada Lovelace"], frozenset({"payer_name"}), b"k") == (
        [predlog.keyed_hash("Ada Lovelace", b"k")],
        ["*"],
    )
    assert predlog.redact([row], frozenset(), b"k") == ([row], [])


def test_the_gateway_s_record_and_the_collector_s_hash_the_same_way() -> None:
    from serving.local import recording
    from workflows.delivery import collector

    privacy = predlog.Privacy.of_techniques(b"secret")
    question = json.dumps({"instances": [{"payer_name": "Grace Hopper", "invoice_amount": 3.0}]}).encode()
    answer = (200, b'{"predictions": [{"label": "1", "confidence": 0.9}]}', [(b"x-ctcd-service", b"invoice-matcher")])
    made = recording.record(
        "r1", "/v1/models/invoice-matcher:predict", {}, question, answer, ("2026-12-06T00:00:00+00:00", 1.0), privacy
    )
    pairs = collector.Pairs(privacy=privacy)
    pairs.take({"ce-type": collector.REQUEST_TYPE, "ce-id": "r1"}, question, "1")
    seen = pairs.take(
        {"ce-type": collector.RESPONSE_TYPE, "ce-id": "r1", "ce-inferenceservicename": "invoice-matcher"},
        answer[1],
        "1",
    )
    assert seen is not None and made["inputs"] == seen["inputs"] and made["hashed"] == seen["hashed"] == ["payer_name"]
    assert "Grace" not in json.dumps(made)


def test_a_sensitive_name_that_is_not_an_input_is_refused() -> None:
    import pytest

    from models.contract import ServingSpec

    with pytest.raises(ValueError, match="serving.sensitive names card_number, which are not serving inputs"):
        ServingSpec.model_validate(
            {"inputs": [{"name": "text", "type": "string"}], "outputs": [], "sensitive": ["card_number"]}
        )


def test_a_record_orjson_refuses_is_still_written() -> None:
    store = Store()
    writer = predlog.LogWriter(store.put, every=60)
    huge = {**record(1), "inputs": [{"amount": 2**70}]}
    writer.add(huge)
    writer.add(record(2))
    assert writer.flush() == 2 and writer.failed == 0
    lines = [json.loads(line) for body in store.files.values() for line in body.splitlines()]
    assert [r["inputs"] for r in lines] == [[{"amount": 2**70}], ["hi"]]
    writer.close()
