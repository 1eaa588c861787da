"""The contract every node type follows, and the only way the engine drives a node.

A node type is a small class: it declares ``inputs``, ``outputs`` and ``params``;
``configure`` checks the streams arriving at its inputs and says what its outputs
emit; ``prepare`` allocates; ``process`` turns one block of input arrays into one
block of output arrays. Blocks have variable length (the last axis): a node must
give the same result whether a signal arrives whole or in pieces (``block_exact``).

Besides the life cycle, a node may answer what the engine and the commands ask of
it; ``Node`` gives every answer a default that means "nothing to say":
``latency`` and ``lookahead`` (timing), ``duration_seconds`` (a source's length),
``written`` (a sink's files), ``staged_outputs`` (files to commit together),
``coverage`` (what a source covers), ``level_meter`` (levels for the live view),
``describe_extra`` (more text for ``sfgraph describe``).

The sound device's channels enter and leave a live graph through two kinds of
node, ``DeviceInputEndpoint`` and ``DeviceOutputEndpoint`` (as JUCE's
AudioGraphIOProcessor): the live engine finds them by these types and exchanges
audio with them through ``FrameRing``s, and knows no concrete node type.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from sfgraph.buffers import FrameRing
from sfgraph.graph.errors import PortError
from sfgraph.graph.params import Param, ParamError
from sfgraph.graph.ports import Port, PortMap, StreamSpec


@dataclass(frozen=True)
class GraphContext:
    """What a node may know about the graph it runs in."""

    sample_rate: int
    block_size: int
    base_dir: Path
    output_dir: Path
    mode: str = "offline"

    def input_path(self, value: str) -> Path:
        """Resolve an input path param: ``sfgraph:REL`` is package data, relative is
        relative to the graph file's folder."""
        from sfgraph.resources import resolve_resource

        if value.startswith("sfgraph:"):
            return resolve_resource(value)
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def output_path(self, value: str) -> Path:
        """Resolve an output path param: relative paths land in the output folder and
        must stay inside it (ValueError for ``../x.wav``); absolute paths are kept."""
        path = Path(value).expanduser()
        if path.is_absolute():
            return path
        inside = self.output_dir / path
        if not inside.resolve().is_relative_to(self.output_dir.resolve()):
            raise ValueError(f"output path '{value}' leads outside the output folder {self.output_dir}; "
                             "give a path inside it, or an absolute path")
        return inside


class LevelReadout(Protocol):
    """What the live terminal view reads from a node's ``level_meter``.

    The worker updates the levels while it runs blocks; the view calls ``take_db``
    from another thread, so an implementation must tolerate that without a lock.
    """

    labels: tuple[str, ...]  # one per channel, as the view names them

    def take_db(self) -> np.ndarray:
        """Peak level per channel in dBFS since the last call, and start afresh."""

    def run_levels_db(self) -> dict[str, dict[str, float]]:
        """Per channel label, ``{"peak_dbfs": ..., "rms_dbfs": ...}`` over the whole run."""


