"""Multi-F0 from the mixture (sfgraph.f0.multif0, the f0_multi node, train-f0, eval-f0, separate --f0 auto)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import FIXTURES, cents, harmonic_tone
from sfgraph.data.layout import DEFAULT_VOICES, frame_times, load_dataset, read_f0_csv
from sfgraph.f0 import MULTIF0_MODEL
from sfgraph.evaluation.f0_scoring import score_item
from sfgraph.f0.basic_pitch import BasicPitchSalience
from sfgraph.f0.multif0 import (
    BINS,
    CANDIDATES,
    HARMONICS,
    LIFT_MAX_DB,
    LIFT_TARGET_DBFS,
    HarmonicSpectrum,
    ModelFolderError,
    MultiF0Options,
    MultiF0Tracker,
    RecordingPeaks,
    VoiceTracker,
    bin_midi,
    estimate_f0,
    estimate_f0_in_sung_ranges,
    format_ranges,
    hz_to_bin,
    level_lift_db,
    load_salience_model,
    parse_ranges,
    pick_peaks,
    sung_range_options,
    sung_ranges,
    track_peaks,
)
from sfgraph.resources import resolve_resource

RATE = 16000
MODEL = resolve_resource(MULTIF0_MODEL)


def tone(hz: float, seconds: float) -> np.ndarray:
    return harmonic_tone(hz, seconds, partials=8, level=0.2)


def test_harmonic_spectrum_stacks_a_tones_partials_on_its_bin():
    features = HarmonicSpectrum(lift=False).push(np.concatenate([tone(220.0, 1.0), np.zeros(2048)]))
    frame = features[30]  # (harmonics, bins) dB, well inside the tone
    tone_bin = int(round(hz_to_bin(220.0)))
    for h, harmonic in enumerate(HARMONICS):
        if harmonic >= 1:  # partial h of the tone, amplitude 0.2 / h, sits on the tone's bin in channel h
            peak_db = 20 * np.log10(0.2 / harmonic / 2)  # A²/4; the filters average power over their width: a bit less
            assert peak_db - 6 < frame[h, tone_bin] < peak_db + 0.5, harmonic
            assert frame[h, tone_bin] > max(frame[h, tone_bin - 6], frame[h, tone_bin + 6]) + 20, harmonic


@pytest.mark.parametrize("level", [1.0, 0.003])  # the quiet one is lifted, from a held peak
def test_harmonic_spectrum_streams_block_by_block(level):
    audio = level * np.random.default_rng(0).standard_normal(160000).astype(np.float32) * np.linspace(0, 1, 160000)
    audio[80000:84000] *= 100  # a burst: the held peak rises at once, then falls
    whole = HarmonicSpectrum().push(audio)
    spectrum = HarmonicSpectrum()
    pieces = [spectrum.push(audio[i:i + 333]) for i in range(0, audio.size, 333)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-3)


def test_a_quiet_recording_is_lifted_to_the_quietest_level_the_network_learned():
    unit = tone(220.0, 7.0) / np.abs(tone(220.0, 7.0)).max()
    target = 10 ** (LIFT_TARGET_DBFS / 20)

    def features(scale, lift=True):
        return HarmonicSpectrum(lift=lift).push((scale * unit).astype(np.float32))

    at_target = features(target)
    np.testing.assert_array_equal(at_target, features(target, lift=False))  # at the target or louder: as it is
    np.testing.assert_array_equal(features(0.9), features(0.9, lift=False))
    settled = np.zeros(at_target.shape, dtype=bool)
    settled[round(6.0 * 16000 / 256):] = True  # the held peak falls 6 dB/s to the recording's own
    heard = settled & (at_target > -60)  # well above float32's rounding floor
    np.testing.assert_allclose(features(target * 0.1)[heard], at_target[heard], atol=0.01)  # 20 dB lifted
    lifted_most = features(target * 10 ** (-(LIFT_MAX_DB + 10) / 20))
    np.testing.assert_allclose(lifted_most[heard], at_target[heard] - 10, atol=0.01)  # 40 dB down: 30 lifted
    broken = (target * 0.1 * unit).astype(np.float32)
    broken[1000] = np.inf  # a bad sample is no peak: the lift goes on after it
    with np.errstate(invalid="ignore"):  # the windows over it are not finite
        np.testing.assert_array_equal(HarmonicSpectrum().push(broken)[settled], features(target * 0.1)[settled])
    first = round(0.5 * 16000 / 256)  # not at once: a soft start is not yet a quiet recording
    assert (features(target * 0.1)[:first] < at_target[:first] - 10)[at_target[:first] > -60].all()


def test_peaks_are_refined_between_bins_and_sorted_by_falling_pitch():
    bins = np.arange(162)
    logits = np.full((1, 162), -8.0)
    for centre in (40.3, 100.0, 70.7):
        logits[0] = np.maximum(logits[0], 4.0 - 2.0 * (bins - centre) ** 2)
    pitch, salience = pick_peaks(logits, threshold=0.2)
    np.testing.assert_allclose(pitch[0, :3], bin_midi(np.array([100.0, 70.7, 40.3])), atol=0.02)
    assert np.isnan(pitch[0, 3:]).all() and (salience[0, 3:] == 0).all()
    assert (salience[0, :3] > 0.9).all()


def test_peaks_keep_the_strongest_and_the_lower_bin_on_a_tie():
    logits = np.full((1, 162), -8.0, dtype=np.float32)
    strengths = {10: 1.0, 30: 3.0, 50: 2.0, 70: 3.0, 90: 2.0, 110: 4.0, 130: 2.0, 150: -3.0}  # 150: below threshold
    for position, logit in strengths.items():
        logits[0, position] = logit
    pitch, salience = pick_peaks(logits, threshold=0.2)
    # the five strongest: 110, 30 and 70, then two of the three tied at 2.0, the lower bins
    np.testing.assert_allclose(pitch[0], bin_midi(np.array([110.0, 90.0, 70.0, 50.0, 30.0])))
    np.testing.assert_allclose(salience[0], 1 / (1 + np.exp(-np.array([4.0, 2.0, 3.0, 2.0, 3.0]))))


def test_a_peak_beside_an_infinite_logit_keeps_its_bin():
    logits = np.full((1, 162), -8.0, dtype=np.float32)
    logits[0, 40], logits[0, 41] = 3.0, -np.inf  # no parabola through an infinite neighbour
    pitch, salience = pick_peaks(logits, threshold=0.2)
    assert pitch[0, 0] == bin_midi(40.0) and salience[0, 0] > 0.9


def test_voice_tracker_follows_a_unison_and_a_rest():
    """Two voices: a unison (one peak for both) in frames 10-19; in frames 30-39 the lower
    voice rests while the upper sings above the lower voice's range."""
    frames = 50
    t = np.arange(frames)
    upper = np.select([t < 10, t < 20, t < 25], [67.0, 65.0, 67.0], 77.0)
    lower = np.where((t >= 10) & (t < 20), 65.0, 60.0)
    resting = (t >= 30) & (t < 40)
    pitch = np.full((frames, CANDIDATES), np.nan)
    salience = np.zeros((frames, CANDIDATES))
    for frame in range(frames):
        peaks = sorted({upper[frame]} | (set() if resting[frame] else {lower[frame]}), reverse=True)
        pitch[frame, :len(peaks)] = peaks
        salience[frame, :len(peaks)] = 0.9
    ranges = [(60, 81), (48, 69)]
    tracker = VoiceTracker(ranges, lag=8)
    decided = [tracker.push(pitch, salience), tracker.push(np.full((8, CANDIDATES), np.nan), np.zeros((8, CANDIDATES)))]
    midi = np.concatenate([d[0] for d in decided], axis=1)[:, :frames]
    confidence = np.concatenate([d[1] for d in decided], axis=1)[:, :frames]
    np.testing.assert_array_equal(midi[0], upper)
    np.testing.assert_array_equal(midi[1], np.where(resting, np.nan, lower))
    assert (confidence[1, resting] == 0).all() and (confidence[:, ~resting] == pytest.approx(0.9))
    split = VoiceTracker(ranges, lag=8)
    pieces = [split.push(pitch[i:i + 7], salience[i:i + 7])[0] for i in range(0, frames, 7)]
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), midi[:, :frames - 8])


