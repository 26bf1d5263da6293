"""S3 access for ctcd: one client factory for the embedded SeaweedFS and for MinIO on a cluster."""

from __future__ import annotations

import json
import os
from typing import Any

from workflows.settings import Settings


def s3_credentials(settings: Settings) -> dict[str, str]:
    """Return S3 keys: from the environment (a cluster Secret) or from the state folder (``ctcd up``).

    Raises:
        RuntimeError: Neither source has keys.
    """
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    if settings.credentials_file.exists():
        return dict(json.loads(settings.credentials_file.read_text()))
    raise RuntimeError(
        f"no S3 credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `ctcd up` to generate "
        f"them in {settings.credentials_file}"
    )


def s3_client(settings: Settings) -> Any:
    """Return a boto3 S3 client with path-style addressing for the configured endpoint.

    Raises:
        SettingError: The endpoint is not reachable (the message names ``CTCD_S3_ENDPOINT_URL``).
    """
    from serving import shared

    settings.require_reachable("s3")
    creds = s3_credentials(settings)
    return shared.s3_client(
        settings.s3_endpoint_url,
        settings.s3_region,
        creds["AWS_ACCESS_KEY_ID"],
        creds["AWS_SECRET_ACCESS_KEY"],
        attempts=3,
    )
