"""Argo S3 artifacts for the local engine: tar+gzip by default, raw with ``archive: {none: {}}``."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any


def is_raw(artifact: dict[str, Any]) -> bool:
    """Whether an artifact is stored without an archive."""
    return "none" in (artifact.get("archive") or {})


def upload(client: Any, bucket: str, key: str, source: Path, raw: bool) -> None:
    """Upload a file or folder to ``s3://bucket/key`` (a tar.gz unless ``raw``).

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
        with tarfile.open(archive, "w:gz") as tar:
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
        with archive.open("rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        if not gzipped:  # stored without an archive (a key-only or raw artifact): use the file as it is
            shutil.move(str(archive), str(dest))
            return
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(unpacked, filter="data")
        members = list(unpacked.iterdir())
        source = members[0] if len(members) == 1 else unpacked
        if dest.exists():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        shutil.move(str(source), str(dest))


def _is_folder(client: Any, bucket: str, key: str) -> bool:
    """Whether ``key`` names no object but is the prefix of some."""
    try:
        client.head_object(Bucket=bucket, Key=key)
        return False
    except Exception:  # botocore's ClientError (404) — the key is not an object
        listing = client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
        return bool(listing.get("KeyCount", 0))
