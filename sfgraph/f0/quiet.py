"""Frames where a voice is quiet within its own note: it is not singing there.

An F0 tracked on a mixture holds a voice through the breath between two notes, the
consonant before a note and the release after it: the tracker's 128-ms analysis
windows smear onsets and offsets, and the frames between a note's partials
fading and the next note's starting are still full of the other voices. A first
separation shows what the voice itself does there: its level drops far below the
level of the notes around. So, for every voiced frame of a voice, the median level
of that voice's voiced frames within ``reach`` frames either side, in the same voiced
run (a break in the F0 ends the comparison); a frame ``quiet_db`` or more below it
reads silent.

A voice in unison with another (``sfgraph.f0.unison.in_unison``) is not judged: a first
separation splits the shared partials between the two at will.

Measured with ``separate --f0 auto`` (the gate in ``f0_refine``, on the first
separation, 12 dB within 16 frames): on ``real_dev``'s real quartets the final F0's
voicing false alarm 0.319 → 0.269, separation 6.05 → 6.07 dB mean SI-SDR; 0.03-0.08
fewer false alarms on every other set, separation within ±0.02 dB but for the Voice
Oohs chorales with a voice resting (11.26 → 11.17) (README, "Quiet frames").

Levels are per frame in dB (any reference: only differences count). Frame ``t`` needs
the F0 and levels of frames up to ``t + reach``: ``reach`` frames of look-ahead.
``silence_quiet_frames`` runs on whole tracks, ``QuietFrameGate`` streams (the same
frames however the tracks are split).
"""
from __future__ import annotations

import numba
import numpy as np

from sfgraph.f0.unison import in_unison


@numba.njit(cache=True, nogil=True)
def _gate(f0, level, first, last, reach, quiet_db):
    """f0, level (V, n) buffers; frames first..last-1 decided from frames within ``reach``
    of them → f0 of those frames, quiet ones set to 0."""
    voices, n = f0.shape
    out = f0[:, first:last].copy()
    near = np.empty(2 * reach + 1)
    for v in range(voices):
        for t in range(first, last):
            if f0[v, t] <= 0.0:
                continue
            unison = False
            for u in range(voices):
                unison |= u != v and in_unison(f0[u, t], f0[v, t])
            if unison:
                continue
            low = t
            while low > max(t - reach, 0) and f0[v, low - 1] > 0.0:
                low -= 1
            high = t
            while high < min(t + reach, n - 1) and f0[v, high + 1] > 0.0:
                high += 1
            count = high - low + 1
            near[:count] = level[v, low:high + 1]
            if level[v, t] <= np.median(near[:count]) - quiet_db:
                out[v, t - first] = 0.0
    return out


def check_quiet(quiet_db: float, reach: int, names: tuple[str, str] = ("quiet_db", "reach")) -> None:
    """``names``: what the errors call the two settings (a class's, or a node's params)."""
    if quiet_db < 0:
        raise ValueError(f"{names[0]} must be 0 (off) or positive, got {quiet_db:g}")
    if reach < 1:
        raise ValueError(f"{names[1]} must be at least 1 frame, got {reach}")


def quiet_lookahead_frames(quiet_db: float, reach: int) -> int:
    """Frames past frame ``t`` whose F0 and levels decide whether ``t`` is quiet: ``reach``, none when off."""
    return reach if quiet_db > 0 else 0


class QuietFrameGate:
    """Silences a voice's frames that are ``quiet_db`` below its level around them (see the module).

    ``push(f0 (V, k) Hz, level (V, k) dB)`` → F0 (V, m) Hz of the frames now decided:
    frame ``t`` once frames up to ``t + reach`` are in. Before the start the voices are
    silent; at the end, push ``reach`` unvoiced frames to decide the last ones.
    ``quiet_db`` 0 passes F0 through at once.
    """

    def __init__(self, voices: int, quiet_db: float, reach: int):
        check_quiet(quiet_db, reach)
        self.voices, self.quiet_db, self.reach = voices, float(quiet_db), reach
        self.reset()

    @property
    def lookahead_frames(self) -> int:
        return quiet_lookahead_frames(self.quiet_db, self.reach)

    def reset(self) -> None:
        # frames kept: up to ``reach`` already decided, then those waiting
        self.f0 = np.zeros((self.voices, 0), dtype=np.float64)
        self.level = np.zeros((self.voices, 0), dtype=np.float64)
        self.decided = 0

    def push(self, f0: np.ndarray, level: np.ndarray) -> np.ndarray:
        f0, level = np.atleast_2d(f0), np.atleast_2d(level)
        if f0.shape != level.shape or f0.shape[0] != self.voices:
            raise ValueError(f"expected F0 and levels of {self.voices} voices with the same frames, "
                             f"got {f0.shape} and {level.shape}")
        if self.quiet_db == 0.0:
            return f0
        self.f0 = np.concatenate([self.f0, f0.astype(np.float64)], axis=1)
        self.level = np.concatenate([self.level, level.astype(np.float64)], axis=1)
        last = max(self.f0.shape[1] - self.reach, self.decided)
        out = _gate(self.f0, self.level, self.decided, last, self.reach, self.quiet_db)
        keep = max(last - self.reach, 0)
        self.f0, self.level = self.f0[:, keep:], self.level[:, keep:]
        self.decided = last - keep
        return out.astype(f0.dtype, copy=False)


def silence_quiet_frames(f0: np.ndarray, level: np.ndarray, quiet_db: float, reach: int) -> np.ndarray:
    """Whole tracks ``f0`` (V, frames) Hz with their voices' ``level`` (V, frames) dB →
    the frames ``QuietFrameGate`` gives."""
    f0, level = np.atleast_2d(f0), np.atleast_2d(level)
    gate = QuietFrameGate(f0.shape[0], quiet_db, reach)
    tail = np.zeros((f0.shape[0], gate.lookahead_frames))
    return np.concatenate([gate.push(f0, level), gate.push(tail.astype(f0.dtype), tail)], axis=1)
