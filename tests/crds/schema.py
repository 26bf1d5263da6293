"""Validate a manifest as the API server would: against its CRD's structural schema, then its CEL rules.

The CRD's ``openAPIV3Schema`` becomes a JSON Schema in which an object with ``properties`` admits no other field
(the API server's pruning would drop it, so it is reported), ``x-kubernetes-int-or-string`` admits both, and
``x-kubernetes-preserve-unknown-fields`` keeps what it keeps. Every ``x-kubernetes-validations`` rule is then
evaluated with ``self`` bound to the value it guards (cel-python).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

HERE = Path(__file__).parent


@functools.cache
def crds() -> dict[tuple[str, str], dict[str, Any]]:
    """Every vendored CRD's schema by (apiVersion, kind)."""
    found = {}
    for path in sorted(HERE.glob("*/*.yaml")):
        with path.open() as handle:
            crd = yaml.load(handle, Loader=yaml.CSafeLoader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            found[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return found


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema the API server's structural rules amount to."""
    out = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes-") and k not in ("nullable",)}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in schema:
        out["properties"] = {k: structural(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
            out["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = structural(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        out["items"] = structural(schema["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [structural(s) for s in schema[key]]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = structural(crds()[(api_version, kind)])
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is the API server's own, not the CRD's
    return jsonschema.Draft7Validator(schema)


def problems(doc: dict[str, Any]) -> list[str]:
    """What the API server would refuse in a manifest: schema errors, then broken CEL rules, each with its path."""
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    if key not in crds():
        return [f"no vendored CRD for {key[1]} {key[0]}"]
    found = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in _validator(*key).iter_errors(doc)
    ]
    return found or list(cel_problems(crds()[key], doc, ""))


def cel_problems(schema: dict[str, Any], value: Any, path: str) -> Iterator[str]:
    """Each ``x-kubernetes-validations`` rule that ``value`` breaks, below and at ``schema``."""
    for rule in schema.get("x-kubernetes-validations", []):
        if not _holds(rule["rule"], value):
            yield f"{path or '(root)'}: {rule.get('message') or rule['rule']}"
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                yield from cel_problems(sub, value[name], f"{path}.{name}".lstrip("."))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                yield from cel_problems(extra, item, f"{path}.{name}".lstrip("."))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from cel_problems(schema["items"], item, f"{path}[{index}]")


@functools.cache
def _program(rule: str) -> Any:
    limit = sys.getrecursionlimit()
    try:
        environment = celpy.Environment()  # it raises the interpreter's recursion limit, for every later test too
        return environment.program(environment.compile(rule))
    finally:
        sys.setrecursionlimit(limit)


def _holds(rule: str, value: Any) -> bool:
    result = _program(rule).evaluate({"self": celpy.json_to_cel(value)})
    return bool(result)
