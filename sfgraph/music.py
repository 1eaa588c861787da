"""Notes as performed, the representation that scores and the Bach generator share.

A ``VoicePerformance`` is one voice's notes with their tuning and the pitch-bend
events applied to them, in seconds; its ``f0_at`` is the voice's F0. The generator
computes its ground-truth F0 this way (``sfgraph.data.bach``), and a score read for
separation (``sfgraph.f0.score``) gives F0 the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PITCH_BEND_CENTER = 8192  # MIDI pitch-bend value of no bend
PITCH_BEND_MAX = 16383
BEND_RANGE_SEMITONES = 2  # the bend a VoicePerformance's extreme values stand for


def midi_to_hz(note: float | np.ndarray) -> np.float64 | np.ndarray:
    """Frequency in Hz of (fractional) MIDI note numbers, a scalar or an array: note 69 (A4) is 440 Hz."""
    return 440.0 * np.exp2((np.asarray(note, dtype=np.float64) - 69.0) / 12.0)


@dataclass(frozen=True)
class VoicePerformance:
    """One voice as played: notes and pitch-bend events, times quantised to MIDI ticks.

    ``note_on_s``/``note_off_s``: ``(n_notes,)`` s; ``keys``, ``velocities``:
    ``(n_notes,)`` MIDI values; ``tuning_cents``: ``(n_notes,)`` how far the
    soundfont's sample for each note's key sounds above its nominal pitch
    (see ``sfgraph.data.bach.measure_tuning``); ``bend_s``/``bend_values``: ``(n_bends,)`` s and
    0..16383, applied in order (the last one before a time holds).
    """

    voice: str
    note_on_s: np.ndarray
    note_off_s: np.ndarray
    keys: np.ndarray
    velocities: np.ndarray
    tuning_cents: np.ndarray
    bend_s: np.ndarray
    bend_values: np.ndarray

    def f0_at(self, times: np.ndarray) -> np.ndarray:
        """F0 in Hz at ``times`` (s), shape of ``times``; 0 where no note sounds."""
        times = np.asarray(times, dtype=np.float64)
        note = np.searchsorted(self.note_on_s, times, side="right") - 1
        sounding = (note >= 0) & (times < self.note_off_s[np.maximum(note, 0)])
        bend = self.bend_values[np.maximum(np.searchsorted(self.bend_s, times, side="right") - 1, 0)]
        index = np.maximum(note, 0)
        note_number = (
            self.keys[index]
            + self.tuning_cents[index] / 100.0
            + (bend - PITCH_BEND_CENTER) / PITCH_BEND_CENTER * BEND_RANGE_SEMITONES
        )
        return np.where(sounding, midi_to_hz(note_number), 0.0)


@dataclass(frozen=True)
class ChoralePerformance:
    """A chorale as played: one ``VoicePerformance`` per voice, and the settings drawn for it."""

    chorale: str
    voices: tuple[VoicePerformance, ...]
    tempo_bpm: float
    transpose: int

    @property
    def end_s(self) -> float:
        """Time of the last note-off, s."""
        return max(float(voice.note_off_s[-1]) for voice in self.voices)
