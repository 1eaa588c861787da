"""Changing live params while a graph runs, from any thread (MIDI, the terminal).

Any thread may ``submit`` a change; the worker applies queued changes between
blocks (``apply_pending``), so params never change in the middle of a block and
no thread waits for another (``collections.deque`` appends and pops are atomic
in CPython, without a lock). Numeric changes glide to their new value over
``smoothing_ms``, one step per block, on top of the per-block ramps of gain and
mixer nodes, so a fader never clicks.

A param target names one value: ``NODE.PARAM`` (a number, bool or string),
``NODE.PARAM[i]`` (item ``i`` of a list param, e.g. ``mix.gain_db[0]``), or
``NODE.PARAM.KEY`` (one key of a mapping param, e.g. ``verb.params.wet_level``).
MIDI controllers reach targets through a graph's ``midi:`` section
(``sfgraph.engine.midi_map``).
"""
from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

import yaml

from sfgraph.graph.build import BuiltGraph
from sfgraph.graph.params import ParamError

DEFAULT_SMOOTHING_MS = 30.0
_TARGET = re.compile(r"^([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\[(\d+)\]|\.([A-Za-z_]\w*))?$")


class ControlError(ValueError):
    """A param target or a MIDI mapping that does not fit the graph."""


@dataclass(frozen=True)
class ParamTarget:
    """One live value of one node: a param, an item of a list param, or a key of a mapping param."""

    node: Any
    param: str
    index: int | None = None
    key: str | None = None

    @property
    def name(self) -> str:
        suffix = f"[{self.index}]" if self.index is not None else f".{self.key}" if self.key else ""
        return f"{self.node.id}.{self.param}{suffix}"

    @property
    def kind(self) -> str:
        """``number``, ``bool`` or ``other``: what the value is and whether it can glide."""
        value = self.current()
        if isinstance(value, bool):
            return "bool"
        return "number" if isinstance(value, (int, float)) else "other"

    @property
    def whole_numbers(self) -> bool:
        """Whether the value is an ``int`` param (glides round)."""
        return self.key is None and self.node.params[self.param].type == "int"

    @property
    def declared_range(self) -> tuple[float | None, float | None] | None:
        return None if self.key else self.node.params[self.param].range

    @property
    def unit(self) -> str:
        return "" if self.key else self.node.params[self.param].unit

    def current(self) -> Any:
        value = self.node.param_values[self.param]
        if self.index is not None:
            return value[self.index]
        if self.key is not None:
            return value[self.key]
        return value

    def compose(self, value: Any) -> Any:
        """The whole param value with this target's part set to ``value``."""
        whole = self.node.param_values[self.param]
        if self.index is not None:
            items = list(whole)
            items[self.index] = value
            return items
        if self.key is not None:
            return {self.key: value}  # a mapping param is updated key by key
        return value

    def check(self, value: Any) -> None:
        """Raise ParamError if ``value`` does not fit (mapping keys are checked when applied)."""
        if self.key is None:
            self.node.params[self.param].coerce(self.compose(value))

    def apply(self, value: Any) -> None:
        self.node.set_param(self.param, self.compose(value))


def bind_target(graph: BuiltGraph, text: str) -> ParamTarget:
    """Resolve ``NODE.PARAM``, ``NODE.PARAM[i]`` or ``NODE.PARAM.KEY`` against a built graph."""
    match = _TARGET.match(text.strip())
    if not match:
        raise ControlError(f"param target must read NODE.PARAM, NODE.PARAM[i] or NODE.PARAM.KEY, got {text!r}")
    node_id, param, index, key = match.groups()
    node = graph.nodes.get(node_id)
    if node is None:
        raise ControlError(f"{text}: no node '{node_id}' in the graph")
    decl = node.params.get(param)
    if decl is None:
        raise ControlError(f"{text}: {node.type_name} has no param '{param}' (params: {', '.join(node.params)})")
    live = [name for name, p in node.params.items() if p.live]
    if not decl.live:
        raise ControlError(f"{text}: param '{param}' of {node.type_name} cannot change while running"
                           + (f"; live params: {', '.join(live)}" if live else ""))
    value = node.param_values[param]
    if index is not None:
        if not decl.type.startswith("list["):
            raise ControlError(f"{text}: '{param}' is a {decl.type}, not a list")
        if value is None:
            raise ControlError(f"{text}: the graph does not set '{param}'; give it a list to map its items")
        if int(index) >= len(value):
            raise ControlError(f"{text}: '{param}' has {len(value)} items")
        return ParamTarget(node, param, index=int(index))
    if key is not None:
        if decl.type != "mapping":
            raise ControlError(f"{text}: '{param}' is a {decl.type}, not a mapping")
        if not value or key not in value:
            raise ControlError(f"{text}: the graph does not set '{key}' in '{param}'; set it to map it")
        return ParamTarget(node, param, key=key)
    if decl.type.startswith("list[") or decl.type == "mapping":
        raise ControlError(f"{text}: '{param}' is a {decl.type}; name one item ([i]) or key (.KEY)")
    return ParamTarget(node, param)


