"""What every command shares: the consoles, the ``-o`` option, settings and technique lookup, error output."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from workflows.errors import CtcdError
from workflows.settings import Settings, get_settings

if TYPE_CHECKING:
    from models.contract import Technique, UnknownTechnique

console = Console(width=None if sys.stdout.isatty() else 250)  # piped: whole rows, as kubectl prints them
err_console = Console(stderr=True)


class Output(StrEnum):
    """The ``-o`` formats; typer refuses any other at parse time, listing these."""

    table = "table"
    json = "json"
    yaml = "yaml"
    name = "name"


OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="Output format.", case_sensitive=False)]


def report(exc: CtcdError | UnknownTechnique) -> int:
    """Print an error a user can act on, and return its exit code.

    ``UnknownTechnique`` comes from ``models``, which imports nothing of ``workflows``, so it is named here
    beside the root error.
    """
    if not isinstance(exc, CtcdError):
        message, hint, code = str(exc), "", 1
    else:
        message, hint, code = exc.message, exc.hint, exc.exit_code
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    if hint:
        err_console.print(f"[bold]hint:[/] {escape(hint)}", soft_wrap=True, highlight=False)
    return code


def settings() -> Settings:
    """The settings from the environment, and the running platform's ports where it sets none.

    A wrong value raises ``SettingError``, which names it; a port the environment sets otherwise than the platform
    in the state folder was started with is reported on stderr.
    """
    from workflows.local import ports

    config, disagree = ports.remembered(get_settings())
    for line in disagree:
        err_console.print(f"[yellow]warning:[/] {line}; unset it, or `ctcd down && ctcd up` with it")
    return config


def technique_named(name: str) -> Technique:
    """A technique by name (an unknown one raises ``UnknownTechnique``, which lists the known ones)."""
    from models.contract import get

    return get(name)


def print_json(data: Any) -> None:
    """Machine-readable output, as ``-o json`` prints it."""
    print(json.dumps(data, indent=2))


def print_yaml(data: Any) -> None:
    """``-o yaml`` output."""
    import yaml

    print(yaml.safe_dump(data, sort_keys=False))


def number(value: str) -> str:
    """A metric with four decimals, or the text as it is (``-``)."""
    try:
        return f"{float(value):.4f}"
    except ValueError:
        return value
