"""The MLflow model registry as ctcd uses it: the champion by alias, registration with lineage tags.

Registered model names are the technique names.  A version is registered only after evaluation and the gate,
with every tag in one go, and registering the same training run again completes its one version.  Aliases and
stages follow what git serves (:mod:`workflows.delivery.bridge`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from workflows.platform import mlflow_tags

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

_logger = logging.getLogger(__name__)
CHAMPION = "champion"


def client(tracking_uri: str) -> MlflowClient:
    """An MLflow client for one tracking server."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def champion(mlflow_client: MlflowClient, name: str) -> ModelVersion | None:
    """The gate's baseline: the version with alias ``champion``, the one staging serves (None before any)."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def register(mlflow_client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
    """Register a training run's model version with all its tags in one call.

    No alias is set here: ``champion`` and the environments' aliases follow what git serves (the registry bridge
    writes them once the promotion is committed), so no marker runs ahead of serving. Idempotent per run: if a
    version of ``name`` already holds ``run_id`` (an earlier attempt lost its connection after creating it), that
    version is completed and returned instead of registering the run twice.

    Returns:
        The version number.

    Raises:
        MlflowException: Registration failed.
    """
    version = _version_of_run(mlflow_client, name, run_id)
    if version is None:
        return str(_create_version(mlflow_client, name, model_uri, run_id, tags).version)
    _logger.warning("%s v%s already holds run %s: completing it", name, version.version, run_id)
    for key, value in tags.items():
        if version.tags.get(key) != value:
            mlflow_client.set_model_version_tag(name, version.version, key, value)
    return str(version.version)


def _version_of_run(mlflow_client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The version of ``name`` registered from ``run_id``, if any."""
    found = mlflow_client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def _create_version(
    mlflow_client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str]
) -> ModelVersion:
    """Create the registered model if needed, then the version with every tag in one call."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(name)
    except MlflowException:
        mlflow_client.create_registered_model(name, tags={mlflow_tags.TECHNIQUE: name})
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    return mlflow_client.create_model_version(name, model_uri, run_id=run_id, tags=tags, model_id=model_id)


def latest(mlflow_client: MlflowClient, name: str) -> ModelVersion | None:
    """The newest registered version of a model, if any."""
    from mlflow.exceptions import MlflowException

    try:
        versions = mlflow_client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    return max(versions, key=lambda v: int(v.version)) if versions else None


def storage_uri(mlflow_client: MlflowClient, name: str, version: str, artifacts_bucket: str) -> str:
    """The immutable ``s3://`` folder of a version's model (the server proxies ``mlflow-artifacts:/``).

    Raises:
        ValueError: The version's artifacts are not in the ctcd artifact store.
    """
    uri = str(mlflow_client.get_model_version_download_uri(name, version))
    if uri.startswith("mlflow-artifacts:/"):
        return f"s3://{artifacts_bucket}/mlflow/{uri.removeprefix('mlflow-artifacts:/').lstrip('/')}"
    if uri.startswith("s3://"):
        return uri
    raise ValueError(f"{name} v{version} is stored at {uri}, outside the S3 artifact store; register it through ctcd")


def pin_fields(mlflow_client: MlflowClient, name: str, version: str, artifacts_bucket: str) -> dict[str, str]:
    """What a promotion pins for a registered version: storage URI, sha256 and lineage.

    Raises:
        MlflowException: No such version.
        ValueError: The version has no ``ctcd.model_sha256`` tag.
    """
    found = mlflow_client.get_model_version(name, version)
    if mlflow_tags.MODEL_SHA256 not in found.tags:
        raise ValueError(f"{name} v{version} has no ctcd.model_sha256 tag; only ctcd-registered versions can be served")
    return {
        "version": str(found.version),
        "storage_uri": storage_uri(mlflow_client, name, version, artifacts_bucket),
        "sha256": found.tags[mlflow_tags.MODEL_SHA256],
        "run_id": found.run_id or "",
        "dataset_version": found.tags.get(mlflow_tags.DATASET_VERSION, ""),
    }


def metric_evidence(mlflow_client: MlflowClient, name: str, version: str) -> dict[str, str]:
    """The ``Metric`` and ``Champion-Metric`` trailers of a promotion, from the gate's tags on the version."""
    from mlflow.exceptions import MlflowException

    try:
        tags = mlflow_client.get_model_version(name, version).tags or {}
    except MlflowException:
        return {}
    found = {
        "Metric": tags.get(mlflow_tags.GATE_CHALLENGER, ""),
        "Champion-Metric": tags.get(mlflow_tags.GATE_CHAMPION, ""),
    }
    return {k: str(v) for k, v in found.items() if v}
