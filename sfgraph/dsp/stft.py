"""STFT, inverse STFT and ratio masks, whole-signal and streaming, with one framing.

Framing: frame ``t`` covers samples ``[t*hop - (n_fft - hop), t*hop + hop)`` (zeros
before the start), so it is complete as soon as sample ``(t+1)*hop - 1`` has arrived.

Windows (``window_pair``): by default a periodic Hann for analysis and Hann divided
by the overlap sum of its square for synthesis, so that a mask of ones
reconstructs the input exactly; the streaming version is causal with a latency of
``n_fft - hop`` samples. For low latency, ``synthesis`` < ``n_fft`` selects an
asymmetric pair (Mauler and Martin, "A low delay, variable resolution, perfect
reconstruction spectral analysis-synthesis system for speech enhancement", EUSIPCO
2007): the analysis window keeps ``n_fft`` samples of frequency resolution but
falls to zero over its last ``synthesis / 2`` samples, and the synthesis window is
non-zero on the last ``synthesis`` samples only, their product a Hann of
``synthesis`` samples. Each frame then only writes its last ``synthesis`` samples,
so the latency is ``synthesis - hop``. The whole-signal and streaming versions give
the same output, the streaming one shifted by its latency.

Masks come straight from the voice estimates (``ratio_masks``) or, with a
``MixtureFit``, from the voices first corrected by the mixture (``sfgraph.dsp.mask_fit``);
``section_cents`` > 0 first widens each voice estimate's partials like a choir section's
(``sfgraph.dsp.section_width``).

Two resolutions (``low_n_fft``): below ``crossover_hz`` the masks come from a longer STFT
(e.g. 4096 samples, 256 ms at 16 kHz) and above it from ``n_fft``'s. Low down the
partials of four voices crowd within a few bins of each other and a longer window
resolves them; higher up partials move with vibrato (their movement grows with the
harmonic number) and a shorter window follows them. Each resolution masks the whole
mixture and weights its masks by its band (``crossover_weights``: ``w(f) = 1 / (1 +
(f / crossover_hz)^8)`` below, ``1 - w(f)`` above, so masks of ones give back the
mixture); the two inverse STFTs are summed, the shorter one delayed to the longer one's
latency when streaming. A band's masks (and their widening and mixture fit) are made only
up to its last bin weighted above ``BAND_FLOOR`` (``band_bins``): the longer STFT's work
stops at about 3.2 times the crossover.
"""
from __future__ import annotations

import numpy as np

from sfgraph.buffers import Fifo
from sfgraph.dsp.mask_fit import MixtureFit, StreamingMixtureFit, fit_masks
from sfgraph.dsp.section_width import SectionWidth

# A band's STFT is masked, widened and fitted to the mixture only up to its last bin weighted
# above this (the low band up to 3.2 times the crossover); the bins above it are left out.
BAND_FLOOR = 1e-4


