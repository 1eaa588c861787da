"""Where node types are found: built-ins, entry points, and modules a graph imports."""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path

from sfgraph.graph.node import Node

BUILTIN_MODULES = ("io", "mix", "effects", "f0", "separation", "device", "meters")
ENTRY_POINT_GROUP = "sfgraph.nodes"

_registry: dict[str, type[Node]] = {}
_loaded = False


def register(cls: type[Node]) -> type[Node]:
    """Register a node class under its ``type_name`` (usable as a decorator)."""
    if not cls.type_name:
        raise ValueError(f"{cls.__name__} has no type_name")
    existing = _registry.get(cls.type_name)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"node type '{cls.type_name}' is registered twice: "
                         f"{existing.__module__}.{existing.__qualname__} and {cls.__module__}.{cls.__qualname__}")
    _registry[cls.type_name] = cls
    return cls


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN_MODULES:
        importlib.import_module(f"sfgraph.nodes.{name}")
    load_entry_points()


def load_entry_points() -> None:
    """Import the modules that installed packages declare under ``sfgraph.nodes``."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def import_node_module(spec: str, base_dir: Path) -> None:
    """Import a module of user node types: a dotted module name or a ``.py`` path
    (relative to the graph file's folder). Importing registers its node classes."""
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_absolute():
            path = base_dir / path
        if not path.exists():
            raise ImportError(f"no such file: {path}")
        module_name = f"sfgraph_user_{path.stem}_{abs(hash(str(path.resolve())))}"
        if module_name in sys.modules:
            return
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
    else:
        importlib.import_module(spec)


def get_node_type(type_name: str) -> type[Node]:
    _load_builtins()
    return _registry[type_name]


def node_types() -> dict[str, type[Node]]:
    _load_builtins()
    return dict(sorted(_registry.items()))


def suggest(type_name: str) -> list[str]:
    _load_builtins()
    return difflib.get_close_matches(type_name, list(_registry), n=3, cutoff=0.5)
