"""Streaming resamplers (sfgraph.dsp.resample): the polyphase up-sampler is pedalboard's StreamResampler,
and file_in's reader through it is pedalboard's ``resampled_to``."""
from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile, StreamResampler

from sfgraph.dsp.resample import IntegerUpsampler, stream_resampler
from sfgraph.nodes.io import UpsampledReader


@pytest.mark.parametrize("source_rate, factor, channels", [(16000, 3, 2), (16000, 3, 1), (24000, 2, 2), (8000, 6, 1)])
def test_integer_upsampler_gives_stream_resamplers_blocks_and_samples(source_rate, factor, channels):
    rng = np.random.default_rng(0)
    ours = IntegerUpsampler(source_rate, factor, channels)
    pedalboards = StreamResampler(float(source_rate), float(source_rate * factor), channels)
    # blocks shorter and longer than the samples held back, then the flush
    for n in [5, 63, 64, 65, 300, 5461, 3, 1000, None]:
        block = None if n is None else (0.3 * rng.standard_normal((channels, n))).astype(np.float32)
        expected = pedalboards.process() if block is None else pedalboards.process(block)
        got = ours.process(block)
        assert got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=2e-6)


def test_reset_starts_a_new_stream():
    upsampler = IntegerUpsampler(16000, 3, 1)
    block = np.random.default_rng(1).standard_normal((1, 500)).astype(np.float32)
    first = upsampler.process(block)
    upsampler.reset()
    np.testing.assert_array_equal(upsampler.process(block), first)


def test_other_ratios_keep_pedalboards_resampler():
    assert isinstance(stream_resampler(16000.0, 48000.0, 2), IntegerUpsampler)
    assert isinstance(stream_resampler(48000.0, 16000.0, 1), StreamResampler)
    assert isinstance(stream_resampler(16000.0, 44100.0, 2), StreamResampler)


def test_upsampled_file_reads_as_resampled_to(tmp_path):
    path = tmp_path / "x.wav"
    with AudioFile(str(path), "w", 16000, 2, bit_depth=32) as f:
        f.write((0.3 * np.random.default_rng(2).standard_normal((2, 16001))).astype(np.float32))
    expected = AudioFile(str(path)).resampled_to(48000.0)
    ours = UpsampledReader(AudioFile(str(path)), IntegerUpsampler(16000, 3, 2))
    for n in [700, 1, 5000, 50000, 10]:  # the last reads run past the end
        want = expected.read(n)
        got = ours.read(n)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-6)
    ours.close()
