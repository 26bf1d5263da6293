"""The generic predictor as a real KServe ModelServer process: v1, v2, 400s for bad input, sha256 refusal."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from models.contract import get
from workflows.steps.mlflow_logging import signature

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
        fitted.model, str(path), serialization_format="cloudpickle", signature=signature(technique)
    )
    return path


def start(model_dir: Path, sha: str, port: int) -> subprocess.Popen[str]:
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[str]:
    port = free_port()
    sha = hashlib.sha256((model_dir / "model.pkl").read_bytes()).hexdigest()
    proc = start(model_dir, sha, port)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{url}/v2/models/{TECHNIQUE}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.25)
    else:
        proc.kill()
        pytest.fail(f"predictor did not become ready: {proc.stdout.read() if proc.stdout else ''}")
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


def test_bad_v2_payloads_are_400(server: str) -> None:
    short = {"inputs": [{"name": "transfer_amount", "shape": [2], "datatype": "FP64", "data": [1.0]}]}
    reply = httpx.post(f"{server}/v2/models/{TECHNIQUE}/infer", json=short, timeout=10)
    assert reply.status_code == 400 and "missing input(s)" in reply.json()["error"]
    text_body = httpx.post(f"{server}/v1/models/{TECHNIQUE}:predict", content=b"not json", timeout=10)
    assert text_body.status_code == 400


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
