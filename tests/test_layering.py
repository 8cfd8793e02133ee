"""The import rule of the layers, checked on every module (lazy imports inside functions too):

    schemas <- infra <- profilestore <- {ingest, materializer, query} <- profilestream

A shared layer never imports a service or the composition root, and no service imports another;
only profilestream (the composition root) sees the services."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

# package -> the project packages it may import (itself included)
ALLOWED: dict[str, set[str]] = {
    "schemas": {"schemas"},
    "infra": {"schemas", "infra"},
    "profilestore": {"schemas", "infra", "profilestore"},
    "ingest": {"schemas", "infra", "profilestore", "ingest"},
    "materializer": {"schemas", "infra", "profilestore", "materializer"},
    "query": {"schemas", "infra", "profilestore", "query"},
    "profilestream": {
        "schemas",
        "infra",
        "profilestore",
        "ingest",
        "materializer",
        "query",
        "profilestream",
    },
}
PROJECT = set(ALLOWED)


def imported_packages(path: Path) -> set[str]:
    """The project's top-level packages a module imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & PROJECT
    return found


MODULES = sorted(p for package in ALLOWED for p in (ROOT / package).rglob("*.py"))


def test_every_package_is_walked() -> None:
    assert {p.relative_to(ROOT).parts[0] for p in MODULES} == PROJECT
    assert len(MODULES) > 50


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_the_layers(module: Path) -> None:
    package = module.relative_to(ROOT).parts[0]
    forbidden = imported_packages(module) - ALLOWED[package]
    assert not forbidden, f"{package} may not import {sorted(forbidden)}"


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from query.server import x\n    import ingest.app\n")
    assert imported_packages(sample) == {"query", "ingest"}
