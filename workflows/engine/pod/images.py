"""Images whose entrypoint the local engine knows, and the local program that stands in for each.

A container with no ``command`` runs its image's entrypoint, which a host process cannot read from an image.
For these well-known images the engine runs a small local program that behaves as the entrypoint does:

- ``argoproj/argosay:v2`` (Argo's test image): ``echo [TEXT [FILE]]``, ``cat FILE``, ``sleep SECONDS``,
  ``exit [CODE]``, ``assert_contains FILE TEXT``; no arguments prints ``hello argo``.
- ``nginx``: serves its welcome page on 127.0.0.1:80 (also when called as ``nginx -g 'daemon off;'``).
- ``argoproj/argosay:v1``: its command is ``cowsay``.
- ``docker/whalesay`` and ``argoproj/argosay:v1``: their ``cowsay`` is on the step's PATH; in ``argosay:v2`` so is
  ``argosay``, and a command naming ``/argosay`` runs it.

Any other image without a command is refused before the run starts, naming the image.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

KNOWN_IMAGES = ("argoproj/argosay:v1", "argoproj/argosay:v2", "nginx")


def _base(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    for prefix in ("docker.io/", "library/"):
        name = name.removeprefix(prefix)
    return name, tag


def known_entrypoint(image: str) -> bool:
    """Whether the engine can run this image's entrypoint locally."""
    name, tag = _base(image)
    return (name == "argoproj/argosay" and tag in ("v1", "v2", "")) or name == "nginx"


def local_argv(image: str, command: list[str], args: list[str]) -> list[str] | None:
    """The local program standing in for an image's entrypoint, or None when the command runs as it is."""
    name, _ = _base(image)
    if name == "nginx" and (not command or command[0] in ("nginx", "/usr/sbin/nginx")):
        return [sys.executable, "-m", "workflows.engine.pod.standins", "nginx"]
    if not command and known_entrypoint(image):
        tool = "cowsay" if _base(image)[1] == "v1" else "argosay"  # v1's CMD is cowsay, v2's entrypoint argosay
        return [sys.executable, "-m", "workflows.engine.pod.standins", tool, *args]
    return None


COWSAY_IMAGES = ("docker/whalesay", "argoproj/argosay:v1")
ENTRYPOINT_PATH = re.compile(r"(?<![\w.-])/argosay(?![\w.-])")  # argosay v2's entrypoint, as shell commands name it


def _tool_names(image: str) -> list[str]:
    name, tag = _base(image)
    if name == "docker/whalesay" or (name == "argoproj/argosay" and tag == "v1"):
        return ["cowsay"]
    if name == "argoproj/argosay" and tag in ("v2", ""):
        return ["cowsay", "argosay"]  # v2 is built on v1
    return []


def tools(image: str, state: Path) -> Path | None:
    """A folder of the image's well-known tools (``cowsay``, ``argosay``) to put first on the step's PATH, or None."""
    wanted = _tool_names(image)
    if not wanted:
        return None
    folder = state / "image-tools"
    for tool in wanted:
        script = folder / tool
        if not script.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{tool}.{id(folder)}"
            tmp.write_text(f'#!/bin/sh\nexec {sys.executable} -m workflows.engine.pod.standins {tool} "$@"\n')
            tmp.chmod(0o755)
            tmp.replace(script)
    return folder


def with_entrypoint(image: str, word: str, state: Path) -> str:
    """A command word with argosay v2's ``/argosay`` (as in ``sh -c "sleep 1; /argosay"``) pointed at its stand-in."""
    if "argosay" not in _tool_names(image) or not ENTRYPOINT_PATH.search(word):
        return word
    return ENTRYPOINT_PATH.sub(str(tools(image, state) or "") + "/argosay", word)
