"""The ``train-all`` WorkflowTemplate: every technique (or the JSON list ``techniques``) trains in parallel."""

import json

from hera.workflows import DAG, Parameter, Task, WorkflowTemplate
from hera.workflows.models import TemplateRef

from models.contract import discover
from workflows.steps.pods import SERVICE_ACCOUNT, artifact_repository, image_parameter, pod_security

with WorkflowTemplate(
    name="train-all",
    entrypoint="main",
    service_account_name=SERVICE_ACCOUNT,
    security_context=pod_security(),
    artifact_repository_ref=artifact_repository(),
    arguments=[
        image_parameter(),
        Parameter(
            name="techniques",
            value=json.dumps(sorted(discover())),
            description="A JSON list of the techniques to train (default: every technique).",
        ),
    ],
) as template:
    with DAG(name="main"):
        Task(
            name="train",
            template_ref=TemplateRef(name="train", template="train-technique"),
            arguments={"technique": "{{item}}", "data-version": "", "hyperparameters": "{}"},
            with_param="{{workflow.parameters.techniques}}",
        )
