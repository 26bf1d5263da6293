"""Container and script templates as host processes: inputs fetched, paths mapped, outputs collected.

The image is ignored (and said so in the node's log); a hera runner script runs exactly as in its container.
Every path a template declares is mapped into the node's own folder, so parallel steps never collide.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.engine.frames import as_param
from workflows.engine.language.tags import substitute_all
from workflows.engine.pod import artifacts, containers, processes, volumes
from workflows.engine.pod.paths import path_mapping
from workflows.engine.pod.spawn import pod_ip, progress_file, spawn_container, start_container
from workflows.engine.state import progress
from workflows.engine.state.nodes import ArtifactRecord, Node, NodeError, Parameter, now, parameter, pod_name
from workflows.engine.state.nodes import artifact as artifact_record
from workflows.engine.state.signals import while_suspended

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


async def run_pod(run: RunContext, node: Node, tmpl: dict[str, Any], attempt: int) -> None:
    """Run a container, script or containerSet template as host processes and record its outputs.

    Init containers run first, in order; sidecars run beside the main container and are stopped when it
    ends; a ``daemon`` template's node stays Running (daemoned) until its scope ends.
    """
    pod = pod_name(run.name, node["name"], str(tmpl.get("name", "")))
    extra = {"retries": str(attempt), "pod.name": pod, "node.name": node["name"]}
    tmpl = {**tmpl, **{k: substitute_all(tmpl[k], extra) for k in ("script", "container", "containerSet") if k in tmpl}}
    node_dir = run.dir / "nodes" / node["id"]
    mapping = path_mapping(tmpl, node_dir / "fs", volumes.mounts(run, node_dir, tmpl))
    for art in (tmpl.get("inputs") or {}).get("artifacts", []):
        await asyncio.to_thread(fetch_input, run, art, mapping)
    if tmpl.get("daemon"):
        await daemon(run, node, tmpl, mapping, node_dir)
        return
    await while_suspended(run.dir)
    async with run.pod_slots:  # a pod holds its slot until it is complete, as in Argo
        node["startedAt"], node["hostNodeName"] = now(), "localhost"
        for init in tmpl.get("initContainers") or []:
            code, _ = await spawn_container(run, _part(node, init), init, mapping, node_dir)
            if code != 0:
                run.finish(node, "Failed", f"init container {init.get('name')} failed (exit code {code})")
                return
        sidecars = [
            await start_container(run, _part(node, c), c, mapping, node_dir) for c in tmpl.get("sidecars") or []
        ]
        watcher = asyncio.ensure_future(_watch_progress(run, node, progress_file(node_dir)))
        try:
            if "containerSet" in tmpl:
                code, stdout = await containers.run_set(run, node, tmpl, mapping, node_dir)
            else:
                code, stdout = await spawn_container(
                    run, node, tmpl.get("script") or tmpl["container"], mapping, node_dir
                )
        finally:
            watcher.cancel()
            _read_progress(run, node, progress_file(node_dir))
            for sidecar in sidecars:
                await sidecar.stop()
        await _finish_pod(run, node, tmpl, mapping, code, stdout)


async def _finish_pod(
    run: RunContext, node: Node, tmpl: dict[str, Any], mapping: Mapping[str, str], code: int, stdout: str
) -> None:
    node["outputs"] = {"exitCode": str(code)}
    if "script" in tmpl or stdout:
        node["outputs"]["result"] = stdout.strip()[-262144:]
    if code != 0:
        await asyncio.to_thread(archive_logs, run, node, tmpl)
        run.finish(node, "Failed", f"Error (exit code {code})")
        return
    await asyncio.to_thread(collect_outputs, run, node, tmpl, mapping)
    await asyncio.to_thread(archive_logs, run, node, tmpl)
    run.finish(node, "Succeeded")


def archive_logs(run: RunContext, node: Node, tmpl: Mapping[str, Any]) -> None:
    """Keep the pod's log as its ``main-logs`` output artifact when the template or the workflow archives logs."""
    repository = (run.status.get("artifactRepositoryRef") or {}).get("artifactRepository") or {}
    choices = (
        (tmpl.get("archiveLocation") or {}).get("archiveLogs"),
        run.spec.get("archiveLogs"),
        repository.get("archiveLogs"),
    )
    if not next(
        (c for c in choices if c is not None), False
    ):  # the template's, else the workflow's, else the repository's
        return
    key = f"{run.name}/{pod_name(run.name, node['name'], str(tmpl.get('name', '')))}/main.log"
    log = run.engine.store.log_path(run.name, node["id"])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    artifacts.upload(run.engine.s3(), run.bucket, key, log, raw=True)
    record: ArtifactRecord = {"name": "main-logs", "s3": {"bucket": run.bucket, "key": key}}
    node["outputs"]["artifacts"] = [*node["outputs"].get("artifacts", []), record]


