"""Argo's node records: ids, phases, timestamps and the node tree's links."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from workflows.errors import CtcdError

FAILED = ("Failed", "Error")


class NodeError(CtcdError):
    """A node cannot run (bad input, missing artifact…); it ends in phase Error with this message."""


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


def continues(item: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Whether a failed node's ``continueOn`` lets its parent go on."""
    flags = item.get("continueOn") or {}
    return bool(
        (node["phase"] == "Failed" and flags.get("failed")) or (node["phase"] == "Error" and flags.get("error"))
    )


def add_child(parent: dict[str, Any], node: Mapping[str, Any]) -> None:
    """Link a node under its parent in the node tree (once)."""
    if node["id"] not in parent["children"]:
        parent["children"].append(node["id"])


def failures(nodes: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
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
