"""Where a user's data file comes from: a local CSV, Parquet or JSON Lines file, or one S3 object.

Every way a read can fail becomes a one-line :class:`~workflows.training.validation.DatasetError` that names the
file and the fix; nothing is written until the bytes have been read whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflows.training.validation import MAX_FILE_BYTES, DatasetError


def read_location(client: Any, url: str) -> bytes:
    """The bytes at ``s3://bucket/key``, or a one-line :class:`DatasetError` that names the problem and the fix."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket or not key or key.endswith("/"):
        raise DatasetError(f"{url}: name one object, as s3://BUCKET/KEY")
    if ".." in key.split("/") or key.startswith("/"):
        raise DatasetError(f"{url}: a key may not contain '..' or start with '/'; give the object's full key")
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except client.exceptions.NoSuchBucket:
        raise DatasetError(f"{url}: bucket {bucket!r} does not exist; check the name (`aws s3 ls`)") from None
    except client.exceptions.NoSuchKey:
        raise DatasetError(
            f"{url}: no object {key!r} in bucket {bucket!r}; check the key (`aws s3 ls s3://{bucket}/`)"
        ) from None
    except client.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise DatasetError(
            f"{url}: S3 refused the read ({code}); check the bucket, the key and the credentials"
        ) from None


SYSTEM_FOLDERS = ("/etc", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run")
SECRET_FOLDERS = (".ssh", ".gnupg", ".aws", ".kube")


def _check_place(source: str, path: Path) -> None:
    """Refuse, before reading a byte, a file that is not a regular file or that lives in a system folder.

    Such a file is refused for where it lives, so the message names the place and never shows any content.
    """
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise DatasetError(f"{source}: no such file; give the path of a CSV, Parquet or JSON Lines file") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, say
        raise DatasetError(f"{source}: cannot be resolved ({exc}); give the path of a data file") from None
    system = any(real == Path(top) or Path(top) in real.parents for top in SYSTEM_FOLDERS)
    if system or any(part in SECRET_FOLDERS for part in real.parts):
        raise DatasetError(
            f"{source}: resolves into {real.parent}, a system or credentials folder; ctcd reads data files only "
            "from your own folders (its content is not shown)"
        )
    if real.exists() and not real.is_file() and not real.is_dir():
        raise DatasetError(f"{source}: is not a regular file (a device, socket or pipe); give a data file")


def read_source(client: Any, source: str) -> bytes:
    """The bytes of ``s3://bucket/key`` or of a local file; a one-line :class:`DatasetError` when it cannot be read."""
    if source.startswith("s3://"):
        return read_location(client, source)
    path = Path(source)
    _check_place(source, path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DatasetError(f"{source}: larger than the {MAX_FILE_BYTES >> 20} MiB limit; split it into batches")
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{source}: no such file; give the path of a CSV, Parquet or JSON Lines file") from None
    except IsADirectoryError:
        raise DatasetError(f"{source}: is a folder; give one CSV, Parquet or JSON Lines file") from None
    except OSError as exc:
        raise DatasetError(f"{source}: cannot be read ({exc.strerror or exc})") from None
