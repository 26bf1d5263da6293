"""Technique datasets in S3: a training part that grows, a test split frozen on first collection.

Layout under ``s3://<datasets-bucket>/<technique>/``::

    test/frozen.csv            the test split, written once by the first collection and never again
    train/batch-0000.csv       one file per collection, appended in order
    versions/<version>.json    a dataset version: the exact files (with sha256) a training run used

A dataset version is the sha256 of the test file's hash and every train batch's hash, in order, so the same
content always has the same version, and any change makes a new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from models.contract import Technique
from workflows.settings import Settings
from workflows.training.validation import DatasetError, check_classes, check_labels_seen, parse

_logger = logging.getLogger(__name__)
TEST_KEY = "test/frozen.csv"
TEST_FRACTION = 0.2
RETIRED = "retired/"
MAX_ATTEMPTS = 20


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

    Adds are serialised per technique (a file lock on this machine) and atomic in S3 (conditional writes:
    ``If-None-Match: *``), so concurrent adds, here or elsewhere, each land under a batch number of their own
    and exactly one of them freezes the test split.

    Args:
        client: A boto3 S3 client.
        settings: Names the datasets bucket and the state folder (for the lock).
        technique: Whose dataset grows.
        name: The file's name or URL (for messages; ``.parquet`` selects Parquet).
        raw: The file's bytes.
        seed: Seed of the stratified split on the first collection.

    Returns:
        The S3 keys written.

    Raises:
        DatasetError: The file breaks the technique's contract, or adding it would leave a class too small to
            train on; nothing is written.
    """
    frame = parse(name, raw, technique.spec)
    with _technique_lock(settings, technique.name):
        for _ in range(MAX_ATTEMPTS):
            written = _try_collect(client, settings, technique, name, frame, seed)
            if written is not None:
                _logger.info("collected %d rows of %s into %s", len(frame), name, ", ".join(written))
                return written
    raise DatasetError(f"{name}: {MAX_ATTEMPTS} concurrent adds to {technique.name} won the race; add it again")


def _try_collect(
    client: Any, settings: Settings, technique: Technique, name: str, frame: Any, seed: int
) -> list[str] | None:
    """One attempt; None when another writer took the batch number or froze the test split first."""
    bucket, target = settings.datasets_bucket, technique.spec.target
    written: list[str] = []
    if not _exists(client, bucket, _key(technique.name, TEST_KEY)):
        train, test = _split(frame, technique, seed)
        check_classes(f"{name} (its training part, after the test split)", train[target], _minimum(technique))
        if not _put_new(client, bucket, _key(technique.name, TEST_KEY), frame_to_csv(test)):
            return None
        written.append(_key(technique.name, TEST_KEY))
        frame = train
    else:
        labels = [*_active_labels(client, bucket, technique), *frame[target]]
        check_classes(f"{name} added to s3://{bucket}/{technique.name}/train/", labels, _minimum(technique))
    key = _key(technique.name, f"train/batch-{_next_batch(client, bucket, technique.name):04d}.csv")
    if not _put_new(client, bucket, key, frame_to_csv(frame)):
        return None
    return [*written, key]


def _minimum(technique: Technique) -> int:
    """Rows a class needs in the training data (what ``snapshot`` checks before every training run)."""
    return technique.spec.dataset.min_rows_per_class


def _put_new(client: Any, bucket: str, key: str, body: bytes) -> bool:
    """Write ``key`` only if it does not exist yet; False when another writer was first."""
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            return False
        raise
    return True


@contextlib.contextmanager
def _technique_lock(settings: Settings, technique: str) -> Iterator[None]:
    folder = settings.state_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"data-{technique}", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _number(key: str) -> int:
    match = re.search(r"batch-(\d+)\.(?:csv|parquet)(?:\.json)?$", key)
    return int(match.group(1)) if match else -1


def _next_batch(client: Any, bucket: str, technique: str) -> int:
    """One more than the highest batch number ever used, retired batches included."""
    used = [_number(k) for k in _list(client, bucket, _key(technique, "train/"))]
    return max(used, default=-1) + 1


