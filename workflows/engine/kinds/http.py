"""HTTP templates: one request from the engine itself (no pod), judged by ``successCondition``.

Without a condition, any 2xx status succeeds.  The condition sees ``response.statusCode``, ``response.body``
and ``response.headers``; the body becomes ``outputs.result``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from workflows.engine.language.expressions import evaluate_bool
from workflows.engine.state.nodes import Node, now

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


def _headers(run: RunContext, spec: Mapping[str, Any]) -> dict[str, str]:
    headers = {}
    for header in spec.get("headers") or []:
        if "valueFrom" in header:
            ((kind, ref),) = header["valueFrom"].items()
            headers[header["name"]] = run.engine.objects.lookup(kind, ref)
        else:
            headers[header["name"]] = str(header.get("value", ""))
    return headers


def _body(spec: Mapping[str, Any]) -> str | bytes | None:
    """The request body: ``body`` as text, or ``bodyFrom.bytes`` (base64 in the object, as Kubernetes writes bytes)."""
    if "bodyFrom" in spec:
        return base64.b64decode(str((spec["bodyFrom"] or {}).get("bytes", "")))
    body = spec.get("body")
    return None if body is None else str(body)


async def run_http(run: RunContext, node: Node, tmpl: Mapping[str, Any]) -> None:
    """Send the template's request and finish the node by its status (or ``successCondition``)."""
    spec = tmpl["http"]
    node["startedAt"] = now()
    try:
        async with httpx.AsyncClient(
            verify=not spec.get("insecureSkipVerify"), timeout=float(spec.get("timeoutSeconds") or 30)
        ) as client:
            response = await client.request(
                spec.get("method", "GET"), spec["url"], headers=_headers(run, spec), content=_body(spec)
            )
    except httpx.HTTPError as exc:
        run.finish(node, "Failed", f"HTTP request to {spec['url']} failed: {exc.__class__.__name__}: {exc}")
        return
    run.log(node, f"{spec.get('method', 'GET')} {spec['url']} -> {response.status_code}")
    node["outputs"] = {"result": response.text[-262144:]}
    values = {
        "response.statusCode": response.status_code,
        "response.body": response.text,
        "response.headers": {k: response.headers.get_list(k) for k in response.headers},
    }
    condition = spec.get("successCondition")
    ok = evaluate_bool(condition, {}, values) if condition else 200 <= response.status_code < 300
    if ok:
        run.finish(node, "Succeeded")
    else:
        why = f"successCondition {condition!r} was false" if condition else "not a 2xx status"
        run.finish(node, "Failed", f"HTTP {response.status_code}: {why}")
