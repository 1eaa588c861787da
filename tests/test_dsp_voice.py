"""Voice model: torch vs Numba agreement, streaming, gradients and audible behaviour."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import scipy.signal
import torch

from sfgraph.dsp.lsf import lsf_increments_to_lpc_numpy
from sfgraph.dsp.voice_config import VOICE_MODELS, VoiceConfig
from sfgraph.dsp.voice_controls import VoiceControls, n_frame_controls
from sfgraph.dsp.voice_numba import StreamingVoiceSynth, synthesize_voices_numba
from sfgraph.dsp.voice_torch import synthesize_voices, unit_harmonic_sines

CONFIG = VoiceConfig()
HOP = CONFIG.hop
N_INCREMENTS = CONFIG.n_lsf_increments


def _relative_rms_error(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per-voice ``rms(actual - expected) / rms(expected)`` over the last axis."""
    return np.sqrt(np.mean((actual - expected) ** 2, axis=-1) / np.mean(expected**2, axis=-1))


def _random_tracks(n_voices: int, n_frames: int, seed: int) -> dict[str, np.ndarray]:
    """Unstructured parameters: random F0 (some unvoiced), gains, filters, noise."""
    rng = np.random.default_rng(seed)
    f0 = rng.uniform(60.0, 1000.0, (n_voices, n_frames))
    f0[rng.random((n_voices, n_frames)) < 0.2] = 0.0
    return {
        "f0_hz": f0,
        "amplitude": rng.uniform(0.0, 1.0, (n_voices, n_frames)),
        "noise_gain": rng.uniform(0.0, 0.3, (n_voices, n_frames)),
        "lsf_increments": rng.uniform(0.05, 1.0, (n_voices, n_frames, N_INCREMENTS)),
        "noise_bands": rng.uniform(0.0, 1.0, (n_voices, CONFIG.n_noise_bands)),
        "white_noise": rng.uniform(-1.0, 1.0, (n_voices, n_frames * HOP)),
    }


