"""The prediction log: every answer serving gives, as append-only JSON Lines files in S3.

Records are never written on the request path. :class:`LogWriter` keeps a bounded queue; a background thread
flushes it by size (``batch`` records) and by time (``every`` seconds), and :meth:`LogWriter.close` flushes what is
left on a graceful shutdown. When the queue is full a record is dropped and counted, and the request is not slowed.
A kill -9 loses at most the unflushed queue: ``capacity`` records, or what arrived within ``every`` seconds.

Files are partitioned as ``s3://<bucket>/<service>/<namespace>/date=YYYY-MM-DD/hour=HH/<time>-<id>.jsonl``, one
per flush and partition, never rewritten. Inputs a technique declares sensitive (``serving.sensitive``) are logged
only as keyed hashes (:func:`redact`): equal inputs still match, and none can be read back. The same writer serves
the local gateway and, on a cluster, the logger service that receives KServe's payload-logger CloudEvents.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

import orjson

_logger = logging.getLogger(__name__)
REQUEST_ID_HEADER = "x-ctcd-request-id"
SWITCH_INTERVAL = 0.0005  # seconds: the longest the serving loop waits for the GIL while the writer works


class Record(TypedDict):
    """One answer serving gave."""

    request_id: str
    time: str
    namespace: str
    service: str  # the InferenceService or task graph the request named
    answered_by: str  # the InferenceService that answered (a graph's choice)
    revision: str
    model_version: str
    channel: str
    inputs: list[Any]
    labels: list[str]
    confidences: list[float]
    handoffs: list[bool]
    candidates: list[str]
    latency_ms: float
    status: int
    hashed: NotRequired[list[str]]  # inputs logged only as keyed hashes (a technique's sensitive ones)


def keyed_hash(value: Any, key: bytes) -> str:
    """An input a technique declares sensitive, as a keyed hash: equal inputs match, none can be read back."""
    return hmac.new(key, json.dumps(value, sort_keys=True).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Privacy:
    """Which inputs of each service are logged only as keyed hashes, and the key (a secret of the platform)."""

    sensitive: dict[str, frozenset[str]] = field(default_factory=dict)
    key: bytes = b""

    @classmethod
    def of_techniques(cls, key: bytes) -> Privacy:
        """Each technique's ``serving.sensitive`` inputs, under every name its requests arrive by.

        A technique answers as itself and as its A/B ``-b`` service; a task graph as the union of its techniques'.
        """
        from models.contract import by_task, discover

        found = {name: frozenset(t.spec.serving.sensitive) for name, t in discover().items()}
        found |= {f"{name}-b": columns for name, columns in found.items()}
        for task, members in by_task().items():
            found[task] = frozenset().union(*(found.get(m, frozenset()) for m in members))
        return cls({name: columns for name, columns in found.items() if columns}, key)


def redact(rows: list[Any], sensitive: frozenset[str], key: bytes) -> tuple[list[Any], list[str]]:
    """Rows with every sensitive input replaced by its keyed hash, and the names hashed.

    A row is an object of named inputs (v1), a bare value when the one input is sensitive, or ``{name: data}`` of a
    v2 input; anything else is kept whole only when nothing is sensitive.
    """
    if not sensitive:
        return rows, []
    hashed: set[str] = set()
    kept: list[Any] = []
    for row in rows:
        if isinstance(row, dict):
            hashed |= sensitive & set(row)
            kept.append({k: keyed_hash(v, key) if k in sensitive else v for k, v in row.items()})
        else:  # a bare value: the technique's one input, or a shape serving refused; never logged in clear
            hashed.add("*")
            kept.append(keyed_hash(row, key))
    return kept, sorted(hashed)


def outputs(body: bytes) -> tuple[list[str], list[float], list[bool], list[str]]:
    """Labels, confidences, hand-off flags and candidates of a v1 or v2 answer ([] for an error or another shape)."""
    try:
        doc = orjson.loads(body)
    except (ValueError, RecursionError):
        return [], [], [], []
    if isinstance(doc, dict) and isinstance(doc.get("predictions"), list):
        rows = [p for p in doc["predictions"] if isinstance(p, dict)]
        labels = [str(p.get("label", "")) for p in rows]
        confidences = [float(p.get("confidence", 0.0) or 0.0) for p in rows]
        candidates = [str(p.get("candidate", p.get("label", ""))) for p in rows]
        return labels, confidences, [label == "handoff" for label in labels], candidates
    if isinstance(doc, dict) and isinstance(doc.get("outputs"), list):
        columns = {o.get("name"): o.get("data", []) for o in doc["outputs"] if isinstance(o, dict)}
        labels = [str(x) for x in columns.get("label", [])]
        confidences = [float(x) for x in columns.get("confidence", [])]
        candidates = [str(x) for x in columns.get("candidate", labels)]
        return labels, confidences, [label == "handoff" for label in labels], candidates
    return [], [], [], []


def partition(record: Record) -> str:
    """``<service>/<namespace>/date=YYYY-MM-DD/hour=HH``: where a record's file goes."""
    moment = datetime.fromisoformat(record["time"])
    return f"{record['service']}/{record['namespace']}/date={moment:%Y-%m-%d}/hour={moment:%H}"


