"""The local ingress: routes v1/v2 requests to a revision by the InferenceService's traffic split.

A request for an InferenceGraph name (``<technique>-ab``, or a task such as ``intents``) first picks a service
through the graph (:mod:`serving.local.graph`): Splitter weights, Switch conditions on the body, where an
``x-channel`` header stands in for a missing ``parameters.channel``.
Each response carries ``x-ctcd-revision`` (and ``x-ctcd-service``) so the split can be observed, and
``x-ctcd-model-version`` and ``x-ctcd-run-id``: the registry version that answered and the run that trained it.
A revision whose server refuses the connection (it died before the reconciler noticed) is skipped for the others.  A
revision's own answer, 4xx or 5xx, is passed through unchanged; bodies over the size limit get a 413.
``/metrics`` counts answers and their latency per service, revision and status code (Prometheus).  Each answer
carries ``x-ctcd-request-id`` (the caller's ``x-request-id``, or a new one), and, with a prediction log, is
recorded there after it was sent (:mod:`serving.predlog`).  ``POST /v1/feedback`` (confirmed labels) is passed on,
unchanged, to the service that checks and writes them (``CTCD_FEEDBACK_URL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from serving import predlog, shared
from serving.limits import BodyLimit
from serving.local import graph as graph_routes
from serving.local import recording
from serving.local.metrics import Metrics
from serving.local.recording import CHANNEL_HEADER, PATH, Answer

DEFAULT_NAMESPACE = shared.DEFAULT_NAMESPACE
RESENDS = 3  # attempts per revision when its server dropped a pooled connection
DEADLINE_HEADER = "x-ctcd-deadline"  # when the gateway stops waiting (Unix time): the server skips work past it


class UpstreamTimeout(Exception):
    """The model server did not answer within the gateway's timeout."""


