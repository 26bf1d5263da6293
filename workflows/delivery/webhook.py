"""MLflow webhook deliveries: their signature, and the checks a receiver makes before it reads the body.

MLflow signs each delivery with the webhook's secret: ``v1,`` + base64(HMAC-SHA256(secret,
"{delivery id}.{timestamp}.{payload}")).  A delivery is accepted only with all three headers, a timestamp within
``MAX_SKEW_SECONDS`` of now, and a matching signature (compared in constant time).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

MAX_SKEW_SECONDS = 300


def sign(secret: str, delivery_id: str, timestamp: str, payload: str | bytes) -> str:
    """MLflow's webhook signature: ``v1,`` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{payload}"))."""
    body = payload if isinstance(payload, bytes) else payload.encode()
    message = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], payload: str | bytes, now: float | None = None) -> str:
    """Check an MLflow webhook delivery; return '' when valid, else why not (compared in constant time).

    Only the headers are read before the signature is checked; the body is hashed as raw bytes, never parsed.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get("x-mlflow-signature", "")
    delivery, stamp = lowered.get("x-mlflow-delivery-id", ""), lowered.get("x-mlflow-timestamp", "")
    if not (signature and delivery and stamp):
        return "missing X-MLflow-Signature, X-MLflow-Delivery-Id or X-MLflow-Timestamp"
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return "X-MLflow-Timestamp is not a Unix time in seconds"
    skew = abs((now or time.time()) - int(stamp))
    if skew > MAX_SKEW_SECONDS:
        return f"timestamp is {skew:.0f}s away from now (replay?)"
    if len(delivery) > 200:
        return "X-MLflow-Delivery-Id is longer than 200 characters"
    if not hmac.compare_digest(sign(secret, delivery, stamp, payload).encode(), signature.encode("utf-8", "replace")):
        return "signature does not match"
    return ""
