"""The frame grid and the voice names that every layer shares.

The separator, the F0 trackers and the dataset layout all work at ``SAMPLE_RATE``
with one frame every ``HOP_LENGTH`` samples (62.5 frames/s): frame ``t`` at
``t * HOP_LENGTH / SAMPLE_RATE`` s, ``1 + n_samples // HOP_LENGTH`` frames for
``n_samples`` of audio. Imports nothing of sfgraph: every other module may use it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SAMPLE_RATE = 16000  # Hz
HOP_LENGTH = 256  # samples per frame
DEFAULT_VOICES = ("soprano", "alto", "tenor", "bass")  # highest first


def frame_times(n_samples: int, sample_rate: int = SAMPLE_RATE, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Times in seconds of the frames ``t = 0 .. n_samples // hop_length`` (frame t at ``t * hop / sr``)."""
    return np.arange(1 + n_samples // hop_length) * (hop_length / sample_rate)


def voice_order(names: Sequence[str]) -> tuple[str, ...]:
    """Default voices first (soprano, alto, tenor, bass), then the others alphabetically."""
    known = [voice for voice in DEFAULT_VOICES if voice in names]
    others = sorted(set(names) - set(DEFAULT_VOICES))
    return tuple(known + others)