def test_voice_tracker_decides_at_once_with_no_lag():
    tracker = VoiceTracker([(60, 81)], lag=0)
    pitch = np.full((3, CANDIDATES), np.nan)
    pitch[:, 0] = [67.0, 67.2, 67.1]
    salience = np.where(np.isnan(pitch), 0.0, 0.9)
    midi, _ = tracker.push(pitch, salience)
    np.testing.assert_array_equal(midi[0], pitch[:, 0])


def test_a_known_tone_is_tracked_within_10_cents_and_silence_is_silent():
    options = MultiF0Options(model=MODEL, voices=("lead",), ranges=parse_ranges("C3-C5"))
    for hz in (196.0, 261.63, 440.0):
        f0 = estimate_f0(tone(hz, 1.5), options)[0]
        middle = f0[15:-15]
        assert (middle > 0).all(), hz
        assert np.median(np.abs(cents(middle, hz))) < 10, (hz, np.median(cents(middle, hz)))
    tracker = MultiF0Tracker(options)
    silence = np.zeros(RATE + tracker.lookahead_samples, np.float32)
    f0, confidence = tracker.push(silence)
    assert f0.shape[1] >= 60 and (f0 == 0).all() and (confidence == 0).all()


@pytest.mark.parametrize("mode", ["offline", "live"])
def test_streaming_equals_whole_on_the_fixture_mixture(mode):
    item = load_dataset(FIXTURES / "bach_tiny", use_stems=False)[0]
    options = MultiF0Options(model=MODEL, mode=mode)
    whole = estimate_f0(item.load_mix(), options)
    tracker = MultiF0Tracker(options)
    mix = np.concatenate([item.load_mix(), np.zeros(tracker.lookahead_samples + 256, np.float32)])
    rng = np.random.default_rng(3)
    pieces, start = [], 0
    while start < mix.size:
        size = int(rng.integers(1, 3000))
        pieces.append(tracker.push(mix[start:start + size])[0])
        start += size
    streamed = np.concatenate(pieces, axis=1)[:, :whole.shape[1]]
    np.testing.assert_allclose(streamed, whole, rtol=1e-5)


