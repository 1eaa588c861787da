"""The mask STFT (sfgraph.dsp.stft): perfect reconstruction, streaming = whole, low-delay windows."""
from __future__ import annotations

import numpy as np
import pytest

from sfgraph.dsp.mask_fit import MixtureFit
from sfgraph.dsp.stft import StreamingMaskSeparator, hann, istft, mask_separate, stft, window_pair

CONFIGS = [(2048, 256, None), (1024, 256, None), (2048, 256, 512), (1536, 192, 384), (2048, 128, 384)]


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
    pad = separator.latency + 4 * hop
    mix_in = np.concatenate([mix, np.zeros(pad)])
    voices_in = np.concatenate([voices, np.zeros((3, pad))], axis=1)
    blocks = [separator.process(mix_in[i:i + 2 * hop], voices_in[:, i:i + 2 * hop])
              for i in range(0, mix_in.size - 2 * hop + 1, 2 * hop)]
    streamed = np.concatenate(blocks, axis=1)[:, separator.latency:separator.latency + mix.size]
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
