"""Collecting new rows for a technique: from a sample generator, a CSV/Parquet prefix in S3, or a SQL database.

New rows are validated against the technique's contract, de-duplicated against every row already collected
(train and frozen test) and within the batch, rid of every row whose input is one of the frozen test split's
(:mod:`~workflows.training.leakage`), then appended as a new training batch.  The first collection
freezes the test split; later ones never touch it.  A source that yields nothing new adds no batch and changes
no dataset version.  What has been read from S3 (keys) and SQL (the last value of the watermark column) is
remembered in ``<technique>/collections.json`` so a source is never read twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from models.contract import Technique
from workflows.settings import Settings
from workflows.training import datasets, leakage, provenance
from workflows.training.validation import JSON_LINES, DatasetError, parse


@dataclass(frozen=True)
class Collected:
    """What one collection found and wrote."""

    new_rows: int
    duplicates: int
    keys: list[str]
    month: int
    test_overlap: int = 0


def _row_hashes(frame: Any, columns: list[str]) -> list[str]:
    return [
        hashlib.sha256("\x1f".join(map(str, row)).encode()).hexdigest()
        for row in frame[columns].itertuples(index=False)
    ]


def collection_state(client: Any, settings: Settings, technique: str) -> dict[str, Any]:
    """What collection has seen of a technique (``collections.json``): S3 keys taken, the SQL watermark, months."""
    try:
        raw = client.get_object(Bucket=settings.datasets_bucket, Key=f"{technique}/collections.json")["Body"].read()
        return dict(json.loads(raw))
    except client.exceptions.NoSuchKey:
        return {"s3_keys": [], "sql_watermark": None, "months": 0}


def _existing(client: Any, settings: Settings, technique: Technique) -> set[str]:
    bucket, seen = settings.datasets_bucket, set()
    keys = datasets.batch_keys(client, bucket, technique.dataset)
    test = f"{technique.dataset}/{datasets.TEST_KEY}"
    for key in keys + ([test] if datasets.exists(client, bucket, test) else []):
        frame = parse(key, datasets.read_object(client, bucket, key), technique.spec)
        seen.update(_row_hashes(frame, list(technique.spec.dataset.columns)))
    return seen


def _refuse_own_data(client: Any, settings: Settings, technique: Technique) -> None:
    """The sample generator feeds demo datasets only: a dataset holding someone's own data never takes its rows.

    Raises:
        DatasetError: Naming a batch of real data and the sources that collect it.
    """
    bucket = settings.datasets_bucket
    active = set(datasets.batch_keys(client, bucket, technique.dataset))
    own = sorted(k for k, origin in provenance.origins(client, bucket, technique.dataset).items() if k in active
                 and origin in provenance.OWN_DATA)  # fmt: skip
    if own:
        raise DatasetError(
            f"s3://{bucket}/{technique.dataset}/ holds your own data ({own[0].rsplit('/', 1)[1]}, not generated): "
            "the sample generator only feeds demo datasets",
            hint="collect from your source: -p source=s3 -p location=s3://BUCKET/PREFIX/, or -p source=sql "
            "-p location=URL",
        )


def from_generator(technique: Technique, month: int, rows: int, seed: int = 0) -> Any:
    """Next month's sample batch (the generator drifts in later months, as real traffic does)."""
    return technique.generate(rows, seed=seed + month, batch=month)


def from_s3(client: Any, prefix: str, seen: list[str], technique: Technique) -> tuple[Any, list[str]]:
    """Every CSV/Parquet under ``s3://bucket/prefix`` not read before, validated, concatenated."""
    import pandas as pd

    if not prefix.startswith("s3://") or len(prefix) <= len("s3://"):
        raise DatasetError(f"S3 source location {prefix!r} must look like s3://bucket/prefix/")
    bucket, _, key_prefix = prefix.removeprefix("s3://").partition("/")
    if ".." in key_prefix.split("/") or key_prefix.startswith("/") or not bucket:
        raise DatasetError(
            f"S3 source location {prefix!r}: a prefix may not contain '..' or start with '/'; "
            "give it as s3://bucket/prefix/"
        )
    try:
        listing = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
        keys = sorted(
            o["Key"]
            for page in listing
            for o in page.get("Contents", [])
            if o["Key"].endswith((".csv", ".parquet", *JSON_LINES)) and f"s3://{bucket}/{o['Key']}" not in seen
        )
    except client.exceptions.NoSuchBucket as exc:
        raise DatasetError(
            f"S3 source {prefix}: bucket {bucket!r} does not exist; create it or fix the location"
        ) from exc
    frames = [
        parse(f"s3://{bucket}/{k}", client.get_object(Bucket=bucket, Key=k)["Body"].read(), technique.spec)
        for k in keys
    ]
    frame = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(technique.spec.dataset.columns))
    )
    return frame, [f"s3://{bucket}/{k}" for k in keys]


def from_feedback(client: Any, settings: Settings, technique: Technique, seen: list[str]) -> tuple[Any, list[str]]:
    """Labels people confirmed in production (:mod:`workflows.training.feedback`) not taken before, as rows."""
    import pandas as pd

    from workflows.training import feedback

    features = technique.spec.feature_columns()
    if len(features) != 1:
        raise DatasetError(f"{technique.name} takes {', '.join(features)}: feedback carries one text input only")
    rows = feedback.labelled(client, settings, technique.dataset, after=seen)
    taken = [r for r in rows if not r.get("hashed")]  # a sensitive input kept only as a hash cannot train
    frame = pd.DataFrame(
        {features[0]: [r["text"] for r in taken], technique.spec.target: [r["label"] for r in taken]},
        columns=[*features, technique.spec.target],
    )
    return frame[list(technique.spec.dataset.columns)], sorted({r["file"] for r in rows})


