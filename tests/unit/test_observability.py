"""The cluster's view of serving, checked: the dashboard against a schema of Grafana's dashboard model, every PromQL
query parsed and naming metrics ctcd exposes, the PodMonitor and the payload logger pointing at the collector."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml
from prometheus_client import generate_latest

from serving import predlog
from serving.local.metrics import Metrics
from workflows.delivery import overlays

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "gitops" / "platform"
DASHBOARD = json.loads((PLATFORM / "observability" / "dashboard.json").read_text())
GRID = {
    "type": "object",
    "required": ["h", "w", "x", "y"],
    "properties": {k: {"type": "integer", "minimum": 0} for k in "hwxy"},
}
PANEL_SCHEMA = {  # the fields of Grafana's dashboard model (schemaVersion 39) this dashboard uses
    "type": "object",
    "required": ["id", "type", "title", "gridPos", "targets"],
    "properties": {
        "id": {"type": "integer"},
        "type": {"enum": ["timeseries", "stat", "gauge", "table", "heatmap", "barchart", "text"]},
        "title": {"type": "string", "minLength": 1},
        "gridPos": GRID,
        "datasource": {"type": "object", "required": ["type", "uid"]},
        "targets": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "required": ["refId", "expr"], "properties": {"expr": {"type": "string"}}},
        },
    },
}
DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "panels": {"type": "array", "items": PANEL_SCHEMA},
        "templating": {"type": "object", "required": ["list"]},
        "time": {"type": "object", "required": ["from", "to"]},
    },
}


def _exposed() -> set[str]:
    """Every metric family name the gateway's and the collector's /metrics serve once answers were counted."""
    metrics = Metrics()
    metrics.count_log(predlog.LogWriter(lambda k, b: None))
    record = predlog.Record(
        request_id="r", time=predlog.now(), namespace="n", service="s", answered_by="s", revision="r1",
        model_version="1", channel="", inputs=["x"], labels=["handoff"], confidences=[0.2], handoffs=[True],
        candidates=["a"], latency_ms=3.0, status=200,
    )  # fmt: skip
    metrics.observe_record(record)
    text = generate_latest(metrics.registry).decode()
    return set(re.findall(r"^(ctcd_[a-z_]+)", text, flags=re.M))


def _queries() -> list[str]:
    dashboard = [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]
    template = yaml.safe_load((PLATFORM / "observability" / "analysis-template.yaml").read_text())
    rollouts = [m["provider"]["prometheus"]["query"] for m in template["spec"]["metrics"]]
    return [re.sub(r"\{\{args\.[a-z-]+\}\}", "x", q).replace("$service", "x") for q in dashboard + rollouts]


def test_the_dashboard_meets_grafana_s_model_and_its_panels_do_not_overlap() -> None:
    jsonschema.validate(DASHBOARD, DASHBOARD_SCHEMA)
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    cells = [
        (p["gridPos"]["x"] + dx, p["gridPos"]["y"] + dy)
        for p in DASHBOARD["panels"]
        for dx in range(p["gridPos"]["w"])
        for dy in range(p["gridPos"]["h"])
    ]
    assert len(cells) == len(set(cells)) and max(x for x, _ in cells) < 24


def test_a_panel_that_breaks_the_schema_is_caught() -> None:
    broken = {**DASHBOARD, "panels": [{**DASHBOARD["panels"][0], "gridPos": {"h": 8, "w": "wide", "x": 0, "y": 0}}]}
    with pytest.raises(jsonschema.ValidationError, match="'wide' is not of type 'integer'"):
        jsonschema.validate(broken, DASHBOARD_SCHEMA)


@pytest.mark.parametrize("query", _queries())
def test_every_query_parses_and_names_only_metrics_ctcd_exposes(query: str) -> None:
    promql_parser.parse(query)
    named = set(re.findall(r"\b(ctcd_[a-z_]+)", query))
    assert named and named <= _exposed(), named - _exposed()


def test_a_misspelt_metric_would_be_caught() -> None:
    assert "ctcd_gateway_handoff_total" not in _exposed() and "ctcd_gateway_handoffs_total" in _exposed()
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(ctcd_gateway_requests_total[5m])")


def _collector() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((PLATFORM / "collector.yaml").read_text()))


def test_the_pod_monitor_and_the_payload_logger_reach_the_collector() -> None:
    deployment, service = _collector()
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    monitor = yaml.safe_load((PLATFORM / "observability" / "podmonitor.yaml").read_text())
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports
    logger = overlays.payload_logger("7")
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert logger == {"mode": "all", "url": f"http://{host}/log?model_version=7"}
    assert service["spec"]["ports"][0]["port"] == 80
    secret = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "CTCD_FEEDBACK_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "ctcd-feedback", "key": "token"}},
    } in secret


def test_every_rollouts_metric_has_its_conditions_and_declared_args() -> None:
    template = yaml.safe_load((PLATFORM / "observability" / "analysis-template.yaml").read_text())
    declared = {a["name"] for a in template["spec"]["args"]}
    for metric in template["spec"]["metrics"]:
        assert {"successCondition", "failureCondition", "interval", "count"} <= set(metric), metric["name"]
        used = set(re.findall(r"\{\{args\.([a-z-]+)\}\}", json.dumps(metric)))
        assert used <= declared, used - declared
