"""The allocator tuning (sfgraph.memory): a render reuses its freed blocks instead of
faulting their pages in again."""
from __future__ import annotations

import subprocess
import sys

import pytest

# Renders the bundled separation graph on the demo clip twice (the first compiles and
# allocates what stays) and prints the minor page faults of the second render.
FAULTS = """
import resource, sys, tempfile
from sfgraph.engine.offline import render
from sfgraph.graph.build import build_graph
from sfgraph.graph.declaration import load_graph_decl
from sfgraph.memory import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
with tempfile.TemporaryDirectory() as out:
    render(build_graph(load_graph_decl("separate"), output_dir=out), progress=False)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    render(build_graph(load_graph_decl("separate"), output_dir=out), progress=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def render_page_faults(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_a_render_reuses_freed_memory():
    plain, tuned = render_page_faults("plain"), render_page_faults("tuned")
    assert tuned < plain / 10, (plain, tuned)  # measured: 17808 and 84
