"""Argo S3 artifacts for the local engine: tar+gzip by default, raw with ``archive: {none: {}}``.

Also their garbage collection (``artifactGC``): an artifact whose strategy, its own or else the workflow's, is
``OnWorkflowCompletion`` is deleted when the run ends, and one with ``OnWorkflowDeletion`` when its record is
deleted (``ctcd runs delete``); each is then marked ``deleted: true`` in its node's outputs, as Argo marks it.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx


def is_raw(artifact: dict[str, Any]) -> bool:
    """Whether an artifact is stored without an archive."""
    return "none" in (artifact.get("archive") or {})


def upload(client: Any, bucket: str, key: str, source: Path, raw: bool, level: int = -1) -> None:
    """Upload a file or folder to ``s3://bucket/key`` (a tar.gz at gzip ``level`` unless ``raw``; -1 is gzip's 6).

    Raises:
        FileNotFoundError: ``source`` does not exist.
    """
    if not source.exists():
        raise FileNotFoundError(f"output artifact path {source} was not written by the step")
    if raw and source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            client.upload_file(str(path), bucket, f"{key.rstrip('/')}/{path.relative_to(source)}")
        return
    if raw:
        client.upload_file(str(source), bucket, key)
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "artifact.tgz"
        with tarfile.open(archive, "w:gz", compresslevel=6 if level < 0 else level) as tar:
            tar.add(source, arcname=source.name)
        client.upload_file(str(archive), bucket, key)


def download(client: Any, bucket: str, key: str, dest: Path, raw: bool) -> None:
    """Download ``s3://bucket/key`` to ``dest`` (unpacking a tar.gz unless ``raw``).

    A key that is a folder (a prefix of several objects) downloads as that folder.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not raw and _is_folder(client, bucket, key):
        raw = True
    if raw:
        listing = client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/")
        if listing.get("KeyCount", 0) > 0:
            for obj in listing.get("Contents", []):
                target = dest / obj["Key"][len(key.rstrip("/")) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(target))
            return
        client.download_file(bucket, key, str(dest))
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "artifact.tgz"
        client.download_file(bucket, key, str(archive))
        place(archive, dest)


def fetch_http(url: str, headers: Mapping[str, str], dest: Path) -> None:
    """Download an ``http`` input artifact to ``dest`` (a tar.gz is unpacked, as Argo's executor does).

    Raises:
        OSError: The server cannot be reached or answers with an error status.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "artifact"
        try:
            with httpx.stream("GET", url, headers=dict(headers), follow_redirects=True, timeout=60) as response:
                response.raise_for_status()
                with archive.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
        except httpx.HTTPError as exc:
            raise OSError(f"GET {url}: {exc}") from exc
        place(archive, dest)


def place(archive: Path, dest: Path) -> None:
    """Move a downloaded file to ``dest``: a tar.gz unpacked (its one member, or all of them), else as it is."""
    with archive.open("rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    if not gzipped or not tarfile.is_tarfile(archive):  # stored without an archive: use the file as it is
        shutil.move(str(archive), str(dest))
        return
    unpacked = archive.parent / "unpacked"
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(unpacked, filter="data")
    members = list(unpacked.iterdir())
    source = members[0] if len(members) == 1 else unpacked
    if dest.exists():
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
    shutil.move(str(source), str(dest))


def set_mode(path: Path, mode: int, recurse: bool) -> None:
    """Give an input artifact the file ``mode`` it asks for (every file under a folder with ``recurseMode``)."""
    path.chmod(mode)
    if recurse and path.is_dir():
        for inner in path.rglob("*"):
            inner.chmod(mode)


def _is_folder(client: Any, bucket: str, key: str) -> bool:
    """Whether ``key`` names no object but is the prefix of some."""
    try:
        client.head_object(Bucket=bucket, Key=key)
        return False
    except Exception:  # botocore's ClientError (404) — the key is not an object
        listing = client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
        return bool(listing.get("KeyCount", 0))


def ensure_bucket(client: Any, bucket: str) -> None:
    """Create a bucket unless it exists (``s3.createBucketIfNotPresent``)."""
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)


def garbage(workflow: Mapping[str, Any], strategy: str) -> list[dict[str, Any]]:
    """The output artifacts of a run's nodes whose ``artifactGC`` strategy is ``strategy`` and are not deleted yet."""
    default = ((workflow.get("spec") or {}).get("artifactGC") or {}).get("strategy") or ""
    found = []
    for node in ((workflow.get("status") or {}).get("nodes") or {}).values():
        for art in (node.get("outputs") or {}).get("artifacts", []):
            own = (art.get("artifactGC") or {}).get("strategy") or default
            if own == strategy and art.get("s3") and not art.get("deleted"):
                found.append(art)
    return found


def collect(client: Any, artifacts: list[dict[str, Any]]) -> None:
    """Delete these artifacts' objects (a folder's every object) and mark each ``deleted``."""
    for art in artifacts:
        bucket, key = art["s3"]["bucket"], art["s3"]["key"]
        listing = client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/")
        for obj in listing.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_object(Bucket=bucket, Key=key)
        art["deleted"] = True
