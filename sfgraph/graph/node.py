"""The contract every node type follows.

A node type is a small class: it declares ``inputs``, ``outputs`` and ``params``;
``configure`` checks the streams arriving at its inputs and says what its outputs
emit; ``prepare`` allocates; ``process`` turns one block of input arrays into one
block of output arrays. Blocks have variable length (the last axis): a node must
give the same result whether a signal arrives whole or in pieces (``block_exact``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .errors import PortError
from .params import Param, ParamError
from .ports import Port, PortMap, StreamSpec


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
        from ..resources import resolve_resource

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


class Node:
    """Base class of every node type. Subclasses set ``type_name`` to register."""

    type_name: ClassVar[str] = ""
    inputs: ClassVar[dict[str, Port]] = {}
    outputs: ClassVar[dict[str, Port]] = {}
    params: ClassVar[dict[str, Param]] = {}
    block_exact: ClassVar[bool] = True

    def __init__(self, node_id: str, params: dict[str, Any] | None = None):
        self.id = node_id
        self.param_values: dict[str, Any] = self.validate_params(params or {})
        self.p = _Attrs(self.param_values)  # live view: set_param updates it too
        ports = self.declare_ports(self.param_values)
        self.input_ports: dict[str, Port] = ports.inputs
        self.output_ports: dict[str, Port] = ports.outputs
        # latency: samples (at the output rate) by which output content lags input;
        # branches are aligned on it. lookahead: samples of input a node needs
        # beyond what it outputs (content stays aligned, but live it adds delay).
        self.latency = 0
        self.lookahead = 0
        self.done = False
        self.context: GraphContext | None = None
        self.input_specs: dict[str, StreamSpec] = {}
        self.output_specs: dict[str, StreamSpec] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("type_name"):
            from .registry import register

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
        seconds = getattr(self, "duration_seconds", None)
        return [] if seconds is None else [(f"node '{self.id}' ({self.type_name})", seconds)]

    def staged_outputs(self) -> list[tuple[Path, Path]]:
        """The files this sink writes, as ``(temporary, final)`` pairs: after a run that
        succeeded the engine moves all of them into place together, after any other it
        deletes the temporaries."""
        return []

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


class _Attrs:
    __slots__ = ("_values",)

    def __init__(self, values):
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None
