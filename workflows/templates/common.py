"""What every compiled template shares: the step image and the environment steps read their settings from.

On a cluster the values come from the ``ctcd-config`` ConfigMap and the ``ctcd-s3-credentials`` Secret;
the local engine resolves the same references to the embedded platform's values.
"""

from __future__ import annotations

import os

from hera.workflows import ConfigMapEnvFrom, SecretEnvFrom

CONFIGMAP = "ctcd-config"
S3_SECRET = "ctcd-s3-credentials"
IMAGE_REPOSITORY = "ghcr.io/ctcd/trainer"
IMAGE_TAG = os.environ.get("CTCD_IMAGE_TAG", "0.1.0")


def trainer_image() -> str:
    """The pinned trainer image (never ``latest``)."""
    return f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"


def step_env() -> list[ConfigMapEnvFrom | SecretEnvFrom]:
    """Environment of every step: settings from the ConfigMap, S3 keys from the Secret."""
    return [ConfigMapEnvFrom(name=CONFIGMAP), SecretEnvFrom(name=S3_SECRET)]
