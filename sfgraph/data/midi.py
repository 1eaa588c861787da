"""A minimal Standard MIDI File writer: one track, timed in seconds.

The Bach generator needs exact control over when every note and pitch-bend
event happens, because the ground-truth F0 is computed from the same event
list. Writing the file ourselves keeps that list the single source of truth:
the MIDI tempo is fixed so that one tick is exactly ``1 / TICKS_PER_SECOND``
seconds, and every event time is rounded to a tick before it is used anywhere.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from sfgraph.music import PITCH_BEND_CENTER, PITCH_BEND_MAX

# 1 quarter note = 1 s (tempo 1,000,000 us per quarter) and 2000 ticks per
# quarter, so one tick is 0.5 ms.
TICKS_PER_SECOND = 2000
_MICROSECONDS_PER_QUARTER = 1_000_000


# Order of events that share a tick: a note ends before the controllers of
# the next one change, and the next note starts last.
_ORDER_SETUP, _ORDER_NOTE_OFF, _ORDER_CONTROL, _ORDER_NOTE_ON = 0, 1, 2, 3


def seconds_to_tick(seconds: float) -> int:
    """Nearest MIDI tick (``1 / TICKS_PER_SECOND`` s) to a time in seconds."""
    return int(round(seconds * TICKS_PER_SECOND))


def tick_to_seconds(tick: int) -> float:
    """Time in seconds of a MIDI tick."""
    return tick / TICKS_PER_SECOND


def _variable_length(value: int) -> bytes:
    """MIDI variable-length quantity (7 bits per byte, high bit = more)."""
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(groups))


@dataclass
class MidiTrack:
    """Events of one MIDI channel, each at an integer tick.

    Build it with the ``add_*`` methods, then ``write`` it as a format-0 file.
    """

    channel: int = 0
    _events: list[tuple[int, int, int, bytes]] = field(default_factory=list)

    def _add(self, tick: int, order: int, data: bytes) -> None:
        if tick < 0:
            raise ValueError(f"MIDI event at negative tick {tick}")
        # The running index keeps insertion order among equal (tick, order).
        self._events.append((tick, order, len(self._events), data))

    def add_program(self, tick: int, program_zero_based: int) -> None:
        """Program change; ``program_zero_based`` in 0..127 (GM 1-based minus one)."""
        self._add(tick, _ORDER_SETUP, bytes([0xC0 | self.channel, program_zero_based]))

    def add_setup_control(self, tick: int, controller: int, value: int) -> None:
        """Control change sorted before everything else at its tick."""
        self._add(tick, _ORDER_SETUP, bytes([0xB0 | self.channel, controller, value]))

    def add_pitch_bend_range(self, tick: int, semitones: int) -> None:
        """Set the pitch-wheel sensitivity (RPN 0) to ``semitones``."""
        for controller, value in ((101, 0), (100, 0), (6, semitones), (38, 0), (101, 127), (100, 127)):
            self.add_setup_control(tick, controller, value)

    def add_generator_offset(self, tick: int, generator: int, data_offset: int) -> None:
        """SoundFont 2.01 NRPN (MSB 120): offset SF2 ``generator`` on this channel.

        ``data_offset`` is the signed 14-bit data value around 8192; the synth
        scales it per generator (fluidsynth: times 2 for envelope times, in
        timecents).
        """
        value = PITCH_BEND_CENTER + data_offset
        if not 0 <= value <= PITCH_BEND_MAX:
            raise ValueError(f"NRPN data offset {data_offset} outside -8192..8191")
        # fluidsynth applies the value when the data-entry MSB (CC 6) arrives, so the LSB (CC 38) goes first.
        for controller, byte in ((99, 120), (98, generator), (38, value & 0x7F), (6, value >> 7)):
            self.add_setup_control(tick, controller, byte)

    def add_pitch_bend(self, tick: int, value: int) -> None:
        """Pitch bend, ``value`` in 0..16383 (8192 = no bend)."""
        if not 0 <= value <= PITCH_BEND_MAX:
            raise ValueError(f"pitch bend {value} outside 0..{PITCH_BEND_MAX}")
        self._add(tick, _ORDER_CONTROL, bytes([0xE0 | self.channel, value & 0x7F, value >> 7]))

    def add_note(self, on_tick: int, off_tick: int, key: int, velocity: int) -> None:
        """A note from ``on_tick`` to ``off_tick`` (exclusive), MIDI key 0..127."""
        if off_tick <= on_tick:
            raise ValueError(f"note {key} ends at tick {off_tick}, not after its start {on_tick}")
        self._add(on_tick, _ORDER_NOTE_ON, bytes([0x90 | self.channel, key, velocity]))
        self._add(off_tick, _ORDER_NOTE_OFF, bytes([0x80 | self.channel, key, 0]))

    def to_bytes(self, end_tick: int) -> bytes:
        """The whole file (format 0), ending with end-of-track at ``end_tick``."""
        body = bytearray()
        body += b"\x00\xff\x51\x03" + _MICROSECONDS_PER_QUARTER.to_bytes(3, "big")
        previous = 0
        for tick, _, _, data in sorted(self._events):
            body += _variable_length(tick - previous) + data
            previous = tick
        body += _variable_length(max(end_tick - previous, 0)) + b"\xff\x2f\x00"
        header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_SECOND)
        return header + b"MTrk" + struct.pack(">I", len(body)) + bytes(body)

    def write(self, path: Path, end_tick: int) -> None:
        """Write the format-0 file to ``path``."""
        Path(path).write_bytes(self.to_bytes(end_tick))
