"""Technique datasets in S3: a training part that grows, a test split frozen on first collection.

Layout under ``s3://<datasets-bucket>/<technique>/``::

    test/frozen.csv            the test split, written once by the first collection and never again
    train/batch-0000.csv       one file per collection, appended in order
    versions/<version>.json    a dataset version: the exact files (with sha256) a training run used

A dataset version is the sha256 of the test file's hash and every train batch's hash, in order, so the same
content always has the same version, and any change makes a new one.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from typing import Any

from models.contract import Technique
from workflows.settings import Settings
from workflows.validation import DatasetError, check_classes, check_labels_seen, parse

_logger = logging.getLogger(__name__)
TEST_KEY = "test/frozen.csv"
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class DatasetVersion:
    """The files of one dataset version."""

    technique: str
    version: str
    test: dict[str, Any]
    batches: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        """The version manifest stored in S3."""
        return {"technique": self.technique, "version": self.version, "test": self.test, "batches": self.batches}


def sha256(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def _key(technique: str, name: str) -> str:
    return f"{technique}/{name}"


def _exists(client: Any, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def _split(frame: Any, technique: Technique, seed: int) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    target = frame[technique.spec.target]
    check_classes("the first collection", target, technique.spec.dataset.min_rows_per_class)
    train, test = train_test_split(frame, test_size=TEST_FRACTION, stratify=target, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def collect(client: Any, settings: Settings, technique: Technique, name: str, raw: bytes, seed: int = 0) -> list[str]:
    """Validate one file and add it to the technique's dataset; the first collection also freezes the test split.

    Args:
        client: A boto3 S3 client.
        settings: Names the datasets bucket.
        technique: Whose dataset grows.
        name: The file's name or URL (for messages; ``.parquet`` selects Parquet).
        raw: The file's bytes.
        seed: Seed of the stratified split on the first collection.

    Returns:
        The S3 keys written.

    Raises:
        DatasetError: The file breaks the technique's contract; nothing is written.
    """
    frame = parse(name, raw, technique.spec)
    bucket = settings.datasets_bucket
    batches = _batch_keys(client, bucket, technique.name)
    written = []
    if not _exists(client, bucket, _key(technique.name, TEST_KEY)):
        train, test = _split(frame, technique, seed)
        client.put_object(Bucket=bucket, Key=_key(technique.name, TEST_KEY), Body=frame_to_csv(test))
        written.append(_key(technique.name, TEST_KEY))
        frame = train
    key = _key(technique.name, f"train/batch-{len(batches):04d}.csv")
    client.put_object(Bucket=bucket, Key=key, Body=frame_to_csv(frame))
    written.append(key)
    _logger.info("collected %d rows of %s into %s", len(frame), name, ", ".join(written))
    return written


def _batch_keys(client: Any, bucket: str, technique: str) -> list[str]:
    keys: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=_key(technique, "train/")):
        keys += [obj["Key"] for obj in page.get("Contents", []) if obj["Key"].endswith((".csv", ".parquet"))]
    return sorted(keys)


def _read(client: Any, bucket: str, key: str) -> bytes:
    return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def snapshot(client: Any, settings: Settings, technique: Technique) -> DatasetVersion:
    """Validate the current files and record them as a dataset version (idempotent for unchanged content).

    Raises:
        DatasetError: There is no data yet, a file breaks the contract, a class is too small, or the test
            split has labels the training data lacks.
    """
    bucket = settings.datasets_bucket
    test_key = _key(technique.name, TEST_KEY)
    batch_keys = _batch_keys(client, bucket, technique.name)
    if not batch_keys or not _exists(client, bucket, test_key):
        raise DatasetError(
            f"s3://{bucket}/{technique.name}/ has no collected data yet; run `ctcd data seed {technique.name}` "
            f"or `ctcd data add {technique.name} FILE`"
        )
    test_raw = _read(client, bucket, test_key)
    test = parse(f"s3://{bucket}/{test_key}", test_raw, technique.spec)
    batches, frames = [], []
    for key in batch_keys:
        raw = _read(client, bucket, key)
        frames.append(parse(f"s3://{bucket}/{key}", raw, technique.spec))
        batches.append({"key": key, "sha256": sha256(raw), "rows": len(frames[-1])})
    _check_targets(technique, bucket, test_key, test, frames)
    digest = sha256(json.dumps([sha256(test_raw), *[b["sha256"] for b in batches]]).encode())
    version = DatasetVersion(
        technique.name, digest[:16], {"key": test_key, "sha256": sha256(test_raw), "rows": len(test)}, batches
    )
    client.put_object(
        Bucket=bucket,
        Key=_key(technique.name, f"versions/{version.version}.json"),
        Body=json.dumps(version.as_json(), indent=1).encode(),
    )
    return version


def _check_targets(technique: Technique, bucket: str, test_key: str, test: Any, frames: list[Any]) -> None:
    import pandas as pd

    target = technique.spec.target
    train_labels = pd.concat([f[target] for f in frames])
    check_classes(f"s3://{bucket}/{technique.name}/train/", train_labels, technique.spec.dataset.min_rows_per_class)
    check_labels_seen(f"s3://{bucket}/{test_key}", test[target], train_labels)


def load_version(client: Any, settings: Settings, technique: Technique, version: str) -> DatasetVersion:
    """Read a recorded dataset version.

    Raises:
        DatasetError: No such version.
    """
    key = _key(technique.name, f"versions/{version}.json")
    if not _exists(client, settings.datasets_bucket, key):
        raise DatasetError(
            f"dataset version {version!r} of {technique.name} does not exist (no s3://{settings.datasets_bucket}/{key})"
        )
    data = json.loads(_read(client, settings.datasets_bucket, key))
    return DatasetVersion(data["technique"], data["version"], data["test"], data["batches"])


def frames(client: Any, settings: Settings, technique: Technique, version: DatasetVersion) -> tuple[Any, Any]:
    """The (train, test) frames of a version, each file checked against its recorded sha256.

    Raises:
        DatasetError: A file changed since the version was recorded.
    """
    import pandas as pd

    def read(entry: dict[str, Any]) -> Any:
        raw = _read(client, settings.datasets_bucket, entry["key"])
        if sha256(raw) != entry["sha256"]:
            raise DatasetError(
                f"s3://{settings.datasets_bucket}/{entry['key']} changed since dataset version "
                f"{version.version} was recorded; train on a new version instead"
            )
        return parse(entry["key"], raw, technique.spec)

    train = pd.concat([read(b) for b in version.batches], ignore_index=True)
    return train, read(version.test)


def frame_to_csv(frame: Any) -> bytes:
    """CSV bytes of a frame, as stored in the datasets bucket."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


def batch_frames(client: Any, settings: Settings, technique: Technique) -> list[Any]:
    """Every training batch of a technique, in collection order, validated."""
    bucket = settings.datasets_bucket
    return [
        parse(key, _read(client, bucket, key), technique.spec) for key in _batch_keys(client, bucket, technique.name)
    ]