class Upstream:
    """Keep-alive connections to the model servers (aiohttp), opened on first use inside the server's loop.

    Args:
        timeout: Seconds to wait for one answer (``CTCD_GATEWAY_TIMEOUT``).
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.timeout = timeout

    async def send(self, method: str, url: str, body: bytes, kind: str) -> tuple[int, bytes, str] | None:
        """The revision's answer (status, body, content type), whatever its status; None when it cannot be reached.

        A pooled connection that the server closed (it does after an error answer) fails on reuse; the request is
        sent again on a fresh connection, so a revision's earlier 4xx/5xx never turns a later request into a 503.
        The request carries its deadline, so a server that reaches it only after the gateway gave up skips it.

        Raises:
            UpstreamTimeout: No answer within the timeout.
        """
        if self.session is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
            self.session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        headers = {"content-type": kind, DEADLINE_HEADER: f"{time.time() + self.timeout:.3f}"}
        for _ in range(RESENDS):
            try:
                async with self.session.request(method, url, data=body, headers=headers) as reply:
                    return reply.status, await reply.read(), reply.headers.get("content-type", "application/json")
            except asyncio.TimeoutError:
                raise UpstreamTimeout(f"no answer within {self.timeout:g} s") from None
            except aiohttp.ClientConnectorError:
                return None
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError):
                continue
        return None

    async def close(self) -> None:
        """Close the pooled connections."""
        if self.session is not None:
            await self.session.close()


def namespace_of(host: str, domain: str) -> tuple[str, str] | None:
    """``(name, namespace)`` from a KServe Host header ``<name>.<namespace>.<domain>[:port]``, else None."""
    bare = host.split(":", 1)[0].lower()
    if not bare.endswith("." + domain):
        return None
    name, _, namespace = bare.removesuffix("." + domain).partition(".")
    return (name, namespace) if name and namespace and "." not in namespace else None


def with_channel(doc: Any, channel: bytes | None) -> Any:
    """The document a graph's conditions see: the body, plus ``parameters.channel`` from ``x-channel`` if it lacks one.

    KServe's Switch reads the request body only; the local ingress lets a client name its channel by header too.
    The body forwarded to the model is never changed.
    """
    if channel is None or not isinstance(doc, dict):
        return doc
    parameters = doc.get("parameters")
    if isinstance(parameters, dict) and "channel" in parameters:
        return doc
    given = parameters if isinstance(parameters, dict) else {}
    return {**doc, "parameters": {**given, "channel": channel.decode("latin-1")}}


def _json(code: int, document: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None) -> Answer:
    return code, json.dumps(document).encode(), [(b"content-type", b"application/json"), *(headers or [])]


class Gateway:
    """The forwarding path as a bare ASGI application (no framework between the socket and the upstream call).

    Args:
        state: Exposes ``routes`` and ``graphs`` keyed ``namespace/name`` (kept by the reconciler).
        rng: Draws the traffic split.
        domain: The ingress domain of KServe Hosts.
        default_namespace: Serves requests that name no namespace.
        timeout: Seconds to wait for a model server before answering 504.
        log: The prediction log's writer (None: nothing is recorded).
        privacy: The inputs logged only as keyed hashes.
    """

    def __init__(
        self,
        state: Any,
        rng: random.Random,
        domain: str,
        default_namespace: str,
        timeout: float = 30.0,
        log: predlog.LogWriter | None = None,
        privacy: predlog.Privacy | None = None,
    ) -> None:
        self.state, self.rng, self.domain, self.default_namespace = state, rng, domain, default_namespace
        self.upstream, self.metrics, self.log = Upstream(timeout), Metrics(), log
        self.privacy = privacy or predlog.Privacy()
        if log is not None:
            self.metrics.count_log(log)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Answer one request: route it, forward it, count it."""
        started = time.perf_counter()
        body = await _body(receive)
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or predlog.new_request_id()
        code, content, extra = await self.route(scope["method"], scope["path"], headers, body)
        extra = [*extra, (predlog.REQUEST_ID_HEADER.encode(), request_id.encode("latin-1"))]
        labels = dict(extra)
        self.metrics.observe(
            labels.get(b"x-ctcd-service", b"-").decode(), labels.get(b"x-ctcd-revision", b"-").decode(), code, started
        )
        await _answer(send, (code, content, extra))
        if self.log is not None and scope["method"] == "POST":
            when = (predlog.now(), predlog.elapsed_ms(started))
            path, answer = scope["path"], (code, content, extra)

            def record() -> predlog.Record:  # parsed in the writer's thread, not on the event loop
                made = recording.record(request_id, path, headers, body, answer, when, self.privacy)
                self.metrics.observe_answers(made)
                return made

            self.log.add(record)

    def _namespace(self, given: str | None, name: str, headers: dict[bytes, bytes]) -> str:
        if given is not None:
            return given
        by_host = namespace_of(headers.get(b"host", b"").decode("latin-1"), self.domain)
        return by_host[1] if by_host is not None and by_host[0] == name else self.default_namespace

    def _unknown(self, name: str, namespace: str) -> Answer:
        keys = [*self.state.routes, *self.state.graphs]
        known = ", ".join(sorted(k.split("/", 1)[1] for k in keys if k.startswith(namespace + "/")))
        return _json(
            404, {"error": f"no InferenceService {name!r} in namespace {namespace} (known: {known or 'none'})"}
        )

    def _through_graph(self, graph: dict[str, Any], body: bytes, headers: dict[bytes, bytes]) -> str | Answer:
        """The service an InferenceGraph picks for this request, or the answer that refuses it."""
        try:
            doc = json.loads(body) if body.strip() else {}
        except RecursionError:
            return _json(400, {"error": "the request body is JSON nested too deeply; send a flat request"})
        except (json.JSONDecodeError, UnicodeDecodeError):
            if graph_routes.needs_body(graph):
                return _json(400, {"error": "the request body is not JSON; this InferenceGraph routes on it"})
            doc = {}
        doc = with_channel(doc, headers.get(CHANNEL_HEADER))
        try:
            return graph_routes.choose(graph, doc, self.rng)
        except RecursionError:
            return _json(400, {"error": "the request body is JSON nested too deeply; send a flat request"})
        except graph_routes.NoRoute as exc:
            return _json(404, {"error": str(exc)})
        except graph_routes.GraphError as exc:
            return _json(503, {"error": f"InferenceGraph {graph['metadata']['name']}: {exc}"})

    async def route(self, method: str, path: str, headers: dict[bytes, bytes], body: bytes) -> Answer:
        """Pick the service (an InferenceGraph's weights first) and a revision by its traffic; forward to it."""
        match = PATH.match(path)
        if not match:
            return _json(404, {"error": "use /v1/models/NAME:predict or /v2/models/NAME/infer"})
        given, version, name, rest = match.groups()
        if rest == ":explain":  # KServe answers so for a service with no explainer; no server logs a traceback
            return _json(501, {"error": f"Could not find explainer_host: {name} has no explainer; use :predict"})
        namespace = self._namespace(given, name, headers)
        service = name
        graph = self.state.graphs.get(f"{namespace}/{name}")
        if graph is not None:
            chosen = self._through_graph(graph, body, headers)
            if isinstance(chosen, tuple):
                return chosen
            service = chosen
        routes = self.state.routes.get(f"{namespace}/{service}")
        if routes is None:
            return self._unknown(name, namespace)
        kind = headers.get(b"content-type", b"application/json").decode("latin-1")
        candidates = [(pct, (port, rev)) for pct, port, rev in routes]
        while True:
            target = graph_routes.pick(candidates, self.rng)
            if target is None:
                no_revision = {"error": f"{service} has no ready revision"}
                return _json(503, no_revision, [(b"x-ctcd-service", service.encode())])
            port, revision = target
            url = f"http://127.0.0.1:{port}/{version}/models/{service}{rest}"  # the revision's own name for it
            try:
                reply = await self.upstream.send(method, url, body, kind)
            except UpstreamTimeout as exc:
                late = {"error": f"{service} (revision {revision}): {exc}; retry later, or raise CTCD_GATEWAY_TIMEOUT"}
                return _json(
                    504, late, [(b"x-ctcd-revision", revision.encode()), (b"x-ctcd-service", service.encode())]
                )
            if reply is not None:
                break
            candidates = [c for c in candidates if c[1] != target]  # its server is gone: the others take its share
        code, content, content_type = reply
        answer = [(b"x-ctcd-revision", revision.encode()), (b"x-ctcd-service", service.encode())]
        model_version, run_id = getattr(self.state, "versions", {}).get(revision, ("", ""))
        if model_version:
            answer += [(b"x-ctcd-model-version", model_version.encode()), (b"x-ctcd-run-id", run_id.encode())]
        answer += [(b"x-ctcd-namespace", namespace.encode()), (b"content-type", content_type.encode("latin-1"))]
        return code, content, answer


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def feedback_forwarder(url: str | None, upstream: Upstream) -> Any:
    """``POST /v1/feedback`` passed on to the service that checks and writes labels (404 when there is none)."""

    async def forward(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if url is None:
            await _answer(send, _json(404, {"error": "confirmed labels are not taken here; set CTCD_FEEDBACK_URL"}))
            return
        body = await _body(receive)
        try:
            reply = await upstream.send("POST", url, body, "application/json")
        except UpstreamTimeout as exc:
            reply = 504, json.dumps({"error": f"the feedback service: {exc}; retry"}).encode(), "application/json"
        if reply is None:
            reply = (
                503,
                b'{"error": "the feedback service is not running; check `ctcd status` (bridge)"}',
                "application/json",
            )
        code, content, kind = reply
        await _answer(send, (code, content, [(b"content-type", kind.encode("latin-1"))]))

    return forward


def app(
    state: Any,
    seed: int | None = None,
    domain: str = shared.DEFAULT_DOMAIN,
    default_namespace: str = DEFAULT_NAMESPACE,
    timeout: float = 30.0,
    log: predlog.LogWriter | None = None,
    feedback_url: str | None = None,
    privacy: predlog.Privacy | None = None,
) -> Any:
    """The gateway as an ASGI application: ``/healthz`` and ``/metrics``, and every other path forwarded.

    A request names its namespace by the Host KServe gives the service (``<name>.<namespace>.<domain>``), or by
    the path form ``/namespaces/<namespace>/v1/models/<name>:predict``; otherwise ``default_namespace`` serves it.
    """
    forward = Gateway(state, random.Random(seed), domain, default_namespace, timeout, log, privacy)

    async def health(_: Request) -> Response:
        problems = list(getattr(state, "problems", []))
        if problems:
            reason = "; ".join(problems)[:500]
            return JSONResponse({"status": "degraded", "commit": state.commit, "reason": reason}, status_code=503)
        return JSONResponse({"status": "ok", "commit": state.commit})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await forward.upstream.close()
        if log is not None:  # before uvicorn returns: it re-raises SIGTERM once the server has stopped
            await asyncio.to_thread(log.close)

    admin = Starlette(
        routes=[Route("/healthz", health), Route("/metrics", forward.metrics.endpoint)], lifespan=lifespan
    )
    limited = BodyLimit(forward)
    labels = BodyLimit(feedback_forwarder(feedback_url, forward.upstream))

    async def dispatch(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in ("/healthz", "/metrics"):
            await admin(scope, receive, send)
        elif scope["method"] not in ("GET", "POST"):
            await _answer(send, _json(405, {"error": f"method {scope['method']} is not allowed; use GET or POST"}))
        elif scope["path"] == "/v1/feedback" and scope["method"] == "POST":
            await labels(scope, receive, send)
        else:
            await limited(scope, receive, send)

    return dispatch


async def _answer(send: Any, answer: Answer) -> None:
    code, content, headers = answer
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": content})
