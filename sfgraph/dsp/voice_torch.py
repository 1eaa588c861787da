"""Differentiable, batched source-filter voice synthesizer (torch, CPU or CUDA).

Inputs (per batch item ``B``, voice ``V``, frame ``T``; 16 kHz, hop 256 with the
default :class:`VoiceConfig`):

* ``f0_hz`` ``(B, V, T)``: fundamental in Hz; ``<= 0`` means unvoiced.
* ``controls``: :class:`~sfgraph.dsp.voice_controls.VoiceControls` of tensors,
  ``amplitude`` and ``noise_gain`` ``(B, V, T)`` linear, ``lsf_increments``
  ``(B, V, T, lpc_order + 1)`` positive, ``noise_bands`` ``(B, V, n_noise_bands)`` or
  ``(V, n_noise_bands)`` linear.
* ``white_noise`` ``(B, V, T*hop)``: optional; default uniform in [-1, 1).
* ``controls.spread`` ``(B, V, T)`` cents: a section's spread (``VoiceConfig.section_copies`` > 1).
* output ``(B, V, T*hop)``: audio at ``sample_rate``.

Model, sample by sample (segment ``t`` = samples ``[t*hop, (t+1)*hop)``,
``j`` = position in the segment; see :mod:`sfgraph.dsp.voice_config` for the
frame alignment):

* Voicing-aware F0 track: in segment ``t`` F0 goes linearly from ``f0s`` to
  ``f0e`` where ``f0s = F0[t]`` if voiced else ``F0[t+1]`` and
  ``f0e = F0[t+1]`` if voiced else ``F0[t]`` (so voicing on/offsets hold the
  pitch instead of gliding to 0 Hz).  The frame after the last repeats it.
* Phase in cycles: ``phi[n+1] = phi[n] + f0[n] / sample_rate``, ``phi[0] = 0``
  (the running sum, evaluated in closed form per segment and wrapped per
  frame in float64 so that it stays exact over long signals).
* Harmonic gain per frame ``G[t] = amplitude[t] / K_t`` for voiced frames
  (``K_t`` = number of harmonics ``k <= n_harmonics`` with ``k < nyquist / F0[t]``,
  i.e. flat weights normalised to sum 1), 0 for unvoiced frames; interpolated
  linearly like F0, so voicing boundaries fade over one hop without clicks.
* Harmonic excitation ``G[n] * sum_k w_k(f0[n]) sin(2 pi k phi[n])`` with
  ``w_k = min(1, tilt_corner_hz / (k f0[n]))`` (-6 dB/octave above the corner)
  for ``k < nyquist / f0[n]`` and 0 otherwise.
* A section (``VoiceConfig.section_copies`` = C > 1) sums C such harmonic sources:
  copy ``j`` at F0 times ``section_ratios[j]``, its phase starting at
  ``section_phases[j]`` cycles, its gain ``G[t]`` times ``section_weights(spread[t])[j]``
  (``K_t`` still counts the harmonics of the voice's own F0).
* Noise excitation: white noise through a causal linear-phase FIR designed
  from the band magnitudes (:func:`noise_fir_basis`), times the linearly
  interpolated noise gain.
* Vocal tract: excitation frames of ``frame_size`` samples centred on
  ``t*hop`` are filtered by ``1 / A_t(z)`` from zero state, truncated to the
  frame, weighted by a periodic Hann window and overlap-added.  The filter is
  the exact recursion in float64 (:func:`sfgraph.dsp.lsf_torch.all_pole_filter`),
  as the Numba synthesizer runs it, so both agree even for sharp resonances.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F

from sfgraph.dsp.fft_torch import truncated_convolution
from sfgraph.dsp.lsf_torch import all_pole_filter, lsf_from_increments, lsf_to_lpc
from sfgraph.dsp.voice_config import (
    VoiceConfig,
    noise_fir_basis,
    section_offsets_cents,
    section_phases,
    section_ratios,
    section_weights,
    synthesis_window,
)
from sfgraph.dsp.voice_controls import VoiceControls

DEFAULT_CONFIG = VoiceConfig()

# Elements of one (segments x hop x harmonics) work tensor in the harmonic bank:
# large enough to amortise Python overhead, small enough to stay in cache-sized chunks.
_HARMONIC_CHUNK_ELEMENTS = 1 << 21


def synthesize_voices(
    f0_hz: torch.Tensor,
    controls: VoiceControls,
    white_noise: torch.Tensor | None = None,
    config: VoiceConfig = DEFAULT_CONFIG,
    generator: torch.Generator | None = None,
    harmonic_sines: torch.Tensor | None = None,
) -> torch.Tensor:
    """Synthesize ``B x V`` voices; see the module docstring for shapes and units.

    Args:
        f0_hz: ``(B, V, T)`` Hz.
        controls: tensors shaped as in the module docstring.
        white_noise: ``(B, V, T*hop)``; drawn uniform in [-1, 1) with
            ``generator`` when omitted.
        config: model constants.
        generator: random generator on the parameters' device (optional).
        harmonic_sines: ``unit_harmonic_sines(f0_hz, config, controls.amplitude.dtype)`` when
            already computed (training computes it once per item: it holds no parameter).

    Returns:
        ``(B, V, T*hop)`` audio in the dtype of ``controls.amplitude``.
    """
    excitation = harmonic_excitation(f0_hz, controls.amplitude, config, harmonic_sines,
                                     controls.spread) + noise_excitation(
        controls.noise_gain, controls.noise_bands, white_noise, config, generator
    )
    return vocal_tract_filter(excitation, controls.lsf_increments, config)


def harmonic_excitation(f0_hz: torch.Tensor, amplitude: torch.Tensor, config: VoiceConfig = DEFAULT_CONFIG,
                        harmonic_sines: torch.Tensor | None = None, spread: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """Harmonic excitation before the vocal tract.

    Args:
        f0_hz: ``(B, V, T)`` Hz, ``<= 0`` unvoiced.
        amplitude: ``(B, V, T)`` linear.
        harmonic_sines: ``unit_harmonic_sines(f0_hz, config, amplitude.dtype)`` when already
            computed; computed here when omitted.
        spread: ``(B, V, T)`` cents, a section's spread (needed when ``config.is_section``).

    Returns:
        ``(B, V, T*hop)`` in the dtype of ``amplitude``.
    """
    f0_frames = f0_hz.to(torch.float64).clamp(min=0.0)
    gain_frames = amplitude * harmonic_normalisation(f0_frames, config).to(amplitude.dtype)
    if config.is_section:
        if spread is None:
            raise ValueError("a section voice model needs the spread control")
        offsets = torch.as_tensor(section_offsets_cents(config), dtype=amplitude.dtype, device=amplitude.device)
        # (B, V, T, C) -> (B, V, C, T): one gain track per copy
        gain_frames = (gain_frames[..., None] * section_weights(spread, offsets, torch.exp)).movedim(-1, -2)
    gain_track = _interpolate_segments(gain_frames, _next_frame(gain_frames), config.hop)
    if harmonic_sines is None:
        harmonic_sines = unit_harmonic_sines(f0_hz, config, amplitude.dtype)
    excitation = gain_track * harmonic_sines
    if config.is_section:
        excitation = excitation.sum(dim=-3)
    return excitation.flatten(-2)


def unit_harmonic_sines(f0_hz: torch.Tensor, config: VoiceConfig = DEFAULT_CONFIG,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The factor of the harmonic excitation that depends on F0 alone, ``sum_k w_k sin(2 pi k phi)``.

    Args:
        f0_hz: ``(B, V, T)`` Hz, ``<= 0`` unvoiced.

    Returns:
        ``(B, V, T, hop)`` in ``dtype``: segment ``t`` of every voice, the phase starting
        at 0 at the first sample; for a section ``(B, V, section_copies, T, hop)``, copy
        ``j`` at F0 times ``section_ratios[j]`` from phase ``section_phases[j]``.
    """
    f0_frames = f0_hz.to(torch.float64).clamp(min=0.0)
    if not config.is_section:
        return _unit_sines(f0_frames, 0.0, config, dtype)
    ratios, phases = section_ratios(config), section_phases(config)
    return torch.stack([_unit_sines(f0_frames * float(ratio), float(phase), config, dtype)
                        for ratio, phase in zip(ratios, phases, strict=True)], dim=-3)


