"""Steps of the ``smoke`` workflow: prove that a step can reach S3 and MLflow and hand results on.

Heavy imports (boto3, mlflow) stay inside the step bodies so that compiling the workflow needs none of them.
No `from __future__ import annotations` here: hera reads the real annotations of step functions.
"""

import hashlib
import logging
from typing import Annotated

from hera.workflows import Input, Output, Parameter

from workflows.steps.common import step

_logger = logging.getLogger(__name__)


class ProbeInput(Input):
    """Where the probe object goes."""

    run_name: str
    rows: int = 100


class S3Probe(Output):
    """The object written and its content hash."""

    key: Annotated[str, Parameter(name="key")]
    sha256: Annotated[str, Parameter(name="sha256")]


class MlflowProbe(Output):
    """The MLflow run that was logged."""

    run_id: Annotated[str, Parameter(name="run-id")]


class SummaryInput(Input):
    """What the two probes produced."""

    key: str
    sha256: str
    run_id: str


@step()
def probe_s3(inputs: ProbeInput) -> S3Probe:
    """Write a small CSV to the datasets bucket and return its key and sha256."""
    from workflows.platform.s3 import s3_client
    from workflows.settings import get_settings

    settings = get_settings()
    body = "x,y\n" + "".join(f"{i},{i * i}\n" for i in range(inputs.rows))
    key = f"_smoke/{inputs.run_name}/squares.csv"
    s3_client(settings).put_object(Bucket=settings.datasets_bucket, Key=key, Body=body.encode())
    _logger.info("wrote s3://%s/%s", settings.datasets_bucket, key)
    return S3Probe(key=key, sha256=hashlib.sha256(body.encode()).hexdigest())


@step()
def probe_mlflow(inputs: ProbeInput) -> MlflowProbe:
    """Log a run with a parameter and a metric to the MLflow tracking server."""
    import mlflow

    from workflows.settings import get_settings

    get_settings().require_reachable("mlflow")

    mlflow.set_experiment("ctcd-smoke")
    with mlflow.start_run(run_name=inputs.run_name) as run:
        mlflow.log_param("rows", inputs.rows)
        mlflow.log_metric("sum_of_squares", sum(i * i for i in range(inputs.rows)))
    return MlflowProbe(run_id=run.info.run_id)


@step()
def summarize(inputs: SummaryInput) -> str:
    """Read the object back, check its hash and the MLflow run, and return a one-line summary.

    Raises:
        RuntimeError: The object changed in S3 or the MLflow run is missing.
    """
    import mlflow

    from workflows.platform.s3 import s3_client
    from workflows.settings import get_settings

    settings = get_settings()
    body = s3_client(settings).get_object(Bucket=settings.datasets_bucket, Key=inputs.key)["Body"].read()
    if hashlib.sha256(body).hexdigest() != inputs.sha256:
        raise RuntimeError(f"s3://{settings.datasets_bucket}/{inputs.key} does not match its recorded sha256")
    metric = mlflow.get_run(inputs.run_id).data.metrics["sum_of_squares"]
    return (
        f"s3 ok ({len(body)} bytes, sha256 {inputs.sha256[:12]}), mlflow ok (run {inputs.run_id}, metric {metric:.0f})"
    )
