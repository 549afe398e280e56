"""The code's shape, guarded: ruff (with its complexity rule and docstrings on public
functions and classes, ruff.toml) is clean, and no function of the package is longer
than a screen."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_FUNCTION_LINES = 60


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "tfagents_system", "tests",
                             "benchmarks"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("path", sorted((REPO / "tfagents_system").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_no_function_is_longer_than_a_screen(path):
    long = [f"{name} (line {line}): {length} lines" for name, line, length in _functions(path)
            if length > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: " + "; ".join(long)
