"""The local gateway in front of a real KServe server whose model raises on some requests (a 500).

Through the gateway every good request must still get its 200 and every bad one KServe's own 500: an answer is
never turned into a 503, and the pooled connections stay usable after an error answer.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from serving import predlog
from serving.limits import MAX_BODY_BYTES
from serving.local import gateway


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(app: Starlette, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    threading.Thread(target=server.run, daemon=True).start()
    end = time.monotonic() + 10
    while not server.started and time.monotonic() < end:
        time.sleep(0.05)
    return server


CHAT_ONLY = {  # a Switch with no default step: KServe refuses what no condition matches
    "metadata": {"name": "task"},
    "spec": {
        "nodes": {
            "root": {
                "routerType": "Switch",
                "steps": [{"name": "chat", "condition": '[@this].#(parameters.channel=="chat")', "serviceName": "m"}],
            }
        }
    },
}


SLOW_PORT, LOGGED_PORT = _port(), _port()
FILES: dict[str, bytes] = {}
LOG = predlog.LogWriter(FILES.__setitem__, batch=10_000, every=60)


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    upstream_port, gateway_port = _port(), _port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.servers.crashing_model", str(upstream_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{upstream_port}/v2/health/ready")
        state = SimpleNamespace(
            routes={
                "ctcd-staging/m": [(100, upstream_port, "m-predictor-00001")],
                "ctcd-production/m": [(100, upstream_port, "m-predictor-00007")],
            },
            graphs={"ctcd-staging/task": CHAT_ONLY},
            commit="c",
            problems=[],
        )
        front = _serve(gateway.app(state), gateway_port)
        impatient = _serve(gateway.app(state, timeout=1.0), SLOW_PORT)  # CTCD_GATEWAY_TIMEOUT=1
        logged = _serve(gateway.app(state, log=LOG), LOGGED_PORT)
        yield f"http://127.0.0.1:{gateway_port}"
        front.should_exit = impatient.should_exit = logged.should_exit = True
    finally:
        upstream.terminate()
        upstream.wait(10)


def _wait_ready(url: str) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became ready")


def test_alternating_bad_and_good_requests_keep_their_own_answers(gateway_url: str) -> None:
    codes: Counter[tuple[str, int]] = Counter()
    with httpx.Client(timeout=10) as client:
        for i in range(100):
            kind = "bad" if i % 2 else "good"
            reply = client.post(f"{gateway_url}/v1/models/m:predict", json={"bad": kind == "bad"})
            codes[(kind, reply.status_code)] += 1
    print(f"through the gateway: {dict(codes)}")
    assert codes == Counter({("good", 200): 50, ("bad", 500): 50})


def test_an_oversized_body_gets_413(gateway_url: str) -> None:
    reply = httpx.post(f"{gateway_url}/v1/models/m:predict", content=b"x" * (MAX_BODY_BYTES + 1), timeout=30)
    assert reply.status_code == 413 and "larger than" in reply.json()["error"]


def _count(text: str, code: str) -> float:
    for line in text.splitlines():
        if line.startswith("ctcd_gateway_requests_total{") and f'code="{code}"' in line and 'service="m"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_answers_per_service_revision_and_code(gateway_url: str) -> None:
    before = httpx.get(f"{gateway_url}/metrics", timeout=10).text
    with httpx.Client(timeout=10) as client:
        for i in range(10):
            client.post(f"{gateway_url}/v1/models/m:predict", json={"bad": i < 3})
    after = httpx.get(f"{gateway_url}/metrics", timeout=10)
    assert after.headers["content-type"].startswith("text/plain")
    assert _count(after.text, "200") - _count(before, "200") == 7
    assert _count(after.text, "500") - _count(before, "500") == 3
    assert (
        'ctcd_gateway_request_seconds_bucket{code="200",le="0.1",revision="m-predictor-00001",service="m"}'
        in after.text
    )


@pytest.mark.parametrize(
    ("how", "namespace", "revision"),
    [
        ("default", "ctcd-staging", "m-predictor-00001"),
        ("host", "ctcd-production", "m-predictor-00007"),
        ("path", "ctcd-production", "m-predictor-00007"),
        ("host", "ctcd-staging", "m-predictor-00001"),
    ],
)
def test_the_namespace_comes_from_the_host_or_the_path(
    gateway_url: str, how: str, namespace: str, revision: str
) -> None:
    url, headers = f"{gateway_url}/v1/models/m:predict", {}
    if how == "host":
        headers["host"] = f"m.{namespace}.example.com"
    elif how == "path":
        url = f"{gateway_url}/namespaces/{namespace}/v1/models/m:predict"
    reply = httpx.post(url, json={"bad": False}, headers=headers, timeout=10)
    assert reply.status_code == 200
    assert (reply.headers["x-ctcd-namespace"], reply.headers["x-ctcd-revision"]) == (namespace, revision)


def test_an_unknown_namespace_is_a_404_naming_it(gateway_url: str) -> None:
    reply = httpx.post(f"{gateway_url}/namespaces/ctcd-qa/v1/models/m:predict", json={}, timeout=10)
    assert reply.status_code == 404 and "in namespace ctcd-qa" in reply.json()["error"]


def test_a_switch_routes_on_the_body_or_the_channel_header_and_refuses_the_rest(gateway_url: str) -> None:
    url = f"{gateway_url}/v1/models/task:predict"
    by_body = httpx.post(url, json={"bad": False, "parameters": {"channel": "chat"}}, timeout=10)
    assert by_body.status_code == 200 and by_body.headers["x-ctcd-service"] == "m", by_body.text
    by_header = httpx.post(url, json={"bad": False}, headers={"x-channel": "chat"}, timeout=10)
    assert by_header.status_code == 200 and by_header.headers["x-ctcd-service"] == "m", by_header.text
    body_wins = httpx.post(url, json={"parameters": {"channel": "web"}}, headers={"x-channel": "chat"}, timeout=10)
    assert body_wins.status_code == 404 and "None of the routes matched" in body_wins.json()["error"]
    unrouted = httpx.post(url, json={"bad": False}, timeout=10)
    assert unrouted.status_code == 404 and "None of the routes matched" in unrouted.json()["error"]
    garbled = httpx.post(url, content=b"{not json", headers={"x-channel": "chat"}, timeout=10)
    assert garbled.status_code == 400 and "not JSON" in garbled.json()["error"]


def test_a_model_slower_than_the_timeout_gets_a_504_with_json_not_a_500(gateway_url: str) -> None:
    started = time.monotonic()
    reply = httpx.post(f"http://127.0.0.1:{SLOW_PORT}/v1/models/m:predict", json={"sleep": 4}, timeout=30)
    waited = time.monotonic() - started
    assert reply.status_code == 504, reply.text
    assert "no answer within 1 s" in reply.json()["error"] and "CTCD_GATEWAY_TIMEOUT" in reply.json()["error"]
    assert waited < 4  # the gateway stopped waiting at its timeout, not when the model ended
    assert httpx.post(f"http://127.0.0.1:{SLOW_PORT}/v1/models/m:predict", json={}, timeout=10).status_code == 200


def test_json_nested_thousands_deep_through_a_task_graph_is_a_400(gateway_url: str) -> None:
    for depth in (1_000, 5_000, 100_000):
        body = b'{"a":' * depth + b"1" + b"}" * depth
        reply = httpx.post(f"{gateway_url}/v1/models/task:predict", content=body, timeout=30)
        assert reply.status_code == 400 and "nested too deeply" in reply.json()["error"], (depth, reply.text)


def test_explain_answers_as_kserve_does_without_an_explainer(gateway_url: str) -> None:
    reply = httpx.post(f"{gateway_url}/v1/models/m:explain", json={"instances": [1]}, timeout=10)
    assert reply.status_code == 501 and "has no explainer" in reply.json()["error"]


def test_every_answer_is_logged_with_its_request_id_and_the_caller_gets_the_id(gateway_url: str) -> None:
    url = f"http://127.0.0.1:{LOGGED_PORT}"
    sent = []
    with httpx.Client(timeout=10) as client:
        for i in range(30):
            body = {"bad": i % 3 == 0, "instances": [f"q{i}"], "parameters": {"channel": "chat"} if i % 2 else {}}
            reply = client.post(f"{url}/v1/models/m:predict", json=body, headers={"x-request-id": f"id-{i}"})
            assert reply.headers["x-ctcd-request-id"] == f"id-{i}"
            sent.append((f"id-{i}", reply.status_code, i % 2 == 1))
        fresh = client.post(f"{url}/v1/models/m:predict", json={"instances": ["x"]})
        assert len(fresh.headers["x-ctcd-request-id"]) == 32  # one is made for a caller that sent none
    LOG.flush()
    records = [json.loads(line) for body in FILES.values() for line in body.splitlines()]
    by_id = {r["request_id"]: r for r in records}
    for request_id, status, chat in sent:
        record = by_id[request_id]
        assert (record["status"], record["channel"] == "chat") == (status, chat)
        assert record["namespace"] == "ctcd-staging" and record["service"] == "m" and record["revision"]
    assert by_id["id-1"]["labels"] == ["ok"] and by_id["id-1"]["inputs"] == ["q1"]
    assert all(key.startswith("m/ctcd-staging/date=") for key in FILES)
    metrics = httpx.get(f"{url}/metrics").text
    assert "ctcd_prediction_log_dropped_records 0.0" in metrics
    assert 'ctcd_gateway_predictions_total{label="ok",revision="m-predictor-00001",service="m"}' in metrics
    assert 'ctcd_gateway_confidence_bucket{le="0.1",revision="m-predictor-00001",service="m"}' in metrics