def _realistic_tracks(n_frames: int, seed: int) -> dict[str, np.ndarray]:
    """SATB-like tracks: vibrato, phrase gaps, swells, breath noise, sharp formants."""
    rng = np.random.default_rng(seed)
    time_s = np.arange(n_frames) * HOP / CONFIG.sample_rate
    base_hz = np.array([392.0, 262.0, 196.0, 98.0])[:, None]
    vibrato = 2.0 ** (0.5 / 12.0 * np.sin(2.0 * np.pi * 5.5 * time_s + rng.uniform(0, 6, (4, 1))))
    glide = 2.0 ** (np.cumsum(rng.normal(0.0, 0.01, (4, n_frames)), axis=1) / 12.0)
    f0 = base_hz * vibrato * glide
    voiced = np.ones((4, n_frames), dtype=bool)
    for voice in range(4):  # one phrase gap per voice, somewhere in the middle half
        gap_start = rng.integers(n_frames // 4, n_frames // 2 + 1)
        voiced[voice, gap_start : gap_start + 3 + voice] = False
    f0[~voiced] = 0.0
    swell = 0.5 + 0.4 * np.sin(2.0 * np.pi * 0.7 * time_s + rng.uniform(0, 6, (4, 1)))
    increments = rng.uniform(0.4, 1.2, (4, 1, N_INCREMENTS)) * (
        1.0 + 0.2 * np.sin(2.0 * np.pi * 1.3 * time_s)[None, :, None]
    )
    increments[:, :, 3] = 0.02  # a close LSF pair: narrow formant
    increments[:, :, 11] = 0.03
    return {
        "f0_hz": f0,
        "amplitude": swell * voiced,
        "noise_gain": np.where(voiced, 0.01, 0.05) * np.ones((4, n_frames)),
        "lsf_increments": increments,
        "noise_bands": np.linspace(1.0, 0.1, CONFIG.n_noise_bands)[None, :].repeat(4, axis=0),
        "white_noise": rng.uniform(-1.0, 1.0, (4, n_frames * HOP)),
    }


def _controls(tracks: dict[str, np.ndarray], convert=lambda values: values) -> VoiceControls:
    """The tracks' controls, each converted by ``convert``."""
    return VoiceControls(*(convert(tracks[name]) if name in tracks else None for name in VoiceControls._fields))


def _synthesize_numba(tracks: dict[str, np.ndarray], **options) -> np.ndarray:
    return synthesize_voices_numba(tracks["f0_hz"], _controls(tracks), tracks.get("white_noise"), **options)


def _torch_inputs(tracks: dict[str, np.ndarray], dtype: torch.dtype = torch.float64
                  ) -> tuple[torch.Tensor, VoiceControls, torch.Tensor]:
    """F0, controls and white noise as tensors with a batch of one (the noise bands without)."""
    def batch(values):
        return torch.tensor(values, dtype=dtype).unsqueeze(0)

    controls = _controls(tracks, batch)._replace(noise_bands=torch.tensor(tracks["noise_bands"], dtype=dtype))
    return batch(tracks["f0_hz"]), controls, batch(tracks["white_noise"])


def _synthesize_torch(tracks: dict[str, np.ndarray], dtype: torch.dtype) -> np.ndarray:
    f0, controls, white = _torch_inputs(tracks, dtype)
    return synthesize_voices(f0, controls, white_noise=white)[0].double().numpy()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make_tracks", ["random", "realistic"])
def test_torch_and_numba_agree(make_tracks, dtype):
    tracks = _random_tracks(4, 40, seed=3) if make_tracks == "random" else _realistic_tracks(60, seed=4)
    expected = _synthesize_numba(tracks)
    actual = _synthesize_torch(tracks, dtype)
    assert actual.shape == expected.shape == (4, tracks["f0_hz"].shape[1] * HOP)
    assert np.all(_relative_rms_error(actual, expected) < 1e-4)


def _stream(tracks: dict[str, np.ndarray], block: int, explicit_noise: bool, config: VoiceConfig = CONFIG
            ) -> np.ndarray:
    """Render ``block`` samples at a time, pushing one frame whenever more are needed."""
    synth = StreamingVoiceSynth(4, tracks["noise_bands"], config, dtype=np.float64, seed=7)
    n_frames = tracks["f0_hz"].shape[1]
    pieces = []
    pushed = 0
    while True:
        while synth.available < block and pushed < n_frames:
            frame = slice(pushed, pushed + 1)
            synth.push(
                tracks["f0_hz"][:, frame],
                tracks["amplitude"][:, frame],
                tracks["noise_gain"][:, frame],
                tracks["lsf_increments"][:, frame],
                tracks["white_noise"][:, pushed * HOP : (pushed + 1) * HOP] if explicit_noise else None,
                tracks["spread"][:, frame] if "spread" in tracks else None,
            )
            pushed += 1
        if synth.available < block:
            break
        pieces.append(synth.render(block))
    pieces.append(synth.flush())
    return np.concatenate(pieces, axis=1)


@pytest.mark.parametrize("block", [64, 256, 1000])
def test_block_by_block_equals_whole_signal(block):
    tracks = _realistic_tracks(40, seed=5)
    whole = _synthesize_numba(tracks)
    assert np.array_equal(_stream(tracks, block, explicit_noise=True), whole)


def test_streaming_with_internal_noise_is_reproducible():
    tracks = _realistic_tracks(30, seed=6)
    reference = _stream(tracks, 1000, explicit_noise=False)
    assert np.array_equal(_stream(tracks, 64, explicit_noise=False), reference)
    tracks.pop("white_noise")
    assert np.array_equal(_synthesize_numba(tracks, seed=7), reference)


def test_streaming_latency_is_one_hop():
    tracks = _random_tracks(4, 5, seed=8)
    synth = StreamingVoiceSynth(4, tracks["noise_bands"])
    assert synth.latency_samples == HOP
    for pushed in range(1, 6):
        frame = slice(pushed - 1, pushed)
        synth.push(*(tracks[name][:, frame] for name in ("f0_hz", "amplitude", "noise_gain", "lsf_increments")))
        assert synth.available == (pushed - 1) * HOP
    assert synth.render(100).shape == (4, 100)
    assert synth.flush().shape == (4, 5 * HOP - 100)


def test_noise_bands_with_or_without_the_batch_give_the_same_voices():
    f0, controls, white = _torch_inputs(_random_tracks(2, 12, seed=9))
    shared = synthesize_voices(f0, controls, white_noise=white)
    batched = synthesize_voices(f0, controls._replace(noise_bands=controls.noise_bands.unsqueeze(0)), white_noise=white)
    torch.testing.assert_close(batched, shared, rtol=0, atol=1e-12)


def test_gradcheck_reaches_every_parameter():
    config = VoiceConfig(frame_size=32, hop=16, n_harmonics=8, lpc_order=4, n_noise_bands=5)
    generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=torch.float64)

    # F0s keep all 8 harmonics below Nyquist (the harmonic count is piecewise constant in F0).
    f0 = torch.tensor([[[930.0, 960.0, 985.0], [710.0, 820.0, 755.0]]], dtype=torch.float64)
    inputs = (
        f0.requires_grad_(),
        (rand(1, 2, 3) + 0.5).requires_grad_(),
        (rand(1, 2, 3) + 0.5).requires_grad_(),
        (rand(1, 2, 3, 5) + 0.3).requires_grad_(),
        (rand(2, 5) + 0.3).requires_grad_(),
    )
    white = 2.0 * rand(1, 2, 48) - 1.0

    def synth(f0_hz, *controls):
        return synthesize_voices(f0_hz, VoiceControls(*controls), white_noise=white, config=config)

    assert torch.autograd.gradcheck(synth, inputs)
    synth(*inputs).square().sum().backward()
    for tensor in inputs:
        assert torch.all(torch.isfinite(tensor.grad)) and tensor.grad.abs().sum() > 0


