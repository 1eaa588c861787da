"""Files that ship inside the sfgraph package, named ``sfgraph:RELATIVE/PATH``."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def resolve_resource(value: str) -> Path:
    """``sfgraph:assets/demo/quartet.wav`` -> its path inside the installed package."""
    relative = value.split(":", 1)[1].lstrip("/")
    path = Path(str(resources.files("sfgraph") / relative))
    if not path.exists():
        raise FileNotFoundError(f"{value}: no such file in the sfgraph package ({path})")
    return path


def resolve_path(value: str) -> Path:
    """A path given by a user: ``sfgraph:REL`` inside the package, anything else as it is."""
    return resolve_resource(value) if value.startswith("sfgraph:") else Path(value).expanduser()


def path_record(value: str) -> str:
    """How to record a path a user gave (e.g. the model a run started from): ``sfgraph:REL``
    as given, which stays true wherever the package is installed; anything else absolute."""
    return value if value.startswith("sfgraph:") else str(resolve_path(value).resolve())
