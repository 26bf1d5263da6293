"""Secrets of the embedded platform, generated at the first ``up`` in the state folder with mode 0600.

The S3 keys (``credentials.json``), MLflow's webhook encryption key and the prediction log's hashing key survive
restarts; nothing secret is ever written anywhere else.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
from pathlib import Path

from workflows.settings import Settings


def load_credentials(settings: Settings) -> dict[str, str]:
    """Return the local S3 credentials, generating and storing them (mode 0600) on first use.

    Args:
        settings: The settings naming the state folder.

    Returns:
        A dict with ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``.
    """
    path = settings.credentials_file
    if path.exists():
        return dict(json.loads(path.read_text()))
    path.parent.mkdir(parents=True, exist_ok=True)
    creds = {
        "AWS_ACCESS_KEY_ID": "ctcd" + secrets.token_hex(8),
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
    }
    _write_private(path, json.dumps(creds))
    return creds


def webhook_encryption_key(settings: Settings) -> str:
    """The key MLflow encrypts webhook secrets with, generated once (mode 0600) so it survives restarts.

    Without a fixed key each MLflow process makes its own, and after a restart it can no longer decrypt the
    webhook it stored (``GET /api/2.0/mlflow/webhooks`` answers 500).  Webhooks stored before the key existed
    were encrypted with a key that is gone, so they are dropped once, before MLflow starts; the bridge
    registers its webhook again.
    """
    path = settings.state_dir / "mlflow-webhook-key"
    if path.exists():
        return path.read_text().strip()
    _drop_undecryptable_webhooks(settings.state_dir / "mlflow.db")
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    _write_private(path, key)
    return key


def prediction_log_key(settings: Settings) -> None:
    """Make the key that hashes sensitive inputs in the prediction log, once (mode 0600); serving reads it.

    It survives restarts, so equal inputs keep matching across them; losing it only stops new hashes matching old.
    """
    path = settings.state_dir / "prediction-log-key"
    if not path.exists():
        _write_private(path, secrets.token_hex(32))


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the start (never readable by others, never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _drop_undecryptable_webhooks(database: Path) -> None:
    import sqlite3

    if not database.exists():
        return
    with contextlib.closing(sqlite3.connect(database)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in ("webhook_events", "webhooks"):
            if table in tables:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        conn.commit()
