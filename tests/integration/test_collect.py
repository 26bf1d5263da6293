"""Collection sources against the real embedded S3 and a real SQLite database through SQLAlchemy.

Each test writes into a bucket of its own, so the shared platform's datasets are untouched.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from models.contract import get
from workflows.platform.s3 import s3_client
from workflows.settings import Settings
from workflows.training import collection, datasets, provenance
from workflows.training.validation import DatasetError

TECHNIQUE = get("invoice-matcher")
INCOMING = "incoming/"


@pytest.fixture()
def store(platform: Settings) -> tuple[Settings, Any]:
    settings = platform.model_copy(update={"datasets_bucket": f"collect-{uuid.uuid4().hex[:10]}"})
    client = s3_client(settings)
    client.create_bucket(Bucket=settings.datasets_bucket)
    return settings, client


def _objects(client: Any, bucket: str) -> dict[str, str]:
    listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{TECHNIQUE.name}/")
    return {o["Key"]: o["ETag"] for o in listing.get("Contents", [])}


def _frame(rows: int, seed: int, month: int) -> pd.DataFrame:
    return pd.DataFrame(TECHNIQUE.generate(rows, seed=seed, batch=month))


def _put(client: Any, bucket: str, name: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False) if name.endswith(".parquet") else frame.to_csv(buffer, index=False)
    client.put_object(Bucket=bucket, Key=INCOMING + name, Body=buffer.getvalue())


def test_s3_prefix_reads_each_file_once_drops_duplicates_and_keeps_the_test_split(store: tuple[Settings, Any]) -> None:
    settings, client = store
    location = f"s3://{settings.datasets_bucket}/{INCOMING}"
    first = _frame(400, seed=1, month=0)
    _put(client, settings.datasets_bucket, "january.csv", first)
    january = collection.collect(client, settings, TECHNIQUE, "s3", location=location)
    assert january.new_rows + january.duplicates == 400 and january.new_rows > 300
    frozen = datasets.snapshot(client, settings, TECHNIQUE).test
    _put(client, settings.datasets_bucket, "february.parquet", pd.concat([_frame(200, 2, 1), first.head(50)]))
    february = collection.collect(client, settings, TECHNIQUE, "s3", location=location)
    assert february.duplicates >= 50 and february.new_rows + february.duplicates == 250
    after = datasets.snapshot(client, settings, TECHNIQUE)
    assert after.test == frozen and len(after.batches) == 2
    before = _objects(client, settings.datasets_bucket)
    again = collection.collect(client, settings, TECHNIQUE, "s3", location=location)
    assert (again.new_rows, again.keys) == (0, [])
    assert _objects(client, settings.datasets_bucket) == before  # nothing new: nothing written at all


def test_s3_file_of_only_known_rows_adds_nothing_but_is_not_read_again(store: tuple[Settings, Any]) -> None:
    settings, client = store
    location = f"s3://{settings.datasets_bucket}/{INCOMING}"
    first = _frame(300, seed=3, month=0)
    _put(client, settings.datasets_bucket, "a.csv", first)
    collection.collect(client, settings, TECHNIQUE, "s3", location=location)
    version = datasets.snapshot(client, settings, TECHNIQUE).version
    _put(client, settings.datasets_bucket, "b.csv", first.tail(100))
    replay = collection.collect(client, settings, TECHNIQUE, "s3", location=location)
    assert (replay.new_rows, replay.duplicates) == (0, 100)
    assert datasets.snapshot(client, settings, TECHNIQUE).version == version
    assert collection.collection_state(client, settings, TECHNIQUE.name)["s3_keys"][-1].endswith("/b.csv")


def test_a_malformed_s3_file_is_refused_by_name_and_nothing_is_written(store: tuple[Settings, Any]) -> None:
    settings, client = store
    broken = _frame(50, seed=4, month=0).drop(columns=[TECHNIQUE.spec.target])
    _put(client, settings.datasets_bucket, "broken.csv", broken)
    with pytest.raises(DatasetError, match=r"incoming/broken\.csv"):
        collection.collect(client, settings, TECHNIQUE, "s3", location=f"s3://{settings.datasets_bucket}/{INCOMING}")
    assert _objects(client, settings.datasets_bucket) == {}


def test_s3_location_problems_name_the_fix(store: tuple[Settings, Any]) -> None:
    settings, client = store
    with pytest.raises(DatasetError, match="must look like s3://bucket/prefix/"):
        collection.collect(client, settings, TECHNIQUE, "s3", location="incoming/")
    with pytest.raises(DatasetError, match="bucket 'no-such-bucket-ctcd' does not exist"):
        collection.collect(client, settings, TECHNIQUE, "s3", location="s3://no-such-bucket-ctcd/x/")


def _sql(path: Path, frame: pd.DataFrame, start: int) -> str:
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    frame.set_axis(range(start, start + len(frame))).to_sql("rows", engine, if_exists="append", index_label="id")
    engine.dispose()
    return url


def test_sql_source_reads_past_its_watermark_only(store: tuple[Settings, Any], tmp_path: Path) -> None:
    settings, client = store
    database = tmp_path / "rows.db"
    first = _frame(400, seed=5, month=0)
    url = _sql(database, first, start=1)
    january = collection.collect(client, settings, TECHNIQUE, "sql", location=url)
    assert january.new_rows + january.duplicates == 400
    _sql(database, pd.concat([_frame(150, 6, 1), first.head(30)]), start=401)
    february = collection.collect(client, settings, TECHNIQUE, "sql", location=url)
    assert february.duplicates >= 30 and february.new_rows + february.duplicates == 180
    assert collection.collection_state(client, settings, TECHNIQUE.name)["sql_watermark"] == 580
    before = _objects(client, settings.datasets_bucket)
    assert collection.collect(client, settings, TECHNIQUE, "sql", location=url).new_rows == 0
    assert _objects(client, settings.datasets_bucket) == before


def test_sql_problems_name_the_table_or_the_url(store: tuple[Settings, Any], tmp_path: Path) -> None:
    settings, client = store
    with pytest.raises(DatasetError, match="has no table 'rows'"):
        collection.collect(client, settings, TECHNIQUE, "sql", location=f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatasetError, match="needs a location"):
        collection.collect(client, settings, TECHNIQUE, "sql")
    with pytest.raises(DatasetError, match="not a usable SQLAlchemy URL"):
        collection.collect(client, settings, TECHNIQUE, "sql", location="nonsense")
    assert _objects(client, settings.datasets_bucket) == {}


def test_the_sample_generator_never_adds_to_a_users_own_dataset(store: tuple[Settings, Any]) -> None:
    settings, client = store
    first = datasets.frame_to_csv(_frame(800, seed=11, month=0))
    added = datasets.collect(client, settings, TECHNIQUE, "mine.csv", first)  # a person's own file
    assert provenance.origins(client, settings.datasets_bucket, TECHNIQUE.dataset) == {added.keys[-1]: "user"}
    before = _objects(client, settings.datasets_bucket)
    with pytest.raises(DatasetError, match=r"holds your own data \(batch-0000\.csv, not generated\)") as refused:
        collection.collect(client, settings, TECHNIQUE, "generator", rows=100)
    assert "-p source=s3" in str(refused.value) and "added to" not in str(refused.value)
    assert _objects(client, settings.datasets_bucket) == before  # nothing written


def test_a_generated_demo_dataset_still_takes_generated_months(store: tuple[Settings, Any]) -> None:
    settings, client = store
    datasets.collect(
        client, settings, TECHNIQUE, "seed.csv", datasets.frame_to_csv(_frame(800, 3, 0)), origin="generator"
    )
    month = collection.collect(client, settings, TECHNIQUE, "generator", rows=200)
    assert month.new_rows > 0
    assert set(provenance.origins(client, settings.datasets_bucket, TECHNIQUE.dataset).values()) == {"generator"}
