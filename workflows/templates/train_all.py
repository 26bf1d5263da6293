"""The ``train-all`` WorkflowTemplate: every technique trains in parallel through ``train``'s DAG."""

from hera.workflows import DAG, Task, WorkflowTemplate
from hera.workflows.models import TemplateRef

from models.contract import discover
from workflows.steps.pods import SERVICE_ACCOUNT, artifact_repository, image_parameter, pod_security

with WorkflowTemplate(
    name="train-all",
    entrypoint="main",
    service_account_name=SERVICE_ACCOUNT,
    security_context=pod_security(),
    artifact_repository_ref=artifact_repository(),
    arguments=[image_parameter()],
) as template:
    with DAG(name="main"):
        Task(
            name="train",
            template_ref=TemplateRef(name="train", template="train-technique"),
            arguments={"technique": "{{item}}", "data-version": "", "hyperparameters": "{}"},
            with_items=sorted(discover()),
        )