def hann(n: int) -> np.ndarray:
    """Periodic Hann window of ``n`` samples."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float64)


def _overlap_sum(window: np.ndarray, hop: int) -> np.ndarray:
    """Sum of ``window`` shifted by every multiple of ``hop``, over one hop."""
    overlap = np.zeros(hop)
    for shift in range(0, window.size, hop):
        overlap += window[shift:shift + hop]
    return overlap


def window_pair(n_fft: int, hop: int, synthesis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(analysis, synthesis) windows of ``n_fft`` samples whose product overlap-adds to one at ``hop``.

    ``synthesis``: samples at the end of each frame the synthesis window covers;
    None or ``n_fft`` for the symmetric Hann pair, fewer for the asymmetric low-delay
    pair (a multiple of ``hop``, at least ``2 * hop``).
    """
    synthesis = n_fft if synthesis is None else synthesis
    if n_fft % hop or synthesis % hop:
        raise ValueError(f"hop ({hop}) must divide n_fft ({n_fft}) and the synthesis length ({synthesis})")
    if synthesis == n_fft:
        analysis = hann(n_fft)
        overlap = _overlap_sum(analysis ** 2, hop)
        if np.ptp(overlap) > 1e-9 * overlap.max():
            raise ValueError(f"Hann windows of {n_fft} at hop {hop} do not overlap-add to a constant; "
                             "use hop <= n_fft/4")
        return analysis, analysis / overlap[0]
    if not 2 * hop <= synthesis < n_fft:
        raise ValueError(f"synthesis length {synthesis} must be at least 2 hops ({2 * hop}) and below n_fft ({n_fft})")
    half = synthesis // 2
    short = hann(synthesis)
    analysis = np.sqrt(np.concatenate([hann(2 * (n_fft - half))[:n_fft - half], short[half:]]))
    product = np.concatenate([np.zeros(n_fft - synthesis), short])
    synthesis_window = np.divide(product, analysis, out=np.zeros(n_fft), where=product > 0)
    return analysis, synthesis_window / _overlap_sum(product, hop)[0]


