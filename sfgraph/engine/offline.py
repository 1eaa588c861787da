"""The offline driver: render a graph from its file sources to its file sinks."""
from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass
from fractions import Fraction

from tqdm import tqdm

from sfgraph.engine.scheduler import Scheduler
from sfgraph.graph.build import BuiltGraph
from sfgraph.graph.errors import GraphError, InputWarning

# After the sources end, how much more than the graph's latency to run before
# declaring that a sink will never be filled (a node that swallows its input).
_TAIL_SLACK_SECONDS = 10
# A source that ends this much before the audio is worth a warning (F0 files are
# often a frame or two short of the audio; missing seconds are a mistake).
_COVERAGE_SLACK_SECONDS = 0.5
_COVERAGE_SLACK_FRACTION = 0.02
# Samples per offline block at the graph rate. A graph's block_size is the live
# device's block (256 at 48 kHz); offline, every block costs a Python pass over
# every node and edge, so larger blocks render faster, and block-exact nodes give
# the same result for any block size.
OFFLINE_BLOCK_SIZE = 16384


@dataclass
class RenderResult:
    seconds: float        # audio duration rendered
    latency: Fraction     # graph latency removed from the outputs, seconds
    blocks: int
    block_size: int       # samples per block at the graph rate


def render(graph: BuiltGraph, progress: bool = True, block_size: int | None = None) -> RenderResult:
    """Run ``graph`` until every source has ended and every sink holds the whole
    duration; sinks get outputs aligned with the inputs (latency removed).

    ``block_size``: samples per block at the graph rate (see ``offline_block_size``).
    Outputs are committed only if the whole render succeeds.
    """
    for message in coverage_warnings(graph):
        warnings.warn(message, InputWarning, stacklevel=2)
    scheduler = Scheduler(graph, align_outputs=True, block_size=offline_block_size(graph, block_size))
    total = _expected_seconds(graph)
    bar = tqdm(total=round(total, 1) if total else None, unit="s", desc=graph.decl.name, delay=2.0,
               disable=not progress, file=sys.stderr, bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s "
               "[{elapsed}<{remaining}, {rate_fmt}]")
    block_seconds = scheduler.block_size / graph.context.sample_rate
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
    return RenderResult(seconds, graph.total_latency(), scheduler.ticks, scheduler.block_size)


def offline_block_size(graph: BuiltGraph, requested: int | None = None) -> int:
    """The block size an offline render uses: ``requested`` if given, else the
    larger of the graph's ``block_size`` and ``OFFLINE_BLOCK_SIZE``. A graph with
    a node that is not block-exact keeps its own ``block_size``."""
    fixed = next((n for n in graph.order if not graph.nodes[n].block_exact), None)
    if fixed is None:
        return requested or max(graph.context.block_size, OFFLINE_BLOCK_SIZE)
    if requested is not None and requested != graph.context.block_size:
        node = graph.nodes[fixed]
        raise GraphError(graph.decl.problem(
            f"{node.type_name} gives a result that depends on the block size: this graph renders only in its "
            f"own blocks of {graph.context.block_size}, not {requested}", graph.decl.node(fixed).line, fixed))
    return graph.context.block_size


def coverage_warnings(graph: BuiltGraph) -> list[str]:
    """One line for each part of a non-audio source (an F0 file ...) that stops clearly
    before the audio sources do: the rest of the render gets zeros from it."""
    audio, others = [], []
    for node_id in graph.sources():
        node = graph.nodes[node_id]
        (audio if next(iter(node.output_specs.values())).kind == "audio" else others).append(node)
    seconds = [node.duration_seconds for node in audio]
    if not seconds or None in seconds:
        return []
    total = max(seconds)
    slack = max(_COVERAGE_SLACK_SECONDS, _COVERAGE_SLACK_FRACTION * total)
    return [f"{name} ends at {covered:.2f} s but the audio lasts {total:.2f} s: the last {total - covered:.2f} s "
            f"get no {next(iter(node.output_specs.values())).kind} from it (zeros; for F0, unvoiced)"
            for node in others for name, covered in node.coverage() if covered < total - slack]


def _expected_seconds(graph: BuiltGraph) -> float | None:
    durations = [graph.nodes[n].duration_seconds for n in graph.sources()]
    known = [d for d in durations if d is not None]
    return max(known) if known and len(known) == len(durations) else None
