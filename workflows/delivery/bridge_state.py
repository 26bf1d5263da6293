"""Where the registry bridge remembers what it last saw of each marker, out of reach of registry users.

The state is one small JSON document, ``{"<technique>/<environment>": {"<marker>": [version, stamp], ...}}``.
Locally it is a file in the state folder (``<state>/bridge-state.json``, mode 0600); on a cluster it is an S3
object (``CTCD_BRIDGE_STATE=s3://bucket/key``) next to the artifacts, so a registry-sync pod that starts fresh
every five minutes reads what the one before it wrote.  Nothing of it is shown in, or editable from, the MLflow
UI.  A file store takes an exclusive lock for the whole pass, so the bridge loop and a registry-sync run never
interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from workflows.settings import Settings

_logger = logging.getLogger(__name__)
Seen = dict[str, dict[str, list[Any]]]


class Store(Protocol):
    """Loads and saves the bridge's state document."""

    def load(self) -> Seen:
        """The state document ({} before the first pass, or when it cannot be read)."""

    def save(self, seen: Seen) -> None:
        """Replace the state document."""


def _parse(text: str, where: str) -> Seen:
    try:
        document = json.loads(text)
    except ValueError:
        _logger.warning("bridge state at %s is not JSON; starting from what git pins", where)
        return {}
    return document if isinstance(document, dict) else {}


class FileStore:
    """The state in a local file, written atomically with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Seen:
        """Read the file ({} when it is missing or unreadable)."""
        try:
            return _parse(self.path.read_text(), str(self.path))
        except FileNotFoundError:
            return {}

    def save(self, seen: Seen) -> None:
        """Write the file through a temporary one and a rename, so a crash never leaves half a document."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(seen, handle, sort_keys=True)
        temporary.replace(self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock next to the file for a whole pass."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


class S3Store:
    """The state as one S3 object (a cluster's registry-sync pods share it)."""

    def __init__(self, settings: Settings, bucket: str, key: str) -> None:
        self.settings, self.bucket, self.key = settings, bucket, key

    def _client(self) -> Any:
        from workflows.platform import s3

        return s3.s3_client(self.settings)

    def load(self) -> Seen:
        """Read the object ({} when it does not exist yet)."""
        try:
            body = self._client().get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except Exception as exc:  # NoSuchKey before the first pass; anything else is logged
            if "NoSuchKey" not in str(exc) and "404" not in str(exc):
                _logger.warning("bridge state s3://%s/%s unreadable: %s", self.bucket, self.key, exc)
            return {}
        return _parse(body.decode("utf-8", "replace"), f"s3://{self.bucket}/{self.key}")

    def save(self, seen: Seen) -> None:
        """Write the object."""
        body = json.dumps(seen, sort_keys=True).encode()
        self._client().put_object(Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """No lock: on a cluster the CronWorkflow forbids concurrent runs."""
        yield


def store(settings: Settings) -> FileStore | S3Store:
    """The store ``CTCD_BRIDGE_STATE`` names (default: ``<state>/bridge-state.json``)."""
    where = settings.bridge_state or str(settings.state_dir / "bridge-state.json")
    if where.startswith("s3://"):
        bucket, _, key = where.removeprefix("s3://").partition("/")
        return S3Store(settings, bucket, key or "ctcd-bridge/state.json")
    return FileStore(Path(where))