def _unit_sines(f0_frames: torch.Tensor, start_phase: float, config: VoiceConfig, dtype: torch.dtype) -> torch.Tensor:
    """``unit_harmonic_sines`` of one source, float64 ``f0_frames`` ``(..., T)`` Hz (>= 0),
    the phase starting at ``start_phase`` cycles: ``(..., T, hop)``."""
    voiced = f0_frames > 0
    f0_next = _next_frame(f0_frames)
    f0_start = torch.where(voiced, f0_frames, f0_next)
    f0_end = torch.where(_next_frame(voiced), f0_next, f0_frames)
    phase = _segment_phase(f0_start, f0_end, config, start_phase).to(dtype)
    f0_track = _interpolate_segments(f0_start, f0_end, config.hop).to(dtype)
    return _HarmonicSum.apply(phase, f0_track, config)


def harmonic_normalisation(f0_frames: torch.Tensor, config: VoiceConfig = DEFAULT_CONFIG) -> torch.Tensor:
    """Per-frame factor ``1 / K`` making the flat harmonic weights sum to one.

    Args:
        f0_frames: ``(...)`` F0 in Hz (use float64 for exact harmonic counts).

    Returns:
        ``(...)`` ``1 / K`` where ``K`` counts harmonics ``1 <= k <= n_harmonics``
        with ``k < nyquist / F0``; 0 for unvoiced frames or ``K == 0``.
    """
    voiced = f0_frames > 0
    # Harmonics k >= 1 with k < nyquist / F0: ceil(nyquist / F0) - 1, at most n_harmonics.
    limit = config.nyquist / torch.where(voiced, f0_frames, torch.full_like(f0_frames, math.inf))
    count = (torch.ceil(limit) - 1.0).clamp(min=0.0, max=config.n_harmonics)
    return torch.where(count > 0, 1.0 / count.clamp(min=1.0), 0.0)


