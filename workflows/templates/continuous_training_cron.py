"""The ``continuous-training`` CronWorkflow: monthly collection, drift check and retraining for every technique.

Locally: ``ctcd submit --from cronworkflow/continuous-training --wait`` runs one month now.
"""

from hera.workflows import CronWorkflow
from hera.workflows.models import WorkflowTemplateRef

with CronWorkflow(
    name="continuous-training",
    schedules=["0 3 1 * *"],
    timezone="UTC",
    concurrency_policy="Forbid",
    starting_deadline_seconds=3600,
    workflow_template_ref=WorkflowTemplateRef(name="continuous-training-all"),
) as template:
    pass
