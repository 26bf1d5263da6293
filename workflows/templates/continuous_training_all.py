"""The ``continuous-training-all`` WorkflowTemplate: the monthly loop for every task, in parallel.

Each task collects its month once, through its first technique's loop (collection, drift, retraining); then
the task's other techniques train on the same new data.
"""

from hera.workflows import DAG, Task, WorkflowTemplate
from hera.workflows.models import TemplateRef

from models.contract import by_task
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
        ct = Task(
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
            with_items=[names[0] for names in by_task().values()],
        )
        ct >> Task(
            name="train-others",
            template_ref=TemplateRef(name="train", template="train-technique"),
            arguments={"technique": "{{item}}", "data-version": "", "hyperparameters": "{}"},
            with_items=[name for names in by_task().values() for name in names[1:]],
        )
