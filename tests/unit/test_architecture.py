"""The package's shape, guarded (README, "Architecture"): the layers of .importlinter
hold, the import graph has no cycle (imports inside functions counted), an import
inside a function only keeps a heavy dependency (TensorFlow and its stack) out of a
light module, and no module is longer than MAX_MODULE_LINES."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "tfagents_system"
MAX_MODULE_LINES = 500
# Importing one of these at a module's top level makes the module heavy: seconds of
# start-up, and TensorFlow's threads, for a command that may need neither.
HEAVY = {"tensorflow", "tf_agents", "reverb", "tensorflow_probability", "gym", "pybullet",
         "pybullet_envs", "matplotlib", "h5py", "imageio", "PIL"}


def test_the_layer_and_independence_contracts_hold():
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
         " sys.exit(lint_imports_command())", "--no-cache"],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 kept, 0 broken" in result.stdout


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """The components of more than one node of a directed graph (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in edges[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            on_stack.difference_update(component)
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def cycles(package: str, path: Path) -> list[list[str]]:
    """The import cycles of a package: grimp's graph holds every import statement,
    those inside functions too."""
    sys.path.insert(0, str(path))
    try:
        graph = grimp.build_graph(package, cache_dir=None)
    finally:
        sys.path.remove(str(path))
    return strongly_connected({module: graph.find_modules_directly_imported_by(module)
                               for module in graph.modules})


def test_the_import_graph_has_no_cycle():
    assert cycles("tfagents_system", REPO) == []


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path):
    """The check counts the imports a function makes: they close cycles as surely."""
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic import b\n")
    (package / "b.py").write_text("def late():\n    from cyclic import a\n    return a\n")
    (package / "c.py").write_text("from cyclic import a\n")
    assert cycles("cyclic", tmp_path) == [["cyclic.a", "cyclic.b"]]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(node, module: str, path: Path, modules: dict) -> list[str]:
    """The modules an import statement names (a package's module, not the package, for
    `from package import module`)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parent = module.split(".")[:len(module.split(".")) - (path.name != "__init__.py")]
        parent = parent[:len(parent) - node.level + 1]
        base = ".".join(parent + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names]


def _imports(modules: dict) -> tuple[dict, dict]:
    """({module: what it imports at import time}, {module: [(import, line)] made inside
    its functions})."""
    top, inside = {}, {}
    for module, path in modules.items():
        top[module], inside[module] = set(), []

        def visit(node, in_function: bool, module=module, path=path) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    names = _imported(child, module, path, modules)
                    if in_function:
                        inside[module] += [(name, child.lineno) for name in names]
                    else:
                        top[module].update(names)
                visit(child, in_function or isinstance(
                    child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

        visit(ast.parse(path.read_text()), False)
    return top, inside


def _heavy_modules(modules: dict, top: dict) -> set[str]:
    """The package's modules that import a HEAVY library when they are imported."""
    heavy = {m for m in modules if any(name.split(".")[0] in HEAVY for name in top[m])}
    grew = True
    while grew:
        grew = False
        for module in set(modules) - heavy:
            if any(name in heavy for name in top[module]):
                heavy.add(module)
                grew = True
    return heavy


def test_imports_inside_functions_only_keep_heavy_modules_out_of_light_ones():
    """An import of the package's own module inside a function must import something
    heavy: never one that would merely close an import cycle."""
    modules = _modules()
    top, inside = _imports(modules)
    heavy = _heavy_modules(modules, top)
    light = [f"{module}:{line} imports {name} inside a function, which is light: import it "
             "at the top" for module, made in inside.items() for name, line in made
             if name.startswith("tfagents_system.") and name in modules and name not in heavy]
    assert not light, "\n".join(light)
    assert "tfagents_system.agents.sac" in heavy and "tfagents_system.params" not in heavy


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_is_longer_than_the_limit(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name}: {lines} lines"
