"""Choices are enums that typer checks at parse time: an unknown value is refused with the list of values."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from workflows.cli.app import app


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