@pytest.mark.parametrize("frames, lag", [(2, 0), (2, 1), (2, 2), (1, 0), (1, 1), (0, 0)])
def test_live_mode_looks_its_frames_ahead_and_no_further(frames, lag):
    """Frame t of the live mode depends on nothing past sample t·256 + 256·live_lookahead
    (32 ms by default), whatever the lag."""
    tracker = MultiF0Tracker(MultiF0Options(model=MODEL, mode="live", viterbi_lag=lag, live_lookahead=frames))
    assert tracker.lookahead_samples == 256 * frames
    item = load_dataset(FIXTURES / "bach_tiny", use_stems=False)[1]
    mix = item.load_mix()[:RATE]
    changed = mix.copy()
    changed[8000:] = np.random.default_rng(0).standard_normal(RATE - 8000) * 0.3  # from frame 31.25 on
    outputs = []
    for audio in (mix, changed):
        tracker.reset()
        outputs.append(tracker.push(audio)[0])
    decided = (8000 - 256 * frames) // 256 + 1  # frames heard whole before the change
    np.testing.assert_array_equal(outputs[0][:, :decided], outputs[1][:, :decided])
    assert not np.array_equal(outputs[0], outputs[1])


def test_live_mode_allows_a_lag_of_its_look_ahead_at_most():
    with pytest.raises(ValueError, match="viterbi_lag 3 is for offline mode"):
        MultiF0Tracker(MultiF0Options(model=MODEL, mode="live", viterbi_lag=3))
    with pytest.raises(ValueError, match="viterbi_lag 2 is for offline mode or a longer live_lookahead"):
        MultiF0Tracker(MultiF0Options(model=MODEL, mode="live", viterbi_lag=2, live_lookahead=1))
    with pytest.raises(ValueError, match="looks 0 to 2 frames ahead, got live_lookahead 3"):
        MultiF0Tracker(MultiF0Options(model=MODEL, mode="live", live_lookahead=3))
    with pytest.raises(ValueError, match="mode must be one of offline, live"):
        MultiF0Options(model=MODEL, mode="fast").lag()


@pytest.fixture(scope="module")
def fixture_scores():
    """Multi-F0 of every bach_tiny mixture with the bundled model, scored against the true F0."""
    scores = []
    for item in load_dataset(FIXTURES / "bach_tiny", use_stems=False):
        estimate = estimate_f0(item.load_mix(), MultiF0Options(model=MODEL))
        scores.append(score_item(frame_times(item.num_samples), item.f0_on_frames(), estimate.astype(np.float64)))
    return scores