PROGRESS_TICK = 1.0  # seconds between reads of a pod's progress file


async def _watch_progress(run: RunContext, node: Node, path: Path) -> None:
    """Copy the progress a step writes to its progress file onto its node while it runs."""
    while True:
        await asyncio.sleep(PROGRESS_TICK)
        _read_progress(run, node, path)


def _read_progress(run: RunContext, node: Node, path: Path) -> None:
    value = progress.reported(path)
    if value is not None and value != node.get("progress"):
        node["progress"] = value
        run.touch()


def _part(node: Node, body: Mapping[str, Any]) -> Node:
    """A stand-in node for a pod's extra container (init or sidecar): its own log, under the pod's id."""
    return {"id": f"{node['id']}-{body.get('name', 'container')}", "name": f"{node['name']}.{body.get('name', '')}"}


async def daemon(run: RunContext, node: Node, tmpl: dict[str, Any], mapping: Mapping[str, str], node_dir: Path) -> None:
    """Start a daemon template; its node is Running (daemoned) until the scope that started it ends."""
    body = tmpl.get("script") or tmpl["container"]
    address = pod_ip(node)
    node.update({"startedAt": now(), "hostNodeName": "localhost", "podIP": address, "daemoned": True})
    child = await start_container(run, node, body, mapping, node_dir, address)
    await _until_ready(run, node, body, child)
    if child.proc.returncode is not None:
        code, _ = await child.wait()
        run.finish(node, "Failed", f"daemon exited (exit code {code}) before its scope ended")
        return
    run.daemons.setdefault(node.get("boundaryID", ""), []).append((node, child))


async def _until_ready(run: RunContext, node: Node, body: Mapping[str, Any], child: processes.Child) -> None:
    """Wait for a daemon's readinessProbe (an httpGet or tcpSocket port on 127.0.0.1), for at most 60 s."""
    probe = body.get("readinessProbe") or {}
    port = (probe.get("httpGet") or probe.get("tcpSocket") or {}).get("port")
    await asyncio.sleep(min(float(probe.get("initialDelaySeconds", 0)), 5.0))
    if not port:
        return
    for _ in range(600):
        if child.proc.returncode is not None:
            return
        try:
            _, writer = await asyncio.open_connection(node.get("podIP", "127.0.0.1"), int(port))
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        run.log(node, f"ready: port {port} answers")
        return


async def stop_daemons(run: RunContext, scope_id: str) -> None:
    """Stop the daemons a steps or DAG template started, as Argo does when their scope ends."""
    for node, child in run.daemons.pop(scope_id, []):
        await child.stop()
        if node["phase"] == "Running":
            run.finish(node, "Succeeded", "daemon stopped: its scope ended")
        for parent in run.nodes.values():  # the daemon's Retry node ends with it
            if parent["type"] == "Retry" and parent.get("daemoned") and node["id"] in parent["children"]:
                parent["outputs"] = node.get("outputs", {})
                run.finish(parent, node["phase"])


def fetch_input(run: RunContext, art: dict[str, Any], mapping: Mapping[str, str]) -> None:
    """Put an input artifact where the template expects it, with the file ``mode`` it asks for."""
    _fetch(run, art, mapping)
    dest = Path(mapping[art["path"]])
    if art.get("mode") is not None and dest.exists():
        artifacts.set_mode(dest, int(art["mode"]), bool(art.get("recurseMode")))


