"""Faults of the machine under ctcd (a full disk, a read-only folder, S3 refusing writes) are named, not a traceback."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from workflows.cli.app import app
from workflows.local import services, stack
from workflows.local.services import PlatformError


def test_a_full_disk_makes_s3_unhealthy_in_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert services.disk_problem(tmp_path) == ""
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=3 * 2**20))
    assert services.disk_problem(tmp_path) == (
        f"the disk under {tmp_path} is full (3 MiB free): S3 cannot store anything; free some space"
    )


def test_up_names_a_read_only_state_folder_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(self: Path, data: bytes) -> int:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "write_bytes", read_only)
    with pytest.raises(PlatformError, match=rf"{tmp_path}/s3 cannot be written: Read-only file system"):
        stack.check_writable(tmp_path / "s3")


def test_an_s3_refusal_mid_command_is_one_line_naming_s3s_words(monkeypatch: pytest.MonkeyPatch) -> None:
    from workflows.cli import data

    def refuse(*_: Any, **__: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "no space left on device"}}, "PutObject")

    monkeypatch.setattr(data, "settings", refuse)
    result = CliRunner().invoke(app, ["data", "rm", "intent-classifier", "1"])
    assert result.exit_code == 1
    assert "S3 refused the request (InternalError: no space left on device)" in result.output
    assert "Traceback" not in result.output and "ctcd status" in result.output


def test_a_full_disk_while_serving_fetches_a_model_is_named_and_leaves_no_partial_folder(tmp_path: Path) -> None:
    from serving.local.reconcile import Reconciler

    def full_disk(uri: str, folder: Path) -> None:
        folder.mkdir(parents=True)
        (folder / "model.pkl").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    reconciler = Reconciler(tmp_path, full_disk, "http://127.0.0.1:1", warm=False)
    isvc = {
        "kind": "InferenceService",
        "metadata": {"name": "a", "namespace": "ctcd-staging", "annotations": {"ctcd.io/model-sha256": "0" * 64}},
        "spec": {"predictor": {"model": {"storageUri": "s3://models/a"}}},
    }
    try:
        reconciler.apply("c1", [isvc])
        reconciler.step()
        (problem,) = reconciler.problems()
        assert "cannot fetch s3://models/a" in problem and "No space left on device" in problem
        assert not list((tmp_path / "models").rglob("model.pkl"))  # the half-written copy is gone
    finally:
        reconciler.stop_all()
