"""The offline driver: render a graph from its file sources to its file sinks."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from ..graph.build import BuiltGraph, build_graph
from ..graph.model import load_graph_decl
from .scheduler import Scheduler

# After the sources end, how much more than the graph's latency to run before
# declaring that a sink will never be filled (a node that swallows its input).
_TAIL_SLACK_SECONDS = 10


@dataclass
class RenderResult:
    seconds: float        # audio duration rendered
    latency: Fraction     # graph latency removed from the outputs, seconds
    blocks: int


def render(graph: BuiltGraph, progress: bool = True) -> RenderResult:
    """Run ``graph`` until every source has ended and every sink holds the whole
    duration; sinks get outputs aligned with the inputs (latency removed).

    Outputs are committed only if the whole render succeeds.
    """
    scheduler = Scheduler(graph, align_outputs=True)
    total = _expected_seconds(graph)
    bar = tqdm(total=round(total, 1) if total else None, unit="s", desc=graph.decl.name, delay=2.0,
               disable=not progress, file=sys.stderr, bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s "
               "[{elapsed}<{remaining}, {rate_fmt}]")
    block_seconds = graph.context.block_size / graph.context.sample_rate
    ok = False
    try:
        scheduler.prepare()
        while not scheduler.sources_done:
            scheduler.run_block()
            bar.update(min(block_seconds, bar.total - bar.n) if bar.total else block_seconds)
        tail_blocks = math.ceil((graph.total_latency() + _TAIL_SLACK_SECONDS) / Fraction(block_seconds))
        for _ in range(tail_blocks):
            if scheduler.outputs_complete:
                break
            scheduler.run_block()
        if not scheduler.outputs_complete:
            raise RuntimeError("the graph stopped producing output before its sinks were complete")
        ok = True
    finally:
        bar.close()
        scheduler.close(ok)
    seconds = float(scheduler.duration())
    return RenderResult(seconds, graph.total_latency(), scheduler.ticks)


def render_file(graph_file: str, overrides: list[str] = (), output_dir: Path | None = None,
                progress: bool = True) -> RenderResult:
    """Load, build and render a graph file (or shipped graph name)."""
    decl = load_graph_decl(graph_file, overrides)
    return render(build_graph(decl, output_dir=output_dir), progress=progress)


def _expected_seconds(graph: BuiltGraph) -> float | None:
    durations = [getattr(graph.nodes[n], "duration_seconds", None) for n in graph.sources()]
    known = [d for d in durations if d is not None]
    return max(known) if known and len(known) == len(durations) else None
