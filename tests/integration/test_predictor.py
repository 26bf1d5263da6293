"""The generic predictor as a real KServe ModelServer process: v1, v2, 400s for bad input, sha256 refusal.

The fuzz test sends generated requests — arbitrary JSON, near-valid instances with hostile values, malformed v2
tensors, non-JSON bodies — and requires an answer below 500 to each and a healthy, correct server afterwards.
The default count keeps ``make test`` quick; ``make fuzz`` sends 10,000.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.contract import get
from workflows.steps.mlflow_logging import model_metadata, signature

TECHNIQUE = "invoice-matcher"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow

    technique = get(TECHNIQUE)
    frame = technique.generate(600, seed=2)
    fitted = technique.fit(frame, {"learning_rate": 0.1, "max_iter": 50, "cv_folds": 2}, seed=0)
    path = tmp_path_factory.mktemp("model") / "model"
    mlflow.sklearn.save_model(
        fitted.model,
        str(path),
        serialization_format="cloudpickle",
        signature=signature(technique),
        metadata=model_metadata(technique),
    )
    return path


def start(model_dir: Path, sha: str, port: int, log: Path | None = None) -> subprocess.Popen[str]:
    """The predictor process; a long-lived one logs to ``log`` (an undrained pipe would fill and stall it)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving",
            "--model_name",
            TECHNIQUE,
            "--model_dir",
            str(model_dir),
            "--sha256",
            sha,
            "--http_port",
            str(port),
        ],
        stdout=log.open("w") if log else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[str]:
    port = free_port()
    sha = hashlib.sha256((model_dir / "model.pkl").read_bytes()).hexdigest()
    log = model_dir.parent / "predictor.log"
    proc = start(model_dir, sha, port, log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{url}/v2/models/{TECHNIQUE}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.25)
    else:
        proc.kill()
        pytest.fail(f"predictor did not become ready: {log.read_text()[-3000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


PAIR = {
    "transfer_amount": 1500.0,
    "invoice_amount": 1500.0,
    "transfer_date": "2026-02-03",
    "invoice_due_date": "2026-02-01",
    "transfer_reference": "NF 123456",
    "invoice_number": "123456",
    "payer_name": "ACME LTDA",
    "customer_name": "Acme Ltda",
}


def test_v1_predicts_label_and_confidence(server: str) -> None:
    stranger = {
        **PAIR,
        "transfer_reference": "pagamento",
        "invoice_number": "987654",
        "customer_name": "Zeta SA",
        "invoice_amount": 9999.0,
        "invoice_due_date": "2026-05-01",
    }
    reply = httpx.post(f"{server}/v1/models/{TECHNIQUE}:predict", json={"instances": [PAIR, stranger]}, timeout=10)
    assert reply.status_code == 200
    predictions = reply.json()["predictions"]
    assert [p["label"] for p in predictions] == [1, 0]
    assert all(0.5 <= p["confidence"] <= 1.0 for p in predictions)


def test_v2_open_inference_protocol(server: str) -> None:
    inputs = [
        {"name": k, "shape": [1], "datatype": "FP64" if isinstance(v, float) else "BYTES", "data": [v]}
        for k, v in PAIR.items()
    ]
    reply = httpx.post(f"{server}/v2/models/{TECHNIQUE}/infer", json={"inputs": inputs}, timeout=10)
    assert reply.status_code == 200
    outputs = {o["name"]: o["data"] for o in reply.json()["outputs"]}
    assert outputs["label"] == ["1"] and 0.5 <= outputs["confidence"][0] <= 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": []}, "must be a non-empty list"),
        ({"rows": [PAIR]}, 'expected a JSON object {"instances"'),
        ({"instances": [{**PAIR, "transfer_amount": "a lot"}]}, "field 'transfer_amount': expected a number"),
        ({"instances": [{k: v for k, v in PAIR.items() if k != "payer_name"}]}, "missing field(s) payer_name"),
        ({"instances": [[1, 2]]}, "expected an object with fields"),
        ({"instances": [{**PAIR, "payer_name": ""}]}, "field 'payer_name': is empty"),
        ({"instances": [{**PAIR, "invoice_amount": None}]}, "expected a number, got None"),
    ],
)
def test_bad_v1_payloads_are_400_with_a_message(server: str, body: dict, message: str) -> None:  # type: ignore[type-arg]
    reply = httpx.post(f"{server}/v1/models/{TECHNIQUE}:predict", json=body, timeout=10)
    assert reply.status_code == 400
    assert message in reply.json()["error"]


