"""Masks fitted to the mixture (sfgraph.dsp.mask_fit): they correct a voice model's timbre."""
from __future__ import annotations

import numpy as np
import pytest

from sfgraph.evaluation.scoring import si_sdr_db
from sfgraph.dsp.mask_fit import MixtureFit, StreamingMixtureFit, fit_masks
from sfgraph.dsp.stft import mask_separate

RATE = 16000


def harmonic_voice(f0_hz: float, tilt_db_per_octave: float, seconds: float = 4.0) -> np.ndarray:
    """A sung-like tone: partials to 7.5 kHz falling by ``tilt_db_per_octave``, 1 % vibrato at 5 Hz."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(f0_hz * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / RATE
    harmonics = np.arange(1, int(7500 / f0_hz))
    amplitudes = 10 ** (tilt_db_per_octave * np.log2(harmonics) / 20)
    return (amplitudes[:, None] * np.sin(harmonics[:, None] * phase)).sum(axis=0)


def test_the_fit_corrects_voice_estimates_whose_timbre_is_wrong():
    """The estimates have the right pitches but each the other voice's spectral tilt, as a
    model trained on other singers might: plain ratio masks hand the overlapping and
    neighbouring partials to the wrong voice, the fitted masks learn each voice's tilt
    from the mixture and separate ≥ 2 dB better; given the true stems, the fit costs
    less than 0.5 dB."""
    true = np.stack([harmonic_voice(220, -3), harmonic_voice(330, -9)])
    wrong_timbre = np.stack([harmonic_voice(220, -9), harmonic_voice(330, -3)])
    mix = true.sum(axis=0)
    plain = si_sdr_db(true, mask_separate(mix, wrong_timbre, 2048, 256)).mean()
    fitted = si_sdr_db(true, mask_separate(mix, wrong_timbre, 2048, 256, fit=MixtureFit(),
                                           sample_rate=RATE)).mean()
    assert fitted >= plain + 2.0, (plain, fitted)
    oracle = si_sdr_db(true, mask_separate(mix, true, 2048, 256)).mean()
    oracle_fitted = si_sdr_db(true, mask_separate(mix, true, 2048, 256, fit=MixtureFit(), sample_rate=RATE)).mean()
    assert oracle_fitted >= oracle - 0.5, (oracle, oracle_fitted)


def test_fitted_masks_sum_to_one_and_frame_by_frame_equals_whole():
    rng = np.random.default_rng(0)
    mix_mag, voice_mag = rng.random((40, 129)), rng.random((3, 40, 129))
    voice_mag[1, 10:20] = 0.0  # a silent voice stays finite
    whole = fit_masks(mix_mag, voice_mag, 256, 64, RATE, MixtureFit(seconds=0.05), power=2.0)
    assert np.isfinite(whole).all() and (whole >= 0).all()
    np.testing.assert_allclose(whole.sum(axis=0), 1.0, atol=1e-4)
    stream = StreamingMixtureFit(3, 256, 64, RATE, MixtureFit(seconds=0.05))
    frames = [stream.masks(mix_mag[t:t + 1], voice_mag[:, t:t + 1], power=2.0) for t in range(40)]
    np.testing.assert_array_equal(np.concatenate(frames, axis=1), whole)


@pytest.mark.parametrize("settings", [{"seconds": 0.0}, {"iterations": -1}, {"smoothing_hz": -1.0}])
def test_bad_fit_settings_are_refused(settings):
    with pytest.raises(ValueError, match="mixture fit"):
        MixtureFit(**settings)


def test_spectra_other_than_the_fits_bins_and_voices_are_refused():
    """The kernel indexes its running sums by bin: spectra of another width would run past them."""
    fit = StreamingMixtureFit(3, 256, 64, RATE, MixtureFit(), n_bins=40)
    assert fit.masks(np.ones((2, 40)), np.ones((3, 2, 40))).shape == (3, 2, 40)
    for mix_mag, voice_mag in [(np.ones((2, 129)), np.ones((3, 2, 129))), (np.ones((2, 40)), np.ones((2, 2, 40))),
                               (np.ones((3, 40)), np.ones((3, 2, 40)))]:
        with pytest.raises(ValueError, match="3 voices and 40 bins"):
            fit.masks(mix_mag, voice_mag)


def test_a_fit_without_a_sample_rate_is_refused():
    with pytest.raises(ValueError, match="sample rate"):
        mask_separate(np.zeros(4096), np.zeros((2, 4096)), fit=MixtureFit())
