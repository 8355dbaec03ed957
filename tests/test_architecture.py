"""The house plan, checked (docs/design.md, Architecture): layers point one way, no import
cycles, the index loads without torch, and no module or function outgrows a reader."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"model": 0, "index": 1, "app": 2}  # a layer may import only layers below it
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    out = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `path` imports anywhere (top level, functions, TYPE_CHECKING)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found.update(n for n in names if n in modules)
    return found


def _top_level_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported when `path` is imported (module body, not TYPE_CHECKING)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found.update(n for n in names if n in modules)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
    return found


def test_layers_point_one_way() -> None:
    modules = _modules()
    wrong = [f"{name} -> {dep}" for name, path in modules.items()
             for dep in _imports(path, modules)
             if LAYERS[dep.split(".")[0]] > LAYERS[name.split(".")[0]]]
    assert not wrong, wrong


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _top_level_imports(path, modules) - {name} for name, path in modules.items()}
    # a package's __init__ is imported by its submodules: leave those edges out
    graph = {n: {d for d in deps if not n.startswith(d + ".")} for n, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in graph[node]:
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_index_imports_without_torch() -> None:
    """A fresh interpreter: every index module (and the torch-free model modules it uses)
    loads without torch, so decoding workers and SQL/FAISS code start fast."""
    names = sorted(n for n in _modules() if n.startswith("index."))
    names += ["model.audio.signal", "model.facts", "model.files"]
    code = f"import sys, {', '.join(names)}; sys.exit('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr or "importing index/ loaded torch"


def test_routes_do_not_reach_into_the_service_state() -> None:
    """Routes get what they use from app/deps.py; only the lifespan and deps see the state."""
    for path in (ROOT / "app" / "routes").glob("*.py"):
        source = path.read_text()
        assert "app.state" not in source and "ServiceState" not in source, path.name
        assert "request.app" not in source, path.name


def test_modules_and_functions_stay_small() -> None:
    too_big = []
    for path in _modules().values():
        source = path.read_text()
        if source.count("\n") > MAX_MODULE_LINES:
            too_big.append(f"{path.relative_to(ROOT)}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: "
                                   f"{length} lines")
    assert not too_big, too_big


def test_code_cites_only_files_in_the_repository() -> None:
    cited = [p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")
             if "../shared" in p.read_text() or "DESIGN.md" in p.read_text()]
    assert not cited, cited
    assert (ROOT / "docs" / "design.md").is_file()
