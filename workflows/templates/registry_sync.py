"""The ``registry-sync`` CronWorkflow: the registry bridge on a cluster (MLflow has no webhook for stage changes)."""

from hera.workflows import CronWorkflow, Steps

from workflows.steps.sync import registry_sync
from workflows.templates.common import SERVICE_ACCOUNT, artifact_repository, image_parameter

with CronWorkflow(
    name="registry-sync",
    entrypoint="sync",
    schedules=["*/5 * * * *"],
    timezone="UTC",
    concurrency_policy="Forbid",
    starting_deadline_seconds=120,
    service_account_name=SERVICE_ACCOUNT,
    artifact_repository_ref=artifact_repository(),
    arguments=[image_parameter()],
) as template:
    with Steps(name="sync"):
        registry_sync()
