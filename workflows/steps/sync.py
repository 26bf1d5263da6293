"""The registry-sync step: one pass of the registry bridge (the cluster's form of the local bridge loop).

No `from __future__ import annotations` here: hera reads the real annotations of step functions.
"""

import json
import logging

from workflows.steps.common import step

_logger = logging.getLogger(__name__)


@step()
def registry_sync() -> str:
    """Reconcile the registry with gitops/ once; return what was done, as JSON."""
    from dataclasses import asdict

    from workflows.delivery import bridge
    from workflows.settings import get_settings

    actions = bridge.reconcile_once(get_settings())  # logs each decision on one line
    return json.dumps([asdict(a) for a in actions])
