"""The layer rules: which modules may not import which, checked on the source.

Every ``import`` and ``from … import`` statement counts, at any depth (imports inside
functions too), relative ones resolved. ``nodes/`` is installed as ``sfgraph.nodes``.
"""
from __future__ import annotations

import ast
import functools
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

# The layers of ARCHITECTURE.md, bottom first. A module may import the layers below its
# own, never one above, nor another package of its own layer: model, data and f0 do not
# import each other, and the bottom modules import nothing of sfgraph at all. (Entry
# points outside the layers: the package itself, ``python -m sfgraph`` and ``sfgraph.train``.)
LAYERS = [
    ("sfgraph.grid", "sfgraph.music", "sfgraph.atomic", "sfgraph.buffers", "sfgraph.midi_io",
     "sfgraph.resources", "sfgraph.threads", "sfgraph.memory", "sfgraph.devices",
     "sfgraph.interrupt"),
    ("sfgraph.dsp",),
    ("sfgraph.model", "sfgraph.data", "sfgraph.f0"),
    ("sfgraph.evaluation",),
    ("sfgraph.graph",),
    ("sfgraph.nodes", "sfgraph.engine"),
    ("sfgraph.cli",),
]


def _forbidden_by_layers(package: str) -> list[str]:
    level = next(i for i, layer in enumerate(LAYERS) if package in layer)
    return ([p for layer in LAYERS[level + 1:] for p in layer]
            + [p for p in LAYERS[level] if p != package])


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


@functools.cache
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
    for prefix in ({p for rule in LAYER_RULES for p in rule} | {p for layer in LAYERS for p in layer}) - {"nodes"}:
        assert any(_within(name, prefix) for name in MODULES), prefix


def test_every_module_is_in_a_layer():
    entry_points = {"sfgraph", "sfgraph.__main__", "sfgraph.train"}
    outside = [name for name in MODULES if name not in entry_points
               and not any(_within(name, p) for layer in LAYERS for p in layer)]
    assert not outside, f"add these to a layer of LAYERS (and to ARCHITECTURE.md): {outside}"


@pytest.mark.parametrize("importer, forbidden", LAYER_RULES)
def test_layer_rule(importer, forbidden):
    breaches = [f"{MODULES[name].relative_to(ROOT)} imports {imported}"
                for name in sorted(MODULES) if _within(name, importer)
                for imported in sorted(_imports(name, MODULES[name])) if _within(imported, forbidden)]
    assert not breaches, f"{importer} may not import {forbidden}:\n" + "\n".join(breaches)


@pytest.mark.parametrize("package", [p for layer in LAYERS for p in layer])
def test_layers_run_one_way(package):
    forbidden = _forbidden_by_layers(package)
    breaches = [f"{MODULES[name].relative_to(ROOT)} imports {imported}"
                for name in sorted(MODULES) if _within(name, package)
                for imported in sorted(_imports(name, MODULES[name])) if any(_within(imported, f) for f in forbidden)]
    assert not breaches, f"{package} may not import {', '.join(forbidden)}:\n" + "\n".join(breaches)


def test_imports_are_absolute():
    """One import style: ``from sfgraph.x import y``, never ``from .x import y``."""
    relative = [f"{path.relative_to(ROOT)}:{statement.lineno}" for path in MODULES.values()
                for statement in ast.walk(ast.parse(path.read_text(), str(path)))
                if isinstance(statement, ast.ImportFrom) and statement.level]
    assert not relative, relative
