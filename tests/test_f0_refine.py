"""F0 refined against each voice's own audio (sfgraph.f0.refine, the f0_refine node, and
``separate --f0 auto``'s second pass)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import FIXTURES, cents, harmonic_tone, read_wav
from sfgraph.data.layout import load_dataset, write_f0_csv
from sfgraph.f0.refine import F0Refiner, RefineOptions, refine_f0
from sfgraph.grid import HOP_LENGTH, frame_times


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    return harmonic_tone(hz, seconds, partials=10, level=1.0)


def test_a_detuned_f0_is_moved_to_the_partials_and_silence_stays_silent():
    true_hz = [220.0, 311.0]
    audio = np.stack([tone(hz) for hz in true_hz])
    frames = 1 + audio.shape[1] // HOP_LENGTH
    given = np.stack([np.full(frames, 220.0 * 2 ** (30 / 1200)), np.full(frames, 311.0 * 2 ** (-45 / 1200))])
    given[1, 20:30] = 0.0
    refined = refine_f0(audio, given)
    assert refined.shape == given.shape
    inner = slice(8, frames - 8)  # windows that lie inside the tone
    for voice, hz in enumerate(true_hz):
        voiced = refined[voice, inner] > 0
        assert np.abs(cents(refined[voice, inner][voiced], hz)).max() < 2.0
    assert np.all(refined[1, 20:30] == 0.0)


def test_a_partial_beyond_the_reach_is_not_followed():
    audio = tone(220.0)[None]
    frames = 1 + audio.shape[1] // HOP_LENGTH
    given = np.full((1, frames), 220.0 * 2 ** (150 / 1200))
    refined = refine_f0(audio, given, RefineOptions(reach_cents=50.0))
    assert np.abs(cents(refined[0, 8:-8], given[0, 8:-8])).max() <= 50.0


def test_streaming_equals_whole_however_audio_and_f0_are_split():
    rng = np.random.default_rng(3)
    audio = np.stack([tone(196.0, 0.8), tone(262.0, 0.8)]) + 0.01 * rng.standard_normal((2, 12800))
    frames = 1 + audio.shape[1] // HOP_LENGTH
    given = np.stack([np.full(frames, 200.0), np.full(frames, 258.0)])
    whole = refine_f0(audio, given)
    refiner = F0Refiner(2)
    pieces, sample, frame = [], 0, 0
    while sample < audio.shape[1] or frame < frames:
        n, k = int(rng.integers(1, 3000)), int(rng.integers(0, 12))
        pieces.append(refiner.push(audio[:, sample:sample + n], given[:, frame:frame + k]))
        sample, frame = sample + n, frame + k
    # the end: silence, and unvoiced frames past the last for the quiet-frame gate's look-ahead
    options = RefineOptions()
    pieces.append(refiner.push(np.zeros((2, options.lookahead_samples + HOP_LENGTH)),
                               np.zeros((2, options.quiet_lookahead_frames))))
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1)[:, :frames], whole)


@pytest.mark.parametrize("options, message", [(RefineOptions(n_fft=1000), "power of two"),
                                              (RefineOptions(reach_cents=0), "reach_cents"),
                                              (RefineOptions(harmonics=0), "harmonics"),
                                              (RefineOptions(quiet_db=-3.0), "quiet_db"),
                                              (RefineOptions(quiet_reach=0), "quiet_reach")])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        F0Refiner(1, options)


def test_refining_a_detuned_f0_on_a_first_separation_separates_better(tmp_path):
    """The fixture chorale with every voice's true F0 detuned by 15-25 cents (as a multi-F0
    estimate on real voices is): refined on the first separation, the F0 comes back near
    the truth and the second separation is clearly better."""
    from sfgraph.cli.separate import separate_graph
    from sfgraph.engine.offline import render
    from sfgraph.evaluation.scoring import si_sdr_db
    from sfgraph.graph.build import build_graph

    item = load_dataset(FIXTURES / "bach_tiny", require_stems=True)[0]
    true_f0 = item.f0_on_frames()
    detuned = true_f0 * 2 ** (np.array([20.0, -25.0, 15.0, -20.0])[:, None] / 1200)
    stems = item.load_stems()

    def separate(f0, name):
        folder = tmp_path / name
        times = frame_times(item.num_samples)
        for voice, track in zip(item.voices, f0):
            write_f0_csv(folder / "f0" / f"{voice}.csv", times, track)
        render(build_graph(separate_graph(str(item.mix_path()), str(folder / "f0")), output_dir=folder / "out"),
               progress=False)
        voices = np.stack([read_wav(folder / "out" / f"{voice}.wav")[0][0] for voice in item.voices])
        return voices, float(np.mean(si_sdr_db(stems, voices[:, :stems.shape[1]])))

    first, first_db = separate(detuned, "detuned")
    refined = refine_f0(first, detuned)
    voiced = (true_f0 > 0) & (refined > 0)
    assert np.median(np.abs(cents(detuned[voiced], true_f0[voiced]))) > 15
    assert np.median(np.abs(cents(refined[voiced], true_f0[voiced]))) < 10
    _, second_db = separate(refined, "refined")
    assert second_db > first_db + 1.0, (first_db, second_db)
