"""The ``smoke`` WorkflowTemplate: checks that steps reach S3 and MLflow (what ``make run`` runs first)."""

from __future__ import annotations

from hera.workflows import DAG, Parameter, WorkflowTemplate

from workflows.steps.pods import SERVICE_ACCOUNT, artifact_repository, image_parameter, pod_security
from workflows.steps.smoke import probe_mlflow, probe_s3, summarize

with WorkflowTemplate(
    name="smoke",
    entrypoint="main",
    service_account_name=SERVICE_ACCOUNT,
    security_context=pod_security(),
    artifact_repository_ref=artifact_repository(),
    arguments=[Parameter(name="rows", value="100"), image_parameter()],
) as template:
    with DAG(name="main"):
        probe = {"run_name": "{{workflow.name}}", "rows": "{{workflow.parameters.rows}}"}
        s3 = probe_s3(name="probe-s3", arguments=probe)
        ml = probe_mlflow(name="probe-mlflow", arguments=probe)
        done = summarize(
            arguments={
                "key": s3.get_parameter("key"),
                "sha256": s3.get_parameter("sha256"),
                "run_id": ml.get_parameter("run-id"),
            }
        )
        s3 >> done
        ml >> done
