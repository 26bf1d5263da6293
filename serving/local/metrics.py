"""The gateway's Prometheus metrics: answers and latency per service, revision and code, and what each arm answers.

Per arm (service and revision): hand-offs, a histogram of confidences, and answers per label. Label values are
bounded (``MAX_LABELS`` per service, the rest counted as ``other``), so a model with many classes cannot grow the
series without end. The prediction log's losses are gauges.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from serving import predlog

MAX_LABELS = 200  # label values per service in /metrics; more become "other"


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
        self.series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.answers: tuple[Any, Any, Any] | None = None
        self.labels: dict[str, set[str]] = {}

    def observe(self, service: str, revision: str, code: int, started: float) -> None:
        """Count one answer (the labelled series are looked up once per service, revision and code)."""
        key = (service, revision, code)
        series = self.series.get(key)
        if series is None:
            labels = (service, revision, str(code))
            series = self.series[key] = (self.requests.labels(*labels), self.seconds.labels(*labels))
        series[0].inc()
        series[1].observe(time.perf_counter() - started)

    def observe_record(self, record: predlog.Record) -> None:
        """Count an answer known only from its record (a cluster's payload log): its code, latency and outputs."""
        labels = (record["answered_by"] or "-", record["revision"] or "-", str(record["status"]))
        self.requests.labels(*labels).inc()
        self.seconds.labels(*labels).observe(record["latency_ms"] / 1000)
        self.observe_answers(record)

    def observe_answers(self, record: predlog.Record) -> None:
        """Per arm: hand-offs, the confidence of each answer, and predictions per label (at most ``MAX_LABELS``)."""
        if self.answers is None:
            names = ["service", "revision"]
            self.answers = (
                Counter("ctcd_gateway_handoffs", "Questions handed off to a person.", names, registry=self.registry),
                Histogram(
                    "ctcd_gateway_confidence", "Confidence of each answer.", names, registry=self.registry,
                    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99),
                ),
                Counter("ctcd_gateway_predictions", "Answers per label.", [*names, "label"], registry=self.registry),
            )  # fmt: skip
        handoffs, confidence, predictions = self.answers
        arm = (record["answered_by"] or "-", record["revision"] or "-")
        for label, score, handed in zip(record["labels"], record["confidences"], record["handoffs"], strict=False):
            confidence.labels(*arm).observe(score)
            if handed:
                handoffs.labels(*arm).inc()
            seen = self.labels.setdefault(arm[0], set())
            if label not in seen and len(seen) >= MAX_LABELS:
                label = "other"  # bounded cardinality: a model with more classes folds the rest
            seen.add(label)
            predictions.labels(*arm, label).inc()

    def count_log(self, log: predlog.LogWriter) -> None:
        """Expose the prediction log's losses: records dropped (queue full) and not written (storage away)."""
        for what, read in (("dropped", lambda: log.dropped), ("failed", lambda: log.failed)):
            gauge = Gauge(
                f"ctcd_prediction_log_{what}_records", f"Prediction log records {what}.", registry=self.registry
            )
            gauge.set_function(read)

    async def endpoint(self, _: Request) -> Response:
        """``GET /metrics`` in Prometheus's text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
