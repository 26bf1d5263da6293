"""Container and script templates as host processes: inputs fetched, paths mapped, outputs collected.

The image is ignored (and said so in the node's log); a hera runner script runs exactly as in its container.
Every path a template declares is mapped into the node's own folder, so parallel steps never collide.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.engine import artifacts
from workflows.engine.expr import substitute, substitute_all
from workflows.engine.frames import as_param
from workflows.engine.nodes import NodeError, now
from workflows.engine.processes import spawn

if TYPE_CHECKING:
    from workflows.engine.run import Run

HERA_OUTPUTS_ENV = "hera__outputs_directory"


async def run_pod(run: Run, node: dict[str, Any], tmpl: dict[str, Any], attempt: int) -> None:
    """Run a container or script template as a host process and record its outputs."""
    body = dict(tmpl.get("script") or tmpl["container"])
    node_dir = run.dir / "nodes" / node["id"]
    fs_root = node_dir / "fs"
    extra = {"retries": str(attempt), "pod.name": node["id"], "node.name": node["name"]}
    body = substitute_all(body, extra)
    mapping = path_mapping(tmpl, fs_root)
    for art in (tmpl.get("inputs") or {}).get("artifacts", []):
        await asyncio.to_thread(fetch_input, run, art, mapping)
    argv = [remap(a, mapping) for a in [*body.get("command", []), *body.get("args", [])]]
    if "source" in body:
        node_dir.mkdir(parents=True, exist_ok=True)
        script = node_dir / "script"
        script.write_text(remap(substitute(body["source"], extra), mapping))
        argv.append(str(script))
    if argv and argv[0] in ("python", "python3", "python3.11"):
        argv[0] = sys.executable
    env = pod_env(run, body, mapping)
    run.log(node, f"image {body.get('image', '-')!r} ignored: running `{' '.join(argv)[:300]}` as a local process")
    async with run.pod_slots:  # a pod holds its slot until it is complete, as in Argo
        node.update({"startedAt": now(), "hostNodeName": "localhost"})
        code, stdout = await spawn(run, node, argv, env, Path(remap(body.get("workingDir", ""), mapping) or node_dir))
        node["outputs"] = {"exitCode": str(code)}
        if "script" in tmpl or stdout:
            node["outputs"]["result"] = stdout.strip()[-262144:]
        if code != 0:
            run.finish(node, "Failed", f"Error (exit code {code})")
            return
        await asyncio.to_thread(collect_outputs, run, node, tmpl, mapping)
        run.finish(node, "Succeeded")


def pod_env(run: Run, body: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, str]:
    """A step's environment: the platform's, then ``envFrom``, then ``env`` (paths mapped)."""
    env = {**os.environ, **run.engine.base_env, "ARGO_WORKFLOW_NAME": run.name, **run.engine.thread_env()}
    for source in body.get("envFrom", []):
        env.update(run.engine.objects.all_of(source))
    for item in body.get("env", []):
        if "valueFrom" in item:
            ((ref_kind, ref),) = item["valueFrom"].items()
            env[item["name"]] = run.engine.objects.lookup(ref_kind, ref)
        elif item["name"] == HERA_OUTPUTS_ENV:
            env[item["name"]] = mapping.get(item.get("value", ""), remap(item.get("value", ""), mapping))
        else:
            env[item["name"]] = remap(str(item.get("value", "")), mapping)
    return env


def fetch_input(run: Run, art: dict[str, Any], mapping: Mapping[str, str]) -> None:
    """Put an input artifact (raw or from S3) where the template expects it."""
    dest = Path(mapping[art["path"]])
    if "raw" in art:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(art["raw"].get("data", ""))
        return
    if "s3" not in art:
        if art.get("optional"):
            return
        raise NodeError(f"inputs.artifacts.{art['name']} has no source (from, s3 or raw)")
    bucket = art["s3"].get("bucket") or run.engine.artifacts_bucket
    try:
        artifacts.download(run.engine.s3(), bucket, art["s3"]["key"], dest, artifacts.is_raw(art))
    except Exception as exc:  # botocore raises many types; all mean the artifact is unavailable
        if art.get("optional"):
            return
        raise NodeError(
            f"cannot fetch input artifact {art['name']} from s3://{bucket}/{art['s3']['key']}: {exc}"
        ) from exc


def collect_outputs(run: Run, node: dict[str, Any], tmpl: dict[str, Any], mapping: Mapping[str, str]) -> None:
    """Read a finished step's output parameters and upload its output artifacts."""
    outputs = tmpl.get("outputs") or {}
    params = []
    for param in outputs.get("parameters", []):
        value_from = param.get("valueFrom") or {}
        path = Path(mapping.get(value_from.get("path", ""), "/nonexistent"))
        if path.is_file():
            text = path.read_text()
            params.append({"name": param["name"], "value": text[:-1] if text.endswith("\n") else text})
        elif "default" in value_from:
            params.append({"name": param["name"], "value": as_param(value_from["default"])})
        else:
            raise NodeError(f"output parameter {param['name']}: {value_from.get('path')} was not written")
    arts = [upload_artifact(run, node, art, mapping) for art in outputs.get("artifacts", [])]
    if params:
        node["outputs"]["parameters"] = params
    if any(arts):
        node["outputs"]["artifacts"] = [a for a in arts if a]


def upload_artifact(run: Run, node: dict[str, Any], art: dict[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """Upload one output artifact to S3; return its record, or {} for a missing optional one."""
    source = Path(mapping[art["path"]])
    if not source.exists() and art.get("optional"):
        return {}
    key = (art.get("s3") or {}).get("key") or f"{run.name}/{node['id']}/{art['name']}.tgz"
    bucket = (art.get("s3") or {}).get("bucket") or run.engine.artifacts_bucket
    try:
        artifacts.upload(run.engine.s3(), bucket, key, source, artifacts.is_raw(art))
    except FileNotFoundError as exc:
        raise NodeError(str(exc)) from exc
    record = {"name": art["name"], "path": art["path"], "s3": {"bucket": bucket, "key": key}}
    if art.get("archive"):
        record["archive"] = art["archive"]
    return record


def path_mapping(tmpl: Mapping[str, Any], fs_root: Path) -> dict[str, str]:
    """Map every container path a template declares to a host path under the node's own folder."""
    paths = {a["path"] for a in (tmpl.get("inputs") or {}).get("artifacts", []) if a.get("path")}
    outputs = tmpl.get("outputs") or {}
    paths |= {a["path"] for a in outputs.get("artifacts", []) if a.get("path")}
    paths |= {(p.get("valueFrom") or {}).get("path", "") for p in outputs.get("parameters", [])} - {""}
    body = tmpl.get("script") or tmpl.get("container") or {}
    paths |= {e.get("value", "") for e in body.get("env", []) if e.get("name") == HERA_OUTPUTS_ENV} - {""}
    mapping = {p: str(fs_root) + p for p in paths if p.startswith("/")}
    for host in mapping.values():
        Path(host).parent.mkdir(parents=True, exist_ok=True)
    return mapping


def remap(text: str, mapping: Mapping[str, str]) -> str:
    """Replace whole container paths with their host paths in one pass (a host path is never re-mapped)."""
    if not mapping or not text:
        return text
    alternation = "|".join(re.escape(p) for p in sorted(mapping, key=len, reverse=True))
    pattern = rf"(?<![\w./-])({alternation})(?=$|[/\s\"'>;:|)&,])"
    return re.sub(pattern, lambda m: mapping[m.group(1)], text)
