"""Configuration and small shared numpy helpers of the source-filter voice model.

Both synthesizers (``voice_torch`` and ``voice_numba``) read the same
``VoiceConfig`` and take their fixed tables (synthesis window, noise FIR
basis) from here, so that they compute exactly the same maths.

Time alignment (shared by both implementations)
------------------------------------------------
* Frame ``t`` holds at sample ``t * hop`` (frame-centre convention).
* F0, harmonic gain and noise gain are interpolated linearly between frame
  ``t`` (at sample ``t * hop``) and frame ``t + 1`` (at sample ``(t + 1) * hop``);
  after the last frame they are held.  Samples ``[t * hop, (t + 1) * hop)``
  form *segment* ``t``.
* Vocal-tract frame ``t`` covers samples ``[t * hop - frame_size / 2,
  t * hop + frame_size / 2)``: it is filtered from zero state, weighted by a
  periodic Hann window and overlap-added.  Frame ``T`` (one past the last)
  repeats frame ``T - 1`` so that a T-frame track yields ``T * hop`` samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sfgraph.grid import HOP_LENGTH, SAMPLE_RATE


@dataclass(frozen=True)
class VoiceConfig:
    """Constants of the voice model.

    Attributes:
        sample_rate: audio rate in Hz.
        frame_size: vocal-tract frame length in samples; must equal ``2 * hop``
            (a periodic Hann window then overlap-adds to exactly one).
        hop: frame hop in samples.
        n_harmonics: largest harmonic number synthesized (harmonics at or above
            Nyquist are dropped per sample).
        lpc_order: all-pole filter order (even); ``lpc_order + 1`` LSF increments.
        n_noise_bands: bands of the noise magnitude response, equally spaced from
            0 Hz to Nyquist (band ``b`` is centred on ``b * nyquist / (n - 1)`` Hz).
        tilt_corner_hz: harmonics above this frequency are attenuated by
            -6 dB per octave (weight ``min(1, tilt_corner_hz / (k * F0))``).
        section_copies: harmonic sources per voice. 1: one (a soloist). An odd number
            above 1: a section of singers, each harmonic rendered as this many copies
            detuned by ``(j - (copies - 1) / 2) * section_step_cents`` (copy ``j``), so
            that a partial becomes a band whose width in Hz grows with the harmonic number.
            Each copy starts at its own phase (:func:`section_phases`) so that the copies do
            not add up coherently; a per-frame spread (cents, a control) weights them
            (:func:`section_weights`): a narrow spread leaves the centre copy alone.
        section_step_cents: the detune between neighbouring copies, cents.
        min_lsf_gap: smallest distance between neighbouring LSFs in radians
            (5e-3 rad is 13 Hz at 16 kHz).  Each increment is mapped to
            ``gap + (pi - (p + 1) * gap) * x_i / sum(x)``, still summing to pi.
            Interlaced LSFs give a minimum-phase ``A(z)`` in exact arithmetic,
            but with nearly coincident LSFs the order-20 direct-form
            coefficients need more than float64 precision and the rounded
            filter can have poles outside the unit circle; the gap rules that
            out for bunched pairs and small clusters.  It does not for extreme
            inputs where many LSFs pile up (increments more than a few hundred
            times apart), so keep the network's increments within such a range
            (the network's ``0.01 + sigmoid(x)`` keeps them within 1:101).
    """

    sample_rate: int = SAMPLE_RATE
    frame_size: int = 2 * HOP_LENGTH
    hop: int = HOP_LENGTH
    n_harmonics: int = 101
    lpc_order: int = 20
    n_noise_bands: int = 40
    tilt_corner_hz: float = 200.0
    min_lsf_gap: float = 5e-3
    section_copies: int = 1
    section_step_cents: float = 10.0

    def __post_init__(self) -> None:
        if self.frame_size != 2 * self.hop:
            raise ValueError("frame_size must be 2 * hop (Hann overlap-add to one)")
        if self.lpc_order < 2 or self.lpc_order % 2:
            raise ValueError("lpc_order must be even and >= 2 (LSF factorisation)")
        if self.n_noise_bands < 2:
            raise ValueError("n_noise_bands must be >= 2")
        if not 0.0 <= self.min_lsf_gap * (self.lpc_order + 1) < np.pi:
            raise ValueError("min_lsf_gap must be >= 0 and leave room for the increments")
        if self.n_harmonics < 1 or self.hop < 1:
            raise ValueError("n_harmonics and hop must be positive")
        if self.section_copies < 1 or self.section_copies % 2 == 0:
            raise ValueError("section_copies must be odd (copies symmetric around the F0) and >= 1")

    @property
    def is_section(self) -> bool:
        """Whether a voice is a section of singers (several detuned copies of each harmonic)."""
        return self.section_copies > 1

    @property
    def nyquist(self) -> float:
        """Nyquist frequency in Hz."""
        return self.sample_rate / 2.0

    @property
    def n_lsf_increments(self) -> int:
        """Number of LSF increments per frame (``lpc_order + 1``)."""
        return self.lpc_order + 1

    @property
    def noise_fir_taps(self) -> int:
        """Length of the noise-shaping FIR in samples (odd, linear phase)."""
        return 2 * self.n_noise_bands - 1


# The voice models that ``sfgraph train --voice-model`` offers: one harmonic source per
# voice, or a section whose partials are bands (five copies 10 cents apart: +-20 cents,
# about a section's detune and vibrato together).
VOICE_MODELS = {"solo": VoiceConfig(), "section": VoiceConfig(section_copies=5)}


def synthesis_window(config: VoiceConfig) -> np.ndarray:
    """Periodic Hann window of ``frame_size`` samples (float64).

    With ``hop = frame_size / 2`` the windows of overlapping frames sum to one
    at every sample, so a constant filter is reproduced unchanged.
    """
    n = np.arange(config.frame_size, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / config.frame_size)


def noise_fir_basis(config: VoiceConfig) -> np.ndarray:
    """Linear map from band magnitudes to causal noise-FIR taps.

    Returns a float64 array of shape ``(n_noise_bands, noise_fir_taps)``;
    ``band_magnitudes @ basis`` gives the taps.  Design: the band magnitudes
    are samples of a zero-phase magnitude response at ``b * nyquist /
    (n_bands - 1)``; its inverse real DFT (length ``2 * (n_bands - 1)``) is
    windowed by a symmetric Hann window that vanishes at lag
    ``+-(n_bands - 1)`` and delayed by ``n_bands - 1`` samples to be causal.
    All-ones magnitudes give a unit impulse (white noise passes unchanged).
    """
    n_bands = config.n_noise_bands
    half = n_bands - 1
    dft_len = 2 * half
    lags = np.arange(-half, half + 1, dtype=np.float64)
    bands = np.arange(n_bands, dtype=np.float64)
    # Hermitian spectrum weights of a real inverse DFT: DC and Nyquist once, the rest twice.
    multiplicity = np.full(n_bands, 2.0)
    multiplicity[0] = multiplicity[-1] = 1.0
    cosines = np.cos(np.pi * np.outer(bands, lags) / half)
    lag_window = 0.5 + 0.5 * np.cos(np.pi * lags / half)
    return multiplicity[:, None] * cosines * lag_window[None, :] / dft_len


# Copy j of a section starts at the fractional part of j times the golden ratio (cycles of
# the fundamental): harmonic k then starts at k times that, spread evenly over the circle.
_GOLDEN_RATIO = (1.0 + 5.0**0.5) / 2.0


def section_offsets_cents(config: VoiceConfig) -> np.ndarray:
    """Detune of each copy of a voice's harmonics, ``(section_copies,)`` float64 cents,
    symmetric around 0 (``[0]`` for a solo voice)."""
    copies = np.arange(config.section_copies, dtype=np.float64)
    return (copies - (config.section_copies - 1) / 2.0) * config.section_step_cents


def section_ratios(config: VoiceConfig) -> np.ndarray:
    """Each copy's F0 as a multiple of the voice's F0, ``(section_copies,)`` float64."""
    return np.exp2(section_offsets_cents(config) / 1200.0)


def section_phases(config: VoiceConfig) -> np.ndarray:
    """Each copy's starting phase of its fundamental, ``(section_copies,)`` float64 cycles
    in [0, 1) (``[0]`` for a solo voice)."""
    phases = np.arange(config.section_copies, dtype=np.float64) * _GOLDEN_RATIO
    return phases - np.floor(phases)


def section_weights(spread_cents, offsets_cents, exp):
    """Amplitude weight of each copy for a spread of ``spread_cents``.

    Args:
        spread_cents: ``(...)`` per-frame spread, cents, ``> 0`` (numpy or torch).
        offsets_cents: ``(copies,)`` from :func:`section_offsets_cents`, same kind.
        exp: ``np.exp`` or ``torch.exp``.

    Returns:
        ``(..., copies)``: a Gaussian of the copies' detune with standard deviation
        ``spread_cents``, scaled so the squares sum to one: copies at different
        frequencies add in power, so the voice's level does not depend on the spread.
    """
    ratio = offsets_cents / spread_cents[..., None]
    weights = exp(-0.5 * ratio * ratio)
    return weights / (weights * weights).sum(-1, keepdims=True) ** 0.5
