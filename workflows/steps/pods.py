"""Pod defaults every step shares: image, resources, settings environment, security and artifact repository.

The step image is a workflow parameter with a pinned default; every step has requests and limits; steps read
their settings from the environment; workflow artifacts go to the S3 artifact repository.

On a cluster the settings come from the ``ctcd-config`` ConfigMap and the documented Secrets; the local engine
resolves the same references to the embedded platform's values.  Misconfiguration is refused at compile time:
an image reference that is malformed or floats on ``latest``, or a Secret the platform does not document.
"""

from __future__ import annotations

import os
import re

from hera.workflows import ConfigMapEnvFrom, Parameter, Resources, SecretEnvFrom
from hera.workflows.models import (
    ArtifactRepositoryRef,
    Capabilities,
    PodSecurityContext,
    SeccompProfile,
    SecurityContext,
)

from workflows.errors import CtcdError

CONFIGMAP = "ctcd-config"
S3_SECRET = "ctcd-s3-credentials"
GIT_SECRET = "ctcd-git-credentials"
SECRETS = {S3_SECRET: ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), GIT_SECRET: ("CTCD_GIT_TOKEN",)}
IMAGE_PARAMETER = "trainer-image"
IMAGE_REPOSITORY = os.environ.get("CTCD_IMAGE_REPOSITORY", "ghcr.io/ctcd/trainer")
IMAGE_TAG = os.environ.get("CTCD_IMAGE_TAG", "0.1.0")
SERVICE_ACCOUNT = "ctcd-workflow"
IMAGE_USER = 10001  # the USER of the trainer and predictor images
_IMAGE = re.compile(
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
)


class TemplateConfigError(CtcdError, ValueError):
    """A template's configuration is wrong; refused when compiling."""


def check_image(reference: str) -> str:
    """Refuse a malformed image reference, one without a tag or digest, or one on ``latest``."""
    if not _IMAGE.fullmatch(reference):
        raise TemplateConfigError(
            f"image {reference!r} is not a pinned reference such as ghcr.io/ctcd/trainer:0.1.0 "
            "(set CTCD_IMAGE_REPOSITORY / CTCD_IMAGE_TAG)"
        )
    if reference.endswith(":latest"):
        raise TemplateConfigError(f"image {reference!r} floats on latest; pin a version or a digest")
    return reference


def default_image() -> str:
    """The pinned trainer image the compile step writes as the parameter's default."""
    return check_image(f"{IMAGE_REPOSITORY}:{IMAGE_TAG}")


def trainer_image() -> str:
    """The image of every step: the workflow's ``trainer-image`` parameter."""
    return "{{workflow.parameters." + IMAGE_PARAMETER + "}}"


def image_parameter() -> Parameter:
    """The ``trainer-image`` workflow argument with its pinned default."""
    return Parameter(name=IMAGE_PARAMETER, value=default_image())


def secret(name: str, optional: bool = False) -> SecretEnvFrom:
    """An ``envFrom`` of a Secret the platform documents (docs/cluster.md); anything else is refused."""
    if name not in SECRETS:
        raise TemplateConfigError(f"Secret {name!r} is not one the platform documents ({', '.join(sorted(SECRETS))})")
    return SecretEnvFrom(name=name, optional=optional or None)


def step_env() -> list[ConfigMapEnvFrom | SecretEnvFrom]:
    """Environment of every step: settings from the ConfigMap, S3 keys from their Secret."""
    return [ConfigMapEnvFrom(name=CONFIGMAP), secret(S3_SECRET)]


def git_env() -> list[ConfigMapEnvFrom | SecretEnvFrom]:
    """Environment of steps that push to the GitOps repository (adds the git token)."""
    return [*step_env(), secret(GIT_SECRET, optional=True)]


def resources(size: str = "small") -> Resources:
    """Requests and limits of a step: ``small`` for glue, ``train`` for fitting and scoring."""
    if size == "train":
        return Resources(cpu_request="1", cpu_limit="2", memory_request="2Gi", memory_limit="4Gi")
    return Resources(cpu_request="100m", cpu_limit="1", memory_request="256Mi", memory_limit="1Gi")


def artifact_repository() -> ArtifactRepositoryRef:
    """The S3 artifact repository (ConfigMap ``artifact-repositories``, key ``ctcd-s3``)."""
    return ArtifactRepositoryRef(config_map="artifact-repositories", key="ctcd-s3")


def pod_security() -> PodSecurityContext:
    """Every workflow pod runs as the images' non-root user with the runtime's default seccomp profile."""
    return PodSecurityContext(
        run_as_non_root=True, run_as_user=IMAGE_USER, seccomp_profile=SeccompProfile(type="RuntimeDefault")
    )


def container_security() -> SecurityContext:
    """Every step container: non-root, no privilege escalation, every Linux capability dropped."""
    return SecurityContext(
        run_as_non_root=True, allow_privilege_escalation=False, capabilities=Capabilities(drop=["ALL"])
    )
