"""Bytecode for what ctcd imports, written once at install, so no process compiles a library again.

``make setup`` installs the venv without compiling it, then runs ``python -m workflows.local.bytecode``.  It
finds every third-party module the project imports (an ``import`` anywhere in ``workflows``, ``models``,
``serving`` or ``tests``, heavy imports inside step bodies included) and imports them in a few processes at
once with bytecode writing on, so Python writes the ``.pyc`` of each module they load, and only those.  That
is about a quarter of the venv's files: compiling all of them (``uv sync --compile-bytecode``) took 15 s of
a 2-core machine's cold start, this takes half of it.  Bytecode matters because a machine may set
``PYTHONDONTWRITEBYTECODE``, and then a module without a ``.pyc`` is compiled again at every import.

A module that fails to import is skipped: this only makes later imports faster, and never fails an install.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("workflows", "models", "serving", "tests")
# Imported by the services ctcd starts as commands, not by any import of ours.
SERVICES = (
    "mlflow.server",
    "mlflow.server.handlers",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.artifact.s3_artifact_repo",
    "alembic.command",
    "uvicorn",
)
TIMEOUT = 300.0  # seconds: a library whose import hangs is given up on, never the install
_IMPORT_ALL = """
import importlib, sys
sys.argv = sys.argv[:1]
for name in {names!r}:
    try:
        importlib.import_module(name)
    except BaseException:
        pass
"""


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def third_party(root: Path = ROOT) -> list[str]:
    """Every module outside the standard library and the project that the project's source imports, sorted."""
    found: set[str] = set(SERVICES)
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            try:
                found |= _imported(ast.parse(path.read_text(encoding="utf-8")))
            except (SyntaxError, UnicodeDecodeError, OSError):
                continue
    ours = {*PACKAGES, "__future__"}
    return sorted(n for n in found if n.split(".")[0] not in ours and n.split(".")[0] not in sys.stdlib_module_names)


def compile_imports(names: list[str], processes: int, python: str = sys.executable) -> int:
    """Import ``names`` in ``processes`` processes at once with bytecode writing on; return how many failed.

    Modules are dealt out by top-level package, so each process compiles mostly its own libraries.
    """
    groups: list[list[str]] = [[] for _ in range(max(1, processes))]
    for i, top in enumerate(sorted({n.split(".")[0] for n in names})):
        groups[i % len(groups)].extend(n for n in names if n.split(".")[0] == top)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = [
        subprocess.Popen(
            [python, "-c", _IMPORT_ALL.format(names=group)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for group in groups
        if group
    ]
    failed = 0
    for proc in started:
        try:
            failed += proc.wait(timeout=TIMEOUT) != 0
        except subprocess.TimeoutExpired:
            proc.kill()
            failed += 1
    return failed


def main() -> int:
    """Write the bytecode of every library the project imports; always succeeds."""
    names = third_party()
    failed = compile_imports(names, os.cpu_count() or 1)
    skipped = f" ({failed} of the import groups failed; those modules compile when first used)" if failed else ""
    print(f"bytecode written for the {len(names)} modules ctcd imports{skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
