"""Changing live params while a graph runs: from MIDI controllers or the terminal.

Any thread may ``submit`` a change; the worker applies queued changes between
blocks (``apply_pending``), so params never change in the middle of a block and
no thread waits for another (``collections.deque`` appends and pops are atomic
in CPython, without a lock). Numeric changes glide to their new value over
``smoothing_ms``, one step per block, on top of the per-block ramps of gain and
mixer nodes, so a fader never clicks.

A param target names one value: ``NODE.PARAM`` (a number, bool or string),
``NODE.PARAM[i]`` (item ``i`` of a list param, e.g. ``mix.gain_db[0]``), or
``NODE.PARAM.KEY`` (one key of a mapping param, e.g. ``verb.params.wet_level``).

A graph's ``midi:`` section maps MIDI messages to targets::

    midi:
      smoothing_ms: 30                 # glide of numeric params (default 30 ms)
      map:
        - {cc: 7, param: mix.gain_db[0], range: [-60, 6]}       # CC 0..127 -> -60..6 dB
        - {cc: 10, channel: 2, param: mix.pan[0], range: [-1, 1], smoothing_ms: 80}
        - {note: 36, param: mix.mute[0], mode: toggle}          # each note-on flips it
        - {note: 37, param: mix.solo[0], mode: hold}            # on while the key is held
        - {note: 60, param: verb.params.wet_level, range: [0, 1]}  # velocity 1..127 -> range
        - {program: 2, param: verb.params.room_size, value: 0.9}   # program change 2 sets 0.9

``channel`` (1-16) restricts an entry to one MIDI channel (default: any).
``range`` defaults to the param's declared range where it has one.
"""
from __future__ import annotations

import math
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import yaml

from ..graph.build import BuiltGraph
from ..graph.errors import GraphError
from ..graph.params import ParamError

DEFAULT_SMOOTHING_MS = 30.0
_TARGET = re.compile(r"^([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\[(\d+)\]|\.([A-Za-z_]\w*))?$")
MESSAGE_KINDS = ("cc", "note", "program")
NOTE_MODES = ("toggle", "hold")


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
        self.errors: deque[str] = deque(maxlen=100)
        self.error_count = 0

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
            self.error_count += 1
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


# -- MIDI ----------------------------------------------------------------------
@dataclass
class MidiRule:
    """One ``midi: map:`` entry, bound to its target."""

    kind: str                     # cc, note or program
    number: int                   # controller, note or program number, 0..127
    channel: int | None           # 1..16, None = any
    target: ParamTarget
    value_range: tuple[float, float] | None = None
    mode: str | None = None       # notes on bool params: toggle or hold
    value: Any = None             # program changes
    smoothing_ms: float | None = None

    def describe(self) -> dict:
        """The YAML map entry for this rule."""
        entry: dict[str, Any] = {self.kind: self.number}
        if self.channel is not None:
            entry["channel"] = self.channel
        entry["param"] = self.target.name
        if self.value_range is not None:
            entry["range"] = list(self.value_range)
        if self.mode is not None:
            entry["mode"] = self.mode
        if self.kind == "program":
            entry["value"] = self.value
        if self.smoothing_ms is not None:
            entry["smoothing_ms"] = self.smoothing_ms
        return entry


