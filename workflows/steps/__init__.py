"""Step code: the runner-script functions that run inside each workflow pod (or local engine process).

When the hera runner is the process's ``__main__`` (a step's pod), ctcd's own INFO lines go to the step's log;
importing these modules anywhere else (compiling, tests) configures nothing.
"""

import logging
import sys


def _log_to_the_step() -> None:
    """Show ``workflows`` and ``models`` INFO lines (and everyone's warnings) on stderr in a step's process."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is None or spec.name != "hera.workflows.runner":
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("workflows", "models"):
        logging.getLogger(name).setLevel(logging.INFO)


_log_to_the_step()
