"""The house stays readable: the README's map names every package, sizes stay small, the layers hold."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("workflows", "models", "serving")
MAX_MODULE, MAX_CLASS, MAX_FUNCTION = 400, 250, 60


def _layout_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1].strip("\n").splitlines()


def mapped_folders(lines: list[str]) -> set[str]:
    """The folders the map names, as paths: an entry indented two more spaces lives in the folder above it."""
    found: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in lines:
        match = re.match(r"^( *)([\w.-]+)/ ", line + " ")
        if not match:
            continue
        depth = len(match.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        path = "/".join([p for _, p in stack] + [match.group(2)])
        found.add(path)
        stack.append((depth, match.group(2)))
    return found


def package_folders() -> set[str]:
    return {str(p.parent.relative_to(REPO)) for name in PACKAGES for p in (REPO / name).rglob("__init__.py")}


def test_the_map_names_every_package_and_test_lane() -> None:
    folders = mapped_folders(_layout_block())
    lanes = {str(p.relative_to(REPO)) for p in (REPO / "tests").iterdir() if (p / "__init__.py").exists()}
    missing = sorted((package_folders() | lanes) - folders)
    assert not missing, f"README.md's Layout section does not name {missing}"


def test_the_map_reader_sees_a_missing_folder() -> None:
    lines = ["workflows/   all", "  engine/    the engine", "serving/   predictor"]
    assert mapped_folders(lines) == {"workflows", "workflows/engine", "serving"}
    assert "workflows/cli" not in mapped_folders(lines)


def _sizes(path: Path) -> list[str]:
    text, name = path.read_text(), path.name if REPO not in path.parents else str(path.relative_to(REPO))
    lines = len(text.splitlines())
    problems = [f"{name}: {lines} lines"] if lines > MAX_MODULE else []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if isinstance(node, ast.ClassDef) and length > MAX_CLASS:
            problems.append(f"{name}: class {node.name} is {length} lines")
        elif not isinstance(node, ast.ClassDef) and length > MAX_FUNCTION:
            problems.append(f"{name}: {node.name}() is {length} lines")
    return problems


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_classes_and_functions_stay_small(package: str) -> None:
    problems = [p for path in sorted((REPO / package).rglob("*.py")) for p in _sizes(path)]
    assert not problems, "\n".join(problems)


def test_the_size_check_sees_a_long_function(tmp_path: Path) -> None:
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * MAX_FUNCTION)
    assert _sizes(long) and "f() is" in _sizes(long)[0]


def test_imports_follow_the_layers() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(linter), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def import_circles(package: str) -> list[list[str]]:
    """Groups of modules under ``package`` that import each other, directly or round a loop (Tarjan's SCCs)."""
    import grimp

    graph = grimp.build_graph(package.split(".")[0])
    inside = sorted(m for m in graph.modules if m.startswith(package + ".") and not _is_package(m))
    edges = {m: [d for d in graph.find_modules_directly_imported_by(m) if d in inside] for m in inside}
    return _strongly_connected(edges)


def _is_package(module: str) -> bool:
    return (REPO / module.replace(".", "/") / "__init__.py").exists()


def _strongly_connected(edges: dict[str, list[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while (top := stack.pop()) != node:
                group.append(top)
            if group:
                circles.append(sorted([node, *group]))

    for node in edges:
        if node not in index:
            visit(node)
    return circles


def test_the_engine_has_no_import_circles() -> None:
    assert import_circles("workflows.engine") == []


def test_the_circle_finder_sees_a_loop() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    assert _strongly_connected(edges) == [["a", "b", "c"]]
