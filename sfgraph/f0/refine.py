"""F0 refined against each voice's own audio: the pitch its partials actually have.

An F0 estimated from the mixture (``multif0``) is right to a semitone but often
5-20 cents off on real voices, and a separation mask built on it misses the
partials by more the higher they are (10 cents is 2.4 STFT bins at the 10th
partial of a 300-Hz alto). Refining it on a first separation brings it to the
pitch the partials show: each voice's separated signal holds mostly its own
partials near the estimated harmonics, and their peaks give the pitch.

For every frame and voice with an F0: a Hann window of ``n_fft`` samples centred
on the frame (sample ``t * 256``, 16 kHz, zeros before the start), zero-padded to
twice its length; near each of the first ``harmonics`` multiples of the F0 (within
``reach_cents``) the strongest spectral peak, placed to a fraction of a bin by a
parabola through the log magnitudes; the new F0 is the power-weighted median of
the peaks' offsets in cents. A harmonic whose strongest point within the reach is at
its edge (a neighbour's partial, not a peak) is skipped; a frame with no peak keeps
its F0; unvoiced frames (0 Hz) stay unvoiced. The refined F0 then goes through
``sfgraph.f0.quiet`` (``quiet_db``, ``quiet_reach``: a frame where the voice's own
audio, 512 samples around the frame, is far below its level in the frames around
reads silent) and ``sfgraph.f0.unison`` (``unison_leap_cents``: a voice that leapt
onto another's pitch reads silent).

On the three real quartets of ``real_dev``, refining the multi-F0 on a first
separation took the median pitch error from 8.2 to 5.5 cents and the second
separation from 5.22 to 5.90 dB mean SI-SDR, before the unison rule (CREPE full on
the same separated voices: 3.2 cents, 5.70 dB, at about 100 times the cost).

``refine_f0`` runs on whole signals; ``F0Refiner`` streams (the same frames
however the audio is split); the ``f0_refine`` node wraps it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sfgraph.f0 import UNISON_LEAP_CENTS
from sfgraph.f0.quiet import QuietFrameGate, check_quiet, quiet_lookahead_frames
from sfgraph.f0.unison import UnisonLeapFilter, check_leap_cents
from sfgraph.grid import HOP_LENGTH, SAMPLE_RATE


@dataclass(frozen=True)
class RefineOptions:
    """``n_fft``: analysis window, samples at 16 kHz (half of it is look-ahead);
    ``reach_cents``: how far from the given F0 a partial is looked for; ``harmonics``:
    the partials used (the lowest ones: they are the strongest and least overlapped);
    ``quiet_db``, ``quiet_reach``: a frame where the voice is this many dB below the median
    level of its voiced frames within ``quiet_reach`` frames either side reads silent
    (``sfgraph.f0.quiet``; 0 dB: never; it adds ``quiet_reach`` frames of look-ahead);
    ``unison_leap_cents``: a voice that leaps this far onto the refined pitch of another
    reads silent while they share it (``sfgraph.f0.unison``; 0: never)."""

    n_fft: int = 2048
    reach_cents: float = 100.0
    harmonics: int = 12
    quiet_db: float = 12.0
    quiet_reach: int = 16
    unison_leap_cents: float = UNISON_LEAP_CENTS

    def check(self) -> None:
        if self.n_fft < 2 * HOP_LENGTH or self.n_fft & (self.n_fft - 1):
            raise ValueError(f"n_fft must be a power of two of at least {2 * HOP_LENGTH} samples, got {self.n_fft}")
        if not 0 < self.reach_cents <= 600:
            raise ValueError(f"reach_cents must be in (0, 600], got {self.reach_cents:g}")
        if self.harmonics < 1:
            raise ValueError(f"harmonics must be at least 1, got {self.harmonics}")
        check_quiet(self.quiet_db, self.quiet_reach, ("quiet_db", "quiet_reach"))
        check_leap_cents(self.unison_leap_cents)

    @property
    def quiet_lookahead_frames(self) -> int:
        """Frames past frame ``t`` whose F0 and audio decide whether ``t`` is quiet."""
        return quiet_lookahead_frames(self.quiet_db, self.quiet_reach)

    @property
    def lookahead_samples(self) -> int:
        """Samples past frame ``t``'s time needed to refine frame ``t``."""
        return self.n_fft // 2 + self.quiet_lookahead_frames * HOP_LENGTH


