"""Baselines on the committed fixture: STFT, oracle masks, mixture floor, F0-informed NMF, the partials
ceiling, and the baseline command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sfgraph.evaluation.baselines import (
    HOP_LENGTH,
    N_FFT,
    harmonic_combs,
    mixture_separate,
    nmf_separate,
    oracle_mask_separate,
    partials_oracle_separate,
    stft_frame_times,
)
from sfgraph.cli import main
from sfgraph.evaluation.scoring import si_sdr_db
from sfgraph.data.layout import load_dataset
from sfgraph.dsp.stft import mask_separate, stft

FIXTURE = Path(__file__).parent / "fixtures" / "bach_tiny"


@pytest.fixture(scope="module")
def item():
    return load_dataset(FIXTURE)[0]


def test_stft_frame_times_match_the_separator_framing():
    impulse = np.zeros(8000)
    impulse[5000] = 1.0
    energy = np.abs(stft(impulse, N_FFT, HOP_LENGTH)).sum(axis=-1)  # (n_frames,)
    centres = stft_frame_times(energy.size, 16000) * 16000
    # The Hann window is largest at its centre: the frame centred nearest the impulse sees it most.
    assert abs(centres[np.argmax(energy)] - 5000) <= HOP_LENGTH / 2


def test_harmonic_combs_peak_at_harmonics_and_vanish_when_unvoiced():
    f0 = np.zeros((1, 20))
    f0[0, 5:15] = 250.0
    combs = harmonic_combs(f0, 16000)
    bin_hz = 16000 / N_FFT
    frame = combs[0, :, 10]
    for harmonic in (1, 2, 5):
        centre = int(round(harmonic * 250.0 / bin_hz))
        assert frame[centre] == frame[centre - 3 : centre + 4].max() > 0
    assert frame[int(round(375.0 / bin_hz))] < 1e-3 * frame.max()  # between harmonics 1 and 2
    assert combs[0, :, 0].max() == 0.0  # more than a window away from any voiced frame


def test_baselines_rank_oracle_above_partials_above_nmf_above_mixture(item):
    mix, stems = item.load_mix(), item.load_stems()
    oracle = si_sdr_db(stems, oracle_mask_separate(mix, stems, power=1.0)).mean()
    oracle_power = si_sdr_db(stems, oracle_mask_separate(mix, stems, power=2.0)).mean()
    # partials shaped as NMF's (at each frame's own F0), their levels from the stems instead of fitted
    partials = si_sdr_db(stems, partials_oracle_separate(mix, stems, item.f0_hz, item.f0_times,
                                                         item.sample_rate)).mean()
    nmf = si_sdr_db(stems, nmf_separate(mix, item.f0_hz, item.f0_times, item.sample_rate)).mean()
    floor = si_sdr_db(stems, mixture_separate(mix, 4)).mean()
    # Voice Oohs is a single voice per part: the oracle separates it well.
    assert oracle > 10 and oracle_power > 10
    assert oracle > partials > nmf + 2 > floor + 7
    assert floor < 0


def test_partials_ceiling_follows_the_f0_and_its_width_covers_a_section():
    """Two steady voices, one a section of three singers 30 cents apart: the partials at the
    true F0s separate both, at swapped F0s neither, and partials as wide as the section's
    give the section more of itself than sharp ones."""
    rate, seconds = 16000, 3.0
    t = np.arange(int(seconds * rate)) / rate

    def tone(hz, partials):
        return sum(0.05 / k**0.5 * np.sin(2 * np.pi * k * hz * t + k) for k in range(1, partials + 1))

    stems = np.stack([sum(tone(220.0 * 2 ** (c / 1200), 30) for c in (-30, 0, 30)), tone(277.0, 25)])
    mix = stems.sum(0)
    times = np.arange(0, seconds, 0.016)
    f0 = np.stack([np.full(times.size, 220.0), np.full(times.size, 277.0)])

    def scores(f0_hz, spread_cents):
        return si_sdr_db(stems, partials_oracle_separate(mix, stems, f0_hz, times, rate, spread_cents=spread_cents))

    sharp, wide = scores(f0, 0.0), scores(f0, 30.0)
    assert sharp.min() > 3 and wide.min() > 3
    assert wide[0] > sharp[0] + 2
    assert scores(f0[::-1], 30.0).max() < 0


def test_mixture_estimate_is_the_mixture(item):
    mix = item.load_mix()
    estimates = mixture_separate(mix, 4)
    assert estimates.shape == (4, mix.size)
    np.testing.assert_array_equal(estimates[2], mix)


def test_baseline_command_writes_estimates_that_eval_reads(tmp_path, capsys):
    for method in ("oracle", "mixture"):
        assert main(["baseline", method, str(FIXTURE), "-o", str(tmp_path / method), "--quiet"]) == 0
    assert main(["baseline", "nmf", str(FIXTURE), "-o", str(tmp_path / "nmf"), "--iterations", "5", "--quiet"]) == 0
    assert main(["baseline", "partials", str(FIXTURE), "-o", str(tmp_path / "partials"), "--spread-cents", "10",
                 "--quiet"]) == 0
    for item in load_dataset(FIXTURE):
        for voice in item.voices:
            assert (tmp_path / "nmf" / item.name / f"{voice}.wav").is_file()
    methods = ("oracle", "nmf", "partials", "mixture")
    estimates = [f"--estimates={method}={tmp_path / method}" for method in methods]
    assert main(["eval", str(FIXTURE), *estimates, "-o", str(tmp_path / "report"), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert all(method in table for method in methods)
    for width in ("-1", "inf", "nan", "2e6"):
        with pytest.raises(SystemExit):
            main(["baseline", "nmf", str(FIXTURE), "-o", str(tmp_path / "x"), "--spread-cents", width])
        assert "--spread-cents" in capsys.readouterr().err


def test_fitted_voices_come_closer_to_the_stems_and_separate(item):
    import torch

    from sfgraph.model.checkpoint import load_model
    from sfgraph.evaluation.fit import fit_voices_to_stems
    from sfgraph.model.loss import spectral_loss
    from sfgraph.resources import resolve_resource

    model = load_model(resolve_resource("sfgraph:models/default"))
    mix, stems, f0 = item.load_mix(), item.load_stems(), item.f0_on_frames(256)
    start = fit_voices_to_stems(model, mix, stems, f0, steps=0)  # the model's own estimate
    fitted = fit_voices_to_stems(model, mix, stems, f0, steps=40)
    assert start.shape == fitted.shape == stems.shape

    def loss(voices):
        return float(spectral_loss(torch.from_numpy(voices), torch.from_numpy(stems)))

    assert loss(fitted) < 0.8 * loss(start)
    masked = mask_separate(mix, fitted, N_FFT, HOP_LENGTH)
    floor = si_sdr_db(stems, mixture_separate(mix, 4)).mean()
    assert si_sdr_db(stems, masked).mean() > floor + 10


def test_fitted_voices_use_the_models_voice_settings(item, other_voice_model):
    """The fit synthesizes with the voice model of the model it starts from: with no step,
    its own estimate synthesized with its settings (which the default tilt and harmonics change)."""
    import dataclasses

    import torch

    from sfgraph.dsp.voice_config import VoiceConfig
    from sfgraph.dsp.voice_torch import synthesize_voices
    from sfgraph.model.checkpoint import load_model
    from sfgraph.evaluation.fit import fit_voices_to_stems

    model = load_model(other_voice_model)
    mix, stems, f0 = item.load_mix(), item.load_stems(), item.f0_on_frames(256)
    start = fit_voices_to_stems(model, mix, stems, f0, steps=0)
    frames = mix.shape[-1] // 256
    f0_frames = torch.from_numpy(f0[:, :frames].astype(np.float32))[None]
    with torch.no_grad():
        controls = model(torch.from_numpy(mix[:frames * 256])[None], f0_frames)

    def synthesized(voice):
        return synthesize_voices(f0_frames, controls, config=voice, generator=torch.Generator().manual_seed(0))[0]

    # (the fit's variables hold the estimate in the log domain: equal but for rounding)
    np.testing.assert_allclose(start[:, :frames * 256], synthesized(model.config.voice).numpy(), atol=1e-6)
    defaults = VoiceConfig()
    default_source = dataclasses.replace(model.config.voice, n_harmonics=defaults.n_harmonics,
                                         tilt_corner_hz=defaults.tilt_corner_hz)
    assert np.abs(synthesized(default_source).numpy() - start[:, :frames * 256]).max() > 1e-2
    assert fit_voices_to_stems(model, mix, stems, f0, steps=1).shape == stems.shape


def test_fitted_baseline_command_writes_estimates_and_names_a_bad_model(tmp_path, capsys):
    out = tmp_path / "fitted"
    assert main(["baseline", "fitted", str(FIXTURE), "-o", str(out), "--steps", "2", "--mask", "power", "--quiet"]) == 0
    for item in load_dataset(FIXTURE):
        for voice in item.voices:
            assert (out / item.name / f"{voice}.wav").is_file()
    missing = tmp_path / "no_model"
    assert main(["baseline", "fitted", str(FIXTURE), "-o", str(out), "--model", str(missing), "--quiet"]) == 2
    assert str(missing) in capsys.readouterr().err
