"""perimeterdb.prover imports nothing of perimeterdb but perimeterdb.policy (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import perimeterdb.prover

PACKAGE = Path(perimeterdb.prover.__file__).parent


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_prover_imports_only_policy_and_itself() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 5
    for path in modules:
        for name in _imports(path):
            if name == "perimeterdb" or name.startswith("perimeterdb."):
                assert name.startswith(("perimeterdb.policy", "perimeterdb.prover")), (
                    f"{path.name} imports {name}"
                )


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from perimeterdb.world import sealed\nimport perimeterdb.storage.engine\n")
    assert {"perimeterdb.world", "perimeterdb.storage.engine"} <= _imports(bad)
