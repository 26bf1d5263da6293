"""The README's command output and its own-data walkthrough, run as written on the state a training run leaves.

The models table in the README has the columns and the techniques `ctcd models` prints. The walkthrough's lines run
top to bottom: every `ctcd` line through the CLI, every `curl` line as the same request (to this platform's gateway).
It starts with `ctcd reset`, so it runs last of the session's tests.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import httpx

from models.contract import discover
from tests.conftest import CTCD, settings_env
from workflows.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _block(after: str, fence: str) -> str:
    text = README.read_text()
    start = text.index(fence, text.index(after)) + len(fence)
    return text[start : text.index("```", start)]


def test_the_models_table_has_the_readme_shape(runs: dict[str, Any], platform: Settings) -> None:
    shown = _block("The models table shows", "```\n").splitlines()
    printed = subprocess.run([*CTCD, "models"], env=settings_env(platform), capture_output=True, text=True).stdout
    lines = [line for line in printed.splitlines() if line.strip() and not set(line.strip()) <= set("━─┃│┏┓┗┛┡┩└┘┌┐")]
    header = [re.split(r"\s{2,}|[┃│]", line.strip("┃│ ")) for line in lines if "TECHNIQUE" in line][0]
    assert re.split(r"\s{2,}", shown[0].strip()) == [h.strip() for h in header if h.strip()]
    techniques = {line.split()[0] for line in shown[1:]}
    printed_names = {line.strip("┃│ ").split()[0] for line in lines if line.strip("┃│ ")}
    assert techniques == set(discover()) and techniques <= printed_names  # a row for every technique, as printed


def _commands() -> list[str]:
    """The walkthrough's lines, continuation lines joined, comments and output lines left out."""
    block = _block("## Your own data, end to end", "```console\n").replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _curl(line: str, platform: Settings) -> httpx.Response:
    words = shlex.split(line)
    url = next(w for w in words if w.startswith("http")).replace(":8090", f":{platform.gateway_port}")
    headers = dict(w.split(": ", 1) for prev, w in zip(words, words[1:], strict=False) if prev == "-H")
    body = words[words.index("-d") + 1]
    return httpx.post(url, content=body, headers=headers, timeout=60)


def test_the_own_data_walkthrough_runs_top_to_bottom(platform: Settings, tmp_path: Path) -> None:
    answers = []
    for line in _commands():
        if line.startswith("curl"):
            reply = _curl(line, platform)
            assert reply.status_code == 200, (line, reply.text)
            answers.append(reply)
            continue
        for command in line.split("&&"):
            words = shlex.split(command)
            assert words[0] == "ctcd", line
            done = subprocess.run(
                [*CTCD, *words[1:]], cwd=tmp_path, env=settings_env(platform), capture_output=True, text=True,
                timeout=900,
            )  # fmt: skip
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
            assert "Traceback" not in done.stderr
    direct, through_graph = answers
    assert direct.json()["predictions"][0]["label"] == "handoff", direct.text  # an out-of-scope line hands off
    assert direct.headers["x-ctcd-model-version"] == "1"
    assert through_graph.headers["x-ctcd-service"] == "intent-spacy"  # the chat channel's technique
    listing = json.loads(subprocess.run(
        [*CTCD, "data", "ls", "intent-classifier", "-o", "json"], env=settings_env(platform), capture_output=True,
        text=True,
    ).stdout)  # fmt: skip
    assert [f["origin"] for f in listing["files"] if f["role"] == "train"] == ["user"]
