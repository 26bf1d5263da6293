"""The ``canary-analysis`` WorkflowTemplate: one round of canary analysis in each environment.

Each live canary is judged on the traffic its step served and acts by a commit (:mod:`workflows.delivery.canary`);
the ``canary-analysis`` CronWorkflow runs it on a schedule, so no canary waits for a person.
"""

from hera.workflows import Parameter, Steps, WorkflowTemplate

from workflows.steps.analyze import canary_analysis
from workflows.steps.pods import SERVICE_ACCOUNT, artifact_repository, image_parameter, pod_security

with WorkflowTemplate(
    name="canary-analysis",
    entrypoint="analyze",
    service_account_name=SERVICE_ACCOUNT,
    security_context=pod_security(),
    artifact_repository_ref=artifact_repository(),
    arguments=[image_parameter()],
) as template:
    with Steps(name="analyze"):
        for environment in ("staging", "production"):
            canary_analysis(name=f"analyze-{environment}", arguments=[Parameter(name="environment", value=environment)])