def covering_frames(n_samples: int, n_fft: int, hop: int) -> int:
    """Frames needed for every sample to be covered by all its overlapping frames."""
    return -(-(n_samples + n_fft - hop) // hop)


def stft(x: np.ndarray, n_fft: int, hop: int, frames: int | None = None,
         window: np.ndarray | None = None) -> np.ndarray:
    """(…, samples) real → (…, frames, n_fft//2+1) complex.

    ``frames`` defaults to ``covering_frames`` (what ``istft`` needs to reconstruct
    every sample); frame ``t`` is centred on sample ``t*hop + hop - n_fft/2``.
    ``window``: the analysis window (default ``hann(n_fft)``).
    """
    n = x.shape[-1]
    frames = covering_frames(n, n_fft, hop) if frames is None else frames
    padded = np.zeros(x.shape[:-1] + (n_fft - hop + max(frames * hop, n),), dtype=np.float64)
    padded[..., n_fft - hop:n_fft - hop + n] = x
    starts = np.arange(frames) * hop
    index = starts[:, None] + np.arange(n_fft)[None, :]
    return np.fft.rfft(padded[..., index] * (hann(n_fft) if window is None else window), axis=-1)


def istft(spec: np.ndarray, n_fft: int, hop: int, length: int, window: np.ndarray | None = None) -> np.ndarray:
    """Inverse of ``stft``: (…, frames, bins) → (…, length) float64; ``window``: the synthesis
    window (default the symmetric pair's, ``window_pair(n_fft, hop)[1]``)."""
    frames = spec.shape[-2]
    pieces = np.fft.irfft(spec, n=n_fft, axis=-1) * (window_pair(n_fft, hop)[1] if window is None else window)
    out = np.zeros(spec.shape[:-2] + (n_fft - hop + frames * hop,))
    for i in range(n_fft // hop):  # overlap-add one hop-aligned slice of every frame at a time
        block = pieces[..., i * hop:(i + 1) * hop]
        out[..., i * hop:i * hop + frames * hop] += block.reshape(block.shape[:-2] + (frames * hop,))
    return out[..., n_fft - hop:n_fft - hop + length]


def ratio_masks(voice_spectra: np.ndarray, power: float = 1.0, eps: float = 1e-8) -> np.ndarray:
    """Soft masks |S_j|^p / Σ_k |S_k|^p over the voice axis (axis 0); p=1 magnitude, p=2 power."""
    weights = np.abs(voice_spectra) ** power
    return weights / (weights.sum(axis=0, keepdims=True) + eps)


def crossover_weights(n_fft: int, sample_rate: float, crossover_hz: float) -> np.ndarray:
    """The low band's weight at each of the ``n_fft // 2 + 1`` bins: ``1 / (1 + (f / crossover_hz)^8)``
    (0.5 at the crossover, 0.9 and 0.1 at 0.76 and 1.32 times it); the high band's is one minus it."""
    frequencies = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    return 1.0 / (1.0 + (frequencies / crossover_hz) ** 8)


def two_band_weights(n_fft: int, low_n_fft: int, sample_rate: float,
                     crossover_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """The masks' weights per bin of the two resolutions: the ``low_n_fft`` STFT's below the
    crossover and the ``n_fft`` one's above it (``crossover_weights`` and one minus it)."""
    return (crossover_weights(low_n_fft, sample_rate, crossover_hz),
            1.0 - crossover_weights(n_fft, sample_rate, crossover_hz))


def check_two_band(n_fft: int, hop: int, low_n_fft: int, crossover_hz: float, sample_rate: float,
                   synthesis: int | None = None) -> None:
    """Raise ``ValueError`` for a second resolution that cannot be made (see the module)."""
    if low_n_fft <= n_fft or low_n_fft % hop:
        raise ValueError(f"low_n_fft ({low_n_fft}) must be longer than n_fft ({n_fft}) and a multiple of hop ({hop})")
    if synthesis is not None and synthesis != n_fft:
        raise ValueError("low_n_fft needs the symmetric windows: leave synthesis unset (the low-delay windows "
                         "are for live graphs, where a longer window's latency is what they avoid)")
    if not 0 < crossover_hz < sample_rate / 2:
        raise ValueError(f"crossover_hz must be between 0 and {sample_rate / 2:g} Hz (Nyquist), got {crossover_hz:g}")


def mask_separate(mix: np.ndarray, voices: np.ndarray, n_fft: int = 2048, hop: int = 256,
                  power: float = 1.0, synthesis: int | None = None, fit: MixtureFit | None = None,
                  sample_rate: float | None = None, section_cents: float = 0.0,
                  low_n_fft: int | None = None, crossover_hz: float = 600.0) -> np.ndarray:
    """Separate ``mix`` (samples,) with masks from estimated ``voices`` (V, samples).

    Returns (V, samples) float32: voice j is the mixture's STFT times
    |S_j|^p / Σ_k |S_k|^p, inverted. With the true stems as ``voices`` this is the
    oracle ratio mask. ``synthesis``: see ``window_pair``. ``fit``: first correct the
    voices by the mixture (``sfgraph.dsp.mask_fit``; needs ``sample_rate`` in Hz).
    ``section_cents``: first widen each voice's partials by that many cents
    (``sfgraph.dsp.section_width``; 0: as they are). ``low_n_fft``: below
    ``crossover_hz`` (Hz; needs ``sample_rate``) the masks of a ``low_n_fft`` STFT (see
    the module; None: one resolution).
    """
    mix = np.asarray(mix, dtype=np.float64)
    voices = np.asarray(voices, dtype=np.float64)
    if low_n_fft is None:
        return _masked(mix, voices, n_fft, hop, power, synthesis, fit, sample_rate, section_cents).astype(np.float32)
    if sample_rate is None:
        raise ValueError("two resolutions need the sample rate (the crossover is in Hz)")
    check_two_band(n_fft, hop, low_n_fft, crossover_hz, sample_rate, synthesis)
    low, high = two_band_weights(n_fft, low_n_fft, sample_rate, crossover_hz)
    return (_masked(mix, voices, low_n_fft, hop, power, None, fit, sample_rate, section_cents, low)
            + _masked(mix, voices, n_fft, hop, power, None, fit, sample_rate, section_cents, high)).astype(np.float32)


def _masked(mix, voices, n_fft, hop, power, synthesis, fit, sample_rate, section_cents, band=None) -> np.ndarray:
    """One resolution of ``mask_separate``, float64; ``band``: weights of its masks per bin."""
    analysis, synthesis_window = window_pair(n_fft, hop, synthesis)
    n_bins = band_bins(n_fft, band)
    mix_spec = stft(mix, n_fft, hop, window=analysis)[..., :n_bins]
    voice_mag = SectionWidth(n_fft, section_cents, n_bins).widen(
        np.abs(stft(voices, n_fft, hop, window=analysis)[..., :n_bins]))
    if fit is None:
        masks = ratio_masks(voice_mag, power)
    else:
        masks = fit_masks(np.abs(mix_spec), voice_mag, n_fft, hop, _fit_rate(sample_rate), fit, power)
    if band is not None:
        masks = masks * band[:n_bins]
    # the inverse FFT takes the bins above n_bins as zeros
    return istft(masks * mix_spec[None], n_fft, hop, mix.shape[-1], window=synthesis_window)


def band_bins(n_fft: int, band: np.ndarray | None) -> int:
    """How many of the lowest bins a band's masks reach: up to its last weight above
    ``BAND_FLOOR`` (all ``n_fft // 2 + 1`` for no band)."""
    if band is None:
        return n_fft // 2 + 1
    weighted = np.flatnonzero(np.asarray(band) > BAND_FLOOR)
    if weighted.size == 0:
        raise ValueError(f"a band of masks needs a weight above {BAND_FLOOR:g} somewhere")
    return int(weighted[-1]) + 1


def _fit_rate(sample_rate: float | None) -> float:
    if sample_rate is None:
        raise ValueError("a mixture fit needs the sample rate (its memory is in seconds, its smoothing in Hz)")
    return sample_rate


class StreamingMaskSeparator:
    """``mask_separate`` on a stream: push hops of mixture and voices, get separated
    voices ``latency`` samples later (``synthesis - hop``; ``n_fft - hop`` by default).

    ``process(mix, voices)``: mix (samples,), voices (V, samples), samples a multiple
    of ``hop``; returns (V, samples) float32. ``band``: weights of the masks per bin
    (``n_fft // 2 + 1``; one resolution of ``TwoBandMaskSeparator``), None for none; the
    bins above its last weight over ``BAND_FLOOR`` are left out (``band_bins``).

    The STFT runs in float32 on scipy's FFT (the mixture fit in float64, as in
    ``mask_separate``): numpy's FFT works in float64 (its float32 transform was slower
    still); 60 s of 4 voices in blocks of 16384 took 0.62-1.02 s of CPU that way and
    0.44-0.45 s so with the fit, 0.42-0.45 and 0.20-0.23 s without (issue 16). The
    voices differ from float64's by float32 rounding (up to 5e-6 on the demo clip).
    """

    def __init__(self, n_voices: int, n_fft: int = 2048, hop: int = 256, power: float = 1.0,
                 synthesis: int | None = None, fit: MixtureFit | None = None, sample_rate: float | None = None,
                 section_cents: float = 0.0, band: np.ndarray | None = None):
        self.n_voices, self.n_fft, self.hop, self.power = n_voices, n_fft, hop, power
        self.n_bins = band_bins(n_fft, band)
        self.band = None if band is None else np.asarray(band, np.float32)[:self.n_bins]
        self.width = SectionWidth(n_fft, section_cents, self.n_bins)
        self.fit = None if fit is None else StreamingMixtureFit(n_voices, n_fft, hop, _fit_rate(sample_rate), fit,
                                                                self.n_bins)
        self.span = n_fft if synthesis is None else synthesis  # samples each frame writes, at its end
        self.latency = self.span - hop
        analysis, synthesis_window = window_pair(n_fft, hop, synthesis)
        self.analysis = analysis.astype(np.float32)
        self.synthesis = synthesis_window[n_fft - self.span:].astype(np.float32)
        self.reset()

    def reset(self) -> None:
        # the mixture (row 0) and the voices' last n_fft - hop samples: the next frames' starts
        self.history = np.zeros((1 + self.n_voices, self.n_fft - self.hop), np.float32)
        self.overlap = np.zeros((self.n_voices, self.latency), np.float32)
        if self.fit is not None:
            self.fit.reset()

    def process(self, mix: np.ndarray, voices: np.ndarray) -> np.ndarray:
        from scipy import fft  # here, not at the top: graphs without a mask start 0.2 s sooner

        n = mix.shape[-1]
        if n % self.hop:
            raise ValueError(f"blocks must be a multiple of hop={self.hop} samples, got {n}")
        frames = n // self.hop
        if frames == 0:
            return np.zeros((self.n_voices, 0), dtype=np.float32)
        keep = self.history.shape[-1]
        signals = np.empty((1 + self.n_voices, keep + n), np.float32)
        signals[:, :keep] = self.history
        signals[0, keep:] = mix
        signals[1:, keep:] = voices
        self.history = signals[:, n:]
        # frame t: samples [t*hop, t*hop + n_fft) of the history and the block, as a view
        segments = np.lib.stride_tricks.sliding_window_view(signals, self.n_fft, axis=-1)[:, ::self.hop]
        spectra = fft.rfft(segments * self.analysis, axis=-1)[..., :self.n_bins]
        voice_mag = self.width.widen(np.abs(spectra[1:]))
        if self.fit is None:
            masks = ratio_masks(voice_mag, self.power)
        else:
            masks = self.fit.masks(np.abs(spectra[0]), voice_mag, self.power)
        if self.band is not None:
            masks = masks * self.band
        # the inverse FFT takes the bins above n_bins as zeros
        pieces = fft.irfft(masks.astype(np.float32, copy=False) * spectra[0], n=self.n_fft, axis=-1)
        pieces = pieces[..., self.n_fft - self.span:] * self.synthesis
        out = np.empty((self.n_voices, self.latency + n), np.float32)
        out[:, :self.latency] = self.overlap
        out[:, self.latency:] = 0.0
        for i in range(self.span // self.hop):  # overlap-add one hop-aligned slice of every frame at a time
            out[:, i * self.hop:i * self.hop + n] += pieces[..., i * self.hop:(i + 1) * self.hop].reshape(-1, n)
        self.overlap = out[:, n:].copy()
        return out[:, :n]


class TwoBandMaskSeparator:
    """``mask_separate`` with ``low_n_fft`` on a stream: the masks of a ``low_n_fft`` STFT
    below ``crossover_hz`` and of an ``n_fft`` one above (see the module), the separated
    voices ``latency`` = ``low_n_fft - hop`` samples later. ``process`` and ``reset`` as
    ``StreamingMaskSeparator``'s; the settings of both resolutions as its.
    """

    def __init__(self, n_voices: int, n_fft: int, low_n_fft: int, crossover_hz: float, sample_rate: float,
                 hop: int = 256, power: float = 1.0, fit: MixtureFit | None = None, section_cents: float = 0.0):
        check_two_band(n_fft, hop, low_n_fft, crossover_hz, sample_rate)
        low, high = two_band_weights(n_fft, low_n_fft, sample_rate, crossover_hz)
        self.low = StreamingMaskSeparator(n_voices, low_n_fft, hop, power, None, fit, sample_rate, section_cents, low)
        self.high = StreamingMaskSeparator(n_voices, n_fft, hop, power, None, fit, sample_rate, section_cents, high)
        self.latency = self.low.latency
        self.reset()

    def reset(self) -> None:
        self.low.reset()
        self.high.reset()
        # the high band's output waits for the low band's, which comes low_n_fft - n_fft samples later
        delay = self.low.latency - self.high.latency
        self.delayed = Fifo((self.low.n_voices,), capacity=2 * delay)
        self.delayed.push_zeros(delay)

    def process(self, mix: np.ndarray, voices: np.ndarray) -> np.ndarray:
        low = self.low.process(mix, voices)
        self.delayed.push(self.high.process(mix, voices))
        return low + self.delayed.pop(low.shape[-1])