def test_unvoiced_frame_gradients_are_finite():
    tracks = _realistic_tracks(20, seed=10)
    params = [
        torch.tensor(tracks[name], dtype=torch.float32).unsqueeze(0).requires_grad_()
        for name in ("f0_hz", "amplitude", "noise_gain", "lsf_increments", "noise_bands")
    ]
    synthesize_voices(params[0], VoiceControls(*params[1:])).square().mean().backward()
    for tensor in params:
        assert torch.all(torch.isfinite(tensor.grad)) and tensor.grad.abs().sum() > 0


def test_constant_f0_spectrum_has_harmonics_tilt_and_formants():
    f0_hz = 125.0  # harmonics land on exact FFT bins of an 8192-sample window
    n_frames = 60
    increments = np.random.default_rng(11).uniform(0.5, 1.5, N_INCREMENTS)
    tracks = {
        "f0_hz": np.full((1, n_frames), f0_hz),
        "amplitude": np.ones((1, n_frames)),
        "noise_gain": np.zeros((1, n_frames)),
        "lsf_increments": np.tile(increments, (1, n_frames, 1)),
        "noise_bands": np.ones((1, CONFIG.n_noise_bands)),
    }
    audio = _synthesize_numba(tracks)[0]
    segment = audio[4096 : 4096 + 8192]
    window = np.hanning(segment.size)
    spectrum = np.abs(np.fft.rfft(segment * window)) * 2.0 / window.sum()
    bins_per_harmonic = int(f0_hz * segment.size / CONFIG.sample_rate)
    n_harmonics = int(np.ceil(CONFIG.nyquist / f0_hz)) - 1
    harmonics = np.arange(1, n_harmonics + 1)
    measured = spectrum[harmonics * bins_per_harmonic]

    lpc = lsf_increments_to_lpc_numpy(increments, CONFIG.min_lsf_gap)
    _, envelope = scipy.signal.freqz([1.0], lpc, worN=harmonics * f0_hz, fs=CONFIG.sample_rate)
    tilt = np.minimum(1.0, CONFIG.tilt_corner_hz / (harmonics * f0_hz))
    expected = np.abs(envelope) * tilt / n_harmonics

    harmonic_energy = np.sum(
        [np.sum(spectrum[k * bins_per_harmonic - 3 : k * bins_per_harmonic + 4] ** 2) for k in harmonics]
    )
    assert harmonic_energy > 0.999 * np.sum(spectrum**2)
    audible = expected > expected.max() * 1e-3
    error_db = 20.0 * np.log10(measured[audible] / expected[audible])
    assert np.max(np.abs(error_db)) < 0.5