class Node:
    """Base class of every node type. Subclasses set ``type_name`` to register."""

    type_name: ClassVar[str] = ""
    inputs: ClassVar[dict[str, Port]] = {}
    outputs: ClassVar[dict[str, Port]] = {}
    params: ClassVar[dict[str, Param]] = {}
    # Whether the output is the same for any block size. The offline driver renders
    # a graph in large blocks only when every node is; otherwise in its own block_size.
    block_exact: ClassVar[bool] = True
    # A source sets its length in seconds in configure when it knows it (a file);
    # the offline driver shows progress and checks the sources' coverage with it.
    duration_seconds: float | None = None
    # A node with levels to show in the live terminal view sets a meter in configure.
    level_meter: LevelReadout | None = None

    def __init__(self, node_id: str, params: dict[str, Any] | None = None):
        self.id = node_id
        self.param_values: dict[str, Any] = self.validate_params(params or {})
        self.p = _Attrs(self.param_values)  # live view: set_param updates it too
        ports = self.declare_ports(self.param_values)
        self.input_ports: dict[str, Port] = ports.inputs
        self.output_ports: dict[str, Port] = ports.outputs
        # latency: samples (at the output rate) by which output content lags input;
        # branches are aligned on it, and offline renders remove it.
        self.latency = 0
        # lookahead: items of input (at the input rate) a node needs beyond what it
        # has output, e.g. the rest of an analysis window. Its output stays aligned
        # to the timeline, so branches need no compensation, but it holds output back:
        # the graph's latency includes it (``BuiltGraph.latency_at``), and the live
        # report shows it as its own part.
        self.lookahead = 0
        self.done = False
        self.context: GraphContext | None = None
        self.input_specs: dict[str, StreamSpec] = {}
        self.output_specs: dict[str, StreamSpec] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("type_name"):
            from sfgraph.graph.registry import register

            register(cls)

    # -- declaration --------------------------------------------------------
    @classmethod
    def validate_params(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Return every declared param with its value; raise ParamError naming the param."""
        values = {}
        for name in given:
            if name not in cls.params:
                raise ParamError(f"unknown param '{name}'")
        for name, decl in cls.params.items():
            if name in given:
                try:
                    values[name] = decl.coerce(given[name])
                except ParamError as exc:
                    raise ParamError(f"param '{name}': {exc}") from None
            elif decl.required:
                raise ParamError(f"param '{name}' is required")
            else:
                values[name] = decl.default
        return values

    @classmethod
    def declare_ports(cls, params: dict[str, Any]) -> PortMap:
        """Ports of a node with these params; override when ports depend on params."""
        return PortMap(dict(cls.inputs), dict(cls.outputs))

    def set_param(self, name: str, value: Any) -> None:
        """Change a ``live`` param between blocks."""
        decl = self.params.get(name)
        if decl is None:
            raise ParamError(f"node '{self.id}' has no param '{name}'")
        if not decl.live:
            raise ParamError(f"param '{name}' of node '{self.id}' cannot change while running")
        self.param_values[name] = decl.coerce(value)

    # -- life cycle -----------------------------------------------------------
    def configure(self, inputs: dict[str, StreamSpec], context: GraphContext) -> dict[str, StreamSpec]:
        """Check input streams and return the output streams.

        The default suits effects: every output is shaped like the first input.
        Raise ``PortError(port, message)`` for a stream that does not fit.
        """
        if not inputs:
            raise NotImplementedError(f"{type(self).__name__} must define configure()")
        first = next(iter(inputs.values()))
        return {name: first for name in self.output_ports}

    def prepare(self) -> None:
        """Allocate buffers; called once after configure, before the first block."""

    def reset(self) -> None:
        """Clear state (filter memories, phases) so the next block starts afresh."""

    def process(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """One block: arrays in, arrays out (last axis = time). Sources get ``n`` =
        items due on their first output, and set ``self.done`` when exhausted."""
        raise NotImplementedError

    def close(self, ok: bool = True) -> None:
        """Release resources; sinks keep their finished output files only when ``ok``."""

    def coverage(self) -> list[tuple[str, float]]:
        """For a source: what it reads and the seconds of timeline each part covers
        (offline renders warn when one stops clearly before the audio does)."""
        seconds = self.duration_seconds
        return [] if seconds is None else [(f"node '{self.id}' ({self.type_name})", seconds)]

    def staged_outputs(self) -> list[tuple[Path, Path]]:
        """The files this sink writes, as ``(temporary, final)`` pairs: after a run that
        succeeded the engine moves all of them into place together, after any other it
        deletes the temporaries."""
        return []

    @property
    def written(self) -> list[Path]:
        """The files this sink has written, under their final names (the commands list them)."""
        return []

    @classmethod
    def describe_extra(cls) -> str:
        """More about the node type for ``sfgraph describe``, after its ports and params."""
        return ""

    # -- helpers for subclasses ----------------------------------------------
    def require(self, inputs: dict[str, StreamSpec], port: str, *, kind=None, channels=None, rate=None):
        """Check one input stream; raise PortError with a clear message if it does not fit."""
        spec = inputs[port]
        if kind is not None and spec.kind != kind:
            raise PortError(port, f"expects a {kind} stream, got {spec.describe()}")
        if channels is not None and spec.channels != channels:
            raise PortError(port, f"expects {channels} channel(s), got {spec.channels}")
        if rate is not None and spec.rate != rate:
            raise PortError(port, f"expects rate {float(rate):g}, got {float(spec.rate):g}")
        return spec


class DeviceEndpoint(Node):
    """A node that the live engine connects to some of a sound device's channels
    (``DeviceInputEndpoint`` or ``DeviceOutputEndpoint``)."""

    ring: FrameRing | None = None

    @property
    def device_channels(self) -> range:
        """The device channels this node takes or plays on, 0-based (known once configured)."""
        raise NotImplementedError

    def attach(self, ring: FrameRing) -> None:
        """Live: exchange frames of exactly ``device_channels`` with the engine through ``ring``."""
        self.ring = ring


class DeviceInputEndpoint(DeviceEndpoint):
    """A source that brings a sound device's input channels into a live graph.

    Live, the engine attaches a ``FrameRing`` of ``len(device_channels)`` channels
    before the first block; its audio callback writes those device channels into
    it, and ``process(n)`` reads the next ``n`` frames from it (from position 0 on,
    one frame per device frame) and counts in ``overruns`` the blocks in which
    frames were overwritten before it read them. Unattached (the engine's
    rehearsal), it outputs silence; offline it may read a stand-in.
    """

    overruns: int = 0


class DeviceOutputEndpoint(DeviceEndpoint):
    """A sink that plays its input on a sound device's output channels.

    Live, the engine attaches a ``FrameRing`` of ``len(device_channels)`` channels,
    primed with silence, before the first block; ``process`` writes what is to be
    played into it at the device rate, and the audio callback plays it.
    ``frames_out`` counts the frames delivered so far (written to the ring,
    counted alone while unattached): the engine's rehearsal reads it to measure
    when output arrives.
    """

    frames_out: int = 0


class _Attrs:
    __slots__ = ("_values",)

    def __init__(self, values):
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None
