"""Where each training batch came from: ``<dataset>/sources/batch-NNNN.csv.json`` next to the batch.

Origins are ``user`` (``ctcd data add``), ``generator`` (sample data for the demo), ``s3`` and ``sql``
(continuous-training sources) and ``feedback`` (labels confirmed in production). ``data ls`` shows them, and the
sample generator refuses to add to a dataset that holds real data.
"""

from __future__ import annotations

import json
from typing import Any

SOURCES = "sources/"
OWN_DATA = ("user", "s3", "sql", "feedback")  # origins of real data; "generator" is the demo's sample data


def record(client: Any, bucket: str, key: str, origin: str, name: str) -> None:
    """Write where the batch at ``key`` (``<dataset>/train/batch-NNNN.csv``) came from."""
    dataset, _, file = key.partition("/train/")
    body = {"key": key, "origin": origin, "name": name}
    client.put_object(Bucket=bucket, Key=f"{dataset}/{SOURCES}{file}.json", Body=json.dumps(body).encode())


def origins(client: Any, bucket: str, dataset: str) -> dict[str, str]:
    """Batch key → where its rows came from (batches written before origins were recorded are missing)."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{dataset}/{SOURCES}"):
        for item in page.get("Contents", []):
            record = json.loads(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            found[str(record.get("key", ""))] = str(record.get("origin", ""))
    return found
