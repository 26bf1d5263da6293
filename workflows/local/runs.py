"""Runs of the local engine, wired to the embedded platform: submit, wait, list, inspect.

This is the only place that knows both the engine and the platform: it builds an :class:`Engine` whose
steps see the platform's endpoints, whose ConfigMap/Secret references resolve to the local values, and
whose artifacts go to the embedded S3.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from workflows.engine import (
    TERMINAL,
    Engine,
    LocalObjects,
    RunStore,
    TemplateLibrary,
    from_file,
    from_reference,
    prepare,
)
from workflows.local import applied
from workflows.platform.s3 import s3_client
from workflows.settings import Settings

CONFIGMAP = "ctcd-config"
S3_SECRET = "ctcd-s3-credentials"
REPOSITORIES, REPOSITORY_KEY = "artifact-repositories", "ctcd-s3"  # the templates' artifactRepositoryRef


def library(settings: Settings) -> TemplateLibrary:
    """WorkflowTemplates from every folder of ``CTCD_TEMPLATE_PATH``, then those a user added (which win)."""
    lib = TemplateLibrary(Path(p) for p in settings.template_path.split(os.pathsep) if p)
    for kind in ("WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"):
        for doc in applied.all_of(settings, kind):
            lib.add(doc)
    return lib


def local_objects(settings: Settings) -> LocalObjects:
    """The local values of the ConfigMap and Secret the compiled templates reference."""
    from workflows.platform.s3 import s3_credentials

    secrets: dict[str, dict[str, str]] = {}
    try:
        secrets[S3_SECRET] = s3_credentials(settings)
    except RuntimeError:
        pass
    repositories = {REPOSITORY_KEY: f"s3:\n  bucket: {settings.artifacts_bucket}\n"}  # the embedded S3 stands in
    configmaps = {REPOSITORIES: repositories, **applied.configmaps(settings), CONFIGMAP: settings.as_env()}
    return LocalObjects(configmaps=configmaps, secrets=secrets, volumes=settings.state_dir / "volumes")


def build_engine(settings: Settings) -> Engine:
    """An engine that runs steps against the embedded platform."""
    objects = local_objects(settings)
    return Engine(
        store=RunStore(settings.state_dir),
        library=library(settings),
        s3=lambda: s3_client(settings),
        artifacts_bucket=settings.artifacts_bucket,
        objects=objects,
        base_env={**settings.as_env(), **objects.secrets.get(S3_SECRET, {})},
        parallelism=settings.engine_parallelism,
        warm=settings.engine_warm,
    )


def submit(settings: Settings, source: str, parameters: Mapping[str, str], from_ref: bool) -> dict[str, Any]:
    """Prepare a run, record it as Pending and start a detached worker; return the workflow object."""
    lib = library(settings)
    workflow = from_reference(lib, source) if from_ref else from_file(Path(source))
    return submit_workflow(settings, workflow, parameters)


def submit_workflow(
    settings: Settings,
    workflow: dict[str, Any],
    parameters: Mapping[str, str] | None = None,
    reuse: Callable[[str], dict[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Prepare a Workflow object, record it as Pending and start a detached worker for it.

    ``reuse`` gives, for the new run's name, the steps it takes from an earlier run instead of running them.
    """
    workflow = prepare(library(settings), workflow, parameters or {})
    if reuse is not None:
        workflow["status"]["retriedFrom"] = reuse(workflow["metadata"]["name"])
    RunStore(settings.state_dir).save(workflow)
    _start_worker(settings, workflow["metadata"]["name"])
    return workflow


def _start_worker(settings: Settings, name: str) -> None:
    store = RunStore(settings.state_dir)
    with open(store.run_dir(name) / "engine.log", "ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "workflows.local.worker", name],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "CTCD_STATE_DIR": str(settings.state_dir)},
            start_new_session=True,
        )
    store.record_worker(name, worker.pid)


def execute(settings: Settings, name: str) -> dict[str, Any]:
    """Run a Pending run to its end in this process (what the detached worker does)."""
    store = RunStore(settings.state_dir)
    return build_engine(settings).run(store.load(name))


def wait(
    settings: Settings,
    name: str,
    on_update: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Poll a run until it ends (or ``timeout`` seconds pass) and return its workflow object."""
    store = RunStore(settings.state_dir)
    start = time.monotonic()
    while True:
        workflow = store.load(name)  # settles a run whose worker died
        if on_update:
            on_update(workflow)
        if workflow["status"].get("phase") in TERMINAL:
            return workflow
        if timeout is not None and time.monotonic() - start > timeout:
            return workflow
        time.sleep(0.25)


def settle_all(settings: Settings) -> list[str]:
    """Settle every run whose worker died (what ``ctcd up`` does); return the names of the runs it ended."""
    return RunStore(settings.state_dir).settle_all()
