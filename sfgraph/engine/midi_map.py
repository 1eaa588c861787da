"""A graph's ``midi:`` section: MIDI messages mapped to live params, and learning them.

A graph's ``midi:`` section maps MIDI messages to param targets
(``sfgraph.engine.param_control``)::

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
The MIDI ports themselves are ``sfgraph.midi_io``'s.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from sfgraph.engine.param_control import (DEFAULT_SMOOTHING_MS, ControlError, ParamControl, ParamTarget,
                                          bind_target)
from sfgraph.graph.build import BuiltGraph
from sfgraph.graph.errors import GraphError
from sfgraph.graph.params import ParamError
from sfgraph.midi_io import decode_control, wait_for_control

MESSAGE_KINDS = ("cc", "note", "program")
NOTE_MODES = ("toggle", "hold")


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
        control = decode_control(message)
        if control is None:
            return []
        changes = []
        for rule in self.rules:
            same_message = rule.kind == control.kind and rule.number == control.number
            if not same_message or rule.channel not in (None, control.channel):
                continue
            value = self._value(rule, control.amount, control.pressed)
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
    control = wait_for_control(next_message, timeout)
    if control is None:
        raise ControlError(f"no MIDI message for {target.name} within {timeout:g} s")
    entry: dict[str, Any] = {control.kind: control.number, "channel": control.channel, "param": target.name}
    if control.kind == "program":
        entry["value"] = target.current()
    elif target.kind == "number":
        entry["range"] = _learned_range(target, range_text)
    try:
        return _parse_rule(graph, entry)
    except ControlError as exc:
        raise ControlError(f"learned {control.kind} {control.number} for {target.name}: {exc}") from None


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
