"""The ``registry-sync`` WorkflowTemplate: one pass of the registry bridge on a cluster.

MLflow has no webhook for stage changes, so the ``registry-sync`` CronWorkflow runs it on a schedule, and the
Argo Events Sensor runs it at once on MLflow's alias webhooks.
"""

from hera.workflows import Steps, WorkflowTemplate

from workflows.steps.pods import SERVICE_ACCOUNT, artifact_repository, image_parameter, pod_security
from workflows.steps.sync import registry_sync

with WorkflowTemplate(
    name="registry-sync",
    entrypoint="sync",
    service_account_name=SERVICE_ACCOUNT,
    security_context=pod_security(),
    artifact_repository_ref=artifact_repository(),
    arguments=[image_parameter()],
) as template:
    with Steps(name="sync"):
        registry_sync()
