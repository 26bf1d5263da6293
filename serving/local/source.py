"""Where the desired state and the models come from: the GitOps remote's main branch, and S3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml


def head(remote: str, branch: str) -> str:
    """The commit ``branch`` points at on the remote ('' when unreachable)."""
    out = subprocess.run(
        ["git", "ls-remote", "--", remote, f"refs/heads/{branch}"], capture_output=True, text=True, timeout=30
    )
    return out.stdout.split()[0] if out.returncode == 0 and out.stdout.strip() else ""


def render(remote: str, commit: str) -> list[dict[str, Any]]:
    """Every overlay (of techniques and of tasks) at ``commit``, rendered with ``kubectl kustomize``."""
    kubectl = str(Path(sys.executable).parent / "kubectl")
    with tempfile.TemporaryDirectory(prefix="ctcd-serving-") as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(
            ["git", "clone", "--quiet", "--no-checkout", "--", remote, str(repo)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(["git", "-C", str(repo), "checkout", "--quiet", commit], check=True, capture_output=True)
        docs: list[dict[str, Any]] = []
        overlays = [*sorted(repo.glob("gitops/models/*/overlays/*")), *sorted(repo.glob("gitops/tasks/*/overlays/*"))]
        for overlay in overlays:
            out = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError(f"kubectl kustomize {overlay.relative_to(repo)} failed: {out.stderr.strip()}")
            docs += [d for d in yaml.safe_load_all(out.stdout) if d]
        return docs


def s3_client(state_dir: Path) -> Any:
    """A boto3 S3 client from the environment (``CTCD_S3_ENDPOINT_URL``) and the state folder's credentials."""
    import boto3
    from botocore.config import Config

    creds_file = state_dir / "credentials.json"
    creds = json.loads(creds_file.read_text()) if creds_file.exists() else {}
    return boto3.client(
        "s3",
        endpoint_url=os.environ["CTCD_S3_ENDPOINT_URL"],
        region_name=os.environ.get("CTCD_S3_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", creds.get("AWS_ACCESS_KEY_ID")),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", creds.get("AWS_SECRET_ACCESS_KEY")),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def s3_fetcher(state_dir: Path) -> Any:
    """A function that downloads an ``s3://bucket/prefix`` folder into a local folder (cached by path)."""
    client = s3_client(state_dir)

    def fetch(uri: str, dest: Path) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if dest.exists():
            shutil.rmtree(dest)
        listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
        objects = listing.get("Contents", [])
        if not objects:
            raise FileNotFoundError(f"nothing under {uri}")
        for obj in objects:
            target = dest / obj["Key"][len(prefix.rstrip("/")) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, obj["Key"], str(target))

    return fetch
