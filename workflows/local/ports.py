"""The platform's ports, remembered in the state folder at ``ctcd up``, so a shell without the exports finds it.

``<state>/platform.json`` records the ports and URLs ``up`` started the services on. A command run later in this
checkout takes them for every setting its environment leaves unset; one that the environment sets to something
else is reported, since that shell would talk to another platform, or to nothing.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from workflows.settings import Settings

_logger = logging.getLogger(__name__)
FILE = "platform.json"
REMEMBERED = {  # setting -> the environment variables that set it
    "s3_port": ("CTCD_S3_PORT",),
    "mlflow_port": ("CTCD_MLFLOW_PORT",),
    "gateway_port": ("CTCD_GATEWAY_PORT",),
    "bridge_port": ("CTCD_BRIDGE_PORT",),
    "s3_endpoint_url": ("CTCD_S3_ENDPOINT_URL", "CTCD_S3_PORT"),
    "mlflow_tracking_uri": ("MLFLOW_TRACKING_URI", "CTCD_MLFLOW_PORT"),
}


def record(settings: Settings) -> None:
    """Write what ``up`` started the platform with (mode 0600)."""
    path = settings.state_dir / FILE
    body = {key: getattr(settings, key) for key in REMEMBERED}
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(body, handle, indent=1)
    temporary.replace(path)


def remembered(settings: Settings) -> tuple[Settings, list[str]]:
    """The settings with the recorded ports where the environment sets none, and what disagrees."""
    try:
        recorded: dict[str, Any] = json.loads((settings.state_dir / FILE).read_text())
    except (OSError, ValueError):
        return settings, []
    update, disagree = {}, []
    for key, variables in REMEMBERED.items():
        if key not in recorded:
            continue
        given = [v for v in variables if os.environ.get(v)]
        if not given:
            update[key] = recorded[key]
        elif getattr(settings, key) != recorded[key]:
            disagree.append(
                f"{given[0]}={os.environ[given[0]]} here, but the platform in {settings.state_dir} was started with "
                f"{key}={recorded[key]}"
            )
    return settings.model_copy(update=update), disagree