@pytest.mark.parametrize("value", ["not a date", "9999-99-99", "2026-02-30", "2026-02-05T99:99:99garbage"])
def test_a_bad_date_is_400_naming_the_field_on_v1_and_v2(server: str, value: str) -> None:
    v1 = httpx.post(
        f"{server}/v1/models/{TECHNIQUE}:predict", json={"instances": [{**PAIR, "transfer_date": value}]}, timeout=10
    )
    assert v1.status_code == 400 and "field 'transfer_date'" in v1.json()["error"] and "ISO date" in v1.json()["error"]
    inputs = [
        {"name": k, "shape": [1], "datatype": "FP64" if isinstance(v, float) else "BYTES", "data": [v]}
        for k, v in {**PAIR, "transfer_date": value}.items()
    ]
    v2 = httpx.post(f"{server}/v2/models/{TECHNIQUE}/infer", json={"inputs": inputs}, timeout=10)
    assert v2.status_code == 400 and "field 'transfer_date'" in v2.json()["error"]


def test_v2_metadata_and_health_come_from_the_signature(server: str) -> None:
    meta = httpx.get(f"{server}/v2/models/{TECHNIQUE}", timeout=10).json()
    expected = [
        {"name": f.name, "datatype": "FP64" if f.type == "number" else "BYTES", "shape": [-1]}
        for f in get(TECHNIQUE).spec.serving.inputs
    ]
    assert meta["name"] == TECHNIQUE and meta["inputs"] == expected
    assert meta["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "confidence", "datatype": "FP64", "shape": [-1]},
    ]
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{TECHNIQUE}/ready"):
        assert httpx.get(f"{server}{path}", timeout=10).status_code == 200, path


def test_an_open_inference_protocol_client_drives_the_predictor(server: str) -> None:
    import numpy as np
    import tritonclient.http as triton

    client = triton.InferenceServerClient(server.removeprefix("http://"))
    assert client.is_server_live() and client.is_model_ready(TECHNIQUE)
    metadata = client.get_model_metadata(TECHNIQUE)
    inputs = []
    for spec in metadata["inputs"]:
        value = PAIR[spec["name"]]
        tensor = triton.InferInput(spec["name"], [2], spec["datatype"])
        array = np.array([value, value], dtype=np.float64 if spec["datatype"] == "FP64" else np.object_)
        tensor.set_data_from_numpy(array, binary_data=False)
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput(name, binary_data=False) for name in ("label", "confidence")]
    result = client.infer(TECHNIQUE, inputs, outputs=outputs)
    assert [str(x) for x in result.as_numpy("label")] == ["1", "1"]
    assert all(0.5 <= c <= 1 for c in result.as_numpy("confidence"))
    bad = triton.InferInput("transfer_date", [2], "BYTES")
    bad.set_data_from_numpy(np.array(["not a date", "2026-01-01"], dtype=np.object_), binary_data=False)
    with pytest.raises(Exception, match="field 'transfer_date'"):
        client.infer(TECHNIQUE, [bad if i.name() == "transfer_date" else i for i in inputs])


