"""The README's lists of what exists say what exists: make targets, commands."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_make_help_lists_exactly_the_targets_the_readme_names() -> None:
    readme = (REPO / "README.md").read_text()
    sentence = re.search(r"`make help` lists every target: (.+?)\.\n", readme, re.S)
    assert sentence, "the README's `make help` sentence is gone"
    named = re.findall(r"`([a-z-]+)`", sentence.group(1))
    shown = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    targets = [re.sub(r"\x1b\[[0-9;]*m", "", line).split()[0] for line in shown.splitlines() if line.strip()]
    assert named == targets
