"""Bad input found by living with the platform: each is refused by name, never truncated, never a 500."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from models.contract import get
from workflows.delivery import webhook
from workflows.local import bridge_server
from workflows.training import evaluation
from workflows.training.validation import DatasetError, parse

INTENT = get("intent-classifier").spec
MATCHER = get("invoice-matcher").spec
MATCH_HEADER = (
    "transfer_amount,invoice_amount,transfer_date,invoice_due_date,transfer_reference,invoice_number,"
    "payer_name,customer_name,is_match\n"
)


def _match_row(**values: str) -> str:
    row = {
        "transfer_amount": "10.5",
        "invoice_amount": "10.5",
        "transfer_date": "2026-01-02",
        "invoice_due_date": "2026-01-01",
        "transfer_reference": "NF 123",
        "invoice_number": "123",
        "payer_name": "ACME",
        "customer_name": "Acme Ltda",
        "is_match": "1",
    }
    row.update(values)
    return ",".join(row.values()) + "\n"


def test_a_nul_byte_is_refused_not_truncated() -> None:
    with pytest.raises(DatasetError, match=r"n\.csv: line 3 holds a NUL byte"):
        parse("n.csv", b"text,intent\nhello,greet\nblock\x00 my card,block_card\n", INTENT)


@pytest.mark.parametrize("value", ["2026-02-05T99:99:99garbage", "2026-02-05 junk", "2026-13-01", "05/02/2026"])
def test_a_date_must_parse_whole(value: str) -> None:
    with pytest.raises(DatasetError, match=rf"row 1 \(line 2\), column 'transfer_date': '{value}' is not an ISO date"):
        parse("d.csv", (MATCH_HEADER + _match_row(transfer_date=value)).encode(), MATCHER)


def test_a_full_timestamp_is_a_date() -> None:
    frame = parse("d.csv", (MATCH_HEADER + _match_row(transfer_date="2026-02-05T10:30:00")).encode(), MATCHER)
    assert frame.loc[0, "transfer_date"] == "2026-02-05"


@pytest.mark.parametrize(
    ("column", "value"), [("transfer_amount", "1_000"), ("transfer_amount", "nan"), ("is_match", "1.0")]
)
def test_a_number_must_parse_whole(column: str, value: str) -> None:
    with pytest.raises(DatasetError, match=rf"column '{column}': '{value}' is not a"):
        parse("x.csv", (MATCH_HEADER + _match_row(**{column: value})).encode(), MATCHER)


def test_a_binary_target_outside_its_classes_is_refused() -> None:
    with pytest.raises(DatasetError, match=r"column 'is_match': '7' is not a class of this binary task \(use 0 or 1\)"):
        parse("b.csv", (MATCH_HEADER + _match_row(is_match="7")).encode(), MATCHER)


def test_duplicated_columns_are_named_as_such() -> None:
    with pytest.raises(
        DatasetError, match=r"^dup\.csv: duplicated column\(s\) text \(expected exactly: text, intent\)$"
    ):
        parse("dup.csv", b"text,intent,text\nhi,greet,hi\n", INTENT)


def test_metric_names_are_valid_and_distinct_for_any_label() -> None:
    labels = ["reverted_card_payment?", "card payment", "café", "碼", "a?", "a!", "x" * 300, "ok-label_1.0:/"]
    names = evaluation.metric_names("test_f1_", labels)
    assert len(set(names.values())) == len(labels)
    for name in names.values():
        assert len(name) <= 250 and all(c.isascii() and (c.isalnum() or c in "_-. :/") for c in name), name
    assert names["ok-label_1.0:/"] == "test_f1_ok-label_1.0:/"  # a valid label keeps its name
    assert names["café"].startswith("test_f1_cafe_")


# --- the MLflow webhook receiver --------------------------------------------------------------------------


def _receiver(state: Path) -> TestClient:
    import threading

    from workflows.settings import Settings

    app = bridge_server.app(Settings(state_dir=state), "s3cret", threading.Event())
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def receiver(tmp_path: Path) -> TestClient:
    return _receiver(tmp_path)


def _signed(body: bytes, delivery: str = "d-1", stamp: str | None = None) -> dict[str, str]:
    stamp = stamp or str(int(time.time()))
    return {
        "X-MLflow-Signature": webhook.sign("s3cret", delivery, stamp, body),
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def test_a_huge_timestamp_is_refused_before_anything_else(receiver: TestClient) -> None:
    headers = {**_signed(b"{}"), "X-MLflow-Timestamp": "9" * 400}
    reply = receiver.post("/webhooks/mlflow", content=b"{}", headers=headers)
    assert reply.status_code == 401 and "not a Unix time" in reply.json()["error"]


@pytest.mark.parametrize("body", [b"[1, 2]", b"not json", b"\xff\xfe\xfa", b'"a string"'])
def test_signed_bodies_that_are_not_json_objects_get_400(receiver: TestClient, body: bytes) -> None:
    reply = receiver.post("/webhooks/mlflow", content=body, headers=_signed(body, delivery=f"d-{body!r}"))
    assert reply.status_code == 400, reply.text


def test_a_replayed_delivery_is_refused(receiver: TestClient) -> None:
    body = json.dumps({"entity": "model_version_alias", "action": "created"}).encode()
    codes = [receiver.post("/webhooks/mlflow", content=body, headers=_signed(body)).status_code for _ in range(3)]
    assert codes == [200, 409, 409]


def test_a_delivery_seen_before_a_restart_of_the_bridge_is_still_refused(tmp_path: Path) -> None:
    body = json.dumps({"entity": "model_version_alias", "action": "created"}).encode()
    headers = _signed(body, delivery="captured")
    assert _receiver(tmp_path).post("/webhooks/mlflow", content=body, headers=headers).status_code == 200
    restarted = _receiver(tmp_path)  # a new process reads the ids the old one kept in the state folder
    assert restarted.post("/webhooks/mlflow", content=body, headers=headers).status_code == 409
    assert (tmp_path / "webhook-deliveries.json").stat().st_mode & 0o777 == 0o600


def test_a_signed_body_nested_2000_levels_deep_gets_400(receiver: TestClient) -> None:
    body = b"[" * 2000 + b"]" * 2000
    reply = receiver.post("/webhooks/mlflow", content=body, headers=_signed(body, delivery="deep"))
    assert reply.status_code == 400 and "nested too deeply" in reply.json()["error"]


def test_an_unsigned_body_is_refused_unparsed(receiver: TestClient) -> None:
    reply = receiver.post("/webhooks/mlflow", content=b"\xff" * 10, headers={"X-MLflow-Delivery-Id": "x"})
    assert reply.status_code == 401


def test_an_oversized_body_gets_413(receiver: TestClient) -> None:
    body = b"{" + b" " * (bridge_server.MAX_BODY + 10) + b"}"
    reply = receiver.post("/webhooks/mlflow", content=body, headers=_signed(body))
    assert reply.status_code == 413 and "larger than" in reply.json()["error"]


def test_health_says_why_the_bridge_is_failing() -> None:
    import threading

    from workflows.settings import Settings

    health = bridge_server.Health()
    client = TestClient(bridge_server.app(Settings(), "s", threading.Event(), health))
    assert client.get("/healthz").status_code == 200
    health.failed("GET /api/2.0/mlflow/webhooks: too many 500 error responses")
    reply = client.get("/healthz")
    assert reply.status_code == 503 and "too many 500" in reply.json()["reason"]
