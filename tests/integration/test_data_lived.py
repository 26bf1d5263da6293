"""Datasets as people live with them: concurrent adds, batches that would break training, retiring a batch,
and S3 locations that do not exist.  Real SeaweedFS, real ``ctcd`` processes, a bucket of their own.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from models.contract import get
from tests.conftest import settings_env
from workflows.platform.s3 import s3_client
from workflows.settings import Settings
from workflows.training import datasets

TECHNIQUE = "intent-classifier"
BUCKET = "ctcd-lived-data"
CTCD = [sys.executable, "-m", "workflows.cli"]


@pytest.fixture(scope="module")
def data(platform: Settings) -> Iterator[Settings]:
    """The session platform with a datasets bucket of its own, holding a first collection."""
    settings = platform.model_copy(update={"datasets_bucket": BUCKET})
    client = s3_client(settings)
    client.create_bucket(Bucket=BUCKET)
    technique = get(TECHNIQUE)
    datasets.collect(client, settings, technique, "first.csv", datasets.frame_to_csv(technique.generate(2000, seed=1)))
    yield settings


def _ctcd(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**settings_env(settings), "CTCD_DATASETS_BUCKET": settings.datasets_bucket}
    return subprocess.run([*CTCD, *args], env=env, capture_output=True, text=True, timeout=120)


def _train_keys(settings: Settings) -> list[str]:
    listing = s3_client(settings).list_objects_v2(Bucket=BUCKET, Prefix=f"{get(TECHNIQUE).dataset}/train/")
    return sorted(o["Key"] for o in listing.get("Contents", []))


def _rows(settings: Settings, key: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(s3_client(settings).get_object(Bucket=BUCKET, Key=key)["Body"].read()), dtype=str)


def test_concurrent_adds_all_land_with_their_own_batch_numbers(data: Settings, tmp_path: Path) -> None:
    before = _train_keys(data)
    technique, files = get(TECHNIQUE), []
    for i in range(4):
        frame = technique.generate(300, seed=100 + i, batch=1)
        frame["text"] = [f"{text} (file {i} row {n})" for n, text in enumerate(frame["text"])]  # rows tell their file
        path = tmp_path / f"add-{i}.csv"
        frame.to_csv(path, index=False)
        files.append(path)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: _ctcd(data, "data", "add", TECHNIQUE, str(p)), files))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    added = sorted(set(_train_keys(data)) - set(before))
    assert len(added) == 4, added
    texts = set().union(*(set(_rows(data, key)["text"]) for key in added))
    for i, path in enumerate(files):
        assert set(pd.read_csv(path, dtype=str)["text"]) <= texts, f"rows of file {i} are missing"


def test_a_batch_that_would_break_training_is_refused_and_writes_nothing(data: Settings, tmp_path: Path) -> None:
    before = _train_keys(data)
    path = tmp_path / "new-class.csv"
    path.write_text("text,intent\nI want to adopt a llama,adopt_llama\n")
    result = _ctcd(data, "data", "add", TECHNIQUE, str(path))
    assert result.returncode == 1 and "'adopt_llama' (1 row)" in result.stderr and "too few" in result.stderr
    assert "Traceback" not in result.stderr
    assert _train_keys(data) == before


def test_ls_then_rm_retires_a_batch_into_a_new_dataset_version(data: Settings) -> None:
    technique = get(TECHNIQUE)
    client = s3_client(data)
    version_before = datasets.snapshot(client, data, technique)
    listed = json.loads(_ctcd(data, "data", "ls", TECHNIQUE, "-o", "json").stdout)
    batches = [f for f in listed["files"] if f["role"] == "train"]
    assert len(batches) >= 2 and all(f["rows"] > 0 and f["classes"] for f in batches)
    victim = batches[-1]["key"]
    result = _ctcd(data, "data", "rm", TECHNIQUE, victim.rsplit("/", 1)[1])
    assert result.returncode == 0, result.stderr
    after = json.loads(_ctcd(data, "data", "ls", TECHNIQUE, "-o", "json").stdout)
    roles = {f["key"]: f["role"] for f in after["files"]}
    assert roles[victim] == "retired"  # still in S3, as history
    version_after = datasets.snapshot(client, data, technique)
    assert version_after.version != version_before.version
    assert victim not in [b["key"] for b in version_after.batches]
    again = _ctcd(data, "data", "rm", TECHNIQUE, victim.rsplit("/", 1)[1])
    assert again.returncode == 1 and "no active batch" in again.stderr


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (f"s3://{BUCKET}/nope.csv", "no object 'nope.csv'"),
        ("s3://no-such-bucket-here/x.csv", "bucket 'no-such-bucket-here' does not exist"),
        (f"s3://{BUCKET}/a/../b.csv", "may not contain '..'"),
        ("/no/such/file.csv", "no such file"),
    ],
)
def test_a_bad_location_is_one_line_with_the_fix(data: Settings, location: str, expected: str) -> None:
    result = _ctcd(data, "data", "add", TECHNIQUE, location)
    assert result.returncode == 1
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
