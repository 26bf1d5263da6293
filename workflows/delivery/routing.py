"""Routing between the techniques of one task: a KServe InferenceGraph per task, changed by commits.

Layout::

    gitops/tasks/<task>/base/                    kustomization.yaml, inferencegraph.yaml (equal Splitter)
    gitops/tasks/<task>/overlays/<env>/          kustomization.yaml, routing.yaml

``routing.yaml`` is the one file a routing change edits.  Without channels the graph's root is a Splitter
between the task's techniques (an A/B test across architectures).  With channels the root is a Switch: a
request whose body carries ``parameters.channel`` equal to a channel goes to that channel's technique, and
every other request goes on to the ``split`` node, the Splitter.  KServe evaluates Switch conditions (GJSON)
on the request body only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from serving import shared
from workflows.delivery import overlays
from workflows.delivery.overlays import ENVIRONMENTS, NAMESPACE, GitopsError, check_name
from workflows.platform import gitrepo

_logger = logging.getLogger(__name__)

SPLIT_NODE = "split"
DEFAULT_STEP = "default"
CHANNEL_FIELD = "parameters.channel"


def condition(channel: str) -> str:
    """The GJSON condition that matches a request body whose ``parameters.channel`` is ``channel``."""
    return f'[@this].#({CHANNEL_FIELD}=="{check_name(channel, "channel")}")'


@dataclass(frozen=True)
class Routing:
    """Where one environment sends a task's requests.

    Attributes:
        task: The task (the graph's name).
        environment: staging or production.
        weights: Technique → percent of the requests no channel claims (sums to 100; a 0 is dropped).
        channels: Channel → the technique that answers it alone.
    """

    task: str
    environment: str
    weights: dict[str, int]
    channels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse a bad name, environment, weight or channel (the message names it)."""
        check_name(self.task, "task")
        if self.environment not in ENVIRONMENTS:
            raise GitopsError(f"environment {self.environment!r} must be one of {', '.join(ENVIRONMENTS)}")
        if not self.weights or any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) != 100:
            raise GitopsError(f"weights {_show(self.weights)} must be 0..100 each and sum to 100")
        for technique in self.weights:
            check_name(technique, "technique")
        object.__setattr__(self, "weights", {t: w for t, w in self.weights.items() if w > 0})  # 0 is no step
        for channel, technique in self.channels.items():
            check_name(channel, "channel")
            check_name(technique, "technique")
            if channel == DEFAULT_STEP:
                raise GitopsError(f"channel {DEFAULT_STEP!r} is reserved for requests no channel claims")

    def techniques(self) -> set[str]:
        """Every technique the graph can send a request to."""
        return {t for t, w in self.weights.items() if w > 0} | set(self.channels.values())


def _show(weights: dict[str, int]) -> str:
    return ",".join(f"{t}={w}" for t, w in weights.items()) or "(none)"


def parse_weights(text: str) -> dict[str, int]:
    """``a=70,b=30`` → ``{"a": 70, "b": 30}``.

    Raises:
        GitopsError: A part is not ``technique=percent``.
    """
    weights: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise GitopsError(f"weight {part!r} must be TECHNIQUE=PERCENT, e.g. intent-classifier=70")
        weights[check_name(name.strip(), "technique")] = int(value)
    return weights


def parse_channels(items: list[str]) -> dict[str, str]:
    """``["chat=intent-spacy"]`` → ``{"chat": "intent-spacy"}``.

    Raises:
        GitopsError: An item is not ``channel=technique``.
    """
    channels: dict[str, str] = {}
    for item in items:
        channel, sep, technique = item.partition("=")
        if not sep or not technique.strip():
            raise GitopsError(f"channel {item!r} must be CHANNEL=TECHNIQUE, e.g. chat=intent-spacy")
        channels[check_name(channel.strip(), "channel")] = check_name(technique.strip(), "technique")
    return channels


