"""Production feedback: the hand-off queue from the prediction log, and labels people confirm.

Serving records every answer in the prediction log (``s3://<predictions>/<service>/<namespace>/date=…/hour=…/``,
:mod:`serving.predlog`). A person, or an agent console, confirms the right label of a handed-off question, or of an
answered one that was wrong, by its request id. Labels are checked (a known request id of the task, a class the task
knows or its out-of-scope label, each request once) and written whole, as one JSON Lines file under
``feedback/<task>/``; continuous training takes them as a new batch (source ``feedback``), through the same
validation as ``data add``, never into the test split.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from models.contract import Technique, by_task, discover, get
from workflows.settings import Settings
from workflows.training import datasets
from workflows.training.validation import DatasetError

FEEDBACK = "feedback/"
LOOKBACK_DAYS = 62


def services(task: str) -> list[str]:
    """Every name a task's requests are logged under: the task's graph and each of its techniques."""
    members = by_task().get(task)
    if members is None:
        raise DatasetError(f"no task {task!r} (tasks: {', '.join(sorted(by_task()))})")
    return sorted({task, *members})


def _days(since_days: int) -> list[str]:
    today = datetime.now(UTC).date()
    return [f"date={today - timedelta(days=n):%Y-%m-%d}" for n in range(since_days + 1)]


def records(client: Any, bucket: str, task: str, namespace: str = "", since_days: int = LOOKBACK_DAYS) -> Iterator[Any]:
    """The task's prediction log records (every namespace unless one is named), the last ``since_days`` days."""
    wanted = set(_days(since_days))
    for service in services(task):
        prefix = f"{service}/{namespace}/" if namespace else f"{service}/"
        for key in datasets.list_keys(client, bucket, prefix):
            parts = key.split("/")
            if len(parts) >= 4 and parts[2] in wanted and key.endswith(".jsonl"):
                for line in datasets.read_object(client, bucket, key).splitlines():
                    yield json.loads(line)


def handoffs(client: Any, bucket: str, task: str, namespace: str) -> list[dict[str, Any]]:
    """The questions handed off, oldest first: one row per handed-off input, with its candidate."""
    rows = []
    for record in records(client, bucket, task, namespace):
        for i, handed in enumerate(record.get("handoffs", [])):
            if handed:
                rows.append(
                    {
                        "request_id": record["request_id"],
                        "time": record["time"],
                        "service": record["answered_by"] or record["service"],
                        "input": _text(record["inputs"][i] if i < len(record["inputs"]) else ""),
                        "candidate": record["candidates"][i] if i < len(record["candidates"]) else "",
                        "confidence": record["confidences"][i] if i < len(record["confidences"]) else 0.0,
                    }
                )
    return sorted(rows, key=lambda r: r["time"])


def _text(value: Any) -> str:
    return str(value.get("text", "")) if isinstance(value, dict) else str(value)


def classes(client: Any, settings: Settings, technique: Technique) -> set[str]:
    """The labels a confirmed answer may take: the task's training classes and its out-of-scope label."""
    labels = {
        str(x) for frame in datasets.batch_frames(client, settings, technique) for x in frame[technique.spec.target]
    }
    oos = datasets.out_of_scope(technique)
    return labels | ({oos} if oos else set())


def add(client: Any, settings: Settings, task: str, given: Iterable[tuple[str, str]]) -> tuple[str, int]:
    """Check confirmed labels and write them as one file; return its key and how many rows it holds.

    Raises:
        DatasetError: An unknown request id, a label the task does not know, a request labelled twice; nothing is
            written.
    """
    return Desk(client, settings).confirm(list(given), task)


