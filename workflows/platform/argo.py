"""Argo Server on a cluster: submit and poll the same WorkflowTemplates through hera's WorkflowsService.

Configured with Argo CLI's own variables: ``ARGO_SERVER`` (host, with or without scheme), ``ARGO_TOKEN``
(``Bearer …``), ``ARGO_NAMESPACE`` (default ``ctcd``), ``ARGO_INSECURE_SKIP_VERIFY``.
"""

from __future__ import annotations

import os
from typing import Any

from workflows.errors import CtcdError


class ArgoConfigError(CtcdError, RuntimeError):
    """The cluster connection is not configured; the message names the variable to set."""


def service() -> Any:
    """A WorkflowsService for the configured Argo Server.

    Raises:
        ArgoConfigError: ``ARGO_SERVER`` is not set.
    """
    from hera.workflows import WorkflowsService

    host = os.environ.get("ARGO_SERVER", "")
    if not host:
        raise ArgoConfigError("ARGO_SERVER is not set: export ARGO_SERVER=argo.example.com:2746 (and ARGO_TOKEN)")
    if "://" not in host:
        host = f"https://{host}"
    token = os.environ.get("ARGO_TOKEN", "")
    if token and not token.lower().startswith("bearer "):
        token = f"Bearer {token}"
    verify = os.environ.get("ARGO_INSECURE_SKIP_VERIFY", "false").lower() != "true"
    return WorkflowsService(host=host, token=token or None, verify_ssl=verify, namespace=namespace())


def namespace() -> str:
    """The namespace workflows run in."""
    return os.environ.get("ARGO_NAMESPACE", "ctcd")


def submit(reference: str, parameters: dict[str, str]) -> str:
    """Submit ``workflowtemplate/NAME`` (or ``cronworkflow/NAME``); return the run's name.

    Raises:
        ArgoConfigError: The reference names another kind, or no name.
    """
    from hera.workflows.models import SubmitOpts, WorkflowSubmitRequest

    kind, _, name = reference.partition("/")
    kinds = {"workflowtemplate": "WorkflowTemplate", "cronworkflow": "CronWorkflow"}
    if kind.lower() not in kinds or not name:
        raise ArgoConfigError(f"--from {reference!r}: use workflowtemplate/NAME or cronworkflow/NAME")
    request = WorkflowSubmitRequest(
        namespace=namespace(),
        resource_kind=kinds[kind.lower()],
        resource_name=name,
        submit_options=SubmitOpts(parameters=[f"{k}={v}" for k, v in parameters.items()] or None),
    )
    return str(service().submit_workflow(request, namespace=namespace()).metadata.name)


def create(workflow: dict[str, Any]) -> str:
    """Create a Workflow object as given (``argo submit FILE``); return the run's name."""
    from hera.workflows.models import Workflow, WorkflowCreateRequest

    request = WorkflowCreateRequest(workflow=Workflow.model_validate(workflow))
    return str(service().create_workflow(request, namespace=namespace()).metadata.name)


def get(name: str) -> dict[str, Any]:
    """A run as the Argo Server returns it (``argo get -o json``)."""
    workflow = service().get_workflow(name, namespace=namespace())
    return dict(workflow.dict(by_alias=True, exclude_none=True))