def test_unvoiced_frames_are_silent_and_voicing_is_click_free():
    n_frames = 60
    voiced = np.zeros(n_frames, dtype=bool)
    voiced[5:20] = True
    voiced[30:50] = True
    tracks = {
        "f0_hz": np.where(voiced, 220.0, 0.0)[None, :],
        "amplitude": np.ones((1, n_frames)),
        "noise_gain": np.zeros((1, n_frames)),
        "lsf_increments": np.tile(np.random.default_rng(12).uniform(0.5, 1.5, N_INCREMENTS), (1, n_frames, 1)),
        "noise_bands": np.ones((1, CONFIG.n_noise_bands)),
    }
    audio = _synthesize_numba(tracks)[0]
    # Excitation fades out over the segment after the last voiced frame; one more
    # hop lets the vocal-tract frames that saw it cross-fade out.
    for first_unvoiced, next_voiced in ((20, 30), (50, n_frames)):
        assert np.all(audio[(first_unvoiced + 1) * HOP : (next_voiced - 1) * HOP] == 0.0)
    assert np.all(audio[: 4 * HOP] == 0.0)

    # The -6 dB/octave harmonic series is a band-limited sawtooth whose edge
    # already steps by about its peak-to-peak value; voicing on/offsets may not
    # step further than that.
    steps = np.abs(np.diff(audio))
    steady = steps[8 * HOP : 17 * HOP].max()
    assert steps.max() < 1.05 * steady


def test_ten_minute_stream_keeps_exact_phase_and_level():
    f0_hz = 123.4567
    n_frames = 10 * 60 * CONFIG.sample_rate // HOP
    synth = StreamingVoiceSynth(1, np.ones((1, CONFIG.n_noise_bands)), dtype=np.float64)
    increments = np.random.default_rng(13).uniform(0.5, 1.5, (1, n_frames, N_INCREMENTS)).mean(axis=1, keepdims=True)
    synth.push(
        np.full((1, n_frames), f0_hz),
        np.ones((1, n_frames)),
        np.zeros((1, n_frames)),
        np.repeat(increments, n_frames, axis=1),
        np.zeros((1, n_frames * HOP)),
    )
    audio = synth.render()[0]
    assert audio.size == (n_frames - 1) * HOP
    cycles_per_hop = Fraction(HOP) * Fraction(f0_hz) / CONFIG.sample_rate
    exact_phase = float((cycles_per_hop * (n_frames - 1)) % 1)
    assert abs(synth._phase_next[0] - exact_phase) < 1e-9
    # Hann-weighted power over one second: insensitive to partial periods at the edges.
    weights = np.hanning(CONFIG.sample_rate)
    early_power = np.sum(weights * audio[CONFIG.sample_rate : 2 * CONFIG.sample_rate] ** 2)
    late_power = np.sum(weights * audio[-CONFIG.sample_rate :] ** 2)
    assert np.all(np.isfinite(audio)) and abs(late_power / early_power - 1.0) < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    f0, controls, white = _torch_inputs(_random_tracks(2, 20, seed=14))
    cpu = synthesize_voices(f0, controls, white_noise=white)
    cuda = synthesize_voices(f0.cuda(), VoiceControls(*(x.cuda() for x in controls)), white_noise=white.cuda())
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-6, atol=1e-9)


def test_precomputed_harmonic_sines_give_the_same_voices():
    """Training computes each item's F0-only harmonic sines once and passes them in: the
    same voices as computing them in the call."""
    f0, controls, white = _torch_inputs(_realistic_tracks(60, seed=4), torch.float32)
    sines = unit_harmonic_sines(f0, CONFIG)
    assert sines.shape == (1, 4, 60, HOP)
    plain = synthesize_voices(f0, controls, white_noise=white)
    given = synthesize_voices(f0, controls, white_noise=white, harmonic_sines=sines)
    assert torch.equal(plain, given)


def test_packed_frames_split_into_the_same_controls():
    """A stream block of controls (``pack_frames``) holds the per-frame controls as float32,
    ``2 + lpc_order + 1`` rows per voice and frame; ``split_frames`` gives them back."""
    tracks = _random_tracks(3, 7, seed=15)
    controls = _controls(tracks, lambda values: values.astype(np.float32))
    frames = controls.pack_frames()
    assert frames.shape == (3, n_frame_controls(CONFIG), 7) == (3, 2 + N_INCREMENTS, 7)
    assert frames.dtype == np.float32
    for name, expected, actual in zip(VoiceControls._fields, controls,
                                      VoiceControls.split_frames(frames, controls.noise_bands, CONFIG), strict=True):
        np.testing.assert_array_equal(actual, expected, err_msg=name)