def from_sql(url: str, table: str, watermark: str, after: Any, technique: Technique) -> tuple[Any, Any]:
    """Rows of ``table`` whose ``watermark`` column is beyond the last one read (SQLAlchemy: sqlite, PostgreSQL…)."""
    import pandas as pd
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise DatasetError(
            f"SQL source {url!r} is not a usable SQLAlchemy URL ({exc}); use e.g. sqlite:///path.db"
        ) from exc
    try:
        source = sa.Table(table, sa.MetaData(), autoload_with=engine)
        missing = [c for c in [*technique.spec.dataset.columns, watermark] if c not in source.c]
        if missing:
            raise DatasetError(f"SQL table {table!r} at {url} lacks column(s) {', '.join(missing)}")
        query = sa.select(*[source.c[c] for c in technique.spec.dataset.columns], source.c[watermark])
        if after is not None:
            query = query.where(source.c[watermark] > after)
        with engine.connect() as connection:
            frame = pd.read_sql(query.order_by(source.c[watermark]), connection)
    except sa.exc.NoSuchTableError as exc:
        raise DatasetError(f"SQL source {url} has no table {table!r}; create it with the technique's columns") from exc
    except sa.exc.SQLAlchemyError as exc:
        raise DatasetError(f"SQL source {url} could not be read: {exc}") from exc
    finally:
        engine.dispose()
    last = frame[watermark].max() if len(frame) else after
    return frame.drop(columns=[watermark]), (last.item() if hasattr(last, "item") else last)


def collect(
    client: Any,
    settings: Settings,
    technique: Technique,
    source: str,
    rows: int = 500,
    location: str = "",
    watermark: str = "id",
) -> Collected:
    """Collect new rows from ``source`` (``generator``, ``s3`` or ``sql``) into the technique's dataset.

    Raises:
        DatasetError: The new rows break the contract (nothing is written).
    """
    state = collection_state(client, settings, technique.dataset)
    before = json.loads(json.dumps(state, default=str))
    month = int(state.get("months", 0))
    if source == "generator":
        _refuse_own_data(client, settings, technique)
        frame = from_generator(technique, month, rows)
    elif source == "s3":
        frame, read = from_s3(client, location, state["s3_keys"], technique)
        state["s3_keys"] = state["s3_keys"] + read
    elif source == "feedback":
        frame, taken = from_feedback(client, settings, technique, state.get("feedback_files", []))
        state["feedback_files"] = state.get("feedback_files", []) + taken
    elif source == "sql":
        if not location:
            raise DatasetError("the sql source needs a location: a SQLAlchemy URL such as sqlite:///rows.db")
        frame, state["sql_watermark"] = from_sql(location, "rows", watermark, state.get("sql_watermark"), technique)
    else:
        raise DatasetError(f"unknown source {source!r}: use generator, s3, sql or feedback")
    raw = datasets.frame_to_csv(frame[list(technique.spec.dataset.columns)]) if len(frame) else b""
    frame = parse(f"{source} batch", raw, technique.spec) if raw else frame
    fresh, duplicates, test_overlap = _dedupe(client, settings, technique, frame)
    keys: list[str] = []
    if len(fresh):
        added = datasets.collect(
            client,
            settings,
            technique,
            f"{technique.dataset}-month-{month}.csv",
            datasets.frame_to_csv(fresh),
            test=datasets.FrozenTest(drop_test_overlap=True),
            origin=source,
        )
        keys = added.keys
        state["months"] = month + 1
    if state != before:  # rows added, or a source read to its end (all duplicates): remember where it stopped
        client.put_object(
            Bucket=settings.datasets_bucket,
            Key=f"{technique.dataset}/collections.json",
            Body=json.dumps(state, default=str).encode(),
        )
    return Collected(new_rows=len(fresh), duplicates=duplicates, keys=keys, month=month, test_overlap=test_overlap)


def _dedupe(client: Any, settings: Settings, technique: Technique, frame: Any) -> tuple[Any, int, int]:
    """New rows only: without rows already collected, repeats within the batch, and inputs of the test split."""
    if not len(frame):
        return frame, 0, 0
    columns = list(technique.spec.dataset.columns)
    seen = _existing(client, settings, technique)
    hashes = _row_hashes(frame, columns)
    keep, kept = [], set()
    for h in hashes:
        keep.append(h not in seen and h not in kept)
        kept.add(h)
    fresh = frame[keep].reset_index(drop=True)
    duplicates = len(frame) - len(fresh)
    test_key = f"{technique.dataset}/{datasets.TEST_KEY}"
    if not len(fresh) or not datasets.exists(client, settings.datasets_bucket, test_key):
        return fresh, duplicates, 0
    test = parse(test_key, datasets.read_object(client, settings.datasets_bucket, test_key), technique.spec)
    fresh, overlap = leakage.without_test_rows(fresh, test, technique.spec)
    return fresh, duplicates, overlap
