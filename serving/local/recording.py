"""The prediction log's record of one answer the gateway gave, made in the writer's thread, never on the request path.

Sensitive inputs (a technique's ``serving.sensitive``) are replaced by keyed hashes before the record exists.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from serving import predlog

PATH = re.compile(r"^(?:/namespaces/([a-z0-9][-a-z0-9]*))?/(v1|v2)/models/([a-z0-9][-a-z0-9]*)(.*)$")
CHANNEL_HEADER = b"x-channel"
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


def record(
    request_id: str,
    path: str,
    headers: dict[bytes, bytes],
    body: bytes,
    answer: Answer,
    when: tuple[str, float],
    privacy: predlog.Privacy,
) -> predlog.Record:
    """The prediction log's record of one answer (written after it was sent, off the request's critical path)."""
    code, content, extra = answer
    said = {k.decode(): v.decode("latin-1") for k, v in extra}
    match = PATH.match(path)
    doc = _json_or_none(body)
    parameters = doc.get("parameters") if isinstance(doc, dict) else None
    channel = parameters.get("channel") if isinstance(parameters, dict) else None
    labels, confidences, handoffs, candidates = predlog.outputs(content) if code == 200 else ([], [], [], [])
    service = match.group(3) if match else ""
    hidden = privacy.sensitive.get(service, frozenset()) | privacy.sensitive.get(
        said.get("x-ctcd-service", ""), frozenset()
    )
    inputs, hashed = predlog.redact(_inputs(doc), hidden, privacy.key)
    return predlog.Record(
        request_id=request_id,
        time=when[0],
        namespace=said.get("x-ctcd-namespace", ""),
        service=service,
        answered_by=said.get("x-ctcd-service", ""),
        revision=said.get("x-ctcd-revision", ""),
        model_version=said.get("x-ctcd-model-version", ""),
        channel=str(channel if channel is not None else headers.get(CHANNEL_HEADER, b"").decode("latin-1")),
        inputs=inputs,
        labels=labels,
        confidences=confidences,
        handoffs=handoffs,
        candidates=candidates,
        latency_ms=when[1],
        status=code,
        hashed=hashed,
    )


def _json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        return None


def _inputs(doc: Any) -> list[Any]:
    """The rows a v1 request sent, or each v2 input's data by name."""
    if isinstance(doc, dict) and isinstance(doc.get("instances"), list):
        return list(doc["instances"])[:10_000]
    if isinstance(doc, dict) and isinstance(doc.get("inputs"), list):
        return [{str(i.get("name")): i.get("data")} for i in doc["inputs"] if isinstance(i, dict)]
    return []