# A section: each harmonic as five copies 10 cents apart, weighted by a per-frame spread.
SECTION = VOICE_MODELS["section"]


def _section_tracks(n_frames: int, seed: int) -> dict[str, np.ndarray]:
    """Realistic tracks with a spread that wanders between a near-unison and 40 cents."""
    tracks = _realistic_tracks(n_frames, seed)
    tracks["spread"] = np.random.default_rng(seed).uniform(0.5, 40.0, (4, n_frames))
    return tracks


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_section_torch_and_numba_agree(dtype):
    tracks = _section_tracks(40, seed=16)
    expected = _synthesize_numba(tracks, config=SECTION)
    f0, controls, white = _torch_inputs(tracks, dtype)
    actual = synthesize_voices(f0, controls, white_noise=white, config=SECTION)[0].double().numpy()
    assert actual.shape == expected.shape == (4, 40 * HOP)
    assert np.all(_relative_rms_error(actual, expected) < 1e-4)


@pytest.mark.parametrize("block", [64, 1000])
def test_section_block_by_block_equals_whole_signal(block):
    tracks = _section_tracks(30, seed=17)
    whole = _synthesize_numba(tracks, config=SECTION)
    assert np.array_equal(_stream(tracks, block, explicit_noise=True, config=SECTION), whole)


def test_section_gradcheck_reaches_the_spread():
    config = VoiceConfig(frame_size=32, hop=16, n_harmonics=8, lpc_order=4, n_noise_bands=5, section_copies=3)
    generator = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=torch.float64)

    f0 = torch.tensor([[[930.0, 960.0, 985.0], [710.0, 820.0, 755.0]]], dtype=torch.float64)
    amplitude = (rand(1, 2, 3) + 0.5).requires_grad_()
    spread = (20.0 * rand(1, 2, 3) + 5.0).requires_grad_()
    fixed = (rand(1, 2, 3) + 0.5, rand(1, 2, 3, 5) + 0.3, rand(2, 5) + 0.3)
    white = 2.0 * rand(1, 2, 48) - 1.0

    def synth(amplitude, spread):
        controls = VoiceControls(amplitude, fixed[0], fixed[1], fixed[2], spread)
        return synthesize_voices(f0, controls, white_noise=white, config=config)

    assert torch.autograd.gradcheck(synth, (amplitude, spread))


def test_section_spread_widens_the_partials():
    """A wide spread moves a high partial's energy off its centre into a band around it;
    a near-unison keeps it on the line (one copy sounds)."""
    n_frames = 250  # 4 s: fine enough frequency resolution for a 40-cent band at 2.2 kHz
    f0 = torch.full((1, 1, n_frames), 220.0, dtype=torch.float64)
    controls = VoiceControls(torch.ones(1, 1, n_frames, dtype=torch.float64),
                             torch.zeros(1, 1, n_frames, dtype=torch.float64),
                             torch.ones(1, 1, n_frames, N_INCREMENTS, dtype=torch.float64),
                             torch.ones(1, SECTION.n_noise_bands, dtype=torch.float64), None)

    def centre_share(spread_cents: float) -> float:
        spread = torch.full((1, 1, n_frames), spread_cents, dtype=torch.float64)
        voice = synthesize_voices(f0, controls._replace(spread=spread), config=SECTION)[0, 0].numpy()
        power = np.abs(np.fft.rfft(voice * np.hanning(voice.size))) ** 2
        bin_hz = SECTION.sample_rate / voice.size
        centre = round(10 * 220.0 / bin_hz)  # the tenth harmonic, 2.2 kHz; the band +-25 cents
        band = power[round(centre * 2 ** (-25 / 1200)):round(centre * 2 ** (25 / 1200)) + 1]
        return float(power[centre - 2:centre + 3].sum() / band.sum())

    assert centre_share(0.5) > 0.95 and centre_share(30.0) < 0.5
