"""Detached worker: ``python -m workflows.local.worker RUN`` executes one Pending run to its end."""

from __future__ import annotations

import logging
import sys

from workflows.local.runs import execute
from workflows.settings import get_settings


def main() -> int:
    """Run the named run; exit 0 when it Succeeded."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    workflow = execute(get_settings(), sys.argv[1])
    return 0 if workflow["status"]["phase"] == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
