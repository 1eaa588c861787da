from __future__ import annotations

from pathlib import Path

import pytest

from helpers import CUSTOM_NODES


@pytest.fixture
def graph_file(tmp_path):
    """Write graph YAML to a file; ``{custom}`` in it names the custom test nodes module."""

    def make(text: str, name: str = "g.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text.replace("{custom}", str(CUSTOM_NODES)))
        return path

    return make
