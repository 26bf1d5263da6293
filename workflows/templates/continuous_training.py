"""The ``continuous-training`` WorkflowTemplate: collect → drift check → train (→ gate → canary), then notify.

Training starts when the collection found new rows (``retrain-on: new-data``, the default) or only when the new
batch drifted (``retrain-on: drift``).  The training DAG is ``train``'s, reached through ``templateRef``; it
holds the technique's mutex, so two retrains of one technique never run at once.
"""

from hera.workflows import DAG, Parameter, Steps, Task, WorkflowTemplate
from hera.workflows.models import TemplateRef

from models.contract import discover
from workflows.steps.collect import check_drift, collect, notify
from workflows.steps.pods import SERVICE_ACCOUNT, artifact_repository, image_parameter, pod_security

TECHNIQUES = sorted(discover())
INPUTS = ["technique", "source", "rows", "location", "retrain-on", "hyperparameters"]

with WorkflowTemplate(
    name="continuous-training",
    entrypoint="ct-technique",
    on_exit="notify-run",
    service_account_name=SERVICE_ACCOUNT,
    security_context=pod_security(),
    artifact_repository_ref=artifact_repository(),
    arguments=[
        image_parameter(),
        Parameter(name="technique", enum=TECHNIQUES),
        Parameter(name="source", value="generator", enum=["generator", "s3", "sql", "feedback"]),
        Parameter(name="rows", value="500"),
        Parameter(name="location", value=""),
        Parameter(name="retrain-on", value="new-data", enum=["new-data", "drift"]),
        Parameter(name="hyperparameters", value="{}"),
    ],
) as template:
    with DAG(name="ct-technique", inputs=[Parameter(name=n) for n in INPUTS]):
        batch = collect(arguments={n.replace("-", "_"): f"{{{{inputs.parameters.{n}}}}}" for n in INPUTS[:4]})
        new_rows = batch.get_parameter("new-rows")
        drifted = check_drift(
            name="check-drift",
            when=f"{new_rows} > 0",
            arguments={"technique": "{{inputs.parameters.technique}}", "month": batch.get_parameter("month")},
        )
        retrain = Task(
            name="train",
            template_ref=TemplateRef(name="train", template="train-technique"),
            depends="check-drift.Succeeded",  # nothing new: check-drift is skipped and training is omitted
            when=f"{{{{inputs.parameters.retrain-on}}}} == new-data || {drifted.get_parameter('drifted')} == true",
            arguments={
                "technique": "{{inputs.parameters.technique}}",
                "data-version": "",
                "hyperparameters": "{{inputs.parameters.hyperparameters}}",
            },
        )
        batch >> drifted
    with Steps(name="notify-run"):
        notify(
            arguments={
                "workflow_name": "{{workflow.name}}",
                "status": "{{workflow.status}}",
                "failures": "{{workflow.failures}}",
                "technique": "{{workflow.parameters.technique}}",
                "when_idle": "log",
            }
        )
