"""One container or script as a host process: its command line, its environment and its pod address."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.engine.pod import images, processes
from workflows.engine.pod.paths import HERA_OUTPUTS_ENV, remap
from workflows.engine.state.nodes import Node, NodeError

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


BASH = shutil.which("bash")


def container_argv(run: RunContext, node: Node, body: Mapping[str, Any], mapping: Mapping[str, str]) -> list[str]:
    """The host command line of one container or script, as its image would run it."""
    command, args = list(body.get("command") or []), list(body.get("args") or [])
    image, state = str(body.get("image", "")), run.engine.store.root.parent
    standin = images.local_argv(image, command, args)
    argv = standin or [images.with_entrypoint(image, remap(a, mapping), state) for a in [*command, *args]]
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
    run: RunContext,
    node: Node,
    body: Mapping[str, Any],
    mapping: Mapping[str, str],
    node_dir: Path,
    pod_ip: str = "127.0.0.1",
) -> processes.Child:
    """Start one container in the background (a sidecar or a daemon)."""
    argv = container_argv(run, node, body, mapping)
    run.log(node, f"image {body.get('image', '-')!r}: running `{' '.join(argv)[:300]}` as a local process")
    cwd = Path(remap(body.get("workingDir", ""), mapping) or node_dir / "fs")  # a container starts in `/`
    env = {**pod_env(run, body, mapping), "CTCD_POD_IP": pod_ip, "ARGO_PROGRESS_FILE": str(progress_file(node_dir))}
    return await processes.start(run, node, argv, env, cwd)


def pod_ip(node: Node) -> str:
    """A loopback address of the pod's own (all of 127.0.0.0/8 is loopback).

    Two daemons serving the same port, as two pods would on a cluster, then do not collide.
    """
    digest = int(hashlib.sha256(str(node["id"]).encode()).hexdigest(), 16)
    return f"127.{digest % 250 + 1}.{(digest >> 8) % 256}.{(digest >> 16) % 254 + 1}"


async def spawn_container(
    run: RunContext, node: Node, body: Mapping[str, Any], mapping: Mapping[str, str], node_dir: Path
) -> tuple[int, str]:
    """Run one container to its exit; return its exit code and stdout."""
    child = await start_container(run, node, body, mapping, node_dir)
    return await child.wait()


def progress_file(node_dir: Path) -> Path:
    """Where a pod's steps may write ``N/M`` (``$ARGO_PROGRESS_FILE``), as Argo's executor reads it."""
    return node_dir / "progress"


def pod_env(run: RunContext, body: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, str]:
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