def _splitter(weights: dict[str, int]) -> dict[str, Any]:
    steps = [{"serviceName": t, "name": t, "weight": w} for t, w in weights.items() if w > 0]
    return {"routerType": "Splitter", "steps": steps}


def graph(task: str, routing: Routing | None, techniques: list[str]) -> dict[str, Any]:
    """The InferenceGraph of a task: equal weights across ``techniques`` without ``routing``, else its routes."""
    if routing is None:
        share, rest = divmod(100, len(techniques))
        weights = {t: share + (1 if i < rest else 0) for i, t in enumerate(techniques)}
        nodes = {"root": _splitter(weights)}
    elif not routing.channels:
        nodes = {"root": _splitter(routing.weights)}
    else:
        steps: list[dict[str, Any]] = [
            {"name": c, "condition": condition(c), "serviceName": t} for c, t in routing.channels.items()
        ]
        steps.append({"name": DEFAULT_STEP, "condition": "@this", "nodeName": SPLIT_NODE})
        nodes = {"root": {"routerType": "Switch", "steps": steps}, SPLIT_NODE: _splitter(routing.weights)}
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": task, "labels": {shared.PART_OF: "ctcd", shared.TASK: task}},
        "spec": {"nodes": nodes},
    }


def base_files(task: str, techniques: list[str]) -> dict[str, str]:
    """``base/`` of a task's graph (generated by ``ctcd compile``), relative to ``gitops/tasks/<task>``."""
    header = (
        f"# Generated by `ctcd compile` for task {task}. Routing is set per environment in overlays/*/routing.yaml.\n"
    )
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["inferencegraph.yaml"],
    }
    return {
        "base/kustomization.yaml": header + yaml.safe_dump(kustomization, sort_keys=False),
        "base/inferencegraph.yaml": header + yaml.safe_dump(graph(task, None, techniques), sort_keys=False),
    }


def overlay_files(routing: Routing) -> dict[str, str]:
    """``overlays/<env>/kustomization.yaml`` and ``routing.yaml``, relative to ``gitops/tasks/<task>``."""
    task, env = routing.task, routing.environment
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE[env],
        "resources": ["../../base"],
        "patches": [{"path": "routing.yaml"}],
    }
    doc = graph(task, routing, [])
    doc["metadata"] = {"name": task}
    header = f"# Task {task} in {env}: the one file a routing change edits (`ctcd route`).\n"
    return {
        f"overlays/{env}/kustomization.yaml": f"# Task {task} in {env}.\n"
        + yaml.safe_dump(kustomization, sort_keys=False),
        f"overlays/{env}/routing.yaml": header + yaml.safe_dump(doc, sort_keys=False),
    }


def read_routing(task: str, environment: str, text: str) -> Routing:
    """The routing a ``routing.yaml`` says.

    Raises:
        GitopsError: The file is not a routing file ctcd wrote.
    """
    try:
        nodes = yaml.safe_load(text)["spec"]["nodes"]
        root = nodes["root"]
        if root["routerType"] == "Splitter":
            return Routing(task, environment, {s["serviceName"]: int(s["weight"]) for s in root["steps"]})
        channels = {s["name"]: s["serviceName"] for s in root["steps"] if "serviceName" in s}
        weights = {s["serviceName"]: int(s["weight"]) for s in nodes[SPLIT_NODE]["steps"]}
        return Routing(task, environment, weights, channels)
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise GitopsError(f"routing file of {task} in {environment} is not one ctcd wrote: {exc!r}") from exc


def branch_name(environment: str, task: str) -> str:
    """``route/<env>/<task>``: where a routing change waits for its merge."""
    return f"route/{environment}/{check_name(task, 'task')}"


def is_branch(branch: str) -> bool:
    """Whether ``branch`` is a routing branch (``route/<env>/<task>``)."""
    parts = branch.split("/")
    return (
        len(parts) == 3 and parts[0] == "route" and parts[1] in ENVIRONMENTS and bool(overlays.DNS1123.match(parts[2]))
    )


