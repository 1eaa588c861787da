"""F0 from notes played live: one MIDI channel per voice.

Each voice follows the most recent key held on its channel (releasing it returns
to the key held before, as on a monophonic synthesizer), shifted by that channel's
pitch wheel over ``bend_range`` semitones; with no key held the voice is silent
(0 Hz). Messages arrive on rtmidi's thread and are applied when the graph asks for
the next frames, so their timing is quantised to the graph's blocks.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

import numpy as np

from sfgraph.music import PITCH_BEND_CENTER, midi_to_hz

_NOTE_OFF, _NOTE_ON, _CONTROL, _PITCH_BEND = 0x80, 0x90, 0xB0, 0xE0
_ALL_SOUND_OFF, _ALL_NOTES_OFF = 120, 123


class NotesToF0:
    """The F0 of every voice from raw MIDI messages.

    ``channels``: the 0-based MIDI channel of each voice; ``bend_range``: semitones
    of a full pitch-wheel throw. ``receive`` may be called from any thread;
    ``current()`` applies what was received and returns (V,) Hz.
    """

    def __init__(self, channels: Sequence[int], bend_range: float = 2.0):
        self.voice_of = {channel: voice for voice, channel in enumerate(channels)}
        if len(self.voice_of) != len(channels):
            raise ValueError(f"each voice needs its own MIDI channel, got {[c + 1 for c in channels]}")
        self.bend_range = bend_range
        self.inbox: deque[bytes] = deque()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.inbox.clear()
        self.held: list[list[int]] = [[] for _ in self.voice_of]  # keys held, oldest first
        self.bend = np.zeros(len(self.voice_of))  # semitones

    def receive(self, message: Sequence[int]) -> None:
        with self.lock:
            self.inbox.append(bytes(message))

    def current(self) -> np.ndarray:
        with self.lock:
            messages = list(self.inbox)
            self.inbox.clear()
        for message in messages:
            self._apply(message)
        f0 = np.zeros(len(self.held))
        for voice, keys in enumerate(self.held):
            if keys:
                f0[voice] = midi_to_hz(keys[-1] + self.bend[voice])
        return f0

    def _apply(self, message: bytes) -> None:
        if len(message) < 2 or message[0] < 0x80 or message[0] >= 0xF0:
            return
        kind, channel = message[0] & 0xF0, message[0] & 0x0F
        voice = self.voice_of.get(channel)
        if voice is None or len(message) < 3:
            return
        held = self.held[voice]
        if kind == _NOTE_ON and message[2] > 0:
            if message[1] in held:
                held.remove(message[1])
            held.append(message[1])
        elif kind in (_NOTE_ON, _NOTE_OFF):
            if message[1] in held:
                held.remove(message[1])
        elif kind == _PITCH_BEND:
            value = message[1] | (message[2] << 7)
            self.bend[voice] = (value - PITCH_BEND_CENTER) / PITCH_BEND_CENTER * self.bend_range
        elif kind == _CONTROL and message[1] in (_ALL_SOUND_OFF, _ALL_NOTES_OFF):
            held.clear()
