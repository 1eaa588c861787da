"""Streaming source-filter voice synthesizer (Numba), same maths as ``voice_torch``.

Use :class:`StreamingVoiceSynth` for live synthesis: push frames as they
arrive, render any number of samples that are complete.  Output sample ``n``
needs frames ``floor(n / hop)`` and ``floor(n / hop) + 1`` (F0, gains and the
vocal tract are interpolated / cross-faded towards the next frame), so after
pushing frames ``0 .. k-1`` the samples ``[0, (k - 1) * hop)`` are available:
the fixed latency is ``hop`` samples (256 = 16 ms at 16 kHz) behind the frame
timeline.  :meth:`StreamingVoiceSynth.flush` ends the stream by holding the
last frame, which yields the final ``hop`` samples exactly like the offline
torch synthesizer.

Per-voice inputs of one frame: F0 in Hz (``<= 0`` unvoiced) and the per-frame
:class:`~sfgraph.dsp.voice_controls.VoiceControls` (linear harmonic amplitude, linear
noise gain, ``lpc_order + 1`` positive LSF increments, and a section's spread in
cents); each voice's noise band magnitudes are fixed for the stream (given to the
constructor).  A section voice (``VoiceConfig.section_copies`` > 1) runs one harmonic
source per copy, each with its own F0 (times ``section_ratios``), phase (from
``section_phases``) and gain (times ``section_weights`` of the spread), into the
voice's one vocal tract.

Why it is fast and exact over long streams:

* Harmonic bank: one complex-rotation phasor per voice gives
  ``exp(i theta)`` of the fundamental each sample (``z <- z * r``,
  ``r <- r * q``, ``q`` the chirp of the linear F0 ramp); the weighted sum of
  ``sin(k theta)`` over harmonics then follows from Clenshaw's (Chebyshev)
  recurrence, vectorised across the samples of a segment.  The phasor is
  re-synchronised at every segment start from the fundamental phase, which
  is advanced per segment in closed form and wrapped to [0, 1) in float64,
  so there are no per-sample sin calls and no drift however long the stream.
* Noise is shaped when its frame is pushed (FIR state kept between pushes).
* Vocal tract: each active frame runs its own all-pole recursion from zero
  state in a linear buffer (two frames overlap at any sample), cross-faded
  with the same periodic Hann window as the torch version.
* Sums use several partial accumulators in a fixed order (no fastmath), so
  results do not depend on how the stream is split into blocks.

The kernels release the GIL (``nogil``): live, a worker thread runs them while the
audio callback, which needs the GIL for a moment every block, must not wait.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sfgraph.dsp.lsf import lsf_from_increments_kernel, lsf_to_lpc_kernel
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

# Columns of the per-voice segment state (values at both ends of the current segment).
_F0_START, _F0_END, _GAIN_START, _GAIN_END, _NOISE_START, _NOISE_END = range(6)
# Columns of the per-voice phasor state: fundamental phasor, per-sample rotation, chirp.
_Z_RE, _Z_IM, _STEP_RE, _STEP_IM, _CHIRP_RE, _CHIRP_IM = range(6)
# Rows of the per-voice (rows, hop) scratch space.
_EXCITATION, _TWO_COS, _SINE, _CORNER_RATIO, _HARMONIC_LIMIT, _B_EVEN, _B_ODD = range(7)
_N_SCRATCH_ROWS = 7
# Samples per block of the noise FIR loop.
_NOISE_BLOCK = 1024


@njit(cache=True, fastmath=False, nogil=True)
def _shape_noise_kernel(white: np.ndarray, taps: np.ndarray, history: np.ndarray, shaped_out: np.ndarray) -> None:
    """Causal FIR of white noise, ``(V, n)`` -> ``(V, n)``, keeping ``history`` (V, taps-1).

    Taps are applied in a fixed order for every output sample, so the result
    does not depend on how the noise is split into pushes.
    """
    n_voices, n_samples = white.shape
    n_taps = taps.shape[1]
    n_history = n_taps - 1
    extended = np.empty(n_history + n_samples)
    for voice in range(n_voices):
        extended[:n_history] = history[voice]
        extended[n_history:] = white[voice]
        voice_taps = taps[voice]
        shaped = shaped_out[voice]
        # Blocks keep the tap-by-tap passes inside the L1 cache.
        for block_start in range(0, n_samples, _NOISE_BLOCK):
            block_stop = min(n_samples, block_start + _NOISE_BLOCK)
            block = shaped[block_start:block_stop]
            block[:] = 0.0
            for tap in range(n_taps):
                coeff = voice_taps[tap]
                source = extended[n_history - tap + block_start : n_history - tap + block_stop]
                for n in range(block.shape[0]):
                    block[n] += coeff * source[n]
        history[voice] = extended[n_samples:]


@njit(cache=True, fastmath=False, nogil=True)
def _prepare_frames_kernel(
    f0: np.ndarray,
    amplitude: np.ndarray,
    increments: np.ndarray,
    n_harmonics: int,
    nyquist: float,
    min_gap: float,
    gain_out: np.ndarray,
    taps_out: np.ndarray,
) -> None:
    """Per-frame harmonic gain ``amplitude / K`` and filter taps ``a_p .. a_1``.

    ``f0``, ``amplitude``: ``(V, k)``; ``increments``: ``(V, k, p + 1)``;
    writes ``gain_out`` ``(V, k)`` and ``taps_out`` ``(V, k, p)`` (oldest tap first,
    as the recursion reads them).  One call per push keeps Python overhead low.
    """
    n_voices, n_frames = f0.shape
    order = taps_out.shape[2]
    lsf = np.empty((1, order))
    lpc = np.empty((1, order + 1))
    for voice in range(n_voices):
        for frame in range(n_frames):
            count = 0.0
            if f0[voice, frame] > 0.0:
                # Harmonics k >= 1 with k < nyquist / F0, at most n_harmonics.
                count = min(max(math.ceil(nyquist / f0[voice, frame]) - 1.0, 0.0), float(n_harmonics))
            gain_out[voice, frame] = amplitude[voice, frame] / count if count > 0.0 else 0.0
            lsf_from_increments_kernel(increments[voice, frame : frame + 1], min_gap, lsf)
            lsf_to_lpc_kernel(lsf, lpc)
            for i in range(order):
                taps_out[voice, frame, i] = lpc[0, order - i]


@njit(cache=True, fastmath=False, nogil=True)
def _sync_segment(
    row: int,
    voice: int,
    frame: int,
    hop: int,
    sample_rate: float,
    nyquist: float,
    n_harmonics: int,
    f0_frames: np.ndarray,
    gain_frames: np.ndarray,
    noise_gain_frames: np.ndarray,
    phase_next: np.ndarray,
    segment: np.ndarray,
    n_active: np.ndarray,
    phasor: np.ndarray,
) -> None:
    """Start a segment: end values, phase advance and phasor re-synchronisation.

    ``row`` is the harmonic source (voice ``voice`` for a solo voice, one copy of it
    in a section) whose F0, gain and phase rows are used; the noise gain is the voice's.
    ``frame`` indexes the frame stores (the segment runs from that frame to the
    next).  The fundamental phasor restarts from the exactly wrapped phase, so
    rounding never accumulates beyond one segment.
    """
    f0_a = f0_frames[row, frame]
    f0_b = f0_frames[row, frame + 1]
    f0_start = f0_a if f0_a > 0.0 else f0_b
    f0_end = f0_b if f0_b > 0.0 else f0_a
    segment[row, _F0_START] = f0_start
    segment[row, _F0_END] = f0_end
    segment[row, _GAIN_START] = gain_frames[row, frame]
    segment[row, _GAIN_END] = gain_frames[row, frame + 1]
    segment[row, _NOISE_START] = noise_gain_frames[voice, frame]
    segment[row, _NOISE_END] = noise_gain_frames[voice, frame + 1]

    phase = phase_next[row]
    advanced = phase + (hop * f0_start + (f0_end - f0_start) * ((hop - 1) / 2.0)) / sample_rate
    phase_next[row] = advanced - math.floor(advanced)

    lowest = min(f0_start, f0_end)
    count = 0
    if lowest > 0.0:
        count = min(n_harmonics, max(0, int(math.ceil(nyquist / lowest)) - 1))
    n_active[row] = count
    phase_angle = 2.0 * math.pi * phase
    step_angle = 2.0 * math.pi * f0_start / sample_rate
    chirp_angle = 2.0 * math.pi * (f0_end - f0_start) / (hop * sample_rate)
    phasor[row, _Z_RE] = math.cos(phase_angle)
    phasor[row, _Z_IM] = math.sin(phase_angle)
    phasor[row, _STEP_RE] = math.cos(step_angle)
    phasor[row, _STEP_IM] = math.sin(step_angle)
    phasor[row, _CHIRP_RE] = math.cos(chirp_angle)
    phasor[row, _CHIRP_IM] = math.sin(chirp_angle)


@njit(cache=True, fastmath=False, nogil=True)
def _harmonic_run(
    j_start: int,
    j_stop: int,
    hop: int,
    segment_values: np.ndarray,
    count: int,
    tilt_corner: float,
    nyquist: float,
    inv_harmonic: np.ndarray,
    phasor: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Harmonic excitation of one voice at segment positions ``[j_start, j_stop)``.

    ``S = sum_k w_k sin(k theta)`` is evaluated per sample with Clenshaw's
    recurrence ``b_k = w_k + 2 cos(theta) b_{k+1} - b_{k+2}``, ``S = b_1 sin(theta)``,
    from the fundamental phasor ``exp(i theta)`` alone (a complex rotation per
    sample, with a chirp for the linear F0 ramp).  The recurrence runs over
    harmonics with all samples of the run as independent vector lanes, so it
    vectorises; harmonics above a sample's Nyquist limit have ``w_k = 0`` and
    leave its exact zeros untouched, so results do not depend on the run length.
    Adds to ``scratch[_EXCITATION, j]`` (a section's copies add up there).
    """
    # Views of this run only, indexed from 0: loops over ``range(n_run)`` let
    # LLVM drop negative-index handling and vectorise.
    n_run = j_stop - j_start
    excitation = scratch[_EXCITATION, j_start:j_stop]
    two_cos = scratch[_TWO_COS, j_start:j_stop]
    sine = scratch[_SINE, j_start:j_stop]
    corner_ratio = scratch[_CORNER_RATIO, j_start:j_stop]
    harmonic_limit = scratch[_HARMONIC_LIMIT, j_start:j_stop]
    b_even = scratch[_B_EVEN, j_start:j_stop]
    b_odd = scratch[_B_ODD, j_start:j_stop]
    f0_start = segment_values[_F0_START]
    f0_slope = segment_values[_F0_END] - f0_start
    z_re = phasor[_Z_RE]
    z_im = phasor[_Z_IM]
    r_re = phasor[_STEP_RE]
    r_im = phasor[_STEP_IM]
    q_re = phasor[_CHIRP_RE]
    q_im = phasor[_CHIRP_IM]
    lowest_limit = 1e300
    highest_corner = 0.0
    for i in range(n_run):
        f0 = f0_start + f0_slope * ((j_start + i) / hop)
        corner_ratio[i] = tilt_corner / f0
        harmonic_limit[i] = nyquist / f0
        lowest_limit = min(lowest_limit, harmonic_limit[i])
        highest_corner = max(highest_corner, corner_ratio[i])
        two_cos[i] = 2.0 * z_re
        sine[i] = z_im
        b_even[i] = 0.0
        b_odd[i] = 0.0
        z_re, z_im = z_re * r_re - z_im * r_im, z_re * r_im + z_im * r_re
        r_re, r_im = r_re * q_re - r_im * q_im, r_re * q_im + r_im * q_re
    phasor[_Z_RE] = z_re
    phasor[_Z_IM] = z_im
    phasor[_STEP_RE] = r_re
    phasor[_STEP_IM] = r_im
    for k in range(count, 0, -1):
        harmonic = float(k)
        inverse = inv_harmonic[k - 1]
        # b_k overwrites b_{k+2} (same parity); b_{k+1} is in the other array.
        newest, previous = (b_even, b_odd) if k % 2 == 0 else (b_odd, b_even)
        if lowest_limit > harmonic > highest_corner:
            # Tilted and below Nyquist at every sample of the run: the weight needs
            # neither the clamp nor the mask (values are bit-identical to the general case).
            for i in range(n_run):
                newest[i] = corner_ratio[i] * inverse + two_cos[i] * previous[i] - newest[i]
        else:
            for i in range(n_run):
                weight = min(1.0, corner_ratio[i] * inverse) if harmonic < harmonic_limit[i] else 0.0
                newest[i] = weight + two_cos[i] * previous[i] - newest[i]
    gain_start = segment_values[_GAIN_START]
    gain_slope = segment_values[_GAIN_END] - gain_start
    for i in range(n_run):
        excitation[i] += (gain_start + gain_slope * ((j_start + i) / hop)) * (b_odd[i] * sine[i])


