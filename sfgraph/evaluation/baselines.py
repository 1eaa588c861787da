"""Reference separators: oracle masks, the mixture itself, F0-informed NMF, fitted voices.

All are pure functions on numpy arrays, so graphs can use them as separators
too. They use the separator's own STFT, ``sfgraph.dsp.stft`` (periodic Hann
window of 2048 samples, hop 256, causal framing: frame ``t`` is centred on
sample ``t * 256 + 256 - 1024``).

- ``oracle_mask_separate``: ratio masks from the true stems (needs ground
  truth): magnitude ratio ``|S_j| / sum_k |S_k|`` (power 1) or power ratio
  ``|S_j|^2 / sum_k |S_k|^2`` (power 2). An upper bound for mask-based
  separation on this STFT.
- ``mixture_separate``: every voice estimated as the mixture (the floor).
- ``nmf_separate``: learning-free, needs only the mixture and each voice's
  F0. Each voice's magnitude spectrogram is modelled as
  ``activation_j(t) * envelope_j(f) * comb_j(f, t)`` where ``comb_j`` is a
  fixed harmonic comb at the voice's F0 (partials shaped like the window's
  main lobe, following the F0 across the analysis window), and the
  activations and spectral envelopes are fitted to the mixture magnitude by
  multiplicative updates for the KL divergence; the fitted model spectra give
  soft (Wiener-like) masks.
- ``partials_oracle_separate``: masks from harmonic combs at each voice's F0
  whose every partial's level per frame is read off the true stem (needs ground
  truth): the ceiling of voice models that are harmonic combs at one F0 per
  voice, whatever sets their levels.
- ``fitted_voices_separate``: masks from source-filter voices whose
  parameters were fitted to the true stems (needs ground truth and a trained
  model to start from; see ``sfgraph.evaluation.fit``): the ceiling of sfgraph's
  voice model, where ``oracle`` is the ceiling of any mask.

Every mask-based baseline takes ``power``: 1 magnitude-ratio masks, 2 power-ratio.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sfgraph.data.audio import write_wav
from sfgraph.data.layout import Dataset, Item, resample_f0
from sfgraph.dsp.stft import istft, mask_separate, stft
from sfgraph.grid import HOP_LENGTH

if TYPE_CHECKING:  # torch is imported only when the fitted baseline runs
    from sfgraph.model.network import ParamNet

FIT_STEPS = 300  # Adam steps of the fitted baseline; the fit still gains a little after them

N_FFT = 2048
NMF_ITERATIONS = 30
SPREAD_CENTS = 30.0  # nmf's and partials' widening of the partials, the best of a grid on Choir Aahs
BASELINES = ("oracle", "nmf", "partials", "fitted", "mixture")
# The partials baseline's bumps reach 12 bins each side, so 30-cent partials are cut only far up
# (16 bins gained 0.02 dB on sections of three); 2000 frames of them take 32 MB per array.
_PARTIALS_HALF_WIDTH = 12
_PARTIALS_CHUNK_FRAMES = 2000
# Keeps the multiplicative updates and the masks finite where the model is empty.
_EPS = 1e-12


def stft_frame_times(n_frames: int, sample_rate: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Centre times, s, of the frames of ``sfgraph.dsp.stft.stft``: ``(n_frames,)``, the first ones negative."""
    return (np.arange(n_frames) * hop_length + hop_length - n_fft / 2) / sample_rate