def test_bundled_model_finds_the_pitches_of_the_fixture_chorales(fixture_scores):
    # Chorales the salience network never saw (its training set excluded them).
    accuracy = np.mean([s["multipitch"]["Accuracy"] for s in fixture_scores])
    assert accuracy > 0.75, accuracy


def test_bundled_model_assigns_the_pitches_to_the_right_voices(fixture_scores):
    per_voice = np.mean([[v["Raw Pitch Accuracy"] for v in s["voices"]] for s in fixture_scores], axis=0)
    assert (per_voice > 0.75).all(), per_voice


def test_a_recording_30_db_down_finds_the_same_pitches_after_its_first_seconds():
    mix = np.concatenate([item.load_mix() for item in load_dataset(FIXTURES / "bach_tiny", use_stems=False)])
    loud = estimate_f0(mix, MultiF0Options(model=MODEL))[:, 250:]  # from 4 s on: the lift has settled
    quiet = estimate_f0(mix * 10 ** (-30 / 20), MultiF0Options(model=MODEL))[:, 250:]
    both = (loud > 0) & (quiet > 0)
    same = ((loud > 0) == (quiet > 0)) & (~both | (np.abs(cents(np.where(both, quiet, 1), np.where(both, loud, 1)))
                                                   < 50))
    assert same.mean() > 0.9, same.mean()


def test_live_mode_finds_most_pitches_with_32_ms_of_look_ahead():
    accuracy = []
    for item in load_dataset(FIXTURES / "bach_tiny", use_stems=False):
        estimate = estimate_f0(item.load_mix(), MultiF0Options(model=MODEL, mode="live"))
        accuracy.append(score_item(frame_times(item.num_samples), item.f0_on_frames(),
                                   estimate.astype(np.float64))["multipitch"]["Accuracy"])
    assert np.mean(accuracy) > 0.8, accuracy  # 0.84 (offline: 0.95)


def test_sung_ranges_come_from_the_frames_where_every_voice_sounds():
    frames = 400
    pitches = np.array([72.0, 65.0, 57.0, 48.0])[:, None] + np.linspace(-2, 2, frames)[None]
    f0 = 440.0 * 2 ** ((pitches - 69) / 12)
    f0[0, 300:] = 0.0  # the soprano rests; the alto's high note then does not count
    f0[1, 300:] = 440.0 * 2 ** ((75 - 69) / 12)
    f0[0, :50] = f0[1, :50]  # nor does a unison: the soprano on the alto's note
    ranges = sung_ranges(f0)
    low, high = np.array(ranges).T
    # where all four sound apart (frames 50-299) the alto glides from 63.5 to 66: its 2nd to 98th
    # percentile, a semitone wider, to whole semitones
    assert ranges[1] == (62.0, 67.0)
    np.testing.assert_array_equal(low, [69, 62, 54, 45])
    np.testing.assert_array_equal(high, [74, 67, 59, 50])
    assert format_ranges(ranges) == ["A4-D5", "D4-G4", "F#3-B3", "A2-D3"]
    assert parse_ranges(format_ranges(ranges)) == ranges
    assert sung_ranges(f0[:, 269:]) is None  # 31 frames (under 0.5 s) with every voice sounding
    assert sung_ranges(f0[::-1]) is None  # not from high to low
    f0[2, 50:300] = np.inf  # a broken tenor: no frame counts
    assert sung_ranges(f0) is None


def test_a_ghost_octave_of_the_top_voice_does_not_count_for_the_ranges_a_sung_one_does():
    # where the bass rests, the tracker moves every voice up one: the alto takes the
    # soprano's note and the soprano its octave (her 2nd harmonic), an octave above the
    # alto, who is then above where she sings elsewhere. Those frames would stretch every
    # range upwards; they do not count.
    frames = 400
    notes = np.array([67.0, 62.0, 55.0, 48.0])[:, None] + np.linspace(-1, 1, frames)[None]
    shifted = notes.copy()
    shifted[:, 250:] = np.stack([notes[0] + 12, notes[0], notes[1], notes[2]])[:, 250:]
    ranges = sung_ranges(440.0 * 2 ** ((shifted - 69) / 12))
    assert ranges == sung_ranges(440.0 * 2 ** ((notes[:, :250] - 69) / 12)) == ((65, 69), (60, 64), (53, 57), (46, 50))
    # a sung octave: the soprano an octave above the alto, who stays where she sings elsewhere
    sung = notes.copy()
    sung[0, 250:] = notes[1, 250:] + 12
    assert sung_ranges(440.0 * 2 ** ((sung - 69) / 12))[0] == (65, 76)