@njit(cache=True, fastmath=False, nogil=True)
def _vocal_tract_run(
    j_start: int,
    j_stop: int,
    hop: int,
    excitation: np.ndarray,
    noise: np.ndarray,
    noise_start: float,
    noise_end: float,
    older_buffer: np.ndarray,
    older_taps: np.ndarray,
    newer_buffer: np.ndarray,
    newer_taps: np.ndarray,
    window: np.ndarray,
    out: np.ndarray,
) -> None:
    """Add the noise, run both active frame filters and cross-fade, for ``[j_start, j_stop)``.

    ``excitation``, ``noise`` and ``out`` are views of this run (index 0 is
    ``j_start``).  Taps are ``a_p .. a_1`` (oldest first).  The older frame (the
    segment's start frame) is at frame position ``hop + j``, the newer one at
    ``j``; a buffer stores frame position ``m`` at ``order + m`` after ``order``
    zeros (zero initial state).  The two most recent outputs of each filter are
    carried in registers and the older taps go to four partial sums, which
    keeps the loop-carried dependency to a multiply and a subtract.
    """
    order = older_taps.shape[0]
    n_older = order - 2
    older_a1 = older_taps[order - 1]
    older_a2 = older_taps[order - 2]
    newer_a1 = newer_taps[order - 1]
    newer_a2 = newer_taps[order - 2]
    # Views from the first history sample of the run's first output.
    older_run = older_buffer[hop + j_start :]
    newer_run = newer_buffer[j_start:]
    older_y1 = older_run[order - 1]
    older_y2 = older_run[order - 2]
    newer_y1 = newer_run[order - 1]
    newer_y2 = newer_run[order - 2]
    noise_slope = noise_end - noise_start
    for i in range(j_stop - j_start):
        j = j_start + i
        x = excitation[i] + (noise_start + noise_slope * (j / hop)) * noise[i]
        older_history = older_run[i : i + n_older]
        newer_history = newer_run[i : i + n_older]
        o0 = 0.0
        o1 = 0.0
        o2 = 0.0
        o3 = 0.0
        n0 = 0.0
        n1 = 0.0
        n2 = 0.0
        n3 = 0.0
        m = 0
        while m + 4 <= n_older:
            o0 += older_taps[m] * older_history[m]
            o1 += older_taps[m + 1] * older_history[m + 1]
            o2 += older_taps[m + 2] * older_history[m + 2]
            o3 += older_taps[m + 3] * older_history[m + 3]
            n0 += newer_taps[m] * newer_history[m]
            n1 += newer_taps[m + 1] * newer_history[m + 1]
            n2 += newer_taps[m + 2] * newer_history[m + 2]
            n3 += newer_taps[m + 3] * newer_history[m + 3]
            m += 4
        while m < n_older:
            o0 += older_taps[m] * older_history[m]
            n0 += newer_taps[m] * newer_history[m]
            m += 1
        older_y = ((x - ((o0 + o1) + (o2 + o3))) - older_a2 * older_y2) - older_a1 * older_y1
        newer_y = ((x - ((n0 + n1) + (n2 + n3))) - newer_a2 * newer_y2) - newer_a1 * newer_y1
        older_run[i + order] = older_y
        newer_run[i + order] = newer_y
        older_y2 = older_y1
        older_y1 = older_y
        newer_y2 = newer_y1
        newer_y1 = newer_y
        out[i] = window[hop + j] * older_y + window[j] * newer_y