@numba.njit(cache=True, nogil=True)
def _refine_frames(magnitude, f0, bin_hz, reach_cents, harmonics, nyquist):
    """magnitude (V, k, bins) of zero-padded frames, f0 (V, k) Hz → refined f0 (V, k)."""
    voices, frames, bins = magnitude.shape
    out = f0.copy()
    reach = 2.0 ** (reach_cents / 1200.0)
    offsets = np.empty(harmonics)
    weights = np.empty(harmonics)
    for v in range(voices):
        for k in range(frames):
            pitch = f0[v, k]
            if pitch <= 0.0:
                continue
            found = 0
            for h in range(1, harmonics + 1):
                centre = h * pitch
                if centre * reach >= nyquist:
                    break
                low = int(np.floor(centre / reach / bin_hz))
                high = min(int(np.ceil(centre * reach / bin_hz)), bins - 1)
                best = low
                for i in range(low + 1, high + 1):
                    if magnitude[v, k, i] > magnitude[v, k, best]:
                        best = i
                if best <= low or best >= high or magnitude[v, k, best] <= 0.0:
                    continue
                left = np.log(magnitude[v, k, best - 1] + 1e-30)
                middle = np.log(magnitude[v, k, best] + 1e-30)
                right = np.log(magnitude[v, k, best + 1] + 1e-30)
                curvature = left - 2.0 * middle + right
                shift = 0.5 * (left - right) / curvature if curvature < 0.0 else 0.0
                offsets[found] = 1200.0 * np.log2((best + shift) * bin_hz / centre)
                weights[found] = magnitude[v, k, best] ** 2
                found += 1
            if found == 0:
                continue
            order = np.argsort(offsets[:found])
            half = weights[:found].sum() / 2.0
            running = 0.0
            for j in order:
                running += weights[j]
                if running >= half:
                    out[v, k] = pitch * 2.0 ** (offsets[j] / 1200.0)
                    break
    return out


class F0Refiner:
    """Refines F0 tracks against one voice per audio channel, block by block.

    ``push(audio (V, n) at 16 kHz, f0 (V, k) Hz)`` → refined F0 (V, m) Hz of the
    frames now complete: frame ``t`` once its F0 and the audio up to
    ``options.lookahead_samples`` past sample ``t * 256`` are in. Frames come out in
    order, the same however the audio and F0 are split.
    """

    def __init__(self, voices: int, options: RefineOptions = RefineOptions()):
        options.check()
        self.voices, self.options = voices, options
        self.window = np.hanning(options.n_fft + 1)[:-1]
        self.quiet = QuietFrameGate(voices, options.quiet_db, options.quiet_reach)
        self.unisons = UnisonLeapFilter(voices, options.unison_leap_cents)
        self.reset()

    def reset(self) -> None:
        # audio from padded sample next_frame * HOP (the padding: n_fft / 2 zeros before the start)
        self.pending = np.zeros((self.voices, self.options.n_fft // 2), dtype=np.float64)
        self.f0_waiting = np.zeros((self.voices, 0), dtype=np.float64)
        self.quiet.reset()
        self.unisons.reset()

    def push(self, audio: np.ndarray, f0: np.ndarray) -> np.ndarray:
        audio, f0 = np.atleast_2d(audio), np.atleast_2d(f0)
        if audio.shape[0] != self.voices or f0.shape[0] != self.voices:
            raise ValueError(f"expected {self.voices} voices, got audio {audio.shape[0]} and F0 {f0.shape[0]}")
        self.pending = np.concatenate([self.pending, audio], axis=1)
        self.f0_waiting = np.concatenate([self.f0_waiting, f0], axis=1)
        n_fft = self.options.n_fft
        ready = min(max((self.pending.shape[1] - n_fft) // HOP_LENGTH + 1, 0), self.f0_waiting.shape[1])
        if ready == 0:
            return np.zeros((self.voices, 0), dtype=np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(self.pending, n_fft, axis=1)[:, ::HOP_LENGTH][:, :ready]
        magnitude = np.abs(np.fft.rfft(frames * self.window, 2 * n_fft, axis=2))
        refined = _refine_frames(magnitude, self.f0_waiting[:, :ready], SAMPLE_RATE / (2 * n_fft),
                                 float(self.options.reach_cents), self.options.harmonics, SAMPLE_RATE / 2)
        # the voice's level in the 512 samples around each frame's time (the window's middle)
        middle = frames[:, :, n_fft // 2 - HOP_LENGTH:n_fft // 2 + HOP_LENGTH]
        level_db = 10.0 * np.log10(np.mean(middle ** 2, axis=2) + 1e-12)
        self.pending = self.pending[:, ready * HOP_LENGTH:]
        self.f0_waiting = self.f0_waiting[:, ready:]
        return self.unisons.push(self.quiet.push(refined, level_db)).astype(np.float32)


def refine_f0(audio: np.ndarray, f0: np.ndarray, options: RefineOptions = RefineOptions()) -> np.ndarray:
    """Refine ``f0`` (V, frames) Hz, frame t at sample t·256, against ``audio`` (V, n)
    at 16 kHz, one voice per channel, whole: the frames ``F0Refiner`` gives."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    refiner = F0Refiner(audio.shape[0], options)
    flush = np.zeros((audio.shape[0], options.lookahead_samples + HOP_LENGTH))
    unvoiced = np.zeros((audio.shape[0], options.quiet_lookahead_frames))  # to decide the last frames' quiet
    refined = [refiner.push(audio, f0), refiner.push(flush, unvoiced)]
    return np.concatenate(refined, axis=1)