# -- applying changes ------------------------------------------------------------
@dataclass
class _Glide:
    target: ParamTarget
    start: float
    goal: float
    steps: int
    step: int = 0

    def advance(self) -> float:
        self.step += 1
        return self.goal if self.step >= self.steps else self.start + (self.goal - self.start) * self.step / self.steps


@dataclass(frozen=True)
class AppliedChange:
    """A change the worker applied: which block it arrived before and the first block it shaped."""

    target: str
    value: Any
    submitted_block: int
    applied_block: int
    source: str


class ParamControl:
    """The queue of param changes and the glides in progress (see the module docstring).

    ``block_seconds``: duration of one block, to turn smoothing times into steps.
    ``block_counter``: returns the number of blocks processed so far (to stamp changes).
    """

    def __init__(self, block_seconds: float, block_counter, smoothing_ms: float = DEFAULT_SMOOTHING_MS):
        self.block_seconds = block_seconds
        self.block_counter = block_counter
        self.smoothing_ms = smoothing_ms
        self._queue: deque = deque()
        self._glides: dict[str, _Glide] = {}
        self.applied: deque[AppliedChange] = deque(maxlen=1000)  # the latest
        self.applied_count = 0
        self.errors: deque[str] = deque(maxlen=100)  # the latest, for the report

    def submit(self, target: ParamTarget, value: Any, smoothing_ms: float | None = None,
               source: str = "terminal") -> None:
        """Queue a change; safe from any thread, never waits."""
        self._queue.append((target, value, self.smoothing_ms if smoothing_ms is None else smoothing_ms, source,
                            self.block_counter()))

    def apply_pending(self) -> None:
        """Worker, between blocks: apply what arrived and take every glide one step further."""
        block = self.block_counter()
        while self._queue:
            target, value, smoothing_ms, source, submitted = self._queue.popleft()
            self._glides.pop(target.name, None)
            steps = math.ceil(smoothing_ms / 1000 / self.block_seconds - 1e-9)
            if target.kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and steps > 1:
                self._glides[target.name] = _Glide(target, float(target.current()), float(value), steps)
            else:
                self._set(target, value)
            self.applied.append(AppliedChange(target.name, value, submitted, block + 1, source))
            self.applied_count += 1
        for name, glide in list(self._glides.items()):
            value = glide.advance()
            self._set(glide.target, round(value) if glide.target.whole_numbers else value)
            if glide.step >= glide.steps:
                del self._glides[name]

    def _set(self, target: ParamTarget, value: Any) -> None:
        try:
            target.apply(value)
        except (ParamError, ValueError, TypeError) as exc:
            self._glides.pop(target.name, None)
            self.errors.append(f"{target.name} = {value!r}: {exc}")


def parse_assignment(graph: BuiltGraph, text: str) -> tuple[ParamTarget, Any]:
    """``TARGET=VALUE`` typed in the terminal (VALUE read as YAML) → (target, value)."""
    name, sep, raw = text.partition("=")
    if not sep:
        raise ControlError(f"type TARGET=VALUE, e.g. mix.gain_db[0]=-6 (got {text!r})")
    target = bind_target(graph, name)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw.strip()
    try:
        target.check(value)
    except ParamError as exc:
        raise ControlError(f"{target.name}: {exc}") from None
    return target, value
