"""Data templates: the keys under an S3 location, transformed by expr-lang expressions over ``data``.

As Argo's ``data`` template: ``source.artifactPaths`` names a bucket (and a key prefix), ``data`` starts as the
list of object keys under it, each ``transformation`` step replaces it with its expression's value, and the
result is the node's ``outputs.result`` as JSON (a list feeds ``withParam``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workflows.engine.language.errors import ExpressionError
from workflows.engine.language.expressions import evaluate
from workflows.engine.state.nodes import Node, NodeError, now

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    """Every object key under a prefix, in S3's order."""
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys


async def run_data(run: RunContext, node: Node, tmpl: Mapping[str, Any]) -> None:
    """List the source's keys, apply the transformations, and finish the node with the result."""
    node["startedAt"] = now()
    source = ((tmpl["data"].get("source") or {}).get("artifactPaths") or {}).get("s3") or {}
    bucket = source.get("bucket") or run.bucket
    try:
        data: Any = await asyncio.to_thread(list_keys, run.engine.s3(), bucket, source.get("key", ""))
    except Exception as exc:  # botocore's errors: the bucket cannot be listed
        raise NodeError(f"data source s3://{bucket}/{source.get('key', '')}: {exc}") from exc
    for number, step in enumerate(tmpl["data"].get("transformation") or []):
        try:
            data = evaluate(step["expression"], {"data": data})
        except ExpressionError as exc:
            raise NodeError(f"data.transformation[{number}] {step['expression']!r}: {exc}") from exc
    node["outputs"] = {"result": json.dumps(data)}
    run.log(node, f"data: {len(data) if isinstance(data, list) else 1} item(s) from s3://{bucket}")
    run.finish(node, "Succeeded")
