"""The ``promote`` WorkflowTemplate: pin a registered version in an environment (canary, full or A/B)."""

from hera.workflows import DAG, Parameter, WorkflowTemplate

from models.contract import discover
from workflows.steps.pods import SERVICE_ACCOUNT, artifact_repository, image_parameter, pod_security
from workflows.steps.promote import promote

with WorkflowTemplate(
    name="promote",
    entrypoint="promote-version",
    service_account_name=SERVICE_ACCOUNT,
    security_context=pod_security(),
    artifact_repository_ref=artifact_repository(),
    arguments=[
        image_parameter(),
        Parameter(name="technique", enum=sorted(discover())),
        Parameter(name="version"),
        Parameter(name="environment", value="staging", enum=["staging", "production"]),
        Parameter(name="strategy", value="canary", enum=["canary", "full", "ab"]),
        Parameter(name="canary-percent", value="20"),
        Parameter(name="b-version", value=""),
        Parameter(name="weights", value="50,50"),
    ],
) as template:
    with DAG(
        name="promote-version",
        inputs=[
            Parameter(name=n)
            for n in ("technique", "version", "environment", "strategy", "canary-percent", "b-version", "weights")
        ],
    ):
        promote(
            arguments={
                "technique": "{{inputs.parameters.technique}}",
                "version": "{{inputs.parameters.version}}",
                "environment": "{{inputs.parameters.environment}}",
                "strategy": "{{inputs.parameters.strategy}}",
                "canary_percent": "{{inputs.parameters.canary-percent}}",
                "b_version": "{{inputs.parameters.b-version}}",
                "weights": "{{inputs.parameters.weights}}",
            }
        )
