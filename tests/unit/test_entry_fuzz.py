"""Fuzzing the entry points a stranger reaches: the gateway's graph routing, the webhook receiver, run names.

Every generated request gets a 4xx or the route's own answer, never a 500; every generated name is refused or stays
inside the state folder. ``CTCD_FUZZ_EXAMPLES`` raises the count (``make fuzz``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from serving.local import gateway
from workflows.delivery import webhook
from workflows.engine.state import names
from workflows.engine.state.store import RunStore
from workflows.local import bridge_server
from workflows.settings import Settings

EXAMPLES = int(os.environ.get("CTCD_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
GRAPHS = {
    "ctcd-staging/task": {
        "metadata": {"name": "task"},
        "spec": {
            "nodes": {
                "root": {
                    "routerType": "Switch",
                    "steps": [
                        {"name": "chat", "condition": '[@this].#(parameters.channel=="chat")', "serviceName": "gone"},
                        {"name": "default", "condition": "@this", "nodeName": "split"},
                    ],
                },
                "split": {"routerType": "Splitter", "steps": [{"serviceName": "gone", "weight": 100}]},
            }
        },
    }
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=20,
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["json", "deep", "bytes", "channel"]))
    if kind == "deep":
        depth = draw(st.integers(min_value=500, max_value=50_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return (opener * depth + "1" + closer * depth).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "channel":
        channel = draw(st.one_of(st.just("chat"), st.text(max_size=6), json_values))
        return json.dumps({"instances": ["x"], "parameters": {"channel": channel}}).encode()
    return json.dumps(draw(json_values)).encode()


@pytest.fixture(scope="module")
def front() -> Iterator[TestClient]:
    state = SimpleNamespace(routes={"ctcd-staging/gone": [(100, 9, "gone-00001")]}, graphs=GRAPHS, commit="c")
    with TestClient(gateway.app(state, seed=1, timeout=2), raise_server_exceptions=False) as client:
        yield client  # one event loop for every request, as a server has


@pytest.mark.fuzz
@FUZZ
@given(
    body=bodies(),
    channel=st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8)),
    version=st.sampled_from(["v1", "v2"]),
)
def test_the_gateway_never_answers_500_through_a_task_graph(
    front: TestClient, body: bytes, channel: str | None, version: str
) -> None:
    headers = {"content-type": "application/json"}
    if channel is not None:
        headers["x-channel"] = channel
    path = "/v1/models/task:predict" if version == "v1" else "/v2/models/task/infer"
    reply = front.post(path, content=body, headers=headers)
    assert reply.status_code in (400, 404, 503), (reply.status_code, reply.text[:200])
    assert "error" in reply.json()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    state = tmp_path_factory.mktemp("bridge")
    app = bridge_server.app(Settings(state_dir=state), "s3cret", threading.Event())
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.fuzz
@FUZZ
@given(body=bodies(), delivery=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20))
def test_signed_webhook_bodies_of_any_shape_never_get_a_500(receiver: TestClient, body: bytes, delivery: str) -> None:
    stamp = str(int(time.time()))
    headers = {
        "X-MLflow-Signature": webhook.sign("s3cret", delivery, stamp, body),
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
    }
    reply = receiver.post("/webhooks/mlflow", content=body, headers=headers)
    assert reply.status_code in (200, 400, 409, 413), (reply.status_code, reply.text[:200])


@pytest.mark.fuzz
@FUZZ
@given(name=st.one_of(st.text(max_size=40), st.from_regex(r"[a-z0-9./-]{1,30}", fullmatch=True)))
def test_any_run_name_is_refused_or_stays_inside_the_state_folder(tmp_path_factory: Any, name: str) -> None:
    root = Path("/nonexistent/state")
    try:
        folder = RunStore(root).run_dir(name)
    except names.InvalidName:
        return
    assert folder.parent == root / "runs" and ".." not in folder.parts and "/" not in name
