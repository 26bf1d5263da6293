"""The install's bytecode step: it finds the libraries the project imports and writes their bytecode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from workflows.local.bytecode import compile_imports, third_party


def test_the_libraries_found_are_the_project_s_third_party_imports_heavy_ones_inside_functions_too() -> None:
    names = third_party()
    assert {"mlflow", "sklearn.svm", "kserve", "spacy", "wordllama.inference", "pytest"} <= set(names)
    assert "mlflow.server" in names  # started as a command, named explicitly
    assert not [n for n in names if n.split(".")[0] in ("workflows", "models", "serving", "tests", "json", "os")]


def test_bytecode_is_written_even_where_the_machine_turns_writing_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "probe_ok.py").write_text("VALUE = 1\n")
    (tmp_path / "probe_broken.py").write_text("raise RuntimeError('an import that fails')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert compile_imports(["probe_broken", "probe_ok"], processes=1) == 0
    tag = sys.implementation.cache_tag
    assert (tmp_path / "__pycache__" / f"probe_ok.{tag}.pyc").is_file()
