"""Render a graph from Python instead of the command line.

    python examples/render_from_python.py out/
"""
from __future__ import annotations

import sys
from pathlib import Path

from sfgraph.engine.offline import render
from sfgraph.graph.build import build_graph
from sfgraph.graph.declaration import load_graph_decl

output_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
decl = load_graph_decl("effects_chain", ["hp.params={cutoff_frequency_hz: 120}", "mix.gain_db=[0, -4]"])
graph = build_graph(decl, output_dir=output_dir)
result = render(graph)
print(f"rendered {result.seconds:.1f} s into {output_dir}/")