@njit(cache=True, fastmath=False, nogil=True)
def _render_voice(
    voice: int,
    start: int,
    n_samples: int,
    hop: int,
    sample_rate: float,
    nyquist: float,
    tilt_corner: float,
    frame_base: int,
    f0_frames: np.ndarray,
    gain_frames: np.ndarray,
    noise_gain_frames: np.ndarray,
    taps_frames: np.ndarray,
    noise_base: int,
    shaped_noise: np.ndarray,
    window: np.ndarray,
    inv_harmonic: np.ndarray,
    copies: int,
    phase_next: np.ndarray,
    segment: np.ndarray,
    n_active: np.ndarray,
    phasor: np.ndarray,
    filter_buffers: np.ndarray,
    newer_buffer: np.ndarray,
    scratch: np.ndarray,
    out: np.ndarray,
) -> None:
    """Render samples ``[start, start + n_samples)`` of one voice into ``out[voice]``.

    Frame ``f`` of the stream is at index ``f - frame_base`` of the frame stores
    (``taps_frames`` holds ``a_p .. a_1`` per frame), noise sample ``n`` at
    ``n - noise_base``; ``scratch[voice]`` is per-voice work space.  The harmonic
    sources of voice ``v`` (``copies`` of them: 1 for a solo voice) are rows
    ``v * copies .. (v + 1) * copies - 1`` of the F0, gain, phase, segment and phasor
    stores; their excitations add up in copy order.  Work proceeds run by run, a run
    being the part of a segment inside the requested range.
    """
    order = taps_frames.shape[2]
    voice_scratch = scratch[voice]
    first_row = voice * copies
    done = 0
    while done < n_samples:
        n = start + done
        frame = n // hop - frame_base
        j_start = n % hop
        j_stop = min(hop, j_start + n_samples - done)
        if j_start == 0:
            for row in range(first_row, first_row + copies):
                _sync_segment(
                    row, voice, frame, hop, sample_rate, nyquist, inv_harmonic.shape[0], f0_frames, gain_frames,
                    noise_gain_frames, phase_next, segment, n_active, phasor,
                )
            newer_buffer[voice] = 1 - newer_buffer[voice]
            filter_buffers[voice, newer_buffer[voice], :order] = 0.0
        voice_scratch[_EXCITATION, j_start:j_stop] = 0.0
        for row in range(first_row, first_row + copies):
            if n_active[row] > 0:
                _harmonic_run(
                    j_start, j_stop, hop, segment[row], n_active[row], tilt_corner, nyquist, inv_harmonic,
                    phasor[row], voice_scratch,
                )
        newer = newer_buffer[voice]
        noise_index = n - noise_base
        _vocal_tract_run(
            j_start, j_stop, hop, voice_scratch[_EXCITATION, j_start:j_stop],
            shaped_noise[voice, noise_index : noise_index + j_stop - j_start],
            segment[first_row, _NOISE_START], segment[first_row, _NOISE_END],
            filter_buffers[voice, 1 - newer], taps_frames[voice, frame],
            filter_buffers[voice, newer], taps_frames[voice, frame + 1],
            window, out[voice, done : done + j_stop - j_start],
        )
        done += j_stop - j_start


