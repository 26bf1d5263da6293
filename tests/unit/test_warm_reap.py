"""The warm parent's reaper: an exit it cannot record (a full disk) is logged, and the parent lives on.

The reaper collects every child of its process, so each case runs in a process of its own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CASE = """
import logging, os, sys, time
from pathlib import Path
from serving.local import warm
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
pid = os.fork()
if pid == 0:
    os._exit(3)
time.sleep(0.2)
warm._reap(Path(sys.argv[1]))
try:
    os.waitpid(pid, os.WNOHANG)
    print("not reaped")
except ChildProcessError:
    print(f"reaped {pid}")
"""


def _reap_in_a_process(exits: Path) -> str:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", CASE, str(exits)], capture_output=True, text=True, timeout=60, cwd=root
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_exit_code_is_recorded_for_local_serving(tmp_path: Path) -> None:
    out = _reap_in_a_process(tmp_path)
    pid = out.split("reaped ")[1].strip()
    assert (tmp_path / pid).read_text() == "3"


def test_an_exit_that_cannot_be_written_is_logged_not_raised(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "exits"
    not_a_folder.write_text("")  # writing under it fails, as a full disk does
    out = _reap_in_a_process(not_a_folder)
    assert "cannot record the exit of model server" in out and "reaped" in out  # no zombie left either
