"""`ctcd submit --cluster` / `runs get --cluster` speak the Argo Server API (checked against a recording fake)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

WORKFLOW = {
    "metadata": {"name": "train-abc12", "namespace": "ctcd"},
    "spec": {"workflowTemplateRef": {"name": "train"}},
    "status": {"phase": "Running"},
}


@pytest.fixture()
def argo_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", 0))
            seen.append(
                {
                    "method": "POST",
                    "path": self.path,
                    "auth": self.headers.get("Authorization"),
                    "body": json.loads(self.rfile.read(length) or b"{}"),
                }
            )
            self._reply(WORKFLOW)

        def do_GET(self) -> None:  # noqa: N802
            seen.append({"method": "GET", "path": self.path, "auth": self.headers.get("Authorization")})
            self._reply(WORKFLOW)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def ctcd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "workflows.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_submit_from_template_and_poll(argo_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = argo_server
    env = {"ARGO_SERVER": url, "ARGO_TOKEN": "s3cr3t", "ARGO_NAMESPACE": "ctcd"}
    submitted = ctcd(
        env,
        "submit",
        "--cluster",
        "--from",
        "workflowtemplate/train",
        "-p",
        "technique=intent-classifier",
        "-o",
        "name",
    )
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.stdout.strip() == "train-abc12"
    request = seen[0]
    assert request["path"] == "/api/v1/workflows/ctcd/submit" and request["auth"] == "Bearer s3cr3t"
    assert request["body"]["resourceKind"] == "WorkflowTemplate" and request["body"]["resourceName"] == "train"
    assert request["body"]["submitOptions"]["parameters"] == ["technique=intent-classifier"]
    got = ctcd(env, "runs", "get", "train-abc12", "--cluster", "-o", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["status"]["phase"] == "Running"
    assert seen[1]["method"] == "GET" and seen[1]["path"].startswith("/api/v1/workflows/ctcd/train-abc12")


def test_without_argo_server_the_error_names_the_variable() -> None:
    result = ctcd({"ARGO_SERVER": ""}, "submit", "--cluster", "--from", "workflowtemplate/train")
    assert result.returncode == 1 and "ARGO_SERVER is not set" in result.stderr


def test_an_unreachable_server_is_a_clear_error() -> None:
    result = ctcd({"ARGO_SERVER": "http://127.0.0.1:9"}, "runs", "get", "x", "--cluster")
    assert result.returncode == 1 and "cannot read x from the Argo Server" in result.stderr
