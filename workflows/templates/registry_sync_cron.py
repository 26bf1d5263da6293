"""The ``registry-sync`` CronWorkflow: runs the registry-sync WorkflowTemplate every five minutes."""

from hera.workflows import CronWorkflow
from hera.workflows.models import WorkflowTemplateRef

with CronWorkflow(
    name="registry-sync",
    schedules=["*/5 * * * *"],
    timezone="UTC",
    concurrency_policy="Forbid",
    starting_deadline_seconds=120,
    workflow_template_ref=WorkflowTemplateRef(name="registry-sync"),
) as template:
    pass
