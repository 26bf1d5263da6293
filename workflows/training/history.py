"""A dataset's history: retiring a batch (it leaves training but stays in S3) and the inventory ``data ls`` shows."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from models.contract import Technique
from workflows.settings import Settings
from workflows.training import leakage, provenance
from workflows.training.datasets import (
    RETIRED,
    TEST_KEY,
    batch_keys,
    batch_number,
    dataset_lock,
    exists,
    key_of,
    list_keys,
    min_rows,
    put_new,
    read_object,
    retired_keys,
    sha256,
)
from workflows.training.validation import DatasetError, check_classes, check_labels_seen, parse

_logger = logging.getLogger(__name__)


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
    with dataset_lock(settings, technique.dataset):
        active = batch_keys(client, bucket, technique.dataset)
        key = _find_batch(active, batch, technique.dataset, bucket)
        rest = [k for k in active if k != key]
        if not rest:
            raise DatasetError(f"{key} is the only training batch of {technique.name}; add another before retiring it")
        target = technique.spec.target
        labels = [x for k in rest for x in parse(k, read_object(client, bucket, k), technique.spec)[target]]
        check_classes(f"the training data without {key}", labels, min_rows(technique))
        test = parse(TEST_KEY, read_object(client, bucket, key_of(technique.dataset, TEST_KEY)), technique.spec)
        check_labels_seen(
            f"s3://{bucket}/{technique.dataset}/{TEST_KEY} (without {key})", test[technique.spec.target], labels
        )
        raw = read_object(client, bucket, key)
        record = key_of(technique.dataset, RETIRED + key.rsplit("/", 1)[1] + ".json")
        body = {"key": key, "sha256": sha256(raw), "retired_at": datetime.now(UTC).isoformat(timespec="seconds")}
        if not put_new(client, bucket, record, json.dumps(body).encode()):
            raise DatasetError(f"{key} was retired already")
    _logger.info("retired %s (kept as history; %s)", key, record)
    return record


def _find_batch(active: list[str], batch: str, technique: str, bucket: str) -> str:
    ascii_digits = re.fullmatch(r"[0-9]+", batch) is not None  # not str.isdigit(): '１' is no batch number
    wanted = int(batch) if ascii_digits else batch_number(batch if "." in batch else batch + ".csv")
    for key in active:
        if batch_number(key) == wanted and wanted >= 0:
            return key
    names = ", ".join(k.rsplit("/", 1)[1] for k in active) or "none"
    raise DatasetError(
        f"{technique} has no active batch {batch!r} in s3://{bucket}/{technique}/train/ (active: {names})"
    )


def inventory(client: Any, settings: Settings, technique: Technique) -> dict[str, Any]:
    """What ``ctcd data ls`` shows: the test split, every batch with its rows and class counts, the versions.

    Retired batches are listed with the role ``retired``; ``test_overlap`` counts a batch's rows whose input is
    in the test split (0 by construction: adds refuse them).
    """
    bucket, target = settings.datasets_bucket, technique.spec.target
    retired = retired_keys(client, bucket, technique.dataset)
    files = []
    test_key = key_of(technique.dataset, TEST_KEY)
    keys = ([test_key] if exists(client, bucket, test_key) else []) + [
        k for k in list_keys(client, bucket, key_of(technique.dataset, "train/")) if k.endswith((".csv", ".parquet"))
    ]
    test, origin = None, provenance.origins(client, bucket, technique.dataset)
    for key in keys:
        raw = read_object(client, bucket, key)
        frame = parse(key, raw, technique.spec)
        counts = frame[target].astype(str).value_counts()
        role = "test" if key == test_key else ("retired" if key in retired else "train")
        test = frame if role == "test" else test
        overlap = 0 if role == "test" or test is None else sum(leakage.overlap_mask(frame, test, technique.spec))
        files.append(
            {
                "key": key,
                "role": role,
                "rows": len(frame),
                "classes": {str(k): int(v) for k, v in counts.items()},
                "sha256": sha256(raw),
                "test_overlap": overlap,
                "origin": origin.get(key, ""),
            }
        )
    versions = []
    for key in list_keys(client, bucket, key_of(technique.dataset, "versions/")):
        data = json.loads(read_object(client, bucket, key))
        versions.append({"version": data["version"], "batches": [b["key"] for b in data["batches"]]})
    return {
        "technique": technique.name,
        "dataset": technique.dataset,
        "bucket": bucket,
        "files": files,
        "versions": versions,
    }