class Desk:
    """Where confirmed labels come in, for the CLI and for ``POST /v1/feedback``.

    It keeps what it read of the prediction log and of the labels (each S3 file is read once, then only new files),
    so a long-running server checks a label without reading the whole log again; one lock makes each check and its
    write a single step, so a request is never labelled twice by two callers at once.

    Args:
        client: The S3 client.
        settings: Names the prediction log's bucket.
    """

    def __init__(self, client: Any, settings: Settings) -> None:
        self.client, self.settings, self.bucket = client, settings, settings.predictions_bucket
        self._read: set[str] = set()
        self.known: dict[str, dict[str, Any]] = {}
        self.done: set[str] = set()
        self._classes: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Read the prediction log and label files that appeared since the last look."""
        wanted = set(_days(LOOKBACK_DAYS))
        for key in datasets.list_keys(self.client, self.bucket, ""):
            if key in self._read or not key.endswith(".jsonl"):
                continue
            parts = key.split("/")
            if key.startswith(FEEDBACK):
                self.done |= {json.loads(line)["request_id"] for line in self._lines(key)}
            elif len(parts) >= 4 and parts[2] in wanted:
                self.known |= {r["request_id"]: r for r in map(json.loads, self._lines(key))}
            self._read.add(key)

    def _lines(self, key: str) -> list[str]:
        return datasets.read_object(self.client, self.bucket, key).decode().splitlines()

    def classes(self, task: str) -> set[str]:
        """The task's labels (kept for a minute: they change only when training data does)."""
        when, found = self._classes.get(task, (0.0, set()))
        if time.monotonic() - when > 60:
            found = classes(self.client, self.settings, get(services_of(task)[0]))
            self._classes[task] = (time.monotonic(), found)
        return found

    def confirm(self, given: list[tuple[str, str]], task: str | None = None) -> tuple[str, int]:
        """Check every label, then write them all as one file (or nothing); ``task`` None: each request's own.

        Raises:
            DatasetError: The first row that is refused, and why.
        """
        with self._lock:
            self.refresh()
            rows, tasks = self._check(given, task)
            if not rows:
                raise DatasetError("no labels given: give a request_id,label row per confirmed answer")
            if len(tasks) > 1:
                raise DatasetError(f"the labels are for several tasks ({', '.join(sorted(tasks))}); send each apart")
            key = f"{FEEDBACK}{tasks.pop()}/{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.jsonl"
            body = "".join(json.dumps(r) + "\n" for r in rows).encode()
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
            self.done |= {r["request_id"] for r in rows}
            self._read.add(key)
            return key, len(rows)

    def _check(self, given: list[tuple[str, str]], task: str | None) -> tuple[list[dict[str, Any]], set[str]]:
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        tasks: set[str] = set()
        for number, (request_id, label) in enumerate(given, start=1):
            where = f"row {number}: request {request_id!r}"
            record = self.known.get(request_id)
            own = task_of_service(record["service"]) if record else None
            if record is None or (task is not None and own != task):
                log = f"{task}'s prediction log" if task else "the prediction log"
                raise DatasetError(f"{where} is not in {log} (the last {LOOKBACK_DAYS} days)")
            allowed = self.classes(str(own))
            if label not in allowed:
                raise DatasetError(f"{where}: label {label!r} is not a class of {own}", hint=_classes_hint(allowed))
            if request_id in self.done or request_id in seen:
                raise DatasetError(f"{where} has a confirmed label already; each request is labelled once")
            seen.add(request_id)
            tasks.add(str(own))
            hashed = record.get("hashed") or []  # a sensitive input was logged as a hash: a label, never training data
            for value in record["inputs"]:
                text = "" if hashed else _text(value)
                rows.append(
                    {"request_id": request_id, "text": text, "label": label, "time": record["time"], "hashed": hashed}
                )
        return rows, tasks


def task_of_service(service: str) -> str | None:
    """The task a logged service belongs to: a task graph's own name, or its technique's task."""
    if service in by_task():
        return service
    found = discover().get(service)
    return found.dataset if found else None


def services_of(task: str) -> list[str]:
    """The task's techniques."""
    return sorted(by_task().get(task, [task]))


def _classes_hint(allowed: set[str]) -> str:
    shown = ", ".join(sorted(allowed)[:12])
    return f"use one of the task's classes ({shown}{', …' if len(allowed) > 12 else ''})"


def labelled(client: Any, settings: Settings, task: str, after: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Every confirmed label of a task (skipping the files in ``after``), oldest file first."""
    skip, rows = set(after), []
    for key in datasets.list_keys(client, settings.predictions_bucket, f"{FEEDBACK}{task}/"):
        if key not in skip:
            rows += [
                json.loads(line) | {"file": key}
                for line in datasets.read_object(client, settings.predictions_bucket, key).splitlines()
            ]
    return rows