@pytest.mark.parametrize("path", ["/v1/models/{m}:predict", "/v2/models/{m}/infer"])
def test_a_request_without_content_type_gets_the_same_answers(server: str, path: str) -> None:
    url = server + path.format(m=TECHNIQUE)
    good = (
        {"instances": [PAIR]}
        if "v1" in path
        else {
            "inputs": [
                {"name": k, "shape": [1], "datatype": "FP64" if isinstance(v, float) else "BYTES", "data": [v]}
                for k, v in PAIR.items()
            ]
        }
    )
    reply = httpx.post(url, content=json.dumps(good).encode(), headers={"content-type": ""}, timeout=10)
    assert reply.status_code == 200, reply.text
    broken = httpx.post(url, content=b"{not json", headers={"content-type": ""}, timeout=10)
    assert broken.status_code == 400 and "error" in broken.json(), broken.text


def test_bad_v2_payloads_are_400(server: str) -> None:
    short = {"inputs": [{"name": "transfer_amount", "shape": [2], "datatype": "FP64", "data": [1.0]}]}
    reply = httpx.post(f"{server}/v2/models/{TECHNIQUE}/infer", json=short, timeout=10)
    assert reply.status_code == 400 and "missing input(s)" in reply.json()["error"]
    text_body = httpx.post(f"{server}/v1/models/{TECHNIQUE}:predict", content=b"not json", timeout=10)
    assert text_body.status_code == 400


def _v2(**changes: Any) -> dict[str, Any]:
    inputs = [
        {"name": k, "shape": [1], "datatype": "FP64" if isinstance(v, float) else "BYTES", "data": [v]}
        for k, v in PAIR.items()
    ]
    inputs[0].update(changes)
    return {"inputs": inputs}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (_v2(datatype="WHAT"), "unknown datatype 'WHAT'"),
        (_v2(datatype="BYTES"), "datatype BYTES does not fit this input; send it as FP64"),
        (_v2(shape=[1, 1]), r"shape [1, 1] does not fit its 1 value(s)"),
        (_v2(shape=[3]), r"shape [3] does not fit"),
        ({"inputs": [*_v2()["inputs"], _v2()["inputs"][0]]}, "given more than once"),
        (_v2(data=[1e300]), "larger than 9007199254740992"),
    ],
)
def test_v2_requests_get_kserves_protocol_checks(server: str, body: dict[str, Any], why: str) -> None:
    reply = httpx.post(f"{server}/v2/models/{TECHNIQUE}/infer", json=body, timeout=10)
    assert reply.status_code == 400 and why in reply.json()["error"], reply.text


def test_a_date_beyond_what_training_takes_is_a_400_not_a_500(server: str) -> None:
    reply = httpx.post(
        f"{server}/v1/models/{TECHNIQUE}:predict", json={"instances": [{**PAIR, "transfer_date": "9999-12-31"}]}
    )
    assert reply.status_code == 400 and "outside 1677-09-22" in reply.json()["error"], reply.text


def test_only_loopback_and_ready(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    with socket.socket() as sock:  # the port is not reachable on another local address
        sock.settimeout(1)
        assert sock.connect_ex(("127.0.0.2", port)) != 0
    assert httpx.get(f"{server}/v1/models/{TECHNIQUE}", timeout=5).json()["ready"] is True


def test_a_wrong_hash_is_refused_before_loading(model_dir: Path) -> None:
    proc = start(model_dir, "0" * 64, free_port())
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3
    assert "but the registry recorded 0000" in out and "refusing to load" in out


def test_an_ambiguous_folder_is_refused(tmp_path: Path, model_dir: Path) -> None:
    from serving.predictor import ArtifactError, find_artifact

    with pytest.raises(ArtifactError, match="not an MLflow model folder"):
        find_artifact(tmp_path)
    (tmp_path / "MLmodel").write_text("x")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "model.pkl").write_bytes(b"1")
    (tmp_path / "model.pkl").write_bytes(b"2")
    with pytest.raises(ArtifactError, match="exactly one model.pkl, found 2"):
        find_artifact(tmp_path)


