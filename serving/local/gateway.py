"""The local ingress: routes v1/v2 requests to a revision by the InferenceService's traffic split.

A request for an InferenceGraph name (``<technique>-ab``) first picks a service by the Splitter weights.
Each response carries ``x-ctcd-revision`` (and ``x-ctcd-service``) so the split can be observed.  A revision
whose server refuses the connection (it died before the reconciler noticed) is skipped for the others.  A
revision's own answer, 4xx or 5xx, is passed through unchanged; bodies over the size limit get a 413.
``/metrics`` counts answers and their latency per service, revision and status code (Prometheus).
"""

from __future__ import annotations

import random
import re
import time
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from serving.limits import BodyLimit

PATH = re.compile(r"^(?:/namespaces/([a-z0-9][-a-z0-9]*))?/(v1|v2)/models/([a-z0-9][-a-z0-9]*)(.*)$")
DEFAULT_NAMESPACE = "ctcd-staging"
RESENDS = 3  # attempts per revision when its server dropped a pooled connection


def pick(choices: list[tuple[int, Any]], rng: random.Random) -> Any:
    """A weighted random choice among ``(weight, value)`` pairs with positive weight."""
    live = [(w, v) for w, v in choices if w > 0]
    if not live:
        return None
    return rng.choices([v for _, v in live], weights=[w for w, _ in live], k=1)[0]


async def _send(client: httpx.AsyncClient, method: str, url: str, body: bytes, kind: str) -> httpx.Response | None:
    """The revision's answer, whatever its status; None when its server cannot be reached at all.

    A pooled connection that the server closed (it does after an error answer) fails on reuse; the request is
    sent again on a fresh connection, so a revision's earlier 4xx/5xx never turns a later request into a 503.
    """
    for _ in range(RESENDS):
        try:
            return await client.request(method, url, content=body, headers={"content-type": kind})
        except httpx.ConnectError:
            return None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            continue
    return None


class Metrics:
    """Prometheus counts and latencies per service, revision and status code, in a registry of the app's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["service", "revision", "code"]
        self.requests = Counter(
            "ctcd_gateway_requests", "Requests through the gateway.", labels, registry=self.registry
        )
        self.seconds = Histogram(
            "ctcd_gateway_request_seconds",
            "Time from the request's arrival to the answer, forwarding included.",
            labels,
            registry=self.registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        )

    def observe(self, service: str, revision: str, code: int, started: float) -> None:
        """Count one answer."""
        self.requests.labels(service, revision, str(code)).inc()
        self.seconds.labels(service, revision, str(code)).observe(time.perf_counter() - started)

    async def endpoint(self, _: Request) -> Response:
        """``GET /metrics`` in Prometheus's text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def namespace_of(host: str, domain: str) -> tuple[str, str] | None:
    """``(name, namespace)`` from a KServe Host header ``<name>.<namespace>.<domain>[:port]``, else None."""
    bare = host.split(":", 1)[0].lower()
    if not bare.endswith("." + domain):
        return None
    name, _, namespace = bare.removesuffix("." + domain).partition(".")
    return (name, namespace) if name and namespace and "." not in namespace else None


def app(
    state: Any, seed: int | None = None, domain: str = "example.com", default_namespace: str = DEFAULT_NAMESPACE
) -> Starlette:
    """The gateway; ``state`` exposes ``routes`` and ``graphs`` keyed ``namespace/name`` (kept by the reconciler).

    A request names its namespace by the Host KServe gives the service (``<name>.<namespace>.<domain>``), or by
    the path form ``/namespaces/<namespace>/v1/models/<name>:predict``; otherwise ``default_namespace`` serves it.
    """
    rng = random.Random(seed)
    client = httpx.AsyncClient(timeout=30)
    metrics = Metrics()

    async def health(_: Request) -> Response:
        problems = list(getattr(state, "problems", []))
        if problems:
            reason = "; ".join(problems)[:500]
            return JSONResponse({"status": "degraded", "commit": state.commit, "reason": reason}, status_code=503)
        return JSONResponse({"status": "ok", "commit": state.commit})

    async def forward(request: Request) -> Response:
        started = time.perf_counter()
        reply = await route(request)
        metrics.observe(
            reply.headers.get("x-ctcd-service", "-"),
            reply.headers.get("x-ctcd-revision", "-"),
            reply.status_code,
            started,
        )
        return reply

    async def route(request: Request) -> Response:
        match = PATH.match(request.url.path)
        if not match:
            return JSONResponse({"error": "use /v1/models/NAME:predict or /v2/models/NAME/infer"}, status_code=404)
        namespace, version, name, rest = match.groups()
        by_host = namespace_of(request.headers.get("host", ""), domain)
        if namespace is None:
            namespace = by_host[1] if by_host is not None and by_host[0] == name else default_namespace
        service = name
        graph = state.graphs.get(f"{namespace}/{name}")
        if graph is not None:
            steps = graph["spec"]["nodes"]["root"]["steps"]
            service = pick([(int(s["weight"]), s["serviceName"]) for s in steps], rng)
        routes = state.routes.get(f"{namespace}/{service}")
        if routes is None:
            known = ", ".join(
                sorted(k.split("/", 1)[1] for k in [*state.routes, *state.graphs] if k.startswith(namespace + "/"))
            )
            return JSONResponse(
                {"error": f"no InferenceService {name!r} in namespace {namespace} (known: {known or 'none'})"},
                status_code=404,
            )
        candidates = [(pct, (port, rev)) for pct, port, rev in routes]
        body, kind = await request.body(), request.headers.get("content-type", "application/json")
        while True:
            target = pick(candidates, rng)
            if target is None:
                return JSONResponse(
                    {"error": f"{service} has no ready revision"}, status_code=503, headers={"x-ctcd-service": service}
                )
            port, revision = target
            url = f"http://127.0.0.1:{port}/{version}/models/{service}{rest}"  # the revision's own name for it
            reply = await _send(client, request.method, url, body, kind)
            if reply is not None:
                break
            candidates = [c for c in candidates if c[1] != target]  # its server is gone: the others take its share
        headers = {
            "x-ctcd-revision": revision,
            "x-ctcd-service": service,
            "x-ctcd-namespace": namespace,
            "content-type": reply.headers.get("content-type", "application/json"),
        }
        return Response(reply.content, status_code=reply.status_code, headers=headers)

    routes = [
        Route("/healthz", health),
        Route("/metrics", metrics.endpoint),
        Route("/{path:path}", forward, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(BodyLimit)])
