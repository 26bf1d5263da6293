"""``ctcd data seed|add|ls|rm``: each technique's datasets in S3 (its batches and the frozen test split)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from workflows.cli.output import Output, OutputOpt, console, print_json, settings, technique_named


def data_seed(
    techniques: Annotated[list[str] | None, typer.Argument(help="Techniques (default: all).")] = None,
    rows: Annotated[int | None, typer.Option(help="Rows to generate (default: the technique's sample_rows).")] = None,
) -> None:
    """Generate sample data for techniques that have none yet (the first collection freezes the test split)."""
    from models.contract import discover
    from workflows.platform.s3 import s3_client
    from workflows.training import datasets

    config = settings()
    config.require_reachable("s3")
    client = s3_client(config)
    for name in techniques or sorted(discover()):
        technique = technique_named(name)
        prefix = f"{technique.dataset}/train/"
        listing = client.list_objects_v2(Bucket=config.datasets_bucket, Prefix=prefix, MaxKeys=1)
        if listing.get("KeyCount", 0):
            console.print(f"[dim]{name}: s3://{config.datasets_bucket}/{prefix} already has data, nothing generated[/]")
            continue
        frame = technique.generate(rows or technique.spec.sample_rows, seed=0, batch=0)
        raw = datasets.frame_to_csv(frame)
        added = datasets.collect(client, config, technique, f"{name}-sample.csv", raw, origin="generator")
        console.print(f"[green]✓[/] {name}: {len(frame)} sample rows -> {', '.join(added.keys)}")


def data_add(
    technique: str,
    source: Annotated[str, typer.Argument(help="A local CSV, Parquet or JSON Lines file, or s3://bucket/key.")],
    test: Annotated[
        str | None, typer.Option("--test", help="Your own test file, frozen as the test split (first add only).")
    ] = None,
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", help="Without --test: the share the first add carves out as test.")
    ] = 0.2,
    drop_test_overlap: Annotated[
        bool,
        typer.Option("--drop-test-overlap", help="Drop rows whose input is in the test split, not refuse the file."),
    ] = False,
) -> None:
    """Validate a file (local or S3) and add it to a technique's training data; the first add freezes the test split.

    A file that repeats an input of the frozen test split, or the rows of an active batch, is refused.
    """
    from workflows.platform.s3 import s3_client
    from workflows.training import datasets, sources

    config = settings()
    spec = technique_named(technique)
    split = datasets.FrozenTest(fraction=test_fraction, drop_test_overlap=drop_test_overlap)
    config.require_reachable("s3")
    client = s3_client(config)
    raw = sources.read_source(client, source)
    if test is not None:
        frozen = sources.read_source(client, test)
        split = datasets.FrozenTest(name=test, raw=frozen, drop_test_overlap=drop_test_overlap)
    added = datasets.collect(client, config, spec, source, raw, test=split)
    console.print(f"[green]✓[/] {technique}: added {source} -> {', '.join(added.keys)}")
    if added.dropped:
        console.print(f"  left out {added.dropped} row(s) whose input is in the frozen test split")


def data_ls(technique: str, output: OutputOpt = Output.table) -> None:
    """List a technique's files in S3: the test split, each batch (retired ones too), rows, classes, versions."""
    from workflows.platform.s3 import s3_client

    config = settings()
    spec = technique_named(technique)
    config.require_reachable("s3")
    from workflows.training import history

    listing = history.inventory(s3_client(config), config, spec)
    if output == "json":
        print_json(listing)
        return
    table = Table(
        "FILE",
        "ROLE",
        "ROWS",
        "CLASSES",
        "SMALLEST CLASS",
        "TEST OVERLAP",
        "SOURCE",
        title=f"s3://{listing['bucket']}/{spec.dataset}/",
    )
    for item in listing["files"]:
        classes = item["classes"]
        smallest = min(classes.items(), key=lambda kv: kv[1]) if classes else ("-", 0)
        table.add_row(
            item["key"].split("/", 1)[1],
            item["role"],
            str(item["rows"]),
            str(len(classes)),
            f"{smallest[0]} ({smallest[1]})",
            "-" if item["role"] == "test" else str(item["test_overlap"]),
            item.get("origin") or "-",
        )
    console.print(table)
    for version in listing["versions"]:
        console.print(f"dataset version {version['version']}: {len(version['batches'])} batch(es)")


def data_rm(technique: str, batch: Annotated[str, typer.Argument(help="batch-0001, batch-0001.csv or 1.")]) -> None:
    """Retire a batch: it leaves the training set (a new dataset version) but stays in S3 as history."""
    from workflows.platform.s3 import s3_client

    config = settings()
    spec = technique_named(technique)
    config.require_reachable("s3")
    from workflows.training import history

    record = history.retire(s3_client(config), config, spec, batch)
    console.print(
        f"[green]✓[/] {technique}: retired {batch} (kept in S3; record {record}); the next run trains without it"
    )


class Example(str, Enum):
    """Example datasets that ship with ctcd."""

    clinc150 = "clinc150"


def data_example(
    name: Example,
    folder: Annotated[Path, typer.Argument(help="Where to write train.csv and test.jsonl.")],
    intents: Annotated[int, typer.Option(min=2, max=150, help="Keep this many of the 150 intents (faster).")] = 150,
) -> None:
    """Write an example dataset that ships with ctcd (CLINC150, CC BY 3.0): train.csv and test.jsonl."""
    from workflows.training import examples

    train, test = examples.write(folder, intents)
    console.print(f"[green]✓[/] {name.value}: {train} and {test} (CC BY 3.0, Larson et al. 2019)")
    console.print(f"  add them with: ctcd data add intent-classifier {train} --test {test}")
