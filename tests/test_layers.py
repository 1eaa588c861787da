"""The layer rules: which modules may not import which, checked on the source.

Every ``import`` and ``from … import`` statement counts, at any depth (imports inside
functions too), relative ones resolved. ``nodes/`` is installed as ``sfgraph.nodes``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"sfgraph": ROOT / "sfgraph", "sfgraph.nodes": ROOT / "nodes"}

# (importer, forbidden): no module named ``importer`` or below it imports
# ``forbidden`` or anything below it.
LAYER_RULES = [
    # the engine drives nodes only through the contract in sfgraph.graph
    ("sfgraph.engine", "sfgraph.nodes"),
    ("sfgraph.engine", "nodes"),
    # nodes use the contract and the modules below it, never the engine's internals
    ("sfgraph.nodes", "sfgraph.engine"),
]


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _modules() -> dict[str, Path]:
    """Every source module by its dotted name."""
    modules = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _imports(name: str, path: Path) -> set[str]:
    """The modules ``path`` (module ``name``) imports; ``from A import b`` counts as
    importing both ``A`` and ``A.b`` (``b`` may be a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for statement in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(statement, ast.Import):
            found.update(alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            if statement.level:
                base = package.split(".")[:len(package.split(".")) - statement.level + 1]
                source = ".".join(base + ([statement.module] if statement.module else []))
            else:
                source = statement.module
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in statement.names)
    return found


MODULES = _modules()


def test_the_walk_sees_the_layers():
    for prefix in {p for rule in LAYER_RULES for p in rule} - {"nodes"}:
        assert any(_within(name, prefix) for name in MODULES), prefix


@pytest.mark.parametrize("importer, forbidden", LAYER_RULES)
def test_layer_rule(importer, forbidden):
    breaches = [f"{MODULES[name].relative_to(ROOT)} imports {imported}"
                for name in sorted(MODULES) if _within(name, importer)
                for imported in sorted(_imports(name, MODULES[name])) if _within(imported, forbidden)]
    assert not breaches, f"{importer} may not import {forbidden}:\n" + "\n".join(breaches)