EXAMPLES = int(os.environ.get("CTCD_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
FIELDS = list(PAIR)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", " ", "\x00", "2026-02-30", "9" * 400, "NaN", "Infinity"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
instances = st.fixed_dictionaries({}, optional={f: st.one_of(st.just(PAIR[f]), json_values) for f in FIELDS})
v1_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"instances": st.one_of(json_values, st.lists(st.one_of(instances, json_values), max_size=5))}
    ),
)
tensor = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(FIELDS), st.text(max_size=10)),
        "shape": st.lists(st.integers(min_value=-3, max_value=2**33), max_size=3),
        "datatype": st.one_of(
            st.sampled_from(["BYTES", "FP64", "FP32", "INT64", "BOOL", "UINT8"]), st.text(max_size=6)
        ),
        "data": st.one_of(json_values, st.lists(scalars, max_size=4)),
    }
)
v2_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"inputs": st.one_of(json_values, st.lists(tensor, max_size=9))}, optional={"id": json_values}
    ),
)


def _post(url: str, body: Any, client: httpx.Client | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if client is not None:
        return client.post(url, content=content, headers=headers)
    return httpx.post(url, content=content, headers=headers, timeout=30)


@pytest.mark.fuzz
@pytest.mark.timeout(max(300, EXAMPLES // 10))  # make fuzz: 10,000 requests take about 2 minutes
def test_fuzzed_requests_never_get_a_5xx_and_the_server_stays_well(server: str) -> None:
    v1, v2 = f"{server}/v1/models/{TECHNIQUE}:predict", f"{server}/v2/models/{TECHNIQUE}/infer"
    seen: dict[int, int] = {}
    client = httpx.Client(timeout=30)  # one keep-alive connection, as a real client would use

    @FUZZ
    @given(
        st.one_of(
            v1_bodies.map(lambda b: (v1, b)),
            v2_bodies.map(lambda b: (v2, b)),
            st.binary(max_size=64).map(lambda b: (v1, b)),
        )
    )
    def one(case: tuple[str, Any]) -> None:
        reply = _post(*case, client=client)
        seen[reply.status_code] = seen.get(reply.status_code, 0) + 1
        assert reply.status_code in (200, 400), f"{case!r} -> {reply.status_code} {reply.text[:300]}"
        if reply.status_code == 400:  # one error contract: a JSON object whose "error" says what is wrong
            assert isinstance(reply.json().get("error"), str) and reply.json()["error"], reply.text[:300]

    with client:
        one()
    print(f"fuzzed {sum(seen.values())} requests; status codes {dict(sorted(seen.items()))}")
    assert sum(seen.values()) >= EXAMPLES // 2 and any(400 <= s < 500 for s in seen)
    assert httpx.get(f"{server}/v2/models/{TECHNIQUE}/ready", timeout=5).status_code == 200
    reply = _post(v1, {"instances": [PAIR]})
    assert reply.status_code == 200 and reply.json()["predictions"][0]["label"] in (0, 1)


@pytest.mark.parametrize(
    "raw", [b'{"inputs": [{"a": -Infinity}, 1]}', b"NaN", b'{"inputs": [{"name": "x", "data": [NaN]}]}']
)
def test_a_v2_body_with_nan_or_infinity_gets_a_400_not_a_500(server: str, raw: bytes) -> None:
    reply = _post(f"{server}/v2/models/{TECHNIQUE}/infer", raw)
    assert reply.status_code == 400 and reply.json()["error"].startswith("the body is not a valid inference request")


def test_requests_are_counted_in_metrics_not_logged_line_by_line(server: str, model_dir: Path) -> None:
    for _ in range(5):
        assert _post(f"{server}/v1/models/{TECHNIQUE}:predict", {"instances": [PAIR]}).status_code == 200
    log = (model_dir.parent / "predictor.log").read_text()
    assert "POST /v1/models" not in log and "predict_ms" not in log  # per-request lines only with --request_log
    assert "ORJSONResponse is deprecated" not in log
    metrics = httpx.get(f"{server}/metrics", timeout=5).text
    assert "request_predict_seconds_count" in metrics