def _list(client: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return sorted(keys)


def _retired(client: Any, bucket: str, technique: str) -> set[str]:
    """The train keys that ``retire`` took out of the training set."""
    prefix = _key(technique, RETIRED)
    return {_key(technique, "train/" + k[len(prefix) :].removesuffix(".json")) for k in _list(client, bucket, prefix)}


def _active_labels(client: Any, bucket: str, technique: Technique) -> list[Any]:
    labels: list[Any] = []
    for key in _batch_keys(client, bucket, technique.name):
        labels += list(parse(f"s3://{bucket}/{key}", _read(client, bucket, key), technique.spec)[technique.spec.target])
    return labels


def _batch_keys(client: Any, bucket: str, technique: str) -> list[str]:
    """The training batches in collection order, without the retired ones."""
    keys = [k for k in _list(client, bucket, _key(technique, "train/")) if k.endswith((".csv", ".parquet"))]
    retired = _retired(client, bucket, technique)
    return [k for k in keys if k not in retired]


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


def retire(client: Any, settings: Settings, technique: Technique, batch: str) -> str:
    """Take a batch out of the training set; the file stays in S3 as history and the dataset gets a new version.

    Args:
        client: A boto3 S3 client.
        settings: Names the datasets bucket and the state folder (for the lock).
        technique: Whose batch it is.
        batch: ``batch-0001``, ``batch-0001.csv`` or ``1``.

    Returns:
        The key of the retirement record (``<technique>/retired/batch-NNNN.csv.json``).

    Raises:
        DatasetError: No such active batch, or the data left would break training (too few rows for a class,
            test labels never seen in training).
    """
    bucket = settings.datasets_bucket
    with _technique_lock(settings, technique.name):
        active = _batch_keys(client, bucket, technique.name)
        key = _find_batch(active, batch, technique.name, bucket)
        rest = [k for k in active if k != key]
        if not rest:
            raise DatasetError(f"{key} is the only training batch of {technique.name}; add another before retiring it")
        labels = [x for k in rest for x in parse(k, _read(client, bucket, k), technique.spec)[technique.spec.target]]
        check_classes(f"the training data without {key}", labels, _minimum(technique))
        test = parse(TEST_KEY, _read(client, bucket, _key(technique.name, TEST_KEY)), technique.spec)
        check_labels_seen(
            f"s3://{bucket}/{technique.name}/{TEST_KEY} (without {key})", test[technique.spec.target], labels
        )
        raw = _read(client, bucket, key)
        record = _key(technique.name, RETIRED + key.rsplit("/", 1)[1] + ".json")
        body = {"key": key, "sha256": sha256(raw), "retired_at": datetime.now(UTC).isoformat(timespec="seconds")}
        if not _put_new(client, bucket, record, json.dumps(body).encode()):
            raise DatasetError(f"{key} was retired already")
    _logger.info("retired %s (kept as history; %s)", key, record)
    return record


def _find_batch(active: list[str], batch: str, technique: str, bucket: str) -> str:
    wanted = int(batch) if batch.isdigit() else _number(batch if "." in batch else batch + ".csv")
    for key in active:
        if _number(key) == wanted and wanted >= 0:
            return key
    names = ", ".join(k.rsplit("/", 1)[1] for k in active) or "none"
    raise DatasetError(
        f"{technique} has no active batch {batch!r} in s3://{bucket}/{technique}/train/ (active: {names})"
    )


def inventory(client: Any, settings: Settings, technique: Technique) -> dict[str, Any]:
    """What ``ctcd data ls`` shows: the test split, every batch with its rows and class counts, the versions.

    Retired batches are listed with the role ``retired``.
    """
    bucket, target = settings.datasets_bucket, technique.spec.target
    retired = _retired(client, bucket, technique.name)
    files = []
    test_key = _key(technique.name, TEST_KEY)
    keys = ([test_key] if _exists(client, bucket, test_key) else []) + [
        k for k in _list(client, bucket, _key(technique.name, "train/")) if k.endswith((".csv", ".parquet"))
    ]
    for key in keys:
        raw = _read(client, bucket, key)
        frame = parse(key, raw, technique.spec)
        counts = frame[target].astype(str).value_counts()
        role = "test" if key == test_key else ("retired" if key in retired else "train")
        files.append(
            {
                "key": key,
                "role": role,
                "rows": len(frame),
                "classes": {str(k): int(v) for k, v in counts.items()},
                "sha256": sha256(raw),
            }
        )
    versions = []
    for key in _list(client, bucket, _key(technique.name, "versions/")):
        data = json.loads(_read(client, bucket, key))
        versions.append({"version": data["version"], "batches": [b["key"] for b in data["batches"]]})
    return {"technique": technique.name, "bucket": bucket, "files": files, "versions": versions}
