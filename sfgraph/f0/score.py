"""Scores as F0: a MIDI file or a MusicXML (any format music21 reads) with one part or
track per voice becomes each voice's F0 per frame.

A voice is a ``sfgraph.music.VoicePerformance`` (notes, per-note detuning and
pitch bend, in seconds), the representation the Bach generator computes its ground
truth F0 from, so a score and a generated chorale give F0 the same way. Within a
voice the most recent onset sounds until its end (at equal onsets, the highest
note: chords keep their top note, as the generator's chorale reader does).

Voices from the file:

- MusicXML and other notation: one voice per part; times from the score's
  metronome marks (music21 assumes 120 quarter notes per minute without any).
- MIDI: one voice per track that holds notes; a file with a single such track
  (format 0) has one voice per MIDI channel instead. Tempo changes, pitch bend and
  the pitch-bend range (RPN 0; 2 semitones until set) are applied; MIDI times are
  kept exactly (music21 would quantise them), so this module reads MIDI itself.

Voice names: part or track names (lower-cased) when every voice has a distinct
one, else soprano, alto, tenor, bass for four voices, else ``voice1``, ``voice2`` ...
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sfgraph.grid import DEFAULT_VOICES
from sfgraph.music import BEND_RANGE_SEMITONES, PITCH_BEND_CENTER, VoicePerformance

MIDI_SUFFIXES = (".mid", ".midi", ".smf")
_DEFAULT_MIDI_BEND_RANGE = 2.0  # semitones, General MIDI's power-on value
_DEFAULT_TEMPO_US = 500_000  # microseconds per quarter note until a tempo event (120 bpm)


class ScoreError(ValueError):
    """A score that cannot be read or does not give the voices asked for."""


@dataclass(frozen=True)
class Score:
    """One ``VoicePerformance`` per voice, times in seconds on the score's (or recording's) clock."""

    voices: tuple[str, ...]
    parts: tuple[VoicePerformance, ...]

    @property
    def end_s(self) -> float:
        """Time of the last note-off, s."""
        return max((float(part.note_off_s[-1]) for part in self.parts if part.note_off_s.size), default=0.0)

    @property
    def start_s(self) -> float:
        """Time of the first note-on, s."""
        return min((float(part.note_on_s[0]) for part in self.parts if part.note_on_s.size), default=0.0)

    def f0_at(self, times: np.ndarray) -> np.ndarray:
        """F0 (V, len(times)) Hz at ``times`` (s), 0 where a voice is silent."""
        times = np.asarray(times, dtype=np.float64)
        return np.stack([part.f0_at(times) if part.note_on_s.size else np.zeros_like(times)
                         for part in self.parts])

    def retimed(self, clock: Callable[[np.ndarray], np.ndarray]) -> "Score":
        """The score with every time ``t`` (s) moved to ``clock(t)`` (an increasing function)."""
        return Score(self.voices, tuple(
            replace(part, note_on_s=clock(part.note_on_s), note_off_s=clock(part.note_off_s),
                    bend_s=clock(part.bend_s)) for part in self.parts))

    def placed(self, offset_s: float = 0.0, tempo_scale: float = 1.0) -> "Score":
        """The score played ``tempo_scale`` times as fast, starting ``offset_s`` s later:
        score time ``t`` sounds at ``offset_s + t / tempo_scale``."""
        if tempo_scale <= 0:
            raise ScoreError(f"tempo_scale must be positive, got {tempo_scale}")
        return self.retimed(lambda t: offset_s + np.asarray(t, dtype=np.float64) / tempo_scale)


def _voice(name: str, notes: list[tuple[float, float, float]], bends: list[tuple[float, float]]) -> VoicePerformance:
    """A VoicePerformance from ``(on_s, off_s, pitch)`` notes (pitch in MIDI semitones,
    fractional for microtones) and ``(time_s, semitones)`` bends."""
    notes = sorted(notes, key=lambda note: (note[0], note[2]))  # equal onsets: the highest comes last and wins
    pitch = np.array([p for _, _, p in notes], dtype=np.float64)
    keys = np.round(pitch).astype(int)
    # The wheel rests at the centre until the first bend (a stable sort keeps the file's order at equal times).
    start = min([0.0] + [on for on, _, _ in notes] + [time for time, _ in bends])
    bends = sorted([(start, 0.0)] + list(bends), key=lambda bend: bend[0])
    return VoicePerformance(
        voice=name,
        note_on_s=np.array([on for on, _, _ in notes], dtype=np.float64),
        note_off_s=np.array([off for _, off, _ in notes], dtype=np.float64),
        keys=keys,
        velocities=np.full(keys.size, 90),
        tuning_cents=(pitch - keys) * 100.0,
        bend_s=np.array([t for t, _ in bends], dtype=np.float64),
        bend_values=np.array([PITCH_BEND_CENTER * (1 + s / BEND_RANGE_SEMITONES) for _, s in bends]),
    )


def _name_voices(part_names: Sequence[str], requested: Sequence[str] | None, path: Path) -> list[tuple[int, str]]:
    """``(part index, voice name)`` of the voices to keep.

    ``requested`` names either a subset of the parts by name (case-insensitive), or
    every part in order; None keeps every part, named as the module docstring says.
    """
    names = [name.strip().lower() for name in part_names]
    listing = ", ".join(f"{i + 1}: {name or '(unnamed)'}" for i, name in enumerate(part_names))
    if requested:
        wanted = [name.lower() for name in requested]
        if len(set(names)) == len(names) and all(name in names for name in wanted):
            return [(names.index(name), name) for name in wanted]
        if len(wanted) == len(names):
            return list(enumerate(requested))
        raise ScoreError(f"{path}: voices {', '.join(requested)} are neither part names nor one name per part "
                         f"(the score has {len(names)} parts: {listing})")
    if all(names) and len(set(names)) == len(names):
        return list(enumerate(names))
    default = DEFAULT_VOICES if len(names) == len(DEFAULT_VOICES) else [f"voice{i + 1}" for i in range(len(names))]
    return list(enumerate(default))


def read_score(path: Path, voices: Sequence[str] | None = None) -> Score:
    """Read a MIDI file or a score music21 can parse; ``voices`` as in ``_name_voices``."""
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"score not found: {path}")
    if path.suffix.lower() in MIDI_SUFFIXES:
        part_names, parts = _read_midi(path)
    else:
        part_names, parts = _read_notation(path)
    if not parts:
        raise ScoreError(f"{path}: no notes")
    chosen = _name_voices(part_names, voices, path)
    return Score(tuple(name for _, name in chosen),
                 tuple(_voice(name, *parts[index]) for index, name in chosen))


# -- notation (music21) -------------------------------------------------------------
def _read_notation(path: Path):
    from music21 import chord, converter

    try:
        score = converter.parse(str(path))
    except Exception as exc:  # music21 raises many types for files it cannot read
        raise ScoreError(f"{path}: cannot read the score ({exc})") from None
    boundaries = score.metronomeMarkBoundaries()
    quarters = [0.0]
    seconds = [0.0]
    for start, end, mark in boundaries:  # piecewise-linear quarter -> seconds map
        if end > quarters[-1]:
            seconds.append(seconds[-1] + (end - max(start, quarters[-1])) * mark.secondsPerQuarter())
            quarters.append(end)
    last_rate = boundaries[-1][2].secondsPerQuarter() if boundaries else 0.5

    def to_seconds(quarter: float) -> float:
        if quarter > quarters[-1]:
            return seconds[-1] + (quarter - quarters[-1]) * last_rate
        return float(np.interp(quarter, quarters, seconds))

    names, parts = [], []
    for part in score.parts:
        notes = []
        for element in part.stripTies().flatten().notes:
            duration = float(element.quarterLength)
            if duration <= 0:
                continue  # grace notes have no duration of their own
            pitch = max(p.ps for p in element.pitches) if isinstance(element, chord.Chord) else element.pitch.ps
            onset = float(element.offset)
            notes.append((to_seconds(onset), to_seconds(onset + duration), float(pitch)))
        if notes:
            names.append(part.partName or "")
            parts.append((notes, []))
    return names, parts


# -- Standard MIDI files -----------------------------------------------------------
def _variable_length(data: bytes, position: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[position]
        position += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, position


def _midi_events(path: Path):
    """``(ticks_per_quarter or None, seconds_per_tick for SMPTE or None, tracks)``; each track a
    list of ``(tick, status, data bytes)``, meta events with status 0xFF and data = (type, bytes)."""
    data = path.read_bytes()
    if data[:4] != b"MThd":
        raise ScoreError(f"{path}: not a Standard MIDI File")
    length, _format, n_tracks, division = struct.unpack(">IHHH", data[4:14])
    position = 8 + length
    if division & 0x8000:  # SMPTE: frames per second and ticks per frame
        fps = 256 - (division >> 8)
        ticks_per_quarter, seconds_per_tick = None, 1.0 / (fps * (division & 0xFF))
    else:
        ticks_per_quarter, seconds_per_tick = division, None
    tracks = []
    try:
        for _ in range(n_tracks):
            kind, size = struct.unpack(">4sI", data[position:position + 8])
            body, position = data[position + 8:position + 8 + size], position + 8 + size
            if kind != b"MTrk":
                continue
            events, at, tick, status = [], 0, 0, 0
            while at < len(body):
                delta, at = _variable_length(body, at)
                tick += delta
                if body[at] & 0x80:
                    status, at = body[at], at + 1
                if status == 0xFF:
                    meta_type = body[at]
                    size_, at = _variable_length(body, at + 1)
                    events.append((tick, 0xFF, (meta_type, body[at:at + size_])))
                    at += size_
                elif status in (0xF0, 0xF7):
                    size_, at = _variable_length(body, at)
                    at += size_
                else:
                    count = 1 if status & 0xF0 in (0xC0, 0xD0) else 2
                    events.append((tick, status, body[at:at + count]))
                    at += count
            tracks.append(events)
    except (IndexError, struct.error):
        raise ScoreError(f"{path}: truncated or corrupt MIDI file") from None
    return ticks_per_quarter, seconds_per_tick, tracks


def _read_midi(path: Path):
    ticks_per_quarter, seconds_per_tick, tracks = _midi_events(path)
    # Tempo map (any track may hold tempo events; format 1 keeps them in the first).
    tempo_changes = sorted((tick, int.from_bytes(payload[1], "big")) for events in tracks
                           for tick, status, payload in events if status == 0xFF and payload[0] == 0x51)

    def to_seconds(tick: int) -> float:
        if seconds_per_tick is not None:
            return tick * seconds_per_tick
        seconds, last_tick, tempo = 0.0, 0, _DEFAULT_TEMPO_US
        for change_tick, change_tempo in tempo_changes:
            if change_tick >= tick:
                break
            seconds += (change_tick - last_tick) * tempo / 1e6 / ticks_per_quarter
            last_tick, tempo = change_tick, change_tempo
        return seconds + (tick - last_tick) * tempo / 1e6 / ticks_per_quarter

    groups: dict[tuple[int, int], tuple[list, list]] = {}  # (track, channel) -> (notes, bends)
    track_names: dict[int, str] = {}
    for index, events in enumerate(tracks):
        sounding: dict[tuple[int, int], list[int]] = {}  # (channel, key) -> onset ticks (first in, first out)
        bend_range = {channel: _DEFAULT_MIDI_BEND_RANGE for channel in range(16)}
        rpn = {channel: (127, 127) for channel in range(16)}
        for tick, status, payload in events:
            if status == 0xFF:
                if payload[0] == 0x03 and index not in track_names:
                    track_names[index] = payload[1].decode("latin-1")
                continue
            kind, channel = status & 0xF0, status & 0x0F
            notes, bends = groups.setdefault((index, channel), ([], []))
            if kind == 0x90 and payload[1] > 0:
                sounding.setdefault((channel, payload[0]), []).append(tick)
            elif kind == 0x80 or kind == 0x90:
                onsets = sounding.get((channel, payload[0]))
                if onsets:
                    notes.append((to_seconds(onsets.pop(0)), to_seconds(tick), float(payload[0])))
            elif kind == 0xE0:
                value = payload[0] | (payload[1] << 7)
                bends.append((to_seconds(tick), (value - PITCH_BEND_CENTER) / PITCH_BEND_CENTER * bend_range[channel]))
            elif kind == 0xB0 and payload[0] in (101, 100):
                msb, lsb = rpn[channel]
                rpn[channel] = (payload[1], lsb) if payload[0] == 101 else (msb, payload[1])
            elif kind == 0xB0 and payload[0] == 6 and rpn[channel] == (0, 0):
                bend_range[channel] = float(payload[1])
        end = max((tick for tick, _, _ in events), default=0)
        for (channel, key), onsets in sounding.items():  # notes never released end with their track
            for onset in onsets:
                groups[(index, channel)][0].append((to_seconds(onset), to_seconds(end), float(key)))
    with_notes = {group: value for group, value in groups.items() if value[0]}
    note_tracks = sorted({track for track, _ in with_notes})
    if len(note_tracks) > 1:  # one voice per track
        names, parts = [], []
        for track in note_tracks:
            channels = sorted(channel for t, channel in with_notes if t == track)
            notes = [note for channel in channels for note in with_notes[(track, channel)][0]]
            names.append(track_names.get(track, ""))
            # A voice has one pitch wheel: that of the track's first channel with notes.
            parts.append((notes, with_notes[(track, channels[0])][1]))
        return names, parts
    keys = sorted(with_notes)  # one track: one voice per channel (a format-0 track name names the file)
    return ["" for _ in keys], [with_notes[key] for key in keys]
