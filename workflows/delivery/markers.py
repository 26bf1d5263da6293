"""What the MLflow registry shows for what git serves: one projection, so the UI never runs ahead of serving.

Git's main branch says what serves (Argo CD syncs it); the registry shows it, and nothing else:

=============================  ============================================  ========================================
what main pins in ENV          aliases                                       stage of the version
=============================  ============================================  ========================================
vN at 100%                     ``ENV`` → vN                                  vN: ``Production`` (production) or
                                                                             ``Staging`` (staging only)
a canary vN at P% over vM      ``ENV`` → vN, ``ENV-prev`` → vM               vN and vM both, as above
an A/B split vN / vK           ``ENV`` → vN, ``ENV-b`` → vK                  vN and vK both, as above
nothing                        none                                          ``Archived`` if it had a stage
staging's newest pin           ``champion`` (what the gate compares with)
=============================  ============================================  ========================================

MLflow allows one stage per version, so a version serving in both environments shows ``Production``; the
aliases and the ``ctcd.serving`` tag (``production 100%, staging 20% (canary)``) say every place it serves. A
request that waits for a merge is the ``ctcd.pending`` tag on its version, never a marker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.platform import mlflow_tags

GATE_ALIAS = "champion"
STAGE = {"staging": "Staging", "production": "Production"}
ENVIRONMENTS = ("staging", "production")
SERVING_TAG = mlflow_tags.SERVING
PENDING_TAG = mlflow_tags.PENDING
ARCHIVED = "Archived"


def managed_aliases() -> set[str]:
    """Every alias the bridge keeps (a user moving one of them asks for a promotion, or is set back)."""
    names = {GATE_ALIAS}
    for env in ENVIRONMENTS:
        names |= {env, f"{env}-prev", f"{env}-b"}
    return names


def environment_of(alias: str) -> str:
    """The environment a user asks to change by moving ``alias`` ('' for an alias that asks nothing)."""
    if alias == GATE_ALIAS:
        return "staging"
    return alias if alias in ENVIRONMENTS else ""


@dataclass
class Projection:
    """The registry markers that tell what serves.

    Attributes:
        aliases: Alias → version.
        stages: Version → stage, for every version that serves.
        serving: Version → where it serves, for the ``ctcd.serving`` tag.
        pinned: Environment → the newest version pinned there ('' when none).
    """

    aliases: dict[str, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    serving: dict[str, list[str]] = field(default_factory=dict)
    pinned: dict[str, str] = field(default_factory=dict)

    def serve(self, env: str, version: str, share: str) -> None:
        """Record that ``version`` serves ``share`` of ``env``."""
        if not version:
            return
        self.serving.setdefault(version, []).append(f"{env} {share}")
        if self.stages.get(version) != STAGE["production"]:
            self.stages[version] = STAGE[env]


def shares(doc: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(alias suffix, version, share)`` of every version one version file serves."""
    a = str(doc["a"]["version"])
    if doc.get("weights") and doc.get("b"):
        weights, b = doc["weights"], doc["b"]
        return [
            ("", a, f"{weights.get(doc['a']['name'], '?')}% (A/B)"),
            ("-b", str(b["version"]), f"{weights.get(b['name'], '?')}% (A/B)"),
        ]
    canary, previous = doc.get("canary"), str(doc.get("previous") or "")
    if canary is None:
        return [("", a, "100%")]
    if not previous or previous == a:
        return [("", a, "100% (canary with nothing before it)")]
    return [("", a, f"{canary}% (canary)"), ("-prev", previous, f"{100 - int(canary)}% (previous)")]


def project(docs: Mapping[str, Mapping[str, Any] | None]) -> Projection:
    """The registry markers for one technique from its version files on main, by environment."""
    shown = Projection()
    for env in ENVIRONMENTS:
        doc = docs.get(env)
        shown.pinned[env] = str(doc["a"]["version"]) if doc else ""
        for suffix, version, share in shares(doc) if doc else []:
            shown.aliases[f"{env}{suffix}"] = version
            shown.serve(env, version, share)
    if shown.pinned["staging"]:
        shown.aliases[GATE_ALIAS] = shown.pinned["staging"]
    return shown