def oracle_mask_separate(mix: np.ndarray, stems: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Oracle ratio-mask separation from the true stems.

    ``mix``: ``(n_samples,)``; ``stems``: ``(n_voices, n_samples)``; ``power``
    1 = magnitude ratio, 2 = power ratio. Returns ``(n_voices, n_samples)`` float32.
    """
    return mask_separate(np.asarray(mix), np.asarray(stems), N_FFT, HOP_LENGTH, power)


def mixture_separate(mix: np.ndarray, n_voices: int) -> np.ndarray:
    """The floor: every voice estimated as the mixture, ``(n_voices, n_samples)``."""
    return np.repeat(np.asarray(mix, dtype=np.float32)[None], n_voices, axis=0)


def _partial_bumps(
    f0: np.ndarray, sample_rate: int, n_fft: int, max_harmonics: int, lobe_bins: float, spread_cents: float,
    half_width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each partial of one voice as a Gaussian bump on the STFT bins.

    ``f0``: ``(n_frames,)`` Hz (0 = unvoiced). Returns ``bins`` ``(n_frames,
    max_harmonics, 2 * half_width + 1)`` int64 and ``values`` of the same
    shape: partial ``h`` of frame ``t`` covers the ``2 * half_width + 1`` bins
    ``bins[t, h - 1]`` around its centre ``c = h * f0 / bin_hz`` with heights
    ``values[t, h - 1]``, a Gaussian of height 1 at ``c`` and ``sqrt(lobe_bins**2 +
    (c * spread)**2)`` bins standard deviation, ``spread = 2^(spread_cents / 1200) - 1``.
    Heights are 0 in unvoiced frames, for partials within ``half_width`` bins of
    Nyquist and below bin 0, whose bins are then clipped in range.
    """
    bin_hz = sample_rate / n_fft
    n_freq = n_fft // 2 + 1
    spread = 2.0 ** (spread_cents / 1200.0) - 1.0
    harmonics = np.arange(1, max_harmonics + 1)
    offsets = np.arange(-half_width, half_width + 1)
    centres = f0[:, None] * harmonics[None, :] / bin_hz  # (n_frames, n_harmonics) in bins
    valid = (f0[:, None] > 0) & (centres < n_freq - 1 - half_width)
    sigma = np.sqrt(lobe_bins**2 + (centres * spread) ** 2)
    bins = np.round(centres)[..., None] + offsets  # (n_frames, n_harmonics, n_bins)
    values = np.where(valid[..., None] & (bins >= 0),
                      np.exp(-0.5 * ((bins - centres[..., None]) / sigma[..., None]) ** 2), 0.0)
    return np.clip(bins, 0, n_freq - 1).astype(np.int64), values


def harmonic_combs(
    f0_hz: np.ndarray,
    sample_rate: int,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    max_harmonics: int = 80,
    lobe_bins: float = 0.85,
    spread_cents: float = SPREAD_CENTS,
) -> np.ndarray:
    """Harmonic combs at each voice's F0, on the STFT grid.

    ``f0_hz``: ``(n_voices, n_frames)`` Hz on the STFT frames (0 = unvoiced).
    Returns ``(n_voices, n_fft // 2 + 1, n_frames)`` float32, 0 where unvoiced.

    Partial ``h`` is a Gaussian bump of ``sqrt(lobe_bins**2 + (h * f0 *
    spread)**2)`` bins standard deviation (the Hann main lobe, widened for
    detuned ensemble voices by ``spread_cents``) at ``h * f0``. Because one
    analysis window spans several hops, each frame's comb sums the combs of
    the F0 values of the frames inside its window, weighted by the window, so
    vibrato and note changes smear the comb as they smear the spectrum.
    """
    n_voices, n_frames = f0_hz.shape
    n_freq = n_fft // 2 + 1
    reach = (n_fft // 2) // hop_length - 1  # neighbouring frames inside the window
    offsets = np.arange(-reach, reach + 1)
    window_weights = np.cos(np.pi * offsets * hop_length / n_fft) ** 2  # Hann at those offsets
    combs = np.zeros((n_voices, n_freq * n_frames), dtype=np.float64)
    frames = np.arange(n_frames)
    for voice in range(n_voices):
        for offset, weight in zip(offsets, window_weights, strict=True):
            source = np.clip(frames + offset, 0, n_frames - 1)
            bins, values = _partial_bumps(f0_hz[voice, source], sample_rate, n_fft, max_harmonics, lobe_bins,
                                          spread_cents, half_width=4)
            flat_index = bins * n_frames + frames[:, None, None]
            combs[voice] += np.bincount(flat_index.ravel(), weights=weight * values.ravel(),
                                        minlength=n_freq * n_frames)
    return combs.reshape(n_voices, n_freq, n_frames).astype(np.float32)


def partials_oracle_separate(
    mix: np.ndarray,
    stems: np.ndarray,
    f0_hz: np.ndarray,
    f0_times: np.ndarray,
    sample_rate: int,
    power: float = 1.0,
    spread_cents: float = SPREAD_CENTS,
    max_harmonics: int = 80,
) -> np.ndarray:
    """Masks from a harmonic model at each voice's F0 whose partials' levels come from the true stems.

    ``mix``: ``(n_samples,)``; ``stems``: ``(n_voices, n_samples)``; ``f0_hz``:
    ``(n_voices, n_f0_frames)`` Hz at ``f0_times`` (s). Returns ``(n_voices,
    n_samples)`` float32. Each voice's magnitude spectrogram is modelled as a sum
    of partial bumps (``_partial_bumps``: the window's main lobe widened by
    ``spread_cents``, as NMF's, but at the frame's own F0 and reaching 12 bins either
    side, up to ``max_harmonics``), each bump's level in each frame being the
    least-squares projection of the stem's magnitude onto that bump alone; ``power`` 1
    makes magnitude-ratio masks of them, 2 power-ratio. A reference ceiling for a
    separator whose voices are harmonic combs at one F0 per voice (a learned voice
    model's, NMF's), reached with the stems' own partial levels: where ``oracle``
    bounds any mask and ``fitted`` one trained synthesizer, this one the kind of voice
    model (not an optimum: other levels could mask better).
    """
    mix = np.asarray(mix, dtype=np.float64)
    spectrum = stft(mix, N_FFT, HOP_LENGTH)  # (n_frames, n_freq)
    f0_frames = resample_f0(f0_times, f0_hz, stft_frame_times(spectrum.shape[0], sample_rate))
    voice_models = np.zeros((len(stems),) + spectrum.shape)
    for voice, stem in enumerate(np.asarray(stems, dtype=np.float64)):
        magnitude = np.abs(stft(stem, N_FFT, HOP_LENGTH))
        # a chunk of frames at a time bounds the bump arrays' memory on long recordings
        for start in range(0, magnitude.shape[0], _PARTIALS_CHUNK_FRAMES):
            chunk = np.arange(start, min(start + _PARTIALS_CHUNK_FRAMES, magnitude.shape[0]))
            frames = chunk[:, None, None]  # broadcast against (frames, harmonics, bins)
            bins, values = _partial_bumps(f0_frames[voice, chunk], sample_rate, N_FFT, max_harmonics,
                                          0.85, spread_cents, _PARTIALS_HALF_WIDTH)
            levels = (magnitude[frames, bins] * values).sum(-1) / ((values**2).sum(-1) + _EPS)  # (frames, harmonics)
            np.add.at(voice_models[voice], (np.broadcast_to(frames, bins.shape), bins), levels[..., None] * values)
    weighted = np.power(voice_models, power)
    masks = weighted / (weighted.sum(axis=0, keepdims=True) + _EPS)
    return istft(masks * spectrum[None], N_FFT, HOP_LENGTH, mix.size).astype(np.float32)


def nmf_separate(
    mix: np.ndarray,
    f0_hz: np.ndarray,
    f0_times: np.ndarray,
    sample_rate: int,
    n_iterations: int = NMF_ITERATIONS,
    mask_power: float = 1.0,
    spread_cents: float = SPREAD_CENTS,
) -> np.ndarray:
    """F0-informed NMF separation (learning-free).

    ``mix``: ``(n_samples,)``; ``f0_hz``: ``(n_voices, n_f0_frames)`` Hz at
    ``f0_times`` (s), 0 = unvoiced. Returns ``(n_voices, n_samples)`` float32.
    A voice that is unvoiced in a frame gets nothing in that frame.
    ``mask_power`` 1 makes magnitude-ratio masks from the fitted voice
    spectra, 2 power-ratio masks; ``spread_cents`` widens high partials
    (see ``harmonic_combs``). The defaults were the best of a small grid on
    generated Bach data (Choir Aahs); 30 iterations scored as well as 100.
    """
    mix = np.asarray(mix, dtype=np.float64)
    spectrum = stft(mix, N_FFT, HOP_LENGTH)  # (n_frames, n_freq)
    magnitude = np.abs(spectrum).T.astype(np.float32)  # (n_freq, n_frames)
    f0_frames = resample_f0(f0_times, f0_hz, stft_frame_times(magnitude.shape[1], sample_rate))
    combs = harmonic_combs(f0_frames, sample_rate, spread_cents=spread_cents)  # (n_voices, n_freq, n_frames) float32

    n_voices = combs.shape[0]
    activations = np.full((n_voices, magnitude.shape[1]), magnitude.mean() + _EPS, dtype=np.float32)  # h_j(t)
    envelopes = np.ones((n_voices, magnitude.shape[0]), dtype=np.float32)  # e_j(f)
    for _ in range(n_iterations):
        # Multiplicative updates for KL(V | V_hat), V_hat = sum_j h_j(t) e_j(f) comb_j(f, t).
        ratio = magnitude / (np.einsum("jt,jf,jft->ft", activations, envelopes, combs, optimize=True) + _EPS)
        activations *= np.einsum("jf,jft,ft->jt", envelopes, combs, ratio, optimize=True) / (
            np.einsum("jf,jft->jt", envelopes, combs, optimize=True) + _EPS
        )
        ratio = magnitude / (np.einsum("jt,jf,jft->ft", activations, envelopes, combs, optimize=True) + _EPS)
        envelopes *= np.einsum("jt,jft,ft->jf", activations, combs, ratio, optimize=True) / (
            np.einsum("jt,jft->jf", activations, combs, optimize=True) + _EPS
        )
    voice_models = activations[:, None, :] * envelopes[:, :, None] * combs
    weighted = np.power(voice_models, mask_power)
    masks = weighted / (weighted.sum(axis=0, keepdims=True) + _EPS)
    return istft(masks.transpose(0, 2, 1) * spectrum[None], N_FFT, HOP_LENGTH, mix.size).astype(np.float32)


def fitted_voices_separate(
    mix: np.ndarray, stems: np.ndarray, f0_frames: np.ndarray, model: ParamNet, power: float = 1.0,
    steps: int = FIT_STEPS,
) -> np.ndarray:
    """Masks from ``model``'s synthesizer with every frame's parameters fitted to the true ``stems``.

    ``mix`` ``(n_samples,)`` and ``stems`` ``(n_voices, n_samples)`` at the model's
    sample rate, the voices in the model's order; ``f0_frames`` ``(n_voices,
    n_frames)`` Hz on the model's frame grid (``Item.f0_on_frames``). Returns
    ``(n_voices, n_samples)`` float32.
    """
    from sfgraph.evaluation.fit import fit_voices_to_stems

    fitted = fit_voices_to_stems(model, mix, stems, f0_frames, steps=steps)
    return mask_separate(mix, fitted, N_FFT, HOP_LENGTH, power)


def separate_item(method: str, item: Item, power: float = 1.0, n_iterations: int = NMF_ITERATIONS,
                  model: ParamNet | None = None, fit_steps: int = FIT_STEPS,
                  spread_cents: float = SPREAD_CENTS) -> np.ndarray:
    """Run a baseline on one ``layout.Item``; returns ``(n_voices, n_samples)`` in ``item.voices`` order.

    ``model``: the trained network the ``fitted`` baseline starts from; the item
    must then be at its sample rate, with its voices in its order
    (``load_dataset(..., voices=, sample_rate=, require_stems=True)`` checks that).
    """
    mix = item.load_mix()
    if method == "oracle":
        return oracle_mask_separate(mix, item.load_stems(), power)
    if method == "nmf":
        return nmf_separate(mix, item.f0_hz, item.f0_times, item.sample_rate, n_iterations=n_iterations,
                            mask_power=power, spread_cents=spread_cents)
    if method == "partials":
        return partials_oracle_separate(mix, item.load_stems(), item.f0_hz, item.f0_times, item.sample_rate, power,
                                        spread_cents)
    if method == "fitted":
        if model is None:
            raise ValueError("the fitted baseline needs a model to start from")
        return fitted_voices_separate(mix, item.load_stems(), item.f0_on_frames(model.config.voice.hop), model, power,
                                      fit_steps)
    if method == "mixture":
        return mixture_separate(mix, len(item.voices))
    raise ValueError(f"unknown baseline {method!r} (choose from {', '.join(BASELINES)})")


def separate_dataset(
    method: str,
    dataset: Dataset,
    out_dir: Path,
    power: float = 1.0,
    n_iterations: int = NMF_ITERATIONS,
    model: ParamNet | None = None,
    fit_steps: int = FIT_STEPS,
    spread_cents: float = SPREAD_CENTS,
    progress: bool = True,
) -> None:
    """Write a baseline's estimates as ``out_dir/<item>/<voice>.wav`` (float32), the layout ``evaluate`` reads."""
    from tqdm import tqdm

    for item in tqdm(dataset.items, desc=method, unit="item", disable=not progress):
        estimates = separate_item(method, item, power, n_iterations, model, fit_steps, spread_cents)
        for voice, estimate in zip(item.voices, estimates, strict=True):
            write_wav(Path(out_dir) / item.name / f"{voice}.wav", estimate, item.sample_rate)
