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
from typing import Any

from models.contract import Technique
from workflows.settings import Settings
from workflows.training import leakage, provenance
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


def key_of(technique: str, name: str) -> str:
    """The S3 key of ``name`` in a dataset."""
    return f"{technique}/{name}"


def exists(client: Any, bucket: str, key: str) -> bool:
    """Whether the object exists."""
    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def _split(frame: Any, technique: Technique, seed: int, fraction: float) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    target = frame[technique.spec.target]
    check_classes("the first collection", target, technique.spec.dataset.min_rows_per_class)
    train, test = train_test_split(frame, test_size=fraction, stratify=target, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


@dataclass(frozen=True)
class Added:
    """What one add wrote.

    Attributes:
        keys: The S3 keys written (the frozen test split first, when this add froze it).
        dropped: Rows left out because their input is one of the test split's.
    """

    keys: list[str]
    dropped: int = 0


@dataclass(frozen=True)
class FrozenTest:
    """How the first collection freezes the test split: the user's own file, or a stratified share carved out.

    Attributes:
        name: The test file's name or URL (for messages), when the user brings one.
        raw: Its bytes.
        fraction: The share carved out of the first file when there is no test file.
        drop_test_overlap: Leave out the rows whose input is in the test split, instead of refusing the file.
    """

    name: str = ""
    raw: bytes | None = None
    fraction: float = TEST_FRACTION
    drop_test_overlap: bool = False

    def __post_init__(self) -> None:
        """Refuse a share that leaves no training or no test rows."""
        if not 0 < self.fraction < 1:
            raise DatasetError(f"--test-fraction {self.fraction}: give a share between 0 and 1, such as 0.2")


def collect(
    client: Any,
    settings: Settings,
    technique: Technique,
    name: str,
    raw: bytes,
    seed: int = 0,
    test: FrozenTest | None = None,
    origin: str = "user",
) -> Added:
    """Validate one file and add it to the technique's dataset; the first collection also freezes the test split.

    Adds are serialised per technique (a file lock on this machine) and atomic in S3 (conditional writes:
    ``If-None-Match: *``), so concurrent adds, here or elsewhere, each land under a batch number of their own
    and exactly one of them freezes the test split. No row whose input is in the test split enters training
    (:mod:`~workflows.training.leakage`): such a file is refused, or those rows are dropped when asked; a share
    carved out of the first file never leaves a copy of a test input in its training part.

    Args:
        client: A boto3 S3 client.
        settings: Names the datasets bucket and the state folder (for the lock).
        technique: Whose dataset grows.
        name: The file's name or URL (for messages; ``.parquet`` selects Parquet).
        raw: The file's bytes.
        seed: Seed of the stratified split on the first collection.
        test: The user's own test file, or the share to carve out (only the first collection uses it), and
            whether to drop rows that repeat test inputs.
        origin: Where the rows come from (``user``, ``generator``, ``s3``, ``sql``, ``feedback``), recorded
            next to the batch for ``data ls`` and for the sample generator, which never adds to real data.

    Returns:
        The S3 keys written and the rows dropped.

    Raises:
        DatasetError: The file breaks the technique's contract, repeats test inputs or an active batch, adding
            it would leave a class too small to train on, or a test file comes after the split was frozen;
            nothing is written.
    """
    frame = parse(name, raw, technique.spec)
    split = test or FrozenTest()
    test_frame = parse(split.name, split.raw, technique.spec) if split.raw is not None else None
    with dataset_lock(settings, technique.dataset):
        for _ in range(MAX_ATTEMPTS):
            added = _try_collect(client, settings, technique, (name, frame), (split, test_frame), seed)
            if added is not None:
                provenance.record(client, settings.datasets_bucket, added.keys[-1], origin, name)
                _logger.info("collected %s into %s (%d dropped)", name, ", ".join(added.keys), added.dropped)
                return added
    raise DatasetError(f"{name}: {MAX_ATTEMPTS} concurrent adds to {technique.dataset} won the race; add it again")


def _try_collect(
    client: Any,
    settings: Settings,
    technique: Technique,
    named: tuple[str, Any],
    test: tuple[FrozenTest, Any],
    seed: int,
) -> Added | None:
    """One attempt; None when another writer took the batch number or froze the test split first."""
    bucket, target = settings.datasets_bucket, technique.spec.target
    (name, frame), (split, test_frame) = named, test
    written: list[str] = []
    test_key = key_of(technique.dataset, TEST_KEY)
    if not exists(client, bucket, test_key):
        frame, test_frame, dropped = _first_split(technique, (name, frame), (split, test_frame), seed)
        if not put_new(client, bucket, test_key, frame_to_csv(test_frame)):
            return None
        written.append(test_key)
    elif split.raw is not None:
        raise DatasetError(
            f"{split.name}: the test split of {technique.dataset} was frozen by its first collection "
            f"(s3://{bucket}/{test_key}) and never changes; add the file without --test to train on it"
        )
    else:
        frozen = parse(f"s3://{bucket}/{test_key}", read_object(client, bucket, test_key), technique.spec)
        frame, dropped = leakage.check_batch(name, frame, frozen, technique.spec, split.drop_test_overlap)
        active = [
            (key, parse(key, read_object(client, bucket, key), technique.spec))
            for key in batch_keys(client, bucket, technique.dataset)
        ]
        leakage.check_not_duplicate(name, frame, active, technique.spec)
        labels = [x for _, other in active for x in other[target]] + list(frame[target])
        check_classes(f"{name} (for s3://{bucket}/{technique.dataset}/train/)", labels, min_rows(technique))
    key = key_of(technique.dataset, f"train/batch-{_next_batch(client, bucket, technique.dataset):04d}.csv")
    if not put_new(client, bucket, key, frame_to_csv(frame)):
        return None
    return Added([*written, key], dropped)


def _first_split(
    technique: Technique, named: tuple[str, Any], test: tuple[FrozenTest, Any], seed: int
) -> tuple[Any, Any, int]:
    """The first collection's (train, test, dropped): the user's test file, or a stratified share carved out.

    A training row whose input is also a test row is refused (or dropped, when asked) against the user's own
    test file, and always dropped from a carved training part (a file that repeats an utterance would otherwise
    put one copy on each side).
    """
    (name, frame), (split, test_frame) = named, test
    target = technique.spec.target
    if test_frame is None:
        frame, test_frame = _split(frame, technique, seed, split.fraction)
        frame, dropped = leakage.check_batch(name, frame, test_frame, technique.spec, drop=True)
    else:
        frame, dropped = leakage.check_batch(name, frame, test_frame, technique.spec, split.drop_test_overlap)
    part = f"{name} (its training part, after the test split)" if split.raw is None else name
    check_classes(part, frame[target], min_rows(technique))
    where = split.name or f"the test split of {name}"
    check_labels_seen(where, test_frame[target], frame[target], out_of_scope(technique))
    return frame, test_frame, dropped


def out_of_scope(technique: Technique) -> str | None:
    """The label of out-of-scope rows, when the technique declares one."""
    return technique.spec.out_of_scope_label()


def min_rows(technique: Technique) -> int:
    """Rows a class needs in the training data (what ``snapshot`` checks before every training run)."""
    return technique.spec.dataset.min_rows_per_class


def put_new(client: Any, bucket: str, key: str, body: bytes) -> bool:
    """Write ``key`` only if it does not exist yet; False when another writer was first."""
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            return False
        raise
    return True


@contextlib.contextmanager
def dataset_lock(settings: Settings, technique: str) -> Iterator[None]:
    """Serialise writers of one dataset on this machine (a file lock in the state folder)."""
    folder = settings.state_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"data-{technique}", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def batch_number(key: str) -> int:
    """The number of a batch key (-1 when it is not one)."""
    match = re.search(r"batch-([0-9]+)\.(?:csv|parquet)(?:\.json)?$", key)
    return int(match.group(1)) if match else -1


def _next_batch(client: Any, bucket: str, technique: str) -> int:
    """One more than the highest batch number ever used, retired batches included."""
    used = [batch_number(k) for k in list_keys(client, bucket, key_of(technique, "train/"))]
    return max(used, default=-1) + 1


def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under a prefix, sorted."""
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return sorted(keys)


def retired_keys(client: Any, bucket: str, technique: str) -> set[str]:
    """The train keys that ``retire`` took out of the training set."""
    prefix = key_of(technique, RETIRED)
    records = list_keys(client, bucket, prefix)
    return {key_of(technique, "train/" + k[len(prefix) :].removesuffix(".json")) for k in records}


def batch_keys(client: Any, bucket: str, technique: str) -> list[str]:
    """The training batches in collection order, without the retired ones."""
    keys = [k for k in list_keys(client, bucket, key_of(technique, "train/")) if k.endswith((".csv", ".parquet"))]
    retired = retired_keys(client, bucket, technique)
    return [k for k in keys if k not in retired]


def read_object(client: Any, bucket: str, key: str) -> bytes:
    """The bytes of one object."""
    return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def snapshot(client: Any, settings: Settings, technique: Technique) -> DatasetVersion:
    """Validate the current files and record them as a dataset version (idempotent for unchanged content).

    Raises:
        DatasetError: There is no data yet, a file breaks the contract, a class is too small, or the test
            split has labels the training data lacks.
    """
    bucket = settings.datasets_bucket
    test_key = key_of(technique.dataset, TEST_KEY)
    keys = batch_keys(client, bucket, technique.dataset)
    if not keys or not exists(client, bucket, test_key):
        raise DatasetError(
            f"s3://{bucket}/{technique.dataset}/ has no collected data yet; run `ctcd data seed {technique.name}` "
            f"or `ctcd data add {technique.name} FILE`"
        )
    test_raw = read_object(client, bucket, test_key)
    test = parse(f"s3://{bucket}/{test_key}", test_raw, technique.spec)
    batches, frames = [], []
    for key in keys:
        raw = read_object(client, bucket, key)
        frames.append(parse(f"s3://{bucket}/{key}", raw, technique.spec))
        batches.append({"key": key, "sha256": sha256(raw), "rows": len(frames[-1])})
    _check_targets(technique, bucket, test_key, test, frames)
    digest = sha256(json.dumps([sha256(test_raw), *[b["sha256"] for b in batches]]).encode())
    version = DatasetVersion(
        technique.dataset, digest[:16], {"key": test_key, "sha256": sha256(test_raw), "rows": len(test)}, batches
    )
    client.put_object(
        Bucket=bucket,
        Key=key_of(technique.dataset, f"versions/{version.version}.json"),
        Body=json.dumps(version.as_json(), indent=1).encode(),
    )
    return version


def _check_targets(technique: Technique, bucket: str, test_key: str, test: Any, frames: list[Any]) -> None:
    import pandas as pd

    target = technique.spec.target
    train_labels = pd.concat([f[target] for f in frames])
    check_classes(f"s3://{bucket}/{technique.dataset}/train/", train_labels, technique.spec.dataset.min_rows_per_class)
    check_labels_seen(f"s3://{bucket}/{test_key}", test[target], train_labels, out_of_scope(technique))


def load_version(client: Any, settings: Settings, technique: Technique, version: str) -> DatasetVersion:
    """Read a recorded dataset version.

    Raises:
        DatasetError: No such version.
    """
    key = key_of(technique.dataset, f"versions/{version}.json")
    if not exists(client, settings.datasets_bucket, key):
        raise DatasetError(
            f"dataset version {version!r} of {technique.dataset} does not exist (no s3://{settings.datasets_bucket}/{key})"
        )
    data = json.loads(read_object(client, settings.datasets_bucket, key))
    return DatasetVersion(data["technique"], data["version"], data["test"], data["batches"])


def frames(client: Any, settings: Settings, technique: Technique, version: DatasetVersion) -> tuple[Any, Any]:
    """The (train, test) frames of a version, each file checked against its recorded sha256.

    Raises:
        DatasetError: A file changed since the version was recorded.
    """
    import pandas as pd

    def read(entry: dict[str, Any]) -> Any:
        raw = read_object(client, settings.datasets_bucket, entry["key"])
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
    keys = batch_keys(client, bucket, technique.dataset)
    return [parse(key, read_object(client, bucket, key), technique.spec) for key in keys]
