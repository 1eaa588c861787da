"""basic-pitch's contours as the offline multi-F0 tracker's second salience (sfgraph.f0.basic_pitch)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import FIXTURES, harmonic_tone
from sfgraph.data.layout import load_dataset, read_f0_csv
from sfgraph.evaluation.f0_scoring import score_item
from sfgraph.f0 import MULTIF0_MODEL
from sfgraph.f0 import basic_pitch
from sfgraph.f0.basic_pitch import BasicPitchMissing, BasicPitchSalience
from sfgraph.f0.multif0 import (
    BINS,
    RANGE_FIT_BASIC_PITCH,
    MultiF0Options,
    MultiF0Tracker,
    estimate_f0,
    hz_to_bin,
    whole_peaks,
)
from sfgraph.grid import HOP_LENGTH, SAMPLE_RATE, frame_times
from sfgraph.resources import resolve_path

MODEL = resolve_path(MULTIF0_MODEL)


def whole(salience: BasicPitchSalience, audio: np.ndarray) -> np.ndarray:
    """Every frame of ``audio``: pushed whole, then flushed with silence."""
    frames = 1 + audio.size // HOP_LENGTH
    out = np.concatenate([salience.push(audio), salience.push(np.zeros(salience.lookahead_samples + HOP_LENGTH))])
    return out[:frames]


def test_a_tone_shows_at_its_pitch_and_time_and_silence_stays_low():
    """A 220-Hz tone from 1.0 s to 2.5 s: the contour peaks at its bin (a third of a
    semitone each) while it sounds, rises and falls within 3 frames (48 ms) of its edges,
    and stays low in the silence around it."""
    audio = np.zeros(4 * SAMPLE_RATE, dtype=np.float32)
    audio[SAMPLE_RATE:SAMPLE_RATE * 5 // 2] = harmonic_tone(220.0, 1.5, 5, 0.3)
    contour = whole(BasicPitchSalience(BINS), audio)
    assert contour.shape == (1 + audio.size // HOP_LENGTH, BINS)
    times = frame_times(audio.size)
    sounding = (times > 1.05) & (times < 2.45)
    assert np.all(contour[sounding].argmax(axis=1) == round(float(hz_to_bin(220.0))))  # exactly its bin
    tone_bin = contour[:, int(round(float(hz_to_bin(220.0))))]
    assert tone_bin[sounding].min() > 0.5
    above = np.flatnonzero(tone_bin > 0.4)
    assert abs(times[above[0]] - 1.0) <= 0.048 and abs(times[above[-1]] - 2.5) <= 0.048
    assert contour[(times < 0.9) | (times > 2.6)].max() < 0.3


def test_where_the_grids_meet_a_frame_is_basic_pitchs_own_contour_frame():
    """Our frame t = 320 k sits on contour frame 441 k (16 kHz and 22.05 kHz, both hops 256):
    there it is that frame of the network's own output for the window holding it (each
    window's first 15 frames dropped, windows 141 frames apart), bins 37 to 198: no shift in
    time or pitch, and no interpolation."""
    from sfgraph.dsp.resample import stream_resampler
    from sfgraph.f0.basic_pitch import CONTOUR_OUTPUT, EDGE_FRAMES, FIRST_BIN, HOP, KEPT_FRAMES, WINDOW

    audio = np.concatenate([item.load_mix() for item in load_dataset(FIXTURES / "bach_tiny")])  # 9 s
    salience = BasicPitchSalience(BINS)
    ours = whole(salience, audio)
    resampler = stream_resampler(SAMPLE_RATE, 22050, 1)
    flush = np.zeros((1, salience.lookahead_samples + HOP_LENGTH), dtype=np.float32)
    resampled = np.concatenate([resampler.process(audio[None])[0], resampler.process(flush)[0]])
    padded = np.concatenate([np.zeros(EDGE_FRAMES * HOP, dtype=np.float32), resampled])
    for k in range(2):  # frames 0 and 320 (5.12 s): windows 0 and 3
        window, local = divmod(441 * k, KEPT_FRAMES)
        samples = padded[window * KEPT_FRAMES * HOP:][:WINDOW]
        raw = salience.session.run([CONTOUR_OUTPUT], {salience.input_name: samples[None, :, None]})[0][0]
        np.testing.assert_allclose(ours[320 * k], raw[EDGE_FRAMES + local, FIRST_BIN:FIRST_BIN + BINS], atol=1e-6)


def test_blocks_give_the_frames_of_a_whole_push_and_each_frame_comes_within_its_look_ahead():
    """Pushed in uneven blocks, the same frames, bit for bit, as the whole signal; after n
    samples every frame t with t·256 + lookahead_samples ≤ n is out."""
    audio = load_dataset(FIXTURES / "bach_tiny")[0].load_mix()
    expected = whole(BasicPitchSalience(BINS), audio)
    salience = BasicPitchSalience(BINS)
    padded = np.concatenate([audio, np.zeros(salience.lookahead_samples + HOP_LENGTH, dtype=np.float32)])
    pieces, pushed = [], 0
    for size in np.random.default_rng(0).integers(1, 9000, size=100000):
        if pushed >= padded.size:
            break
        pieces.append(salience.push(padded[pushed:pushed + size]))
        pushed = min(pushed + int(size), padded.size)
        out = sum(piece.shape[0] for piece in pieces)
        assert out >= (pushed - salience.lookahead_samples) // HOP_LENGTH + 1 or pushed < salience.lookahead_samples
    streamed = np.concatenate(pieces)[:expected.shape[0]]
    np.testing.assert_array_equal(streamed, expected)


def test_the_offline_tracker_with_basic_pitch_streams_as_it_runs_whole():
    """``f0_multi`` offline (basic-pitch on by default) gives the same F0 in blocks as whole."""
    item = load_dataset(FIXTURES / "bach_tiny")[1]
    mix = item.load_mix()
    options = MultiF0Options(model=MODEL)
    expected = estimate_f0(mix, options)
    tracker = MultiF0Tracker(options)
    padded = np.concatenate([mix, np.zeros(tracker.lookahead_samples + HOP_LENGTH, dtype=np.float32)])
    blocks = [tracker.push(padded[i:i + 4096])[0] for i in range(0, padded.size, 4096)]
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1)[:, :expected.shape[1]], expected)


def test_a_recordings_range_fit_peaks_weigh_basic_pitch_at_least_0_7():
    """``whole_peaks`` picks the range fit's peaks from the same saliences as the tracked
    ones, with ``RANGE_FIT_BASIC_PITCH`` of basic-pitch (or the tracker's weight if more):
    the peaks a tracker with that weight reads. Without basic-pitch there are none."""
    mix = load_dataset(FIXTURES / "bach_tiny")[0].load_mix()[:2 * SAMPLE_RATE]
    peaks = whole_peaks(mix, MultiF0Options(model=MODEL))
    at_fit_weight = whole_peaks(mix, MultiF0Options(model=MODEL, basic_pitch=RANGE_FIT_BASIC_PITCH))
    for fitted, tracked in zip(peaks.range_fit, at_fit_weight.tracked):
        np.testing.assert_array_equal(fitted, tracked)
    assert not np.array_equal(peaks.range_fit[1], peaks.tracked[1])
    heavier = whole_peaks(mix, MultiF0Options(model=MODEL, basic_pitch=0.9))
    for fitted, tracked in zip(heavier.range_fit, heavier.tracked):
        np.testing.assert_array_equal(fitted, tracked)
    assert whole_peaks(mix, MultiF0Options(model=MODEL, basic_pitch=0)).range_fit is None


def test_basic_pitch_keeps_the_fixture_chorales_pitches():
    """On the soundfont fixture the mixed salience finds as many pitches as the network
    alone, within 0.02 of multi-pitch accuracy (0.956 either way when measured)."""
    accuracy = {}
    for weight in (0.0, 0.4):
        scores = []
        for item in load_dataset(FIXTURES / "bach_tiny"):
            estimate = estimate_f0(item.load_mix(), MultiF0Options(model=MODEL, basic_pitch=weight))
            truth = item.f0_on_frames()
            scores.append(score_item(frame_times(item.num_samples), truth, estimate)["multipitch"]["Accuracy"])
        accuracy[weight] = np.mean(scores)
    assert accuracy[0.4] > 0.93 and accuracy[0.4] > accuracy[0.0] - 0.02, accuracy


def test_live_mode_refuses_basic_pitch_and_a_weight_outside_0_to_1():
    assert MultiF0Tracker(MultiF0Options(model=MODEL, mode="live")).basic_pitch_weight == 0.0
    with pytest.raises(ValueError, match="basic_pitch looks 1.8 s ahead: it is for offline mode only"):
        MultiF0Tracker(MultiF0Options(model=MODEL, mode="live", basic_pitch=0.4))
    with pytest.raises(ValueError, match="basic_pitch is a weight from 0 to 1, got 1.5"):
        MultiF0Tracker(MultiF0Options(model=MODEL, basic_pitch=1.5))


def test_a_missing_basic_pitch_says_how_to_install_it_or_turn_it_off(monkeypatch, tmp_path, capsys):
    """Without the basic_pitch package (an install without the Makefile) the error names
    the pip command and the setting that does without it; weight 0 needs neither."""
    from sfgraph.cli import main

    monkeypatch.setattr(basic_pitch.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BasicPitchMissing, match=r"pip install --no-deps basic-pitch==0.4.0, or set f0_multi's "
                                                r"basic_pitch \(--basic-pitch\) to 0"):
        MultiF0Tracker(MultiF0Options(model=MODEL))
    assert MultiF0Tracker(MultiF0Options(model=MODEL, basic_pitch=0.0)).lookahead_samples == 1024 + 24 * 256
    # the commands report it in one line, naming the node where a graph holds it
    item = load_dataset(FIXTURES / "bach_tiny")[0]
    assert main(["f0", str(item.mix_path()), "-o", str(tmp_path / "f0"), "--method", "multif0"]) == 2
    assert "basic-pitch's model is not installed" in capsys.readouterr().err
    assert main(["validate", "separate_auto"]) != 0
    report = capsys.readouterr()
    assert "node 'f0'" in report.err + report.out and "basic-pitch's model is not installed" in report.err + report.out
    assert main(["f0", str(item.mix_path()), "-o", str(tmp_path / "f0"), "--method", "multif0",
                 "--basic-pitch", "0"]) == 0


def test_the_command_line_refuses_basic_pitch_where_it_cannot_apply(tmp_path, capsys):
    """``sfgraph f0 --multif0-mode live --basic-pitch 0.4`` and ``separate --basic-pitch``
    without ``--f0 auto`` stop with one line saying why; a live graph given a weight names
    its node and line."""
    from sfgraph.cli import main

    item = load_dataset(FIXTURES / "bach_tiny")[0]
    live = main(["f0", str(item.mix_path()), "-o", str(tmp_path / "f0"), "--method", "multif0",
                 "--multif0-mode", "live", "--basic-pitch", "0.4"])
    err = capsys.readouterr().err
    assert live == 2 and "for offline mode only" in err, err
    files = main(["separate", str(item.mix_path()), "--f0", str(item.path / "f0"), "--basic-pitch", "0",
                  "-o", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert files == 2 and "give it with --f0 auto" in err, err
    graph = main(["validate", "separate_live_mic", "-p", "f0.basic_pitch=0.4"])
    report = capsys.readouterr()
    assert graph != 0 and "separate_live_mic.yaml:" in report.err + report.out
    assert "node 'f0': basic_pitch looks 1.8 s ahead" in report.err + report.out


def test_f0_multi_given_the_recordings_peaks_separates_as_it_would_compute_them(tmp_path):
    """``separate --f0 auto`` computes the salience peaks once (to fit the ranges) and gives
    them to the graph's f0 node (``use_peaks``): the tracker then gives, bit for bit, the F0
    it gives computing the peaks itself from the audio. What follows it differs by float32
    rounding only, as the frames reach the network in other blocks: the F0 refined on the
    first pass's voices (its voicing the same frame for frame, its Hz within 1e-5, under
    0.02 cents) and the voices separated with it (within 1e-5 of full scale); how the
    rounding falls depends on the CPU's vector unit."""
    from sfgraph.cli.separate import fit_sung_ranges_to, separate_graph
    from sfgraph.engine.offline import render
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.declaration import Connection, NodeDecl
    from helpers import read_wav

    item = load_dataset(FIXTURES / "bach_tiny")[2]
    outputs = {}
    for shared in (False, True):
        decl = separate_graph(str(item.mix_path()), "auto")
        line = decl.node("f0").line
        decl.nodes.append(NodeDecl("tracked_out", "f0_out", {"dir": "tracked"}, line))
        decl.connections.append(Connection("f0", "f0", "tracked_out", "f0", line))
        options, peaks = fit_sung_ranges_to(decl)
        assert options.ranges is not None  # the ranges were fitted, the graph's f0 node uses them
        graph = build_graph(decl, output_dir=tmp_path / str(shared))
        if shared:
            graph.nodes["f0"].use_peaks(peaks)
        render(graph, progress=False)
        folder = tmp_path / str(shared)
        outputs[shared] = [np.stack([read_wav(folder / f"{voice}.wav")[0][0] for voice in item.voices])] + [
            np.stack([read_f0_csv(folder / tracks / f"{voice}.csv")[1] for voice in item.voices])
            for tracks in ("tracked", "f0")]
    voices, tracked, refined = outputs[True]
    np.testing.assert_array_equal(tracked, outputs[False][1])
    np.testing.assert_array_equal(refined > 0, outputs[False][2] > 0)
    np.testing.assert_allclose(refined, outputs[False][2], rtol=1e-5, atol=0)
    np.testing.assert_allclose(voices, outputs[False][0], rtol=0, atol=1e-5)


def test_a_live_f0_multi_node_refuses_a_recordings_peaks_and_names_itself():
    """A live tracker cannot hear the whole recording first: ``use_peaks`` says so and names the node."""
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.declaration import load_graph_decl

    graph = build_graph(load_graph_decl("separate_live_mic"))
    peaks = whole_peaks(np.zeros(SAMPLE_RATE, np.float32), MultiF0Options(model=MODEL))
    with pytest.raises(ValueError, match="node 'f0': use_peaks is for offline mode"):
        graph.nodes["f0"].use_peaks(peaks)