def peaks_of_notes(notes_per_frame: list[list[float]], salience: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Salience peaks (pitch, salience), as ``MultiF0Tracker.peaks`` gives them, at these MIDI notes."""
    pitch = np.full((len(notes_per_frame), CANDIDATES), np.nan)
    strength = np.zeros_like(pitch)
    for frame, notes in enumerate(notes_per_frame):
        pitch[frame, :len(notes)] = sorted(notes, reverse=True)
        strength[frame, :len(notes)] = salience
    return pitch, strength


def test_a_long_recordings_ranges_come_from_the_salience_that_hears_rests():
    """The bass rests 40 % of the time. The tracked salience then has a peak at the tenor's
    3rd harmonic, a fifth above the soprano's note, and its track moves every voice up one
    (the soprano onto that peak), which widens every range; the range-fit salience has no
    such peak. Its track gives the ranges where it has 4 s (250 frames) with every voice
    sounding apart, and the tracked salience's where it has less."""
    options = MultiF0Options(model=MODEL)
    for frames, from_range_fit in ((600, True), (300, False)):
        resting = np.arange(frames) % 100 >= 60
        notes = np.array([67.0, 62.0, 55.0, 48.0])[:, None] + np.linspace(-1, 1, frames)[None]
        tracked = peaks_of_notes([[notes[2, t] + 19, *notes[:3, t]] if resting[t] else list(notes[:, t])
                                  for t in range(frames)])
        heard = peaks_of_notes([list(notes[:3, t]) if resting[t] else list(notes[:, t]) for t in range(frames)])
        ranges = sung_range_options(None, options, RecordingPeaks(tracked, heard, frames)).ranges
        shifted = sung_ranges(track_peaks(options, tracked, frames))
        assert shifted == ((65, 76), (60, 69), (53, 64), (46, 57))
        assert ranges == (((65, 69), (60, 64), (53, 57), (46, 50)) if from_range_fit else shifted)


def test_the_fixture_chorales_sung_ranges_hold_their_voices(fixture_scores):
    """Fitted on the mixture alone, each voice's range holds nearly all of its true pitches,
    is narrower than its default, and the chorales' pitches are found as well as with the defaults."""
    default = MultiF0Options(model=MODEL)
    accuracy = []
    for item in load_dataset(FIXTURES / "bach_tiny", use_stems=False):
        options, estimate = estimate_f0_in_sung_ranges(item.load_mix(), default)
        assert options.ranges is not None
        for (low, high), (default_low, default_high), truth in zip(options.ranges, default.voice_ranges(),
                                                                    item.f0_on_frames()):
            sung = 69 + 12 * np.log2(truth[truth > 0] / 440)
            assert np.mean((sung > low - 0.5) & (sung < high + 0.5)) > 0.95, item.name
            assert high - low < default_high - default_low
        np.testing.assert_array_equal(estimate, estimate_f0(item.load_mix(), options))
        accuracy.append(score_item(frame_times(item.num_samples), item.f0_on_frames(),
                                   estimate.astype(np.float64))["multipitch"]["Accuracy"])
    with_defaults = [s["multipitch"]["Accuracy"] for s in fixture_scores]
    assert np.mean(accuracy) > np.mean(with_defaults) - 0.01, (accuracy, with_defaults)
    given = MultiF0Options(model=MODEL, ranges=((60, 81), (52, 74), (46, 69), (36, 64)))
    assert estimate_f0_in_sung_ranges(np.zeros(16000, np.float32), given)[0] is given  # given ranges stand
    assert estimate_f0_in_sung_ranges(np.zeros(16000, np.float32), default)[0] is default  # nothing sung


def test_ranges_are_parsed_and_unknown_voices_need_them():
    assert parse_ranges("C4-A5, 53-74") == ((60.0, 81.0), (53.0, 74.0))
    for bad in ("C4", "A5-C4", "X9-C4"):
        with pytest.raises(ValueError, match="range"):
            parse_ranges(bad)
    with pytest.raises(ValueError, match="no default range for voice.*lead"):
        MultiF0Options(model=MODEL, voices=("lead",)).voice_ranges()
    with pytest.raises(ValueError, match="from the highest to the lowest"):
        MultiF0Options(model=MODEL, voices=("bass", "soprano")).voice_ranges()
    with pytest.raises(ValueError, match="1 to 6 voices"):
        MultiF0Options(model=MODEL, voices=tuple(f"v{i}" for i in range(7)),
                       ranges=tuple((80 - 5 * i, 90 - 5 * i) for i in range(7))).voice_ranges()


def test_broken_model_folders_give_clear_errors(tmp_path):
    with pytest.raises(ModelFolderError, match="not a multi-F0 model folder"):
        load_salience_model(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "multif0.json").write_text((MODEL / "multif0.json").read_text())
    (broken / "weights.pt").write_bytes((MODEL / "weights.pt").read_bytes()[:100])
    with pytest.raises(ModelFolderError, match="cannot load the multi-F0 model"):
        load_salience_model(broken)
    description = json.loads((MODEL / "multif0.json").read_text())
    description["format_version"] = 99
    (broken / "multif0.json").write_text(json.dumps(description))
    with pytest.raises(ModelFolderError, match="format version 99"):
        load_salience_model(broken)


def sfgraph(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sfgraph.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_train_f0_learns_and_writes_a_loadable_model(tmp_path):
    result = sfgraph("train-f0", FIXTURES / "bach_tiny", "-o", tmp_path / "model", "--steps", "40",
                     "--eval-every", "20", "--batch-size", "4", "--threads", "1")
    assert result.returncode == 0, result.stderr
    losses = [float(line.split("validation")[1].split()[0]) for line in result.stdout.splitlines()
              if line.startswith("step")]
    assert len(losses) == 2 and losses[1] < losses[0]
    network = load_salience_model(tmp_path / "model")
    assert sum(p.numel() for p in network.parameters()) < 100_000
    description = json.loads((tmp_path / "model" / "multif0.json").read_text())
    assert description["training"]["step"] in (20, 40)


def test_train_f0_init_fine_tunes_a_trained_model(tmp_path):
    """--init starts from the bundled weights: its first validation is already far below a
    fresh network's, and the folder records where it started."""
    def first_validation(*extra):
        result = sfgraph("train-f0", FIXTURES / "bach_tiny", "-o", tmp_path / extra[-1].replace(":", "_"),
                         "--steps", "2", "--eval-every", "2", "--batch-size", "2", "--threads", "1", *extra[:-1])
        assert result.returncode == 0, result.stderr
        return float(result.stdout.split("validation")[1].split()[0])

    assert first_validation("--init", MULTIF0_MODEL, "tuned") < 0.5 * first_validation("fresh")
    assert json.loads((tmp_path / "tuned" / "multif0.json").read_text())["training"]["init"] == MULTIF0_MODEL
    result = sfgraph("train-f0", FIXTURES / "bach_tiny", "-o", tmp_path / "bad", "--init", tmp_path / "missing")
    assert result.returncode == 2 and "--init: " in result.stderr and "not a multi-F0 model folder" in result.stderr
    result = sfgraph("train-f0", FIXTURES / "bach_tiny", "-o", tmp_path / "tuned", "--init", tmp_path / "tuned")
    assert result.returncode == 2 and "is also the output folder" in result.stderr


def test_train_f0_reports_a_bad_dataset(tmp_path):
    result = sfgraph("train-f0", tmp_path / "missing", "-o", tmp_path / "model")
    assert result.returncode == 2
    assert "missing" in result.stderr and "Traceback" not in result.stderr


def test_f0_cli_multif0_then_eval_f0(tmp_path):
    item = load_dataset(FIXTURES / "bach_tiny", use_stems=False)[1]
    estimates = tmp_path / "estimates" / item.name
    result = sfgraph("f0", item.mix_path(), "-o", estimates, "--method", "multif0")
    assert result.returncode == 0, result.stderr
    assert "voice ranges (as sung): soprano " in result.stdout and "soprano B3-A5" not in result.stdout
    for voice in DEFAULT_VOICES:
        times, f0 = read_f0_csv(estimates / f"{voice}.csv")
        assert times.size == 1 + item.num_samples // 256 and (f0 > 0).mean() > 0.5
    dataset = tmp_path / "one"
    dataset.mkdir()
    (dataset / item.name).symlink_to(item.path)
    report = tmp_path / "f0.json"
    result = sfgraph("eval-f0", dataset, "--estimates", f"multif0={tmp_path / 'estimates'}", "-o", report)
    assert result.returncode == 0, result.stderr
    assert "Raw Pitch Accuracy per voice" in result.stdout and "Chroma Accuracy" in result.stdout
    scores = json.loads(report.read_text())["multif0"]
    assert scores["multipitch"]["Accuracy"] > 0.7
    missing = sfgraph("eval-f0", dataset, "--estimates", f"none={tmp_path / 'nowhere'}")
    assert missing.returncode == 2 and "nowhere: no such folder (none)" in missing.stderr
    (tmp_path / "partial" / item.name).mkdir(parents=True)
    partial = sfgraph("eval-f0", dataset, "--estimates", f"partial={tmp_path / 'partial'}")
    assert partial.returncode == 2 and "soprano.csv: missing (partial)" in partial.stderr


def test_f0_cli_live_mode_gives_the_live_trackers_frames(tmp_path):
    """``sfgraph f0 --multif0-mode live --live-lookahead 1 --unison-leap-cents 0`` writes
    what the tracker (and so the f0_multi node in a live graph) gives with these settings;
    a look-ahead it cannot have is refused, naming it."""
    item = load_dataset(FIXTURES / "bach_tiny", use_stems=False)[0]
    result = sfgraph("f0", item.mix_path(), "-o", tmp_path / "live16", "--method", "multif0",
                     "--multif0-mode", "live", "--live-lookahead", "1", "--unison-leap-cents", "0")
    assert result.returncode == 0, result.stderr
    expected = estimate_f0(item.load_mix(), MultiF0Options(model=MODEL, mode="live", live_lookahead=1,
                                                           unison_leap_cents=0))
    for voice, track in zip(DEFAULT_VOICES, expected):
        _, f0 = read_f0_csv(tmp_path / "live16" / f"{voice}.csv")
        np.testing.assert_allclose(f0, track, rtol=1e-4, atol=1e-3)
    refused = sfgraph("f0", item.mix_path(), "-o", tmp_path / "bad", "--method", "multif0",
                      "--multif0-mode", "live", "--live-lookahead", "3")
    assert refused.returncode == 2 and "argument --live-lookahead: invalid choice: 3" in refused.stderr


def test_separate_with_f0_auto_beats_the_mixture(tmp_path):
    from sfgraph.evaluation.scoring import si_sdr_db
    from helpers import read_wav

    item = load_dataset(FIXTURES / "bach_tiny", require_stems=True)[2]
    result = sfgraph("separate", item.mix_path(), "--f0", "auto", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "voice ranges (as sung): soprano " in result.stdout  # from a first pass of the tracker
    stems = item.load_stems()
    estimates = np.stack([read_wav(tmp_path / "out" / f"{voice}.wav")[0][0] for voice in item.voices])
    ours = si_sdr_db(stems, estimates[:, :stems.shape[1]])
    floor = si_sdr_db(stems, np.repeat(item.load_mix()[None], len(item.voices), axis=0))
    assert np.mean(ours) > np.mean(floor) + 10, (ours, floor)
    # the refined F0 it separated with, in files that --f0 reads, on the recording's frame grid
    true_f0 = item.f0_on_frames()
    for voice, truth in zip(item.voices, true_f0):
        times, f0 = read_f0_csv(tmp_path / "out" / "f0" / f"{voice}.csv")
        np.testing.assert_allclose(times, frame_times(item.num_samples)[:times.size], atol=1e-6)
        assert times.size >= truth.size - 1
        both = (f0 > 0) & (truth[:f0.size] > 0)
        assert both.mean() > 0.6
        assert np.median(np.abs(1200 * np.log2(f0[both] / truth[:f0.size][both]))) < 15


def test_f0_multi_node_in_a_graph_reports_bad_ranges(graph_file):
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.errors import GraphError
    from sfgraph.graph.declaration import load_graph_decl

    path = graph_file(f"""
name: bad
sample_rate: 16000
nodes:
  - {{id: mix, type: file_in, params: {{path: "{FIXTURES / 'bach_tiny' / '0000_bwv159.5_0' / 'mix.wav'}"}}}}
  - {{id: f0, type: f0_multi, params: {{voices: [high, low]}}}}
connections:
  - mix.audio -> f0.mix
""")
    with pytest.raises(GraphError, match=r"f0.*no default range for voice\(s\) high, low"):
        build_graph(load_graph_decl(str(path)))


SEPARATE_WITH = """\
sample_rate: 16000
block_size: 4096
nodes:
  - {{id: mix,   type: file_in,   params: {{path: "{mix}"}}}}
  - {{id: f0,    type: {f0}}}
  - {{id: net,   type: param_net, params: {{model: "sfgraph:models/default", device: cpu}}}}
  - {{id: synth, type: sf_synth}}
  - {{id: mask,  type: mask,      params: {{n_fft: 2048, hop: 256, power: 1}}}}
  - {{id: out,   type: file_out,  params: {{path: "{out}/{{label}}.wav"}}}}
connections:
  {f0_input}- f0.f0 -> net.f0
  - mix.audio -> net.mix
  - f0.f0 -> synth.f0
  - net.controls -> synth.controls
  - synth.voices -> mask.voices
  - mix.audio -> mask.mix
  - mask.voices -> out.audio
"""


def best_lag(reference: np.ndarray, estimate: np.ndarray, most: int = 2048) -> int:
    """Lag (samples) at which ``estimate`` best matches ``reference`` (positive: estimate late)."""
    size = 1 << int(np.ceil(np.log2(reference.size + estimate.size)))
    correlation = np.fft.irfft(np.fft.rfft(estimate, size) * np.conj(np.fft.rfft(reference, size)), size)
    lags = np.concatenate([np.arange(0, most + 1), np.arange(-most, 0)])
    return int(lags[np.argmax(np.concatenate([correlation[:most + 1], correlation[-most:]]))])


def test_f0_multi_look_ahead_counts_in_the_latency_and_offline_outputs_stay_aligned(graph_file, tmp_path):
    """The tracker's look-ahead (window half, network context, Viterbi lag) is part of the
    graph's latency; offline, the separated voices still line up with the mixture as
    they do with F0 files."""
    from sfgraph.evaluation.scoring import si_sdr_db
    from sfgraph.engine.offline import render
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.declaration import load_graph_decl
    from helpers import read_wav

    item = load_dataset(FIXTURES / "bach_tiny", require_stems=True)[2]
    stems = item.load_stems()
    scores = {}
    for f0, f0_input in ((f"f0_files, params: {{dir: \"{item.path / 'f0'}\"}}", ""),
                         ("f0_multi", "- mix.audio -> f0.mix\n  ")):
        out = tmp_path / f0[:8]
        path = graph_file(SEPARATE_WITH.format(mix=item.mix_path(), f0=f0, out=out, f0_input=f0_input))
        if f0 == "f0_multi":
            validated = sfgraph("validate", path)
            # f0_multi's: its salience's (basic-pitch's 2-s windows, longer than the network's
            # half window and 4 frames of context), then the tracker's lag; then sf_synth's one frame
            salience = max(1024 + 4 * 256, BasicPitchSalience(BINS).lookahead_samples)
            lookahead_ms = (salience + 20 * 256) / 16 + 16
            assert f"latency {(2048 - 256) / 16 + lookahead_ms:.2f} ms" in validated.stdout, validated.stdout
            assert f"look-ahead {(salience + 20 * 256) / 16:.1f} ms" in validated.stdout
        graph = build_graph(load_graph_decl(str(path)), output_dir=tmp_path)
        render(graph, progress=False)
        estimates = np.stack([read_wav(out / f"{voice}.wav")[0][0] for voice in item.voices])
        assert estimates.shape[1] == stems.shape[1]
        assert [best_lag(s, e) for s, e in zip(stems, estimates)] == [0] * len(stems)
        scores[f0[:8]] = np.mean(si_sdr_db(stems, estimates))
    assert scores["f0_multi"] > scores["f0_files"] - 1, scores