def noise_excitation(
    noise_gain: torch.Tensor,
    noise_bands: torch.Tensor,
    white_noise: torch.Tensor | None = None,
    config: VoiceConfig = DEFAULT_CONFIG,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Shaped, gain-scaled noise excitation before the vocal tract.

    Args:
        noise_gain: ``(B, V, T)`` linear.
        noise_bands: ``(B, V, n_noise_bands)`` or ``(V, n_noise_bands)`` linear band magnitudes.
        white_noise: ``(B, V, T*hop)`` or None (uniform [-1, 1) from ``generator``).

    Returns:
        ``(B, V, T*hop)`` in the dtype of ``noise_gain``.
    """
    n_samples = noise_gain.shape[-1] * config.hop
    if white_noise is None:
        white_noise = torch.rand(
            (*noise_gain.shape[:-1], n_samples), generator=generator, device=noise_gain.device, dtype=noise_gain.dtype
        )
        white_noise = 2.0 * white_noise - 1.0
    basis = torch.as_tensor(noise_fir_basis(config), dtype=noise_gain.dtype, device=noise_gain.device)
    taps = noise_bands.to(noise_gain.dtype) @ basis
    shaped = truncated_convolution(white_noise.to(noise_gain.dtype), taps, n_samples)
    gain_track = _interpolate_segments(noise_gain, _next_frame(noise_gain), config.hop).flatten(-2)
    return gain_track * shaped


def vocal_tract_filter(
    excitation: torch.Tensor, lsf_increments: torch.Tensor, config: VoiceConfig = DEFAULT_CONFIG
) -> torch.Tensor:
    """Frame-wise zero-state all-pole filtering with Hann overlap-add.

    Args:
        excitation: ``(B, V, T*hop)``.
        lsf_increments: ``(B, V, T, lpc_order + 1)`` positive.

    Returns:
        ``(B, V, T*hop)`` in the dtype of ``excitation``.
    """
    # The LSF -> LPC chain runs in float64: order-20 coefficients of sharp resonances need it.
    lpc = lsf_to_lpc(lsf_from_increments(lsf_increments.to(torch.float64), config.min_lsf_gap))
    lpc = torch.cat((lpc, lpc[..., -1:, :]), dim=-2)  # frame T repeats frame T - 1
    hop = config.hop
    frames = F.pad(excitation, (hop, hop)).unfold(-1, config.frame_size, hop)  # frames t = 0..T, centred on t*hop
    window = torch.as_tensor(synthesis_window(config), dtype=excitation.dtype, device=excitation.device)
    filtered = all_pole_filter(lpc, frames) * window
    # Segment t is the second half of frame t plus the first half of frame t + 1.
    return (filtered[..., :-1, hop:] + filtered[..., 1:, :hop]).flatten(-2)


def _next_frame(frames: torch.Tensor) -> torch.Tensor:
    """Frames shifted left by one along the last dim, the last one held."""
    return torch.cat((frames[..., 1:], frames[..., -1:]), dim=-1)


def _interpolate_segments(start: torch.Tensor, end: torch.Tensor, hop: int) -> torch.Tensor:
    """Linear ramps ``start + (end - start) * j / hop`` as ``(..., T, hop)``."""
    ramp = torch.arange(hop, device=start.device, dtype=start.dtype) / hop
    return start.unsqueeze(-1) + (end - start).unsqueeze(-1) * ramp


def _segment_phase(f0_start: torch.Tensor, f0_end: torch.Tensor, config: VoiceConfig,
                   start_phase: float = 0.0) -> torch.Tensor:
    """Wrapped fundamental phase in cycles, ``(..., T, hop)`` float64.

    Within a segment with F0 linear from ``f0s`` to ``f0e`` the running sum is
    ``(j*f0s + (f0e - f0s) * j*(j-1) / (2*hop)) / sample_rate`` cycles after
    ``j`` samples; the segment starts are ``start_phase`` plus the exclusive
    cumulative sums of the per-segment advances, wrapped to [0, 1).
    """
    hop = config.hop
    j = torch.arange(hop, device=f0_start.device, dtype=torch.float64)
    slope = (f0_end - f0_start).unsqueeze(-1)
    local = (j * f0_start.unsqueeze(-1) + slope * (j * (j - 1.0) / (2.0 * hop))) / config.sample_rate
    advance = (hop * f0_start + (f0_end - f0_start) * ((hop - 1) / 2.0)) / config.sample_rate
    segment_start = torch.cumsum(advance, dim=-1) - advance + start_phase
    segment_start = segment_start - torch.floor(segment_start)
    phase = segment_start.unsqueeze(-1) + local
    return phase - torch.floor(phase)


class _HarmonicSum(torch.autograd.Function):
    """``S[n] = sum_k w_k(f0[n]) sin(2 pi k phi[n])`` over ``(..., T, hop)`` segments.

    The dense ``(samples x harmonics)`` tensor would take gigabytes for a
    training batch, so forward evaluates it chunk by chunk without storing it,
    and backward recomputes the chunks to get
    ``dS/dphi = sum_k w_k 2 pi k cos(2 pi k phi)`` and
    ``dS/df0 = -(1/f0) sum_{k: tilted} w_k sin(2 pi k phi)``.
    Segments are sorted by how many harmonics lie below Nyquist so that each
    chunk only evaluates the harmonics it needs (a soprano needs ~20, a bass ~80).
    """

    @staticmethod
    def forward(ctx, phase: torch.Tensor, f0: torch.Tensor, config: VoiceConfig) -> torch.Tensor:
        hop = phase.shape[-1]
        phase_rows = phase.reshape(-1, hop)
        f0_rows = f0.reshape(-1, hop)
        harmonic_sum = torch.zeros_like(phase_rows)
        for rows, _, weights, angles in _harmonic_chunks(phase_rows, f0_rows, config):
            harmonic_sum[rows] = torch.linalg.vecdot(torch.sin(angles), weights)
        ctx.save_for_backward(phase, f0)
        ctx.config = config
        return harmonic_sum.reshape(phase.shape)

    @staticmethod
    def backward(ctx, grad_sum: torch.Tensor):
        phase, f0 = ctx.saved_tensors
        hop = phase.shape[-1]
        phase_rows = phase.reshape(-1, hop)
        f0_rows = f0.reshape(-1, hop)
        d_phase = torch.zeros_like(phase_rows)
        d_f0 = torch.zeros_like(f0_rows)
        for rows, harmonic_numbers, weights, angles in _harmonic_chunks(phase_rows, f0_rows, ctx.config):
            d_phase[rows] = torch.linalg.vecdot(torch.cos(angles), weights * (2.0 * math.pi * harmonic_numbers))
            tilted = torch.where(weights < 1.0, weights, 0.0)
            d_f0[rows] = -torch.linalg.vecdot(torch.sin(angles), tilted) / f0_rows[rows]
        return grad_sum * d_phase.reshape(phase.shape), grad_sum * d_f0.reshape(f0.shape), None


def _harmonic_chunks(
    phase_rows: torch.Tensor, f0_rows: torch.Tensor, config: VoiceConfig
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(row indices, harmonic numbers, weights, angles)`` for chunks of voiced segments.

    ``harmonic numbers`` is ``(K_chunk,)``; ``weights`` (``w_k``) and ``angles``
    (``2 pi k phi``, radians) are ``(rows, hop, K_chunk)``; rows whose
    segment has no harmonic below Nyquist (unvoiced) are never yielded.
    """
    n_rows, hop = phase_rows.shape
    lowest_f0 = f0_rows.amin(dim=-1)
    # Upper bound on harmonics below Nyquist anywhere in the segment (F0 is linear in it).
    needed = torch.floor(config.nyquist / lowest_f0.clamp(min=1e-3)).clamp(max=config.n_harmonics)
    needed = torch.where(lowest_f0 > 0, needed, 0.0).long()
    sorted_needed, order = torch.sort(needed)
    sorted_counts = sorted_needed.tolist()
    start = n_rows - int((sorted_needed > 0).sum())
    while start < n_rows:
        rows_guess = max(1, _HARMONIC_CHUNK_ELEMENTS // (hop * sorted_counts[start]))
        n_harmonics = sorted_counts[min(start + rows_guess, n_rows) - 1]
        stop = min(start + max(1, _HARMONIC_CHUNK_ELEMENTS // (hop * n_harmonics)), n_rows)
        n_harmonics = sorted_counts[stop - 1]
        rows = order[start:stop]
        harmonic_numbers = torch.arange(1, n_harmonics + 1, device=phase_rows.device, dtype=phase_rows.dtype)
        f0 = f0_rows[rows].unsqueeze(-1)
        angles = phase_rows[rows].unsqueeze(-1) * (2.0 * math.pi * harmonic_numbers)
        tilt = ((config.tilt_corner_hz / f0) * (1.0 / harmonic_numbers)).clamp(max=1.0)
        weights = torch.where(harmonic_numbers < config.nyquist / f0, tilt, 0.0)
        yield rows, harmonic_numbers, weights, angles
        start = stop