class MidiMap:
    """Translates MIDI messages into param changes (see the module docstring for the YAML)."""

    def __init__(self, rules: list[MidiRule], smoothing_ms: float = DEFAULT_SMOOTHING_MS):
        self.rules = rules
        self.smoothing_ms = smoothing_ms

    def translate(self, message: list[int]) -> list[tuple[MidiRule, Any]]:
        """(rule, value) for every rule a raw MIDI message (status byte first) triggers."""
        if not message:
            return []
        status, channel = message[0] & 0xF0, (message[0] & 0x0F) + 1
        data = list(message[1:3]) + [0, 0]
        if status == 0xB0:
            kind, number, amount, pressed = "cc", data[0], data[1], None
        elif status in (0x90, 0x80):
            pressed = status == 0x90 and data[1] > 0  # note-on with velocity 0 is a note-off
            kind, number, amount = "note", data[0], data[1]
        elif status == 0xC0:
            kind, number, amount, pressed = "program", data[0], 0, None
        else:
            return []
        changes = []
        for rule in self.rules:
            if rule.kind != kind or rule.number != number or rule.channel not in (None, channel):
                continue
            value = self._value(rule, amount, pressed)
            if value is not None:
                changes.append((rule, value))
        return changes

    @staticmethod
    def _value(rule: MidiRule, amount: int, pressed: bool | None) -> Any:
        if rule.kind == "program":
            return rule.value
        if rule.target.kind == "bool":
            if rule.kind == "cc":
                return amount >= 64
            if rule.mode == "hold":
                return pressed
            return (not rule.target.current()) if pressed else None
        if rule.kind == "note" and not pressed:
            return None
        lo, hi = rule.value_range
        fraction = (amount - 1) / 126 if rule.kind == "note" else amount / 127
        return lo + (hi - lo) * fraction


def parse_midi_map(graph: BuiltGraph, section: Any = None) -> MidiMap:
    """Check a graph's ``midi:`` section (``section``, default the graph's own) against
    the built graph; raise GraphError listing every problem, located at its entry."""
    decl = graph.decl
    section = decl.midi if section is None else section
    if section is None:
        return MidiMap([])
    where = f"midi section (line {decl.midi_line})" if decl.midi_line else "midi section"
    if not isinstance(section, dict):
        raise GraphError(decl.problem("'midi' must be a mapping with a 'map' list", decl.midi_line or None))
    problems = [decl.problem(f"{where}: unknown key '{key}' (keys: smoothing_ms, map)", decl.midi_line or None)
                for key in section if key not in ("smoothing_ms", "map")]
    smoothing = section.get("smoothing_ms", DEFAULT_SMOOTHING_MS)
    if not _is_number(smoothing) or smoothing < 0:
        problems.append(decl.problem(f"{where}: smoothing_ms must be a number >= 0", decl.midi_line or None))
        smoothing = DEFAULT_SMOOTHING_MS
    entries = section.get("map") or []
    if not isinstance(entries, list):
        problems.append(decl.problem(f"{where}: 'map' must be a list of entries", decl.midi_line or None))
        entries = []
    rules = []
    for i, entry in enumerate(entries):
        try:
            rules.append(_parse_rule(graph, entry))
        except ControlError as exc:
            problems.append(decl.problem(f"{where}, map entry {i + 1}: {exc}", decl.midi_line or None))
    if problems:
        raise GraphError(problems)
    return MidiMap(rules, float(smoothing))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_rule(graph: BuiltGraph, entry: Any) -> MidiRule:
    if not isinstance(entry, dict):
        raise ControlError(f"expected a mapping like {{cc: 7, param: mix.gain_db[0], range: [-60, 6]}}, got {entry!r}")
    allowed = set(MESSAGE_KINDS) | {"channel", "param", "range", "mode", "value", "smoothing_ms"}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ControlError(f"unknown key(s) {', '.join(unknown)} (keys: {', '.join(sorted(allowed))})")
    kinds = [k for k in MESSAGE_KINDS if k in entry]
    if len(kinds) != 1:
        raise ControlError("name exactly one message: cc, note or program")
    kind = kinds[0]
    number = entry[kind]
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 127:
        raise ControlError(f"{kind} must be a number 0..127, got {number!r}")
    channel = entry.get("channel")
    if channel is not None and (not isinstance(channel, int) or isinstance(channel, bool) or not 1 <= channel <= 16):
        raise ControlError(f"channel must be 1..16, got {channel!r}")
    if "param" not in entry:
        raise ControlError("missing 'param' (NODE.PARAM, NODE.PARAM[i] or NODE.PARAM.KEY)")
    target = bind_target(graph, str(entry["param"]))
    smoothing = entry.get("smoothing_ms")
    if smoothing is not None and (not _is_number(smoothing) or smoothing < 0):
        raise ControlError(f"smoothing_ms must be a number >= 0, got {smoothing!r}")
    rule = MidiRule(kind, number, channel, target, smoothing_ms=smoothing)
    if kind == "program":
        if "value" not in entry:
            raise ControlError("a program entry needs the 'value' it sets")
        rule.value = entry["value"]
        _check_value(target, rule.value)
        return rule
    if "value" in entry:
        raise ControlError("'value' belongs to program entries; cc and note entries map to a 'range'")
    if target.kind == "bool":
        if kind == "note":
            rule.mode = entry.get("mode", "toggle")
            if rule.mode not in NOTE_MODES:
                raise ControlError(f"mode must be one of {', '.join(NOTE_MODES)}, got {rule.mode!r}")
        elif "mode" in entry:
            raise ControlError("'mode' applies to notes; a CC sets a bool param on at 64 and above")
        return rule
    if target.kind != "number":
        raise ControlError(f"{target.name} is not a number or bool: map it with program entries")
    if "mode" in entry:
        raise ControlError(f"'mode' applies to bool params; {target.name} is a number")
    rule.value_range = _value_range(target, entry.get("range"))
    return rule


