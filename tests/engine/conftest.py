"""The engine fixture: the local engine with fresh and warm step processes, and no platform.

Its S3 (the real embedded SeaweedFS, nothing else of the platform) starts the first time a run moves an artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workflows.engine.executor import Engine
from workflows.engine.spec.library import TemplateLibrary
from workflows.engine.state.store import RunStore
from workflows.local import stack
from workflows.platform.s3 import s3_client
from workflows.settings import Settings

HERE = Path(__file__).parent


@pytest.fixture(scope="module", params=["fresh", "warm"])
def engine(
    request: pytest.FixtureRequest, session_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Engine:
    """The engine starting each step as a fresh process (as pods do), then forking them from its warm launcher.

    The warm launcher preloads light modules here, so it is ready after the first step and forks the rest.
    """
    return make_engine(session_settings, tmp_path_factory, warm=request.param == "warm")


def make_engine(settings: Settings, tmp_path_factory: pytest.TempPathFactory, warm: bool) -> Engine:
    """An engine with its own run store, the test library, and the session's S3 started on first use."""
    return Engine(
        store=RunStore(tmp_path_factory.mktemp("runs")),
        library=TemplateLibrary([HERE / "library"]),
        s3=lambda: _s3(settings),
        artifacts_bucket=settings.artifacts_bucket,
        parallelism=4,
        warm=warm,
        preload=("json", "random"),
    )


@pytest.fixture(scope="module")
def fresh_engine(session_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The engine with fresh step processes only: for modules testing what the node kinds decide, which the
    warm launcher cannot change (the older modules prove both ways of starting a step)."""
    return make_engine(session_settings, tmp_path_factory, warm=False)


def _s3(settings: Settings) -> Any:
    """The S3 client, starting the session's SeaweedFS (alone) if it is not running yet."""
    stack.up(settings, only=("s3",))
    return s3_client(settings)
