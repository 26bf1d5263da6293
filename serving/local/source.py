"""Where the desired state and the models come from: the GitOps remote's main branch, and S3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from serving import shared


def head(remote: str, branch: str) -> str:
    """The commit ``branch`` points at on the remote ('' when unreachable)."""
    return shared.remote_head(remote, branch)


def render(remote: str, commit: str) -> list[dict[str, Any]]:
    """Every overlay (of techniques and of tasks) at ``commit``, rendered with ``kubectl kustomize``."""
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
            docs += shared.kustomize(overlay)
        return docs


def s3_client(state_dir: Path) -> Any:
    """A boto3 S3 client from the environment (``CTCD_S3_ENDPOINT_URL``) and the state folder's credentials."""
    creds_file = state_dir / "credentials.json"
    creds = json.loads(creds_file.read_text()) if creds_file.exists() else {}
    return shared.s3_client(
        os.environ["CTCD_S3_ENDPOINT_URL"],
        os.environ.get("CTCD_S3_REGION", "us-east-1"),
        os.environ.get("AWS_ACCESS_KEY_ID", creds.get("AWS_ACCESS_KEY_ID")),
        os.environ.get("AWS_SECRET_ACCESS_KEY", creds.get("AWS_SECRET_ACCESS_KEY")),
        attempts=2,
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
