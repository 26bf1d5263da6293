"""Choices are enums that typer checks at parse time: an unknown value is refused with the list of values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workflows.cli.app import app
from workflows.settings import get_settings


@pytest.fixture(autouse=True)
def own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Commands run in this process read settings once and keep them: give them a state folder of their own, and
    forget them afterwards, so no later test of the session sees these."""
    monkeypatch.setenv("CTCD_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("args", "option", "values"),
    [
        (["status", "-o", "xml"], "'--output' / '-o'", "'table', 'json', 'yaml', 'name'"),
        (["runs", "list", "-o", "csv"], "'--output' / '-o'", "'table', 'json', 'yaml', 'name'"),
        (["promote", "intent-classifier", "1", "--strategy", "blue-green"], "'--strategy'", "'canary', 'full', 'ab'"),
    ],
)
def test_an_unknown_choice_is_refused_listing_the_choices(args: list[str], option: str, values: str) -> None:
    result = CliRunner().invoke(app, args)
    text = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and f"Invalid value for {option}" in text and values in text, result.output


def test_a_known_choice_in_another_case_is_taken() -> None:
    result = CliRunner().invoke(app, ["template", "list", "-o", "JSON"])
    assert result.exit_code == 0, result.output
