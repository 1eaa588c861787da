"""Section width: each voice estimate's spectrum widened the way a section widens its partials.

A choir section is several singers per part, a few to tens of cents apart, so each of
its partials is a band whose width in hertz grows with the partial's frequency. A voice
model with one F0 per part makes sharp partials, and masks made from them hand the rest
of each band to whichever neighbouring voice has a partial there. ``widen_sections``
widens every frame of a voice estimate along frequency by a Gaussian whose standard
deviation is ``cents`` at every frequency: at bin ``k`` it is
``k · (2^(cents/1200) − 1)`` bins, so the lowest partials stay sharp and the highest
spread most, like a section's. It averages power (each output bin is the root of a
weighted mean of the squared magnitudes around it; the weights sum to one), so a flat
spectrum stays flat and a voice keeps its level.

Each frame is widened on its own, so a stream widened a frame at a time gives the whole
signal's result exactly. ``cents`` 0 leaves the spectra as they are. Measured with the
bundled model (README, "Choir sections"): 10 cents helped the generated choir sections
and pseudo-sections of real voices; on real quartets (one singer per part) it costs.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# a Gaussian narrower than this (bins) is a single bin on the STFT grid
_NARROWEST = 0.05
# taps reach this many standard deviations either side
_REACH = 3.0


def section_kernel(n_freq: int, cents: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The widening as rows of weights, ``(starts, ends, weights)``: output bin ``k`` is the
    weighted mean over bins ``starts[k] .. ends[k] - 1``; ``weights`` holds the rows one
    after another (each sums to one)."""
    if not cents >= 0:
        raise ValueError(f"a section width needs cents >= 0, got {cents}")
    ratio = 2.0 ** (cents / 1200.0) - 1.0
    starts = np.empty(n_freq, dtype=np.int64)
    ends = np.empty(n_freq, dtype=np.int64)
    rows = []
    for k in range(n_freq):
        sigma = k * ratio
        if sigma < _NARROWEST:
            starts[k], ends[k] = k, k + 1
            rows.append(np.ones(1))
            continue
        reach = int(np.ceil(_REACH * sigma))
        starts[k], ends[k] = max(0, k - reach), min(n_freq, k + reach + 1)
        row = np.exp(-0.5 * ((np.arange(starts[k], ends[k]) - k) / sigma) ** 2)
        rows.append(row / row.sum())
    return starts, ends, np.concatenate(rows)


@njit(cache=True)
def _widen(magnitude, starts, ends, weights, out):
    """``out[v, t, k]`` = sqrt(Σ_j w_kj · magnitude[v, t, j]²) over row k's taps."""
    n_voices, n_frames, n_freq = magnitude.shape
    power = np.empty(n_freq)
    for v in range(n_voices):
        for t in range(n_frames):
            for f in range(n_freq):
                value = np.float64(magnitude[v, t, f])  # float32 spectra widened as their float64 copies
                power[f] = value * value
            first = 0
            for k in range(n_freq):
                total = 0.0
                for j in range(starts[k], ends[k]):
                    total += weights[first + j - starts[k]] * power[j]
                first += ends[k] - starts[k]
                out[v, t, k] = np.sqrt(total)


class SectionWidth:
    """``widen_sections`` with its kernel made once, for a stream of frames.

    ``widen(magnitude)``: ``magnitude`` (V, T, n_bins) STFT magnitudes, the lowest
    ``n_bins`` bins of an ``n_fft`` STFT (default all ``n_fft//2 + 1``); returns the
    widened magnitudes, the same shape (float64; 0 cents: ``magnitude`` itself). Frames
    are independent: any cut of a stream into calls gives the same frames.
    """

    def __init__(self, n_fft: int, cents: float, n_bins: int | None = None):
        self.n_freq = n_fft // 2 + 1 if n_bins is None else n_bins
        self.cents = float(cents)
        self.starts, self.ends, self.weights = section_kernel(self.n_freq, self.cents)

    def widen(self, magnitude: np.ndarray) -> np.ndarray:
        if magnitude.shape[-1] != self.n_freq:
            raise ValueError(f"expected {self.n_freq} frequency bins, got {magnitude.shape[-1]}")
        if self.cents == 0:
            return magnitude
        magnitude = np.ascontiguousarray(magnitude)  # the kernel reads float32 as it is
        shaped = magnitude.reshape((-1,) + magnitude.shape[-2:])
        out = np.empty(shaped.shape)
        _widen(shaped, self.starts, self.ends, self.weights, out)
        return out.reshape(magnitude.shape)


def widen_sections(magnitude: np.ndarray, n_fft: int, cents: float) -> np.ndarray:
    """Each frame of ``magnitude`` (…, T, n_fft//2 + 1) widened along frequency by a Gaussian
    of ``cents`` standard deviation (see the module); the same shape, float64 (0 cents:
    ``magnitude`` itself)."""
    return SectionWidth(n_fft, cents).widen(magnitude)