def _fetch(run: RunContext, art: dict[str, Any], mapping: Mapping[str, str]) -> None:
    """Put an input artifact (raw, http or S3; only its ``subPath`` when one is given) in place."""
    dest = Path(mapping[art["path"]])
    if art.get("subPath"):
        with tempfile.TemporaryDirectory() as tmp:
            whole = Path(tmp) / "artifact"
            _fetch(run, {k: v for k, v in art.items() if k != "subPath"}, {art["path"]: str(whole)})
            part = whole / art["subPath"]
            if not part.exists():
                raise NodeError(f"inputs.artifacts.{art['name']}: subPath {art['subPath']!r} is not in the artifact")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(part, dest) if part.is_dir() else shutil.copyfile(part, dest)
        return
    if "raw" in art:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(art["raw"].get("data", ""))
        return
    if "http" in art:
        headers = {h["name"]: str(h.get("value", "")) for h in art["http"].get("headers") or []}
        try:
            artifacts.fetch_http(art["http"]["url"], headers, dest)
        except OSError as exc:
            if not art.get("optional"):
                raise NodeError(f"cannot fetch input artifact {art['name']}: {exc}") from exc
        return
    if "s3" not in art:
        if art.get("optional"):
            return
        raise NodeError(f"inputs.artifacts.{art['name']} has no source (from, s3, http or raw)")
    bucket = art["s3"].get("bucket") or run.bucket
    try:
        artifacts.download(run.engine.s3(), bucket, art["s3"]["key"], dest, artifacts.is_raw(art))
    except Exception as exc:  # botocore raises many types; all mean the artifact is unavailable
        if art.get("optional"):
            return
        raise NodeError(
            f"cannot fetch input artifact {art['name']} from s3://{bucket}/{art['s3']['key']}: {exc}"
        ) from exc


def collect_outputs(run: RunContext, node: Node, tmpl: dict[str, Any], mapping: Mapping[str, str]) -> None:
    """Read a finished step's output parameters and upload its output artifacts."""
    outputs = tmpl.get("outputs") or {}
    params: list[Parameter] = []
    for param in outputs.get("parameters", []):
        value_from = param.get("valueFrom") or {}
        path = Path(mapping.get(value_from.get("path", ""), "/nonexistent"))
        if path.is_file():
            text = path.read_text()
            params.append(parameter(param["name"], text[:-1] if text.endswith("\n") else text, param))
        elif "default" in value_from:
            params.append(parameter(param["name"], as_param(value_from["default"]), param))
        else:
            raise NodeError(f"output parameter {param['name']}: {value_from.get('path')} was not written")
    arts = [upload_artifact(run, node, art, mapping) for art in outputs.get("artifacts", [])]
    if params:
        node["outputs"]["parameters"] = params
    if any(arts):
        node["outputs"]["artifacts"] = [a for a in arts if a is not None]


def upload_artifact(
    run: RunContext, node: Node, art: dict[str, Any], mapping: Mapping[str, str]
) -> ArtifactRecord | None:
    """Upload one output artifact to S3; return its record, or None for a missing optional one."""
    source = Path(mapping[art["path"]])
    if not source.exists() and art.get("optional"):
        return None
    s3 = art.get("s3") or {}
    key = s3.get("key") or f"{run.name}/{node['id']}/{art['name']}.tgz"
    bucket = s3.get("bucket") or run.bucket
    if "createBucketIfNotPresent" in s3:
        artifacts.ensure_bucket(run.engine.s3(), bucket)
    level = int(((art.get("archive") or {}).get("tar") or {}).get("compressionLevel", -1))
    try:
        artifacts.upload(run.engine.s3(), bucket, key, source, artifacts.is_raw(art), level)
    except FileNotFoundError as exc:
        raise NodeError(str(exc)) from exc
    fields = {"path": art["path"], "s3": {"bucket": bucket, "key": key}}
    record = artifact_record({**fields, **{k: art[k] for k in ("archive", "artifactGC") if art.get(k)}}, art)
    return record
