"""The block pump: runs a built graph one block at a time, offline or live.

Each tick, every source emits the items that fall due in one block of
``block_size`` samples at the graph rate (the graph's own ``block_size``, the
device's block, unless the driver chooses another: offline renders use large
blocks), and every other node, in topological order, consumes as many whole
steps as all its inputs hold. Edges are FIFOs; an edge into a port that needs
another audio rate resamples on the way; delay compensation pre-fills the faster
branch with zeros.

A node that fails (raises, returns a wrong shape, or returns NaN or infinity)
stops an offline run with a ``NodeError``. Live (``on_error="silence"``) its
outputs for that block are replaced by silence, the error is kept in
``errors`` for the driver to report, and the stream goes on.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from sfgraph.atomic import commit_together, discard
from sfgraph.buffers import Fifo
from sfgraph.dsp.resample import stream_resampler
from sfgraph.graph.build import BuiltGraph
from sfgraph.graph.errors import NodeError


class Scheduler:
    """Runs a BuiltGraph block by block.

    ``align_outputs`` (offline): sinks receive their input with the graph latency
    removed and cut to the sources' duration, so output files line up with input files.
    ``on_error``: ``"raise"`` (offline) or ``"silence"`` (live, see the module docstring).
    ``block_size``: samples per tick at the graph rate; the graph's ``block_size`` if None.
    """

    def __init__(self, graph: BuiltGraph, align_outputs: bool = False, on_error: str = "raise",
                 block_size: int | None = None):
        if on_error not in ("raise", "silence"):
            raise ValueError(f"on_error must be 'raise' or 'silence', got {on_error!r}")
        if block_size is not None and block_size < 1:
            raise ValueError(f"block_size must be a positive number of samples, got {block_size}")
        self.graph = graph
        self.align_outputs = align_outputs
        self.on_error = on_error
        self.errors: list[tuple[int, NodeError]] = []  # (tick, error) under on_error="silence"
        self.sample_rate = graph.context.sample_rate
        self.block_size = block_size or graph.context.block_size
        self.ticks = 0
        self.fifos: dict[tuple[str, str], Fifo] = {}
        # pedalboard's StreamResampler (or the same filter, sfgraph.dsp.resample) keeps the
        # timeline (an impulse at input time t comes out at t) and holds back its last few
        # samples until more input arrives; the zeros sources emit after their end flush them.
        self.resamplers = {}
        self._routes: dict[str, list[tuple[str, tuple[str, str]]]] = {n: [] for n in graph.order}
        for edge in graph.edges:
            c = edge.connection
            key = (c.dst, c.dst_port)
            rate = edge.resample_to or edge.spec.rate
            self.fifos[key] = Fifo(edge.spec.shape, capacity=max(4096, 4 * self._items_per_block(rate)))
            self.fifos[key].push_zeros(edge.pad)
            if edge.resample_to is not None:
                self.resamplers[key] = stream_resampler(float(edge.spec.rate), float(edge.resample_to),
                                                        edge.spec.channels)
            self._routes[c.src].append((c.src_port, key))
        # per node: (fifo, port, quantum) of each connected input, resolved once
        self._inputs_of = {n: [(self.fifos[(n, p)], p, port.quantum)
                               for p, port in graph.nodes[n].input_ports.items() if (n, p) in self.fifos]
                           for n in graph.order}
        self._emitted = {n: 0 for n in graph.sources()}
        # per source: items due after t ticks = t * block_size * rate / sample_rate,
        # kept as whole numbers (numerator, denominator) so a tick does no Fraction work
        self._due_ratio = {}
        for n in graph.sources():
            ratio = Fraction(self.block_size) * next(iter(graph.nodes[n].output_specs.values())).rate / self.sample_rate
            self._due_ratio[n] = (ratio.numerator, ratio.denominator)
        # Audio sources time the graph (F0 and control tracks follow the audio);
        # a graph without audio sources is timed by all its sources.
        audio_sources = [n for n in graph.sources()
                         if next(iter(graph.nodes[n].output_specs.values())).kind == "audio"]
        self._timing_sources = audio_sources or graph.sources()
        self.source_seconds: dict[str, Fraction] = {}
        self._sink_trim: dict[tuple[str, str], int] = {}
        self._sink_limit: dict[tuple[str, str], int | None] = {}
        self._sink_received: dict[tuple[str, str], int] = {}
        self._sinks = set(graph.sinks())
        for sink in graph.sinks():
            for edge in graph.incoming(sink):
                key = (sink, edge.connection.dst_port)
                rate = edge.resample_to or edge.spec.rate
                self._sink_trim[key] = round(graph.arrival[sink] * rate) if align_outputs else 0
                self._sink_limit[key] = None
                self._sink_received[key] = 0

    def _items_per_block(self, rate: Fraction) -> int:
        return math.ceil(self.block_size * rate / self.sample_rate)

    # -- life cycle -----------------------------------------------------------
    def prepare(self) -> None:
        for node_id in self.graph.order:
            self._guard(node_id, self.graph.nodes[node_id].prepare)

    def close(self, ok: bool) -> None:
        """Close every node; when ``ok``, move all the sinks' outputs into place together
        (all or none: ``commit_together``), else delete them."""
        first_error = None
        staged = [pair for node in self.graph.nodes.values() for pair in node.staged_outputs()]
        try:
            for node_id in self.graph.order:
                try:
                    self.graph.nodes[node_id].close(ok)
                except Exception as exc:  # close them all, then report the first failure
                    first_error = first_error or NodeError(node_id, self.graph.nodes[node_id].type_name, str(exc))
            if ok and first_error is None:
                commit_together(staged)
                return
        except BaseException:  # interrupted while closing (Ctrl-C, SIGTERM): nothing is kept
            discard(staged)
            raise
        discard(staged)
        if ok:
            raise first_error

    @property
    def sources_done(self) -> bool:
        """Whether the sources that time the graph have all ended."""
        return all(self.graph.nodes[n].done for n in self._timing_sources)

    def duration(self) -> Fraction:
        """Seconds of input: the longest timing source."""
        return max((self.source_seconds[n] for n in self._timing_sources if n in self.source_seconds),
                   default=Fraction(0))

    def _end_of_input(self) -> None:
        """Once every source has ended: cut each sink input at the sources' duration."""
        seconds = self.duration()
        for key in self._sink_limit:
            rate = self.fifo_rate(key)
            self._sink_limit[key] = round(seconds * rate)

    @property
    def outputs_complete(self) -> bool:
        return all(limit is not None and self._sink_received[key] >= limit
                   for key, limit in self._sink_limit.items())

    def fifo_rate(self, key: tuple[str, str]) -> Fraction:
        edge = next(e for e in self.graph.incoming(key[0]) if e.connection.dst_port == key[1])
        return edge.resample_to or edge.spec.rate

    # -- the pump -------------------------------------------------------------
    def run_block(self) -> None:
        self.ticks += 1
        for node_id in self.graph.order:
            node = self.graph.nodes[node_id]
            if not node.input_ports:
                outputs = self._run_source(node_id)
            else:
                inputs = self._take_inputs(node_id)
                if inputs is None:
                    continue
                outputs = self._run_processor(node_id, inputs)
            if node.output_ports:
                self._deliver(node_id, outputs)

    def _run_processor(self, node_id: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        node = self.graph.nodes[node_id]
        try:
            return self._checked(node_id, self._guard(node_id, node.process, **inputs))
        except NodeError as error:
            self._tolerate(error)
        # silence as long as the input consumed, converted to each output's rate
        port, block = next(iter(inputs.items()))
        seconds = Fraction(block.shape[-1]) / node.input_specs[port].rate
        return {name: np.zeros(spec.shape + (round(seconds * spec.rate),), dtype=np.float32)
                for name, spec in node.output_specs.items()}

    def _tolerate(self, error: NodeError) -> None:
        """Raise ``error`` offline; live, record it and carry on with silence."""
        if self.on_error == "raise":
            raise error
        self.errors.append((self.ticks, error))

    def _checked(self, node_id: str, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``outputs`` if every connected output has the declared shape and finite values."""
        node = self.graph.nodes[node_id]
        for port, _ in self._routes[node_id]:
            block = outputs.get(port) if isinstance(outputs, dict) else None
            spec = node.output_specs[port]
            if block is None or block.shape[:-1] != spec.shape:
                got = "nothing" if block is None else f"shape {block.shape}"
                raise NodeError(node_id, node.type_name,
                                f"output '{port}' must have shape {spec.shape + ('n',)}, got {got}")
            if not np.isfinite(block).all():
                raise NodeError(node_id, node.type_name, f"output '{port}' holds NaN or infinite values")
        return outputs

    def _run_source(self, node_id: str) -> dict[str, np.ndarray]:
        node = self.graph.nodes[node_id]
        first = next(iter(node.output_specs.values()))
        numerator, denominator = self._due_ratio[node_id]
        due = self.ticks * numerator // denominator - self._emitted[node_id]
        outputs = {}
        if not node.done:
            try:
                outputs = self._checked(node_id, self._guard(node_id, node.process, n=due))
            except NodeError as error:
                self._tolerate(error)  # live: the padding below makes the block silent
                outputs = {}
            if node.done:  # it just ended: a source past its end emits zeros from now on
                produced = outputs[next(iter(outputs))].shape[-1] if outputs else 0
                self.source_seconds[node_id] = Fraction(self._emitted[node_id] + produced) / first.rate
                if self.align_outputs and node_id in self._timing_sources and self.sources_done:
                    self._end_of_input()
        self._emitted[node_id] += due
        padded = {}
        for port, spec in node.output_specs.items():
            want = round(due * spec.rate / first.rate)
            block = outputs.get(port)
            if block is None or block.shape[-1] < want:
                have = 0 if block is None else block.shape[-1]
                zeros = np.zeros(spec.shape + (want - have,), dtype=np.float32)
                block = zeros if block is None else np.concatenate([block, zeros], axis=-1)
            padded[port] = block
        return padded

    def _take_inputs(self, node_id: str) -> dict[str, np.ndarray] | None:
        inputs_of = self._inputs_of[node_id]
        if node_id in self._sinks:
            return self._take_sink_inputs(node_id)
        steps = min(len(fifo) // quantum for fifo, _, quantum in inputs_of)
        if steps <= 0:
            return None
        return {port: fifo.pop(steps * quantum) for fifo, port, quantum in inputs_of}

    def _take_sink_inputs(self, node_id: str) -> dict[str, np.ndarray] | None:
        """As ``_take_inputs``, less the leading latency and anything past the
        sources' end when outputs are aligned."""
        inputs_of = self._inputs_of[node_id]
        for fifo, port, _ in inputs_of:
            key = (node_id, port)
            dropped = min(self._sink_trim[key], len(fifo))
            fifo.drop(dropped)
            self._sink_trim[key] -= dropped
        steps = min(len(fifo) // quantum for fifo, _, quantum in inputs_of)
        for _, port, quantum in inputs_of:
            limit = self._sink_limit[(node_id, port)]
            if limit is not None:
                steps = min(steps, (limit - self._sink_received[(node_id, port)]) // quantum)
        if steps <= 0:
            return None
        inputs = {}
        for fifo, port, quantum in inputs_of:
            inputs[port] = fifo.pop(steps * quantum)
            self._sink_received[(node_id, port)] += steps * quantum
        return inputs

    def _deliver(self, node_id: str, outputs: dict[str, np.ndarray]) -> None:
        for port, key in self._routes[node_id]:
            block = outputs[port]
            if block.dtype != np.float32:
                block = block.astype(np.float32)
            resampler = self.resamplers.get(key)
            if resampler is not None:
                block = resampler.process(np.ascontiguousarray(block))
            self.fifos[key].push(block)

    def _guard(self, node_id: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NodeError:
            raise
        except Exception as exc:
            node = self.graph.nodes[node_id]
            raise NodeError(node_id, node.type_name, f"{type(exc).__name__}: {exc}") from exc
