"""Argo's node records: ids, phases, timestamps and the node tree's links."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict, cast

from workflows.errors import CtcdError

FAILED = ("Failed", "Error")


class NodeFlag(TypedDict, total=False):
    """Argo's ``nodeFlag``: a hook's node, or an attempt of a retry."""

    hooked: bool
    retried: bool


class MemoizationStatus(TypedDict):
    """Argo's ``memoizationStatus``: whether the cache answered, under which key of which ConfigMap."""

    hit: bool
    key: str
    cacheName: str


class Parameter(TypedDict, total=False):
    """An input or output parameter as a node records it."""

    name: str
    value: str
    globalName: str
    default: str
    enum: list[str]
    description: str
    valueFrom: dict[str, Any]


class ArtifactRecord(TypedDict, total=False):
    """An input or output artifact as a node records it (where it is kept, and whether GC deleted it)."""

    name: str
    path: str
    s3: dict[str, str]
    raw: dict[str, str]
    http: dict[str, Any]
    archive: dict[str, Any]
    artifactGC: dict[str, str]
    globalName: str
    optional: bool
    deleted: bool
    mode: int
    recurseMode: bool
    subPath: str
    plugin: dict[str, Any]


class Outputs(TypedDict, total=False):
    """A node's outputs: parameters, artifacts, the step's result and exit code."""

    parameters: list[Parameter]
    artifacts: list[ArtifactRecord]
    result: str
    exitCode: str


class Inputs(TypedDict, total=False):
    """The inputs a node was called with, after binding."""

    parameters: list[Parameter]
    artifacts: list[ArtifactRecord]


class Node(TypedDict, total=False):
    """One node of a run in Argo's ``NodeStatus`` shape."""

    id: str
    name: str
    displayName: str
    type: str
    templateName: str
    phase: str
    message: str
    startedAt: str
    finishedAt: str
    boundaryID: str
    children: list[str]
    inputs: Inputs
    outputs: Outputs
    nodeFlag: NodeFlag
    memoizationStatus: MemoizationStatus
    daemoned: bool
    podIP: str
    hostNodeName: str
    progress: str
    estimatedDuration: int


class NodeError(CtcdError):
    """A node cannot run (bad input, missing artifact…); it ends in phase Error with this message."""


def parameter(name: str, value: str, declared: Mapping[str, Any]) -> Parameter:
    """An output parameter's record, with the ``globalName`` its declaration gives."""
    record: Parameter = {"name": name, "value": value}
    if declared.get("globalName"):
        record["globalName"] = str(declared["globalName"])
    return record


def artifact(fields: Mapping[str, Any], declared: Mapping[str, Any]) -> ArtifactRecord:
    """An artifact's record from the fields that locate it, with the ``globalName`` its declaration gives."""
    record = cast(ArtifactRecord, {**fields, "name": declared["name"]})
    if declared.get("globalName"):
        record["globalName"] = str(declared["globalName"])
    return record


def now() -> str:
    """An RFC 3339 timestamp, as Argo writes them."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_id(workflow_name: str, node_name: str) -> str:
    """Argo's node id: the workflow name for the root, else ``<workflow>-<fnv32a(node name)>``."""
    if node_name == workflow_name:
        return workflow_name
    value = 0x811C9DC5
    for byte in node_name.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{workflow_name}-{value}"


def pod_name(workflow_name: str, node_name: str, template_name: str) -> str:
    """Argo's v2 pod name: ``<workflow>-<template>-<fnv32a(node name)>`` (no template part for an inline one)."""
    if node_name == workflow_name:
        return workflow_name
    prefix = f"{workflow_name}-{template_name}" if template_name else workflow_name
    return f"{prefix[:242]}-{node_id('', node_name).lstrip('-')}"


def epoch(stamp: str) -> float:
    """An RFC 3339 timestamp of Argo's (with or without a fraction of a second) as seconds since the epoch."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def node_type(tmpl: Mapping[str, Any]) -> str:
    """The node type a template makes: DAG, Steps, HTTP, Suspend or Pod."""
    for key, kind in (("dag", "DAG"), ("steps", "Steps"), ("http", "HTTP"), ("suspend", "Suspend")):
        if key in tmpl:
            return kind
    return "Pod"


def continues(item: Mapping[str, Any], node: Node) -> bool:
    """Whether a failed node's ``continueOn`` lets its parent go on."""
    flags = item.get("continueOn") or {}
    return bool(
        (node["phase"] == "Failed" and flags.get("failed")) or (node["phase"] == "Error" and flags.get("error"))
    )


def add_child(parent: Node, node: Node) -> None:
    """Link a node under its parent in the node tree (once)."""
    if node["id"] not in parent["children"]:
        parent["children"].append(node["id"])


def failures(nodes: Mapping[str, Node]) -> list[dict[str, Any]]:
    """Argo's ``workflow.failures``: every failed pod, for the exit handler."""
    return [
        {
            "displayName": n["displayName"],
            "message": n.get("message", ""),
            "templateName": n.get("templateName", ""),
            "phase": n["phase"],
            "podName": n["id"],
            "finishedAt": n.get("finishedAt", ""),
        }
        for n in nodes.values()
        if n["type"] == "Pod" and n["phase"] in FAILED
    ]


EMPTY_LOOP = "Skipped, empty params"  # Argo's message for withItems/withParam/withSequence over nothing
FAIL_FAST = "template has failed or errored children and failFast enabled"  # Argo's words
ABSENT = "unable to substitute {{{{{tag}}}}}: output is an absent optional (skipped/omitted node with no default)"


def failed_children(tmpl: Mapping[str, Any], child: Mapping[str, Any]) -> str:
    """The message of a steps or DAG node a child failed: Argo's failFast words when the template sets it."""
    return FAIL_FAST if tmpl.get("failFast") else f"child '{child['id']}' failed"