def _pinned(repo: Path, environment: str) -> set[str]:
    found = repo.glob(f"gitops/models/*/overlays/{environment}/version.yaml")
    return {path.parts[-4] for path in found}


def check_members(task: str, named: Iterable[str], techniques: list[str]) -> None:
    """Refuse any technique named outside the task, even at weight 0 (a typo there would hide otherwise).

    Raises:
        GitopsError: Naming the technique and the task's techniques.
    """
    for technique in sorted(set(named)):
        if technique not in techniques:
            raise GitopsError(f"{technique} does not solve task {task} (its techniques: {', '.join(techniques)})")


def check(routing: Routing, techniques: list[str], pinned: set[str]) -> None:
    """Refuse routes to a technique outside the task, or to one the environment does not serve.

    Raises:
        GitopsError: The message names the technique and what to do.
    """
    check_members(routing.task, routing.techniques(), techniques)
    for technique in sorted(routing.techniques()):
        if technique not in pinned:
            raise GitopsError(
                f"{technique} is not served in {routing.environment}: promote a version of it there first "
                f"(`ctcd promote {technique} VERSION --env {routing.environment}`)"
            )


def route(remote: str, main: str, routing: Routing, techniques: list[str], to_main: bool) -> tuple[str, str, bool]:
    """Commit a task's routing in an environment and push it (to ``main`` or to ``route/<env>/<task>``).

    Returns:
        ``(branch, commit, changed)``; ``changed`` is False when the remote already routes so.

    Raises:
        GitopsError: A technique outside the task or not served there (nothing is committed).
        ManifestError: The rendered graph is invalid (nothing is committed).
    """
    overlays.check_ref(main, "main branch")
    folder = f"gitops/tasks/{routing.task}"
    files = {f"{folder}/{rel}": text for rel, text in base_files(routing.task, techniques).items()}
    files.update({f"{folder}/{rel}": text for rel, text in overlay_files(routing).items()})
    how = _show(routing.weights) + "".join(f", {c}→{t}" for c, t in routing.channels.items())
    message = f"Route {routing.task} in {routing.environment}: {how}"
    trailers = {"Task": routing.task, "Environment": routing.environment, "Weights": _show(routing.weights)}
    branch = main if to_main else branch_name(routing.environment, routing.task)
    with gitrepo.scratch_clone(remote, main) as repo:
        check(routing, techniques, _pinned(repo, routing.environment))
        if not to_main:
            gitrepo.git(repo, "checkout", "--quiet", "-B", branch)

        def apply() -> str | None:
            if not gitrepo.write_files(repo, files):
                return None
            _validate(repo / folder / "overlays" / routing.environment, routing)
            return gitrepo.commit(repo, message, trailers)

        if apply() is None:
            return branch, gitrepo.git(repo, "rev-parse", "HEAD").stdout.strip(), False
        if to_main:
            pushed = gitrepo.push_with_retry(repo, branch, reapply=apply)
        else:
            gitrepo.git(repo, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")
            pushed = gitrepo.git(repo, "rev-parse", "HEAD").stdout.strip()
    _logger.info("%s: %s on %s", message, pushed[:12], branch)
    return branch, pushed, True


def _validate(overlay: Path, routing: Routing) -> None:
    from workflows.delivery.manifests import kustomize, validate

    validate(kustomize(overlay), f"task {routing.task}/{routing.environment}")


def current(remote: str, main: str, task: str, environment: str) -> Routing | None:
    """The routing of a task in an environment on ``main`` (None when it was never routed)."""
    rel = f"gitops/tasks/{check_name(task, 'task')}/overlays/{environment}/routing.yaml"
    with gitrepo.scratch_clone(remote, main, only=rel) as repo:
        path = Path(repo) / rel
        return read_routing(task, environment, path.read_text()) if path.exists() else None
