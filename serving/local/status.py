"""KServe-shaped status of what local serving runs: InferenceServices, InferenceGraphs, and what is wrong.

``status.url`` is the URL KServe gives an InferenceService, ``http://<name>.<namespace>.<domain>``; the local
gateway routes that Host header.  ``status.address.url`` is the same service through the gateway's path form,
for a plain ``curl``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from serving import shared
from serving.local import graph as graph_routes
from serving.local.model import Revision, Service, traffic


def now() -> str:
    """RFC 3339, as Kubernetes writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def host(name: str, namespace: str, domain: str) -> str:
    """The Host KServe routes for an InferenceService or InferenceGraph."""
    return f"{name}.{namespace}.{domain}"


def path_url(base_url: str, name: str, namespace: str) -> str:
    """The gateway's path form of a service's v1 predict URL."""
    return f"{base_url}/namespaces/{namespace}/v1/models/{name}:predict"


def inference_service(service: Service, base_url: str, domain: str) -> dict[str, Any]:
    """One InferenceService with status in KServe's schema."""
    split = traffic(service)
    latest = service.latest()
    ready = bool(split) and latest is not None and latest.state == "Ready"
    condition = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now()}
    if latest is not None and not ready:
        condition.update(
            reason="RevisionFailed" if latest.state == "Failed" else "RevisionLoading",
            message=latest.message or f"revision {latest.name} is {latest.state.lower()}",
        )
    ready_revisions = [r.name for r in service.revisions if r.state == "Ready"]
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "creationTimestamp": service.created,
            "annotations": _who(service, latest, split),
        },
        "status": {
            "url": f"http://{host(service.name, service.namespace, domain)}",
            "address": {"url": path_url(base_url, service.name, service.namespace)},
            "conditions": [condition, {"type": "PredictorReady", "status": condition["status"]}],
            "components": {
                "predictor": {
                    "latestCreatedRevision": latest.name if latest else "",
                    "latestReadyRevision": ready_revisions[-1] if ready_revisions else "",
                    "latestRolledoutRevision": service.rolled_out,
                    "previousRolledoutRevision": next((t["revisionName"] for t in split if t.get("tag") == "prev"), ""),
                    "traffic": split,
                }
            },
            "modelStatus": {
                "transitionStatus": _transition(latest),
                "states": {"activeModelState": "Loaded" if split else "FailedToLoad"},
                "lastFailureInfo": {"message": latest.message} if latest and latest.message else {},
            },
            "deploymentMode": service.mode,
            **_canary_statuses(service, split),
        },
    }


def _transition(revision: Revision | None) -> str:
    """KServe's modelStatus.transitionStatus for the newest revision."""
    state = revision.state if revision is not None else ""
    return {"Ready": "UpToDate", "Failed": "BlockedByFailedLoad"}.get(state, "InProgress")


def _canary_statuses(service: Service, split: list[dict[str, Any]]) -> dict[str, Any]:
    """Standard mode's ``status.canaryStatuses``: the canary predictor, whether it is ready, and its share."""
    latest = service.latest()
    if not service.canary_name or latest is None:
        return {}
    share = next((t["percent"] for t in split if t["revisionName"] == latest.name), 0)
    failed = latest.state == "Failed"
    model = {
        "transitionStatus": _transition(latest),
        "states": {"activeModelState": {"Ready": "Loaded", "Failed": "FailedToLoad"}.get(latest.state, "Loading")},
        **({"lastFailureInfo": {"reason": "ModelLoadFailed", "message": latest.message}} if failed else {}),
    }
    entry = {"name": service.canary_name, "ready": latest.state == "Ready", "trafficPercent": share}
    return {"canaryStatuses": [{**entry, "modelStatus": model}]}


def _who(service: Service, latest: Any, split: list[dict[str, Any]]) -> dict[str, str]:
    """Who answers: the newest revision's registry version and run, and every version with its traffic share."""
    if latest is None:
        return {}
    shares = []
    for target in split:
        revision = service.get(target["revisionName"])
        if revision is not None and target.get("percent"):
            shares.append(f"v{revision.model_version or '?'} {target['percent']}%")
    return {
        shared.MODEL_VERSION: latest.model_version,
        shared.RUN_ID: latest.run_id,
        shared.SERVING: ", ".join(shares),
    }


def inference_graph(key: str, graph: dict[str, Any], base_url: str, domain: str, ready: set[str]) -> dict[str, Any]:
    """One InferenceGraph (``key`` is ``namespace/name``) with its URL, Ready when the services it routes to are.

    ``ready`` holds ``namespace/name`` of each Ready InferenceService; the rest are named in the condition.
    """
    namespace, name = key.split("/", 1)
    waiting = sorted(s for s in graph_routes.services(graph) if f"{namespace}/{s}" not in ready)
    condition = {"type": "Ready", "status": "False" if waiting else "True", "lastTransitionTime": now()}
    if waiting:
        condition.update(reason="ServicesNotReady", message=f"not ready: {', '.join(waiting)}")
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name, "namespace": namespace},
        "spec": graph["spec"],
        "status": {
            "url": f"http://{host(name, namespace, domain)}",
            "address": {"url": path_url(base_url, name, namespace)},
            "conditions": [condition],
        },
    }


def problems(items: list[dict[str, Any]]) -> list[str]:
    """One line per InferenceService that is not Ready, saying why ([] when all serve)."""
    found = []
    for item in items:
        ready = item["status"]["conditions"][0]
        if ready["status"] != "True":
            why = ready.get("message") or ready.get("reason") or "not ready"
            found.append(f"{item['metadata']['namespace']}/{item['metadata']['name']}: {why}")
    return found
