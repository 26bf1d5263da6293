"""The steps' outage guard, in real processes: a service gone mid-step ends the step with exit 75, never a hang."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

DOWN = "http://127.0.0.1:9"  # nothing listens on the discard port


@pytest.fixture()
def listener() -> Iterator[str]:
    """A TCP port that accepts connections, standing in for a service that answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def step(tmp_path: Path, s3_url: str, body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` inside ``outage_guard`` (watching S3 at ``s3_url``) in a process of its own."""
    code = (
        "import time\n"
        "from workflows.settings import Settings\n"
        "from workflows.steps.common import outage_guard\n"
        f"settings = Settings(state_dir={str(tmp_path)!r}, s3_endpoint_url={s3_url!r})\n"
        "with outage_guard(settings, ('s3',), grace=0.3, every=0.1):\n"
        f"    {body}\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_a_service_gone_while_the_step_waits_ends_it_with_exit_75(tmp_path: Path) -> None:
    done = step(tmp_path, DOWN, "time.sleep(600)")  # a library retrying for minutes, as presigned downloads do
    assert done.returncode == 75
    assert "lost a service mid-step (gone for 0s or more)" in done.stderr
    assert f"CTCD_S3_ENDPOINT_URL={DOWN} is not reachable" in done.stderr and "ctcd up" in done.stderr


def test_a_step_whose_services_answer_runs_to_its_end(tmp_path: Path, listener: str) -> None:
    done = step(tmp_path, listener, "time.sleep(1.0); print('finished')")
    assert done.returncode == 0 and done.stdout.strip() == "finished"


def test_an_error_with_the_service_gone_is_unavailable_and_otherwise_propagates(tmp_path: Path, listener: str) -> None:
    lost = step(tmp_path, DOWN, "raise ConnectionError('reset by peer')")
    assert lost.returncode == 75 and "lost a service mid-step (ConnectionError)" in lost.stderr
    bug = step(tmp_path, listener, "raise ValueError('a real bug')")
    assert bug.returncode == 1 and "ValueError: a real bug" in bug.stderr and "lost a service" not in bug.stderr


def test_a_service_that_restarted_under_the_step_is_unavailable_not_a_traceback(tmp_path: Path, listener: str) -> None:
    body = (
        "from mlflow.exceptions import MlflowException\n"
        "    raise MlflowException('API request to http://127.0.0.1:5050/api/2.0/mlflow/runs/create failed with "
        "exception HTTPConnectionPool: Max retries exceeded (Connection refused)')"
    )
    restarted = step(tmp_path, listener, body)  # the probe after the error finds it answering again
    assert restarted.returncode == 75, restarted.stderr
    assert "it answers again, so it restarted" in restarted.stderr and "Traceback" not in restarted.stderr
