"""The layering rules of docs/design.md: app -> index -> model, index/ without torch, and
routes that declare their dependencies instead of reading the service's state."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INDEX_MODULES = ("index.catalog", "index.repository", "index.vector_store", "index.uploads",
                 "index.job", "index.merge", "index.store", "index.sources")


def test_index_imports_no_torch() -> None:
    """A fresh interpreter: the index layer loads without torch (decoding workers and the
    batch job's readers start fast and never inherit its thread pools)."""
    code = (f"import sys; import {', '.join(INDEX_MODULES)}; "
            "sys.exit('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr or "index/ imported torch"


def test_index_never_imports_app() -> None:
    for path in (ROOT / "index").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("app"), f"{path.name} imports {node.module}"


def test_routes_do_not_reach_into_the_service_state() -> None:
    """Routes get what they use from app/deps.py; only the lifespan and deps see the state."""
    for path in (ROOT / "app" / "routes").glob("*.py"):
        source = path.read_text()
        assert "app.state" not in source and "ServiceState" not in source, path.name
        assert "request.app" not in source, path.name
