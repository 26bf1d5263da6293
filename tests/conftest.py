"""Shared fixtures and the test lanes.

Each folder is a lane, marked by its name so that ``-m`` selects by lane as well as by path:

- ``unit``: no services (fakes allowed; real git repositories, kustomize and schemas);
- ``engine``: the local Argo engine on Argo's own examples, with no platform;
- ``integration``: one part at a time against the real embedded platform;
- ``e2e``: the whole loop (training, the gate, promotion, serving, the bridge) and living with it.

The session platform (real SeaweedFS + real MLflow + serving + the bridge, on free ports) is started once, by the
first test that asks for it.  Lanes run in that order, and inside ``e2e`` the tests that move shared state run last.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflows.local import stack
from workflows.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CTCD = [sys.executable, "-m", "workflows.cli"]
# MLflow's telemetry client sets and deletes an environment variable of its own from its thread; a test thread that
# walks os.environ meanwhile (requests reading proxy settings) can fail with KeyError.  Tests send no telemetry.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Variables that point a process at some platform: a test platform's processes get their own, never these.
FOREIGN = ("MLFLOW_TRACKING_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "CTCD_S3_ENDPOINT_URL")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block() -> int:
    """A base port whose S3 block (base..base+4, base+10000..base+10004) and base+5 (MLflow) are free."""
    for _ in range(200):
        base = random.randrange(20000, 30000, 10)
        ports = [base + i for i in range(8)] + [base + 10000 + i for i in range(5)]
        if all(_free(p) for p in ports):
            return base
    raise RuntimeError("no free port block found on 127.0.0.1")


def make_settings(state_dir: Path, base: int, **extra: object) -> Settings:
    """Settings for a platform in ``state_dir`` on the port block starting at ``base``."""
    return Settings(
        state_dir=state_dir,
        s3_port=base,
        mlflow_port=base + 5,
        gateway_port=base + 6,
        bridge_port=base + 7,
        s3_endpoint_url="",
        mlflow_tracking_uri="",
        git_remote="",
        **{"scheduler": False, **extra},
    )  # type: ignore[arg-type]


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that make a `ctcd` subprocess use these settings."""
    inherited = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    return {
        **inherited,
        "CTCD_STATE_DIR": str(settings.state_dir),
        "CTCD_S3_PORT": str(settings.s3_port),
        "CTCD_MLFLOW_PORT": str(settings.mlflow_port),
        "CTCD_GATEWAY_PORT": str(settings.gateway_port),
        "CTCD_BRIDGE_PORT": str(settings.bridge_port),
        "CTCD_NOTIFY_URL": settings.notify_url,
        "CTCD_TEMPLATE_PATH": settings.template_path,
        "CTCD_SCHEDULER": str(settings.scheduler).lower(),
    }


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The session's state folder and ports; whatever of its platform a test started is stopped at the end."""
    for key in ("MLFLOW_TRACKING_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.pop(key, None)
    settings = make_settings(tmp_path_factory.mktemp("platform"), free_port_block())
    yield settings
    stack.down(settings)


@pytest.fixture(scope="session")
def s3_only(session_settings: Settings) -> Settings:
    """Just the embedded S3 (SeaweedFS), for engine tests that move artifacts: no MLflow, serving or bridge."""
    stack.up(session_settings, only=("s3",))
    return session_settings


@pytest.fixture(scope="session")
def platform(session_settings: Settings) -> Settings:
    """The whole embedded platform for the rest of the session; an S3 already started is kept, not restarted."""
    stack.up(session_settings)
    return session_settings


LANES = ("unit", "engine", "integration", "e2e")
LATE_E2E = (  # the replayed history rewrites production's pins; faults stop services; the bridge and loop move aliases
    "test_replay.py",
    "test_faults.py",
    "test_recovery.py",
    "test_bridge.py",
    "test_loop_model.py",
    "test_readme.py",  # `ctcd reset` starts the platform afresh
)


def _lane(item: pytest.Item) -> str:
    parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
    return parts[0] if len(parts) > 1 and parts[0] in LANES else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its lane, then order the lanes and the state-moving e2e tests."""
    for item in items:
        if _lane(item):
            item.add_marker(getattr(pytest.mark, _lane(item)))

    def key(item: pytest.Item) -> tuple[int, int]:
        lane = _lane(item)
        late = Path(str(item.fspath)).name
        return (LANES.index(lane) if lane else 0, LATE_E2E.index(late) + 1 if lane == "e2e" and late in LATE_E2E else 0)

    items.sort(key=key)


def ctcd(settings: Settings, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run the ``ctcd`` command against these settings, as a user's shell would."""
    return subprocess.run([*CTCD, *args], env=settings_env(settings), capture_output=True, text=True, timeout=timeout)
