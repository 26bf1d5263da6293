"""A small HTTP/1.1 load generator shared by every serving peer of the benchmark.

Keep-alive connections over raw asyncio streams, pre-encoded requests, so the generator costs little next to
the servers it measures.  Two modes: closed loop (throughput at a fixed concurrency) and open loop (latency at
a fixed request rate, timed from each request's scheduled start, so a slow server cannot hide its queueing).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """One endpoint and one pre-encoded request body."""

    port: int
    path: str
    body: bytes
    headers: str = "Content-Type: application/json\r\n"

    def request(self) -> bytes:
        """The raw request bytes."""
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{self.headers}"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        )
        return head.encode() + self.body


def target(port: int, path: str, payload: Any) -> Target:
    """A target for a JSON payload."""
    return Target(port, path, json.dumps(payload).encode())


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, body
            body += chunk[:-2]
    return status, await reader.readexactly(int(fields.get("content-length", "0")))


class Connection:
    """One keep-alive connection."""

    def __init__(self, spec: Target) -> None:
        self.spec, self.raw = spec, spec.request()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self) -> tuple[int, bytes]:
        """Send the request and read the whole response (reconnecting once if the server closed)."""
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.spec.port)
            assert self.reader is not None
            try:
                self.writer.write(self.raw)
                return await _read_response(self.reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                self.writer.close()
                self.writer = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def close(self) -> None:
        """Close the socket."""
        if self.writer is not None:
            self.writer.close()


@dataclass
class Result:
    """Completed requests, errors, elapsed seconds and latencies (ms)."""

    done: int
    errors: int
    seconds: float
    latencies: list[float]

    def percentile(self, q: float) -> float:
        """The q-th percentile of the latencies (nearest rank)."""
        ordered = sorted(self.latencies)
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2) if ordered else float("nan")


async def closed_loop(spec: Target, concurrency: int, seconds: float, max_requests: int) -> Result:
    """Throughput: ``concurrency`` clients, each sending its next request when the last returns."""
    connections = [Connection(spec) for _ in range(concurrency)]
    deadline = time.perf_counter() + seconds
    state = {"sent": 0, "errors": 0}
    latencies: list[float] = []

    async def client(conn: Connection) -> None:
        while time.perf_counter() < deadline and state["sent"] < max_requests:
            state["sent"] += 1
            start = time.perf_counter()
            status, _ = await conn.call()
            latencies.append((time.perf_counter() - start) * 1000)
            state["errors"] += status != 200

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    elapsed = time.perf_counter() - started
    for conn in connections:
        conn.close()
    return Result(len(latencies), state["errors"], elapsed, latencies)


async def open_loop(spec: Target, rate: float, seconds: float, pool: int = 64) -> Result:
    """Latency at a fixed rate: request i starts at i/rate; its latency counts from that scheduled time."""
    idle = [Connection(spec) for _ in range(pool)]
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()

    async def one(i: int) -> None:
        nonlocal errors
        scheduled = started + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        conn = idle.pop() if idle else Connection(spec)
        status, _ = await conn.call()
        latencies.append((time.perf_counter() - scheduled) * 1000)
        errors += status != 200
        idle.append(conn)

    await asyncio.gather(*(one(i) for i in range(total)))
    elapsed = time.perf_counter() - started
    for conn in idle:
        conn.close()
    return Result(len(latencies), errors, elapsed, latencies)


async def check(spec: Target) -> bytes:
    """One request; raise with the body unless it answers 200."""
    conn = Connection(spec)
    try:
        status, body = await conn.call()
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"port {spec.port} {spec.path}: HTTP {status}: {body[:300]!r}")
    return body
