"""The ``canary-analysis`` CronWorkflow: a round of canary analysis every ten minutes."""

from hera.workflows import CronWorkflow
from hera.workflows.models import WorkflowTemplateRef

with CronWorkflow(
    name="canary-analysis",
    schedules=["*/10 * * * *"],
    timezone="UTC",
    concurrency_policy="Forbid",
    starting_deadline_seconds=300,
    workflow_template_ref=WorkflowTemplateRef(name="canary-analysis"),
) as template:
    pass