class LogWriter:
    """A bounded queue of records, flushed to storage by a background thread.

    Args:
        put: Writes one file: ``put(key, body)`` (an S3 ``put_object``, or a fake in tests).
        capacity: The most records waiting; one more is dropped and counted.
        batch: Flush as soon as this many wait.
        every: Flush at least this often (seconds).
    """

    def __init__(self, put: Callable[[str, bytes], None], capacity: int = 10_000, batch: int = 500, every: float = 2.0):
        self.put, self.capacity, self.batch, self.every = put, capacity, batch, every
        self.queue: deque[Record | Callable[[], Record]] = deque()
        self.dropped = self.written = self.failed = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # The writer's Python work takes the GIL from the server's event loop; a short switch interval bounds how long
        # the loop waits for it (CPython's default is 5 ms, several times over per request).
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def add(self, record: Record | Callable[[], Record]) -> bool:
        """Queue a record, or a function that makes it in the writer's thread (never blocks).

        Returns:
            False when the queue was full and the record was dropped.
        """
        if len(self.queue) >= self.capacity:
            self.dropped += 1
            return False
        self.queue.append(record)
        if len(self.queue) >= self.batch:
            self._wake.set()
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.every)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write every queued record, one file per partition; return how many were written."""
        with self._lock:
            taken: list[Record] = []
            while self.queue:
                item = self.queue.popleft()
                time.sleep(0)  # offer the GIL to the serving loop between records
                try:
                    taken.append(item() if callable(item) else item)
                except Exception as exc:  # a record that cannot be made is lost and counted, never the server
                    self.failed += 1
                    _logger.warning("prediction log: a record could not be made: %s", exc)
            groups: dict[str, list[Record]] = {}
            for record in taken:
                groups.setdefault(partition(record), []).append(record)
            for folder, records in groups.items():
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
                body = b"".join(_line(r) for r in records)
                try:
                    self.put(f"{folder}/{stamp}-{uuid.uuid4().hex[:12]}.jsonl", body)
                    self.written += len(records)
                except Exception as exc:  # storage away: the records are lost and counted, serving goes on
                    self.failed += len(records)
                    _logger.warning("prediction log: %d record(s) not written: %s", len(records), exc)
            return len(taken)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and flush what is left (a graceful shutdown loses nothing)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self.flush()


def _line(record: Record) -> bytes:
    """One JSON Lines line (orjson; the standard library for what orjson refuses, such as an int over 64 bits)."""
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()


def now() -> str:
    """The record time: UTC, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_request_id() -> str:
    """A request id for a caller that sent none."""
    return uuid.uuid4().hex


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (``time.perf_counter``)."""
    return round((time.perf_counter() - started) * 1000, 3)
