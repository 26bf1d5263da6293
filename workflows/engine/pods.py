"""Container and script templates as host processes: inputs fetched, paths mapped, outputs collected.

The image is ignored (and said so in the node's log); a hera runner script runs exactly as in its container.
Every path a template declares is mapped into the node's own folder, so parallel steps never collide.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.engine import artifacts, containers, images, processes, suspend, volumes
from workflows.engine.expr import substitute_all
from workflows.engine.frames import as_param
from workflows.engine.nodes import NodeError, now

if TYPE_CHECKING:
    from workflows.engine.run import Run

HERA_OUTPUTS_ENV = "hera__outputs_directory"
BASH = shutil.which("bash")


async def run_pod(run: Run, node: dict[str, Any], tmpl: dict[str, Any], attempt: int) -> None:
    """Run a container, script or containerSet template as host processes and record its outputs.

    Init containers run first, in order; sidecars run beside the main container and are stopped when it
    ends; a ``daemon`` template's node stays Running (daemoned) until its scope ends.
    """
    extra = {"retries": str(attempt), "pod.name": node["id"], "node.name": node["name"]}
    tmpl = {**tmpl, **{k: substitute_all(tmpl[k], extra) for k in ("script", "container", "containerSet") if k in tmpl}}
    node_dir = run.dir / "nodes" / node["id"]
    mapping = path_mapping(tmpl, node_dir / "fs", volumes.mounts(run, node_dir, tmpl))
    for art in (tmpl.get("inputs") or {}).get("artifacts", []):
        await asyncio.to_thread(fetch_input, run, art, mapping)
    if tmpl.get("daemon"):
        await daemon(run, node, tmpl, mapping, node_dir)
        return
    await suspend.while_suspended(run)
    async with run.pod_slots:  # a pod holds its slot until it is complete, as in Argo
        node.update({"startedAt": now(), "hostNodeName": "localhost"})
        for init in tmpl.get("initContainers") or []:
            code, _ = await spawn_container(run, _part(node, init), init, mapping, node_dir)
            if code != 0:
                run.finish(node, "Failed", f"init container {init.get('name')} failed (exit code {code})")
                return
        sidecars = [
            await start_container(run, _part(node, c), c, mapping, node_dir) for c in tmpl.get("sidecars") or []
        ]
        try:
            if "containerSet" in tmpl:
                code, stdout = await containers.run_set(run, node, tmpl, mapping, node_dir)
            else:
                code, stdout = await spawn_container(
                    run, node, tmpl.get("script") or tmpl["container"], mapping, node_dir
                )
        finally:
            for sidecar in sidecars:
                await sidecar.stop()
        await _finish_pod(run, node, tmpl, mapping, code, stdout)


async def _finish_pod(
    run: Run, node: dict[str, Any], tmpl: dict[str, Any], mapping: Mapping[str, str], code: int, stdout: str
) -> None:
    node["outputs"] = {"exitCode": str(code)}
    if "script" in tmpl or stdout:
        node["outputs"]["result"] = stdout.strip()[-262144:]
    if code != 0:
        run.finish(node, "Failed", f"Error (exit code {code})")
        return
    await asyncio.to_thread(collect_outputs, run, node, tmpl, mapping)
    run.finish(node, "Succeeded")


def _part(node: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """A stand-in node for a pod's extra container (init or sidecar): its own log, under the pod's id."""
    return {"id": f"{node['id']}-{body.get('name', 'container')}", "name": f"{node['name']}.{body.get('name', '')}"}


def container_argv(run: Run, node: Mapping[str, Any], body: Mapping[str, Any], mapping: Mapping[str, str]) -> list[str]:
    """The host command line of one container or script, as its image would run it."""
    command, args = list(body.get("command") or []), list(body.get("args") or [])
    standin = images.local_argv(str(body.get("image", "")), command, args)
    argv = standin or [remap(a, mapping) for a in [*command, *args]]
    if standin:
        argv = [*argv[:4], *[remap(a, mapping) for a in argv[4:]]]
    if "source" in body:
        script = run.dir / "nodes" / node["id"] / "script"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(remap(body["source"], mapping))
        script.chmod(0o755)  # Argo's script file is executable: `command: [sh, -c]` runs it as a program
        argv.append(str(script))
    if argv and argv[0] in ("python", "python3", "python3.11"):
        argv[0] = sys.executable
    elif argv and argv[0] in ("sh", "/bin/sh") and BASH:
        argv[0] = BASH  # images' sh (busybox ash) takes `>& file` and other forms the host's dash refuses
    if not argv:
        raise NodeError(f"container {body.get('name', '')!r} of image {body.get('image')!r} has no command to run")
    return argv


async def start_container(
    run: Run,
    node: dict[str, Any],
    body: Mapping[str, Any],
    mapping: Mapping[str, str],
    node_dir: Path,
    pod_ip: str = "127.0.0.1",
) -> processes.Child:
    """Start one container in the background (a sidecar or a daemon)."""
    argv = container_argv(run, node, body, mapping)
    run.log(node, f"image {body.get('image', '-')!r}: running `{' '.join(argv)[:300]}` as a local process")
    cwd = Path(remap(body.get("workingDir", ""), mapping) or node_dir / "fs")  # a container starts in `/`
    env = {**pod_env(run, body, mapping), "CTCD_POD_IP": pod_ip}
    return await processes.start(run, node, argv, env, cwd)


def pod_ip(node: Mapping[str, Any]) -> str:
    """A loopback address of the pod's own (all of 127.0.0.0/8 is loopback).

    Two daemons serving the same port, as two pods would on a cluster, then do not collide.
    """
    digest = int(hashlib.sha256(str(node["id"]).encode()).hexdigest(), 16)
    return f"127.{digest % 250 + 1}.{(digest >> 8) % 256}.{(digest >> 16) % 254 + 1}"


async def spawn_container(
    run: Run, node: dict[str, Any], body: Mapping[str, Any], mapping: Mapping[str, str], node_dir: Path
) -> tuple[int, str]:
    """Run one container to its exit; return its exit code and stdout."""
    child = await start_container(run, node, body, mapping, node_dir)
    return await child.wait()


async def daemon(
    run: Run, node: dict[str, Any], tmpl: dict[str, Any], mapping: Mapping[str, str], node_dir: Path
) -> None:
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


async def _until_ready(run: Run, node: dict[str, Any], body: Mapping[str, Any], child: processes.Child) -> None:
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


async def stop_daemons(run: Run, scope_id: str) -> None:
    """Stop the daemons a steps or DAG template started, as Argo does when their scope ends."""
    for node, child in run.daemons.pop(scope_id, []):
        await child.stop()
        if node["phase"] == "Running":
            run.finish(node, "Succeeded", "daemon stopped: its scope ended")


def pod_env(run: Run, body: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, str]:
    """A step's environment: the platform's, then ``envFrom``, then ``env`` (paths mapped)."""
    env = {**os.environ, **run.engine.base_env, "ARGO_WORKFLOW_NAME": run.name, **run.engine.thread_env()}
    tools = images.tools(str(body.get("image", "")), run.engine.store.root.parent)
    if tools:
        env["PATH"] = f"{tools}{os.pathsep}{env.get('PATH', '')}"
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
    """Put an input artifact (raw or from S3; only its ``subPath`` when one is given) where the template expects it."""
    dest = Path(mapping[art["path"]])
    if art.get("subPath"):
        with tempfile.TemporaryDirectory() as tmp:
            whole = Path(tmp) / "artifact"
            fetch_input(run, {k: v for k, v in art.items() if k != "subPath"}, {art["path"]: str(whole)})
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
            value = text[:-1] if text.endswith("\n") else text
            params.append({"name": param["name"], "value": value, **_global(param)})
        elif "default" in value_from:
            params.append({"name": param["name"], "value": as_param(value_from["default"]), **_global(param)})
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
    record = {"name": art["name"], "path": art["path"], "s3": {"bucket": bucket, "key": key}, **_global(art)}
    if art.get("archive"):
        record["archive"] = art["archive"]
    return record


def _global(output: Mapping[str, Any]) -> dict[str, str]:
    return {"globalName": output["globalName"]} if output.get("globalName") else {}


SYSTEM_FOLDERS = {"bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "proc", "run", "sbin", "sys", "usr", "var"}


def _folders_above(path: str) -> set[str]:
    """The folders holding a declared path (``/mnt/out`` for ``/mnt/out/part.json``).

    A step may make or list them itself.  Top folders (``/tmp``) are not mapped whole, so a host path given as a
    parameter (``/tmp/job/input``) stays as it is; system folders of the image (``/usr``…) are never mapped.
    """
    parts = path.strip("/").split("/")[:-1]
    if not parts or parts[0] in SYSTEM_FOLDERS:
        return set()
    return {"/" + "/".join(parts[: i + 1]) for i in range(1, len(parts))}  # never a top folder such as /tmp


def path_mapping(tmpl: Mapping[str, Any], fs_root: Path, mounts: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map every container path a template declares to a host path.

    A path goes into its volume when it lies under a mount, else under the node's own folder.  Mount paths
    themselves map to their volume folders.
    """
    inputs = {a["path"] for a in (tmpl.get("inputs") or {}).get("artifacts", []) if a.get("path")}
    outputs = tmpl.get("outputs") or {}
    body = tmpl.get("script") or tmpl.get("container") or {}
    inputs |= {e.get("value", "") for e in body.get("env", []) if e.get("name") == HERA_OUTPUTS_ENV} - {""}
    paths = set(inputs) | {a["path"] for a in outputs.get("artifacts", []) if a.get("path")}
    paths |= {(p.get("valueFrom") or {}).get("path", "") for p in outputs.get("parameters", [])} - {""}
    mounts = dict(mounts or {})
    mapping = dict(mounts)
    folders: set[str] = set()
    for path in list(paths):
        if path.endswith("/") and len(path) > 1:  # a folder: files under it map too
            paths.add(path.rstrip("/"))
        folders |= _folders_above(path.rstrip("/"))
    paths |= folders
    for path in paths:
        if not path.startswith("/"):
            continue
        mount = next((m for m in sorted(mounts, key=len, reverse=True) if path == m or path.startswith(m + "/")), None)
        mapping[path] = mounts[mount] + path[len(mount) :] if mount else str(fs_root) + path
    for container_path, host in mapping.items():
        if container_path in mounts or container_path.endswith("/"):
            Path(host).mkdir(parents=True, exist_ok=True)
        elif container_path in inputs or any(container_path.startswith(i + "/") for i in inputs):
            # Argo puts input artifacts in place, folders and all; hera's outputs folder is made for its runner
            Path(host).parent.mkdir(parents=True, exist_ok=True)
        elif container_path.startswith("/") and container_path.count("/") > 1:  # an image has /tmp, /mnt…
            (fs_root / container_path.strip("/").split("/")[0]).mkdir(parents=True, exist_ok=True)
    return mapping


def remap(text: str, mapping: Mapping[str, str]) -> str:
    """Replace whole container paths with their host paths in one pass (a host path is never re-mapped)."""
    if not mapping or not text:
        return text
    alternation = "|".join(re.escape(p) for p in sorted(mapping, key=len, reverse=True))
    pattern = rf"(?<![\w./-])({alternation})(?=$|[/\s\"'>;:|)&,])"
    return re.sub(pattern, lambda m: mapping[m.group(1)], text)