@njit(cache=True, fastmath=False, nogil=True)
def _render_kernel(start, n_samples, hop, sample_rate, nyquist, tilt_corner, frame_base, f0_frames, gain_frames,
                   noise_gain_frames, taps_frames, noise_base, shaped_noise, window, inv_harmonic, copies, phase_next,
                   segment, n_active, phasor, filter_buffers, newer_buffer, scratch, out):
    """All voices one after the other (see :func:`_render_voice` for the arguments)."""
    for voice in range(out.shape[0]):
        _render_voice(voice, start, n_samples, hop, sample_rate, nyquist, tilt_corner, frame_base, f0_frames,
                      gain_frames, noise_gain_frames, taps_frames, noise_base, shaped_noise, window, inv_harmonic,
                      copies, phase_next, segment, n_active, phasor, filter_buffers, newer_buffer, scratch, out)


class StreamingVoiceSynth:
    """Block-by-block synthesizer of ``n_voices`` voices with persistent state.

    Typical use::

        synth = StreamingVoiceSynth(4, noise_bands)
        synth.push(f0_hz, amplitude, noise_gain, lsf_increments)  # (V, k), (V, k, 21)
        # a section voice model (config.section_copies > 1) also takes spread=(V, k) cents
        audio = synth.render()          # (V, n) all samples complete so far
        ...
        tail = synth.flush()            # end of stream: last frame held

    Splitting the frames into pushes and the samples into renders of any size
    gives exactly the same samples as one push and one render.

    Args:
        n_voices: number of voices ``V``.
        noise_bands: ``(V, n_noise_bands)`` linear band magnitudes (``VoiceControls.noise_bands``).
        config: model constants.
        seed: seed of the per-voice white-noise generators (used when ``push``
            gets no explicit noise).
        dtype: dtype of rendered audio (computation is float64).
    """

    def __init__(
        self,
        n_voices: int,
        noise_bands: np.ndarray,
        config: VoiceConfig = DEFAULT_CONFIG,
        seed: int = 0,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        self.config = config
        self.n_voices = n_voices
        self.dtype = np.dtype(dtype)
        noise_bands = np.asarray(noise_bands, dtype=np.float64)
        if noise_bands.shape != (n_voices, config.n_noise_bands):
            raise ValueError(f"noise_bands must be {(n_voices, config.n_noise_bands)}, got {noise_bands.shape}")
        self._noise_taps = np.ascontiguousarray(noise_bands @ noise_fir_basis(config))
        self._window = synthesis_window(config)
        self._inv_harmonic = 1.0 / np.arange(1, config.n_harmonics + 1, dtype=np.float64)
        self._copy_ratios = section_ratios(config)
        self._copy_offsets = section_offsets_cents(config)
        self._seed = seed
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Samples by which output lags the frame timeline (``hop``)."""
        return self.config.hop

    @property
    def available(self) -> int:
        """Samples per voice that can be rendered now."""
        complete_frames = self._frame_base + self._f0.shape[1]
        return max(0, (complete_frames - 1) * self.config.hop - self._position)

    def reset(self) -> None:
        """Forget all frames and state; the next push starts a new stream at sample 0."""
        cfg = self.config
        voices = self.n_voices
        self._rngs = [np.random.default_rng(seq) for seq in np.random.SeedSequence(self._seed).spawn(voices)]
        self._position = 0
        self._ended = False
        self._frame_base = 0
        sources = voices * cfg.section_copies  # harmonic sources: each voice's copies, voice by voice
        self._f0 = np.zeros((sources, 0))
        self._gain = np.zeros((sources, 0))
        self._noise_gain = np.zeros((voices, 0))
        self._taps = np.zeros((voices, 0, cfg.lpc_order))
        self._noise_base = 0
        self._shaped = np.zeros((voices, 0))
        self._noise_history = np.zeros((voices, cfg.noise_fir_taps - 1))
        self._phase_next = np.tile(section_phases(cfg), voices)
        self._segment = np.zeros((sources, 6))
        self._n_active = np.zeros(sources, dtype=np.int64)
        self._phasor = np.zeros((sources, 6))
        self._filter_buffers = np.zeros((voices, 2, cfg.lpc_order + cfg.frame_size))
        self._newer_buffer = np.zeros(voices, dtype=np.int64)
        self._scratch = np.zeros((voices, _N_SCRATCH_ROWS, cfg.hop))

    def push(
        self,
        f0_hz: np.ndarray,
        amplitude: np.ndarray,
        noise_gain: np.ndarray,
        lsf_increments: np.ndarray,
        white_noise: np.ndarray | None = None,
        spread: np.ndarray | None = None,
    ) -> None:
        """Append ``k`` frames.

        Args:
            f0_hz: ``(V, k)`` Hz, ``<= 0`` unvoiced.
            amplitude: ``(V, k)`` linear.
            noise_gain: ``(V, k)`` linear.
            lsf_increments: ``(V, k, lpc_order + 1)`` positive.
            white_noise: ``(V, k * hop)`` white noise for the samples these frames
                start (frame ``t`` owns ``[t*hop, (t+1)*hop)``); drawn uniform in
                [-1, 1) from the per-voice generators when omitted.
            spread: ``(V, k)`` cents ``> 0``, a section's spread (needed when
                ``config.is_section``, ignored otherwise).
        """
        if self._ended:
            raise RuntimeError("stream was flushed; call reset() to start a new one")
        cfg = self.config
        f0 = np.ascontiguousarray(np.maximum(np.asarray(f0_hz, dtype=np.float64), 0.0))
        n_frames = f0.shape[1]
        amplitude = np.ascontiguousarray(amplitude, dtype=np.float64)
        noise_gain = np.asarray(noise_gain, dtype=np.float64)
        increments = np.asarray(lsf_increments, dtype=np.float64)
        if amplitude.shape != f0.shape or noise_gain.shape != f0.shape or f0.shape[0] != self.n_voices:
            raise ValueError("f0_hz, amplitude and noise_gain must all be (n_voices, k)")
        if increments.shape != (*f0.shape, cfg.n_lsf_increments):
            raise ValueError(f"lsf_increments must be {(*f0.shape, cfg.n_lsf_increments)}")
        n_samples = n_frames * cfg.hop
        if white_noise is None:
            white = np.empty((self.n_voices, n_samples))
            for voice, rng in enumerate(self._rngs):
                rng.random(out=white[voice])
            white = 2.0 * white - 1.0
        else:
            white = np.ascontiguousarray(white_noise, dtype=np.float64)
            if white.shape != (self.n_voices, n_samples):
                raise ValueError(f"white_noise must be {(self.n_voices, n_samples)}")
        shaped = np.empty_like(white)
        _shape_noise_kernel(white, self._noise_taps, self._noise_history, shaped)
        gain = np.empty_like(f0)
        taps = np.empty((self.n_voices, n_frames, cfg.lpc_order))
        _prepare_frames_kernel(
            f0, amplitude, np.ascontiguousarray(increments), cfg.n_harmonics, cfg.nyquist, cfg.min_lsf_gap, gain, taps
        )
        if cfg.is_section:
            if spread is None or np.shape(spread) != f0.shape:
                raise ValueError("a section voice model needs spread as (n_voices, k) cents")
            # (V, k, C) -> rows voice * C + copy: each copy's F0 and its share of the gain
            weights = section_weights(np.asarray(spread, dtype=np.float64), self._copy_offsets, np.exp)
            f0 = np.ascontiguousarray((f0[:, None, :] * self._copy_ratios[None, :, None]).reshape(-1, n_frames))
            gain = np.ascontiguousarray((gain[:, None, :] * weights.transpose(0, 2, 1)).reshape(-1, n_frames))
        self._append_frames(f0, gain, noise_gain, taps)
        self._shaped = np.concatenate((self._shaped, shaped), axis=1)

    def render(self, n_samples: int | None = None) -> np.ndarray:
        """Render up to ``n_samples`` (default: all available) samples per voice.

        Returns:
            ``(V, m)`` audio, ``m = min(n_samples, available)``.
        """
        cfg = self.config
        count = self.available if n_samples is None else min(n_samples, self.available)
        out = np.empty((self.n_voices, count))
        if count > 0:
            _render_kernel(
                self._position, count, cfg.hop, float(cfg.sample_rate), cfg.nyquist, cfg.tilt_corner_hz,
                self._frame_base, self._f0, self._gain, self._noise_gain, self._taps,
                self._noise_base, self._shaped, self._window, self._inv_harmonic, self.config.section_copies,
                self._phase_next, self._segment, self._n_active, self._phasor,
                self._filter_buffers, self._newer_buffer, self._scratch, out,
            )
            self._position += count
            self._drop_consumed()
        return out.astype(self.dtype, copy=False)

    def flush(self) -> np.ndarray:
        """End the stream: hold the last frame and render everything left.

        Returns:
            ``(V, m)`` the remaining samples (the last ``hop`` of the frame timeline
            plus whatever was not rendered yet).
        """
        if not self._ended and self._f0.shape[1] > 0:
            self._append_frames(self._f0[:, -1:], self._gain[:, -1:], self._noise_gain[:, -1:], self._taps[:, -1:])
        self._ended = True
        return self.render()

    def _append_frames(self, f0: np.ndarray, gain: np.ndarray, noise_gain: np.ndarray, taps: np.ndarray) -> None:
        self._f0 = np.ascontiguousarray(np.concatenate((self._f0, f0), axis=1))
        self._gain = np.ascontiguousarray(np.concatenate((self._gain, gain), axis=1))
        self._noise_gain = np.ascontiguousarray(np.concatenate((self._noise_gain, noise_gain), axis=1))
        self._taps = np.ascontiguousarray(np.concatenate((self._taps, taps), axis=1))

    def _drop_consumed(self) -> None:
        """Forget frames before the current segment and noise before the current sample."""
        first_needed_frame = self._position // self.config.hop
        drop = first_needed_frame - self._frame_base
        if drop > 0:
            self._f0 = self._f0[:, drop:]
            self._gain = self._gain[:, drop:]
            self._noise_gain = self._noise_gain[:, drop:]
            self._taps = self._taps[:, drop:]
            self._frame_base = first_needed_frame
        noise_drop = self._position - self._noise_base
        self._shaped = self._shaped[:, noise_drop:]
        self._noise_base = self._position


def synthesize_voices_numba(
    f0_hz: np.ndarray,
    controls: VoiceControls,
    white_noise: np.ndarray | None = None,
    config: VoiceConfig = DEFAULT_CONFIG,
    seed: int = 0,
    dtype: np.dtype | type = np.float64,
) -> np.ndarray:
    """Offline synthesis of a whole track with the streaming kernels.

    Args:
        f0_hz: ``(V, T)`` Hz.
        controls: numpy ``amplitude``, ``noise_gain`` ``(V, T)``, ``lsf_increments``
            ``(V, T, lpc_order + 1)``, ``noise_bands`` ``(V, n_noise_bands)``; ``spread``
            ``(V, T)`` cents for a section voice model.
        white_noise: ``(V, T*hop)`` or None (seeded per-voice generators).

    Returns:
        ``(V, T*hop)`` audio, the same samples as :func:`voice_torch.synthesize_voices`.
    """
    synth = StreamingVoiceSynth(np.shape(f0_hz)[0], controls.noise_bands, config, seed=seed, dtype=dtype)
    synth.push(f0_hz, controls.amplitude, controls.noise_gain, controls.lsf_increments, white_noise, controls.spread)
    return np.concatenate((synth.render(), synth.flush()), axis=1)
