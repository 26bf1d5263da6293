"""The engine fixture: the local engine against the real embedded S3, with fresh and warm step processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.engine.executor import Engine
from workflows.engine.spec import TemplateLibrary
from workflows.engine.store import RunStore
from workflows.platform.s3 import s3_client
from workflows.settings import Settings

HERE = Path(__file__).parent


@pytest.fixture(scope="module", params=["fresh", "warm"])
def engine(request: pytest.FixtureRequest, platform: Settings, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The engine starting each step as a fresh process (as pods do), then forking them from its warm launcher.

    The warm launcher preloads light modules here, so it is ready after the first step and forks the rest.
    """
    return Engine(
        store=RunStore(tmp_path_factory.mktemp("runs")),
        library=TemplateLibrary([HERE / "library"]),
        s3=lambda: s3_client(platform),
        artifacts_bucket=platform.artifacts_bucket,
        parallelism=4,
        warm=request.param == "warm",
        preload=("json", "random"),
    )