def _value_range(target: ParamTarget, given: Any) -> tuple[float, float]:
    if given is None:
        declared = target.declared_range
        if declared is None or None in declared:
            raise ControlError(f"{target.name} has no declared range: give one, e.g. range: [0, 1]")
        given = list(declared)
    if not isinstance(given, list) or len(given) != 2 or not all(_is_number(v) for v in given):
        raise ControlError(f"range must be [low, high], got {given!r}")
    lo, hi = float(given[0]), float(given[1])
    for bound in (lo, hi):
        _check_value(target, bound)
    return lo, hi


def _check_value(target: ParamTarget, value: Any) -> None:
    try:
        target.check(value)
    except ParamError as exc:
        raise ControlError(f"{target.name}: {exc}") from None


def midi_api(name: str):
    """The python-rtmidi API constant for ``jack`` or ``alsa``."""
    import rtmidi

    apis = {"jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA}
    if name not in apis:
        raise ControlError(f"MIDI API must be one of {', '.join(apis)}, got {name!r}")
    return apis[name]


class MidiInput:
    """A MIDI input: a virtual port named ``port_name`` that controllers connect to, or,
    with ``connect``, a connection to the first existing output port whose name
    contains it. ``on_message(message)`` is called on rtmidi's thread with the raw bytes.

    Raises ControlError when MIDI cannot be opened (no ALSA sequencer, no JACK server,
    no such port).
    """

    def __init__(self, on_message, api: str = "jack", client_name: str = "sfgraph",
                 port_name: str = "midi_in", connect: str | None = None):
        import rtmidi

        try:
            self.midi_in = rtmidi.MidiIn(midi_api(api), name=client_name)
        except (rtmidi.RtMidiError, SystemError, RuntimeError) as exc:
            raise ControlError(f"cannot open MIDI ({api}): {exc}") from None
        try:
            if connect:
                ports = self.midi_in.get_ports()
                matches = [i for i, p in enumerate(ports) if connect.lower() in p.lower()]
                if not matches:
                    raise ControlError(f"no MIDI port matching {connect!r}; ports: {', '.join(ports) or 'none'}")
                self.midi_in.open_port(matches[0], port_name)
                self.port = ports[matches[0]]
            else:
                # the system may rename the client (JACK appends -01 to a name in use): find the new port
                listing = rtmidi.MidiOut(midi_api(api), name=f"{client_name}-probe")
                before = set(listing.get_ports())
                self.midi_in.open_virtual_port(port_name)
                opened = [p for p in listing.get_ports() if p not in before and port_name in p]
                del listing
                self.port = opened[0] if opened else f"{client_name}:{port_name}"
        except (rtmidi.RtMidiError, SystemError, RuntimeError) as exc:
            self.close()
            raise ControlError(f"cannot open MIDI port ({api}): {exc}") from None
        except ControlError:
            self.close()
            raise
        self.midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        self.midi_in.set_callback(lambda event, _data: on_message(event[0]))

    def close(self) -> None:
        midi_in = getattr(self, "midi_in", None)
        if midi_in is not None:
            midi_in.cancel_callback()
            midi_in.close_port()
            self.midi_in = None
            del midi_in


def open_midi_input(on_message, api: str = "auto", connect: str | None = None) -> MidiInput:
    """A MidiInput (see there); ``api`` ``auto`` tries JACK, then ALSA."""
    errors = []
    for candidate in (("jack", "alsa") if api == "auto" else (api,)):
        try:
            return MidiInput(on_message, api=candidate, connect=connect)
        except ControlError as exc:
            errors.append(str(exc))
    raise ControlError("; ".join(errors))


def midi_receiver(midi_map: MidiMap, control: ParamControl):
    """An ``on_message`` for MidiInput that turns mapped messages into param changes."""

    def on_message(message):
        for rule, value in midi_map.translate(message):
            smoothing = midi_map.smoothing_ms if rule.smoothing_ms is None else rule.smoothing_ms
            control.submit(rule.target, value, smoothing, source="midi")

    return on_message


# -- MIDI learn ----------------------------------------------------------------
FADER_DB = (-60.0, 6.0)  # what a fader spans on a dB param whose declared range is wider


def learn_rule(graph: BuiltGraph, target_text: str, next_message, timeout: float) -> MidiRule:
    """Wait for the first CC, note-on or program change (``next_message()`` returns a raw
    message or None) and return a rule mapping it to ``target_text``.

    ``target_text`` may end in ``=LOW:HIGH`` to give the range; otherwise a dB param
    gets a fader's -60..+6 dB (within its declared range), others their declared range.
    """
    name, _, range_text = target_text.partition("=")
    target = bind_target(graph, name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = next_message()
        if not message:
            time.sleep(0.005)
            continue
        status = message[0] & 0xF0
        if status not in (0xB0, 0x90, 0xC0) or (status == 0x90 and message[2] == 0):
            continue
        kind = {0xB0: "cc", 0x90: "note", 0xC0: "program"}[status]
        entry: dict[str, Any] = {kind: message[1], "channel": (message[0] & 0x0F) + 1, "param": target.name}
        if kind == "program":
            entry["value"] = target.current()
        elif target.kind == "number":
            entry["range"] = _learned_range(target, range_text)
        try:
            return _parse_rule(graph, entry)
        except ControlError as exc:
            raise ControlError(f"learned {kind} {message[1]} for {target.name}: {exc}") from None
    raise ControlError(f"no MIDI message for {target.name} within {timeout:g} s")


def _learned_range(target: ParamTarget, text: str) -> list[float]:
    if text:
        try:
            lo, hi = (float(v) for v in text.split(":"))
        except ValueError:
            raise ControlError(f"range must read LOW:HIGH, e.g. {target.name}=-60:6, got {text!r}") from None
        return [lo, hi]
    declared = target.declared_range
    if declared is None or None in declared:
        raise ControlError(f"{target.name} has no declared range: give one, e.g. {target.name}=0:1")
    lo, hi = declared
    if target.unit == "dB":
        lo, hi = max(lo, FADER_DB[0]), min(hi, FADER_DB[1])
    return [lo, hi]


def midi_section_yaml(rules: list[MidiRule], smoothing_ms: float = DEFAULT_SMOOTHING_MS) -> str:
    """A graph's ``midi:`` section mapping ``rules``, as YAML text."""
    lines = ["midi:", f"  smoothing_ms: {smoothing_ms:g}", "  map:"]
    for rule in rules:
        flow = yaml.safe_dump(rule.describe(), default_flow_style=True, sort_keys=False, width=1000).strip()
        lines.append(f"    - {flow}")
    return "\n".join(lines) + "\n"
