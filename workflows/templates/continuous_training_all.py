"""The ``continuous-training-all`` WorkflowTemplate: the monthly loop for every technique, in parallel."""

from hera.workflows import DAG, Task, WorkflowTemplate
from hera.workflows.models import TemplateRef

from models.contract import discover
from workflows.steps.pods import SERVICE_ACCOUNT, artifact_repository, image_parameter, pod_security

with WorkflowTemplate(
    name="continuous-training-all",
    entrypoint="main",
    service_account_name=SERVICE_ACCOUNT,
    security_context=pod_security(),
    artifact_repository_ref=artifact_repository(),
    arguments=[image_parameter()],
) as template:
    with DAG(name="main"):
        Task(
            name="ct",
            template_ref=TemplateRef(name="continuous-training", template="ct-technique"),
            arguments={
                "technique": "{{item}}",
                "source": "generator",
                "rows": "500",
                "location": "",
                "retrain-on": "new-data",
                "hyperparameters": "{}",
            },
            with_items=sorted(discover()),
        )
