"""The mask STFT (sfgraph.dsp.stft): perfect reconstruction, streaming = whole, low-delay windows,
two resolutions."""
from __future__ import annotations

import numpy as np
import pytest

from sfgraph.dsp.mask_fit import MixtureFit
from sfgraph.dsp.stft import (
    BAND_FLOOR,
    StreamingMaskSeparator,
    TwoBandMaskSeparator,
    band_bins,
    crossover_weights,
    hann,
    istft,
    mask_separate,
    stft,
    window_pair,
)
from sfgraph.evaluation.scoring import si_sdr_db

CONFIGS = [(2048, 256, None), (1024, 256, None), (2048, 256, 512), (1536, 192, 384), (2048, 128, 384)]


def stream(separator, mix, voices, hop, sizes):
    """``separator``'s output for ``mix`` and ``voices`` pushed in blocks of ``sizes`` in
    turn (whole hops), then zeros to flush it, with its latency removed."""
    pad = separator.latency + 4 * hop
    mix_in = np.concatenate([mix, np.zeros(pad)])
    voices_in = np.concatenate([voices, np.zeros((voices.shape[0], pad))], axis=1)
    blocks, start = [], 0
    while start + hop <= mix_in.size:
        size = min(sizes[len(blocks) % len(sizes)], (mix_in.size - start) // hop * hop)
        blocks.append(separator.process(mix_in[start:start + size], voices_in[:, start:start + size]))
        start += size
    return np.concatenate(blocks, axis=1)[:, separator.latency:separator.latency + mix.size]


@pytest.mark.parametrize("n_fft, hop, synthesis", CONFIGS)
def test_analysis_then_synthesis_reconstructs_the_signal(n_fft, hop, synthesis):
    x = np.random.default_rng(0).standard_normal(5000)
    analysis, synthesis_window = window_pair(n_fft, hop, synthesis)
    y = istft(stft(x, n_fft, hop, window=analysis), n_fft, hop, x.size, window=synthesis_window)
    np.testing.assert_allclose(y, x, atol=1e-12)
    if synthesis is not None:  # frames write only their last `synthesis` samples
        assert not synthesis_window[:n_fft - synthesis].any() and synthesis_window[n_fft - synthesis + 1:].all()


@pytest.mark.parametrize("section_cents", [0.0, 12.0])
@pytest.mark.parametrize("fit", [None, MixtureFit(seconds=0.1)])
@pytest.mark.parametrize("n_fft, hop, synthesis", CONFIGS)
def test_streaming_separator_equals_the_whole_signal_after_its_latency(n_fft, hop, synthesis, fit, section_cents):
    rng = np.random.default_rng(1)
    mix, voices = rng.standard_normal(6000), rng.random((3, 6000))
    whole = mask_separate(mix, voices, n_fft, hop, synthesis=synthesis, fit=fit, sample_rate=16000,
                          section_cents=section_cents)
    separator = StreamingMaskSeparator(3, n_fft, hop, synthesis=synthesis, fit=fit, sample_rate=16000,
                                       section_cents=section_cents)
    assert separator.latency == (synthesis or n_fft) - hop
    streamed = stream(separator, mix, voices, hop, [2 * hop])
    np.testing.assert_allclose(streamed, whole[:, :streamed.shape[1]], atol=1e-5)


def test_low_delay_analysis_window_keeps_most_of_the_long_windows_resolution():
    """Two sines 20 Hz apart at 16 kHz: resolved by the 2048/512 asymmetric pair's analysis
    window as by a 2048 Hann, not by a Hann as short as its 512-sample synthesis span."""
    def dip_db(window):
        n = window.size
        t = np.arange(n) / 16000
        spectrum = np.abs(np.fft.rfft(window * (np.sin(2 * np.pi * 500 * t) + np.sin(2 * np.pi * 520 * t)), 16384))
        freqs = np.fft.rfftfreq(16384, 1 / 16000)
        peak = spectrum[(freqs > 490) & (freqs < 530)].max()
        return 20 * np.log10(spectrum[np.argmin(np.abs(freqs - 510))] / peak)

    assert dip_db(window_pair(2048, 256, 512)[0]) < -6
    assert dip_db(hann(512)) > -1


def test_bad_window_settings_are_refused():
    with pytest.raises(ValueError, match="must divide"):
        window_pair(2048, 300)
    with pytest.raises(ValueError, match="at least 2 hops"):
        window_pair(2048, 256, 256)


def test_two_resolutions_with_masks_of_ones_give_back_the_mixture():
    """The bands' weights are complementary and each STFT reconstructs: the crossover itself
    loses nothing (the two resolutions realise the weighting as slightly different filters)."""
    x = np.random.default_rng(2).standard_normal(16000)
    y = mask_separate(x, x[None], 2048, 256, sample_rate=16000, low_n_fft=4096, crossover_hz=600)[0]
    assert 20 * np.log10(np.sqrt(np.mean((y - x) ** 2)) / np.sqrt(np.mean(x ** 2))) < -60
    low = crossover_weights(4096, 16000, 1000)  # bin 256 is 1000 Hz
    assert low[0] == 1 and low[256] == pytest.approx(0.5) and low[-1] < 1e-6


def test_the_low_band_is_masked_only_as_high_as_its_weights_reach():
    """The long STFT's masks, widening and mixture fit stop where the low band's weight falls
    under BAND_FLOOR (about 3.2 times the crossover); the high band and one resolution keep every bin."""
    low = crossover_weights(4096, 16000, 600)
    n_bins = band_bins(4096, low)
    assert low[n_bins - 1] > BAND_FLOOR >= low[n_bins:].max()
    assert 3.0 * 600 < n_bins * 16000 / 4096 < 3.4 * 600
    assert band_bins(2048, 1 - crossover_weights(2048, 16000, 600)) == band_bins(2048, None) == 1025
    with pytest.raises(ValueError, match="weight above"):
        StreamingMaskSeparator(2, 512, 128, band=np.full(257, BAND_FLOOR / 2))


@pytest.mark.parametrize("fit", [None, MixtureFit(seconds=0.1)])
def test_two_band_streaming_separator_equals_the_whole_signal_after_its_latency(fit):
    rng = np.random.default_rng(3)
    mix, voices = rng.standard_normal(9000), rng.random((3, 9000))
    whole = mask_separate(mix, voices, 1024, 256, fit=fit, sample_rate=16000, section_cents=12.0,
                          low_n_fft=4096, crossover_hz=800)
    separator = TwoBandMaskSeparator(3, 1024, 4096, 800.0, 16000.0, 256, fit=fit, section_cents=12.0)
    assert separator.latency == 4096 - 256
    streamed = stream(separator, mix, voices, 256, [256, 1792, 768, 4096])
    np.testing.assert_allclose(streamed, whole[:, :streamed.shape[1]], atol=1e-5)


def test_the_longer_window_below_the_crossover_separates_crowded_low_partials():
    """Two low voices a semitone apart (110 and 116.5 Hz, 20 partials each) and a high one
    with vibrato: with the stems' own masks, the 4096-sample resolution below 600 Hz
    separates better than 2048 samples throughout, and the 2048 one above it keeps the
    high voice as well as 2048 throughout does."""
    t = np.arange(16000 * 3) / 16000
    def voice(f0, partials, vibrato_cents=0.0):
        phase = 2 * np.pi * np.cumsum(f0 * 2 ** (vibrato_cents * np.sin(2 * np.pi * 5.5 * t) / 1200)) / 16000
        return sum(np.sin(h * phase) / h for h in range(1, partials + 1))
    stems = np.stack([voice(110.0, 20), voice(116.5, 20), 0.5 * voice(660.0, 6, vibrato_cents=60)])
    mix = stems.sum(axis=0)
    one = si_sdr_db(stems, mask_separate(mix, stems, 2048, 256))
    two = si_sdr_db(stems, mask_separate(mix, stems, 2048, 256, sample_rate=16000, low_n_fft=4096))
    assert two[:2].mean() > one[:2].mean() + 2
    assert two[2] > one[2] - 0.5


def test_bad_two_band_settings_are_refused():
    with pytest.raises(ValueError, match="longer than n_fft"):
        mask_separate(np.zeros(4096), np.zeros((2, 4096)), 2048, 256, sample_rate=16000, low_n_fft=2048)
    with pytest.raises(ValueError, match="symmetric windows"):
        mask_separate(np.zeros(4096), np.zeros((2, 4096)), 2048, 256, synthesis=512, sample_rate=16000,
                      low_n_fft=4096)
    with pytest.raises(ValueError, match="Nyquist"):
        TwoBandMaskSeparator(2, 2048, 4096, 9000.0, 16000.0)
    with pytest.raises(ValueError, match="sample rate"):
        mask_separate(np.zeros(4096), np.zeros((2, 4096)), 2048, 256, low_n_fft=4096)
