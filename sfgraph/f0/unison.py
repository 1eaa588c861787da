"""Unisons that are tracking errors: a voice that leaps onto a pitch another voice holds.

F0s estimated from a mixture (``multif0``, then ``refine``) lose a voice whose note
fades (a held real soprano note can drop to a fifth of its salience for 10-13 frames)
to the nearest strong pitch, which is usually its neighbour's: the two voices then
sing the "same" note, and the separation splits one singer's partials between two
masks while the faded voice's partials go to nobody. Sung unisons exist (two parts
converging, mostly by step), so the test is how a voice came into the unison. When
two voices come within ``UNISON_CENTS`` of each other, each voice's approach is the
median distance, in cents, from its own voiced F0 in the ``context`` frames before
to the unison's first frame (no voiced frame before it: an onset, an infinite leap).
If one voice leaps at least ``leap_cents`` while the other came from no farther than
``STAY_CENTS`` (it was holding or nearing that pitch), the leaping voice reads
silent until the unison ends (a break of even one frame ends it). Both leaping, both near, or two onsets together: the
unison stands.

Measured on ``separate --f0 auto`` (the rule on the refined F0 before the second
separation, 250 cents; README, "F0"): real quartets (``real_dev``) 5.83 → 5.97 dB
mean SI-SDR, its final F0's multi-pitch accuracy 0.797 and voicing false alarm 0.39
(0.783 and 0.43 without); soundfont chorales (the test fixture) 13.74 → 13.94, (5
solo-voice test chorales) 13.39 → 13.68; "Choir Aahs" sections 1.57 → 1.54. A whole
tone (200 cents) is the commonest approach to a sung unison, hence a threshold just
above it.

Causal: frame ``t``'s decision uses frames up to ``t``, so it adds no look-ahead.
``silence_unison_leaps`` runs on whole tracks, ``UnisonLeapFilter`` streams (the same
frames however the tracks are split).
"""
from __future__ import annotations

import numba
import numpy as np

from sfgraph.f0 import UNISON_LEAP_CENTS

UNISON_CENTS = 50.0  # two F0s this close are one pitch (half a semitone)
STAY_CENTS = 100.0  # the voice that was there came from no farther than a semitone
DEFAULT_CONTEXT = 5  # frames of 16 ms before a unison that show how each voice came into it

_KEEP, _NONE = -2, -1  # a pair's state besides "voice i is silenced": unison kept, or no unison


@numba.njit(cache=True, nogil=True)
def in_unison(a, b):
    """Whether two voices' F0s (Hz, 0 = silent) are one pitch: both voiced, within ``UNISON_CENTS``
    (NaN: not)."""
    return a > 0.0 and b > 0.0 and abs(1200.0 * np.log2(a / b)) < UNISON_CENTS


@numba.njit(cache=True, nogil=True)
def _approach(history, voice, pitch):
    """Median |cents| from the voice's voiced frames in ``history`` to ``pitch``; inf if none."""
    distances = np.empty(history.shape[1])
    found = 0
    for k in range(history.shape[1]):
        if history[voice, k] > 0.0:
            distances[found] = abs(1200.0 * np.log2(history[voice, k] / pitch))
            found += 1
    if found == 0:
        return np.inf
    return np.median(distances[:found])


@numba.njit(cache=True, nogil=True)
def _filter(f0, history, pairs, leap_cents):
    """f0 (V, k) Hz; history (V, context) the input frames before them, oldest first;
    pairs (V, V) each pair's state (updated) → f0 with the leaping voices silenced.

    A unison that breaks (one voice silent or 50 cents away for a frame) and resumes is
    decided afresh, from the voices' last frames: keeping the decision through breaks
    of up to 2 frames measured slightly worse (``real_dev`` 5.95 against 5.97 dB, the
    Voice Oohs chorales 13.57 against 13.68; README, "F0")."""
    voices, frames = f0.shape
    out = f0.copy()
    for t in range(frames):
        for i in range(voices):
            for j in range(i + 1, voices):
                a, b = f0[i, t], f0[j, t]
                if not in_unison(a, b):
                    pairs[i, j] = _NONE
                    continue
                if pairs[i, j] == _NONE:  # a unison begins: how did each voice come into it?
                    leap_i, leap_j = _approach(history, i, a), _approach(history, j, b)
                    pairs[i, j] = _KEEP
                    if leap_i != leap_j and max(leap_i, leap_j) >= leap_cents and min(leap_i, leap_j) <= STAY_CENTS:
                        pairs[i, j] = i if leap_i > leap_j else j
                if pairs[i, j] >= 0:
                    out[pairs[i, j], t] = 0.0
        history[:, :-1] = history[:, 1:]
        history[:, -1] = f0[:, t]
    return out


def check_leap_cents(leap_cents: float, name: str = "unison_leap_cents") -> None:
    """A leap shorter than ``STAY_CENTS`` would silence voices that both came from near;
    ``name``: what the error calls the setting (a param, or a command-line flag)."""
    if not (leap_cents == 0 or leap_cents >= STAY_CENTS):
        raise ValueError(f"{name} must be 0 (off) or at least {STAY_CENTS:g} cents "
                         f"(a voice that came from within {STAY_CENTS:g} is not leaping), got {leap_cents:g}")


class UnisonLeapFilter:
    """Silences voices that leap into a unison, frame by frame (see the module).

    ``push(f0 (V, k) Hz)`` → ``(V, k)`` Hz, the same frames with a voice set to 0
    while it holds a unison it leapt into. ``leap_cents`` 0 passes F0 through.
    """

    def __init__(self, voices: int, leap_cents: float = UNISON_LEAP_CENTS, context: int = DEFAULT_CONTEXT):
        check_leap_cents(leap_cents)
        if context < 1:
            raise ValueError(f"context must be at least 1 frame, got {context}")
        self.voices, self.leap_cents, self.context = voices, float(leap_cents), context
        self.reset()

    def reset(self) -> None:
        self.history = np.zeros((self.voices, self.context), dtype=np.float64)  # silence before the start
        self.pairs = np.full((self.voices, self.voices), _NONE, dtype=np.int64)

    def push(self, f0: np.ndarray) -> np.ndarray:
        f0 = np.atleast_2d(f0)
        if f0.shape[0] != self.voices:
            raise ValueError(f"expected {self.voices} voices, got {f0.shape[0]}")
        if self.leap_cents == 0.0 or f0.shape[1] == 0:
            return f0
        # _filter reads its input and writes a copy: float64 input goes in as it is
        out = _filter(np.ascontiguousarray(f0, dtype=np.float64), self.history, self.pairs, self.leap_cents)
        return out.astype(f0.dtype, copy=False)


def silence_unison_leaps(f0: np.ndarray, leap_cents: float = UNISON_LEAP_CENTS,
                         context: int = DEFAULT_CONTEXT) -> np.ndarray:
    """Whole tracks ``f0`` (V, frames) Hz → the frames ``UnisonLeapFilter`` gives."""
    f0 = np.atleast_2d(f0)
    return UnisonLeapFilter(f0.shape[0], leap_cents, context).push(f0)
