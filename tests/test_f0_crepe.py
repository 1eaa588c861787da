"""CREPE tracking (sfgraph.f0.crepe and the f0_crepe node): tones, silence, streaming, the fixture's stems."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import FIXTURES, harmonic_tone, write_wav
from sfgraph.data.layout import load_dataset
from sfgraph.f0.crepe import CrepeTracker, FixedLagViterbi, TrackerOptions, hz_to_cents, track_f0
from sfgraph.graph.build import build_graph
from sfgraph.graph.declaration import load_graph_decl

RATE = 16000


def tone(hz: float, seconds: float) -> np.ndarray:
    return harmonic_tone(hz, seconds, partials=5, level=0.3)


@pytest.fixture(scope="module")
def fixture_tracks():
    """The bach_tiny stems tracked with the default options (tiny CREPE), and the true F0."""
    dataset = load_dataset(FIXTURES / "bach_tiny", require_stems=True)
    return [(item, track_f0(item.load_stems()), item.f0_on_frames()) for item in dataset]


def test_torchcrepe_imports_beside_a_broken_torchaudio(tmp_path):
    # A torchaudio that fails at import, as the registry's CUDA build does beside a CPU torch.
    broken = tmp_path / "torchaudio"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise OSError('libc10_cuda.so: cannot open shared object file')\n")
    script = (
        "import sys\n"
        "from sfgraph.f0.crepe import import_torchcrepe\n"
        "torchcrepe = import_torchcrepe()\n"
        "stand_in = sys.modules['torchaudio']\n"
        "assert getattr(stand_in, '__sfgraph_stand_in__', False), stand_in\n"
        "try:\n"
        "    torchcrepe.load.audio('x.wav')\n"
        "except RuntimeError as exc:\n"
        "    assert 'pedalboard' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('the stand-in loader should raise')\n"
        "print('ok', torchcrepe.Crepe.__name__)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok Crepe"


@pytest.mark.parametrize("decoder", ["viterbi", "weighted_argmax", "argmax"])
def test_known_tones_are_tracked_within_10_cents_and_silence_is_unvoiced(decoder):
    audio = np.stack([tone(220.0, 1.0), tone(523.25, 1.0), np.zeros(RATE, np.float32)])
    track = track_f0(audio, TrackerOptions(decoder=decoder))
    assert track.f0_hz.shape == (3, 1 + RATE // 256) == track.confidence.shape
    steady = slice(4, -4)  # frames whose window lies inside the tone
    for voice, hz in ((0, 220.0), (1, 523.25)):
        cents = hz_to_cents(track.f0_hz[voice, steady]) - hz_to_cents(hz)
        tolerance = 12 if decoder == "argmax" else 10  # argmax keeps the 20-cent bins' quantisation
        assert np.all(np.abs(cents) < tolerance), (voice, cents.round(1))
        assert track.confidence[voice, steady].min() > 0.5
    np.testing.assert_array_equal(track.f0_hz[2], 0.0)
    assert track.confidence[2].max() < 0.1


def test_tracker_gives_the_same_frames_whatever_the_blocks():
    audio = np.stack([tone(196.0, 0.6), tone(330.0, 0.6)])
    audio[1, 4000:6000] = 0.0  # a rest in one voice
    whole = track_f0(audio)
    tracker = CrepeTracker(2)
    padded = np.concatenate([audio, np.zeros((2, TrackerOptions().lookahead_samples + 1024), np.float32)], axis=1)
    pieces, start = [], 0
    for size in [1, 700, 256, 3, 5000] * 20:
        if start >= padded.shape[1]:
            break
        pieces.append(tracker.push(padded[:, start:start + size]))
        start += size
    f0 = np.concatenate([p[0] for p in pieces], axis=1)[:, :whole.f0_hz.shape[1]]
    np.testing.assert_allclose(f0, whole.f0_hz, atol=1e-3)
    assert np.all(whole.f0_hz[1, 17:22] == 0)  # frames 16..23 lie inside the rest


def test_fixed_lag_viterbi_prefers_a_smooth_path_over_a_one_frame_jump():
    frames = np.zeros((1, 12, 360), np.float32)
    frames[0, :, 100] = 0.8
    frames[0, 6, 100], frames[0, 6, 200] = 0.3, 0.9  # an octave-like glitch in one frame
    bins = FixedLagViterbi(1, lag=4).push(frames)
    assert bins.shape == (1, 12 - 4)
    np.testing.assert_array_equal(bins, 100)


def test_fixture_stems_are_tracked_close_to_the_true_f0(fixture_tracks):
    """Reports raw pitch accuracy (within 50 cents) and gross pitch errors per voice."""
    import mir_eval

    report, accuracies, gross = [], [], []
    for item, track, truth in fixture_tracks:
        for v, voice in enumerate(item.voices):
            scores = mir_eval.melody.evaluate(track.times, truth[v], track.times, track.f0_hz[v].astype(np.float64))
            both = (truth[v] > 0) & (track.f0_hz[v] > 0)
            cents = np.abs(hz_to_cents(track.f0_hz[v][both]) - hz_to_cents(truth[v][both]))
            accuracies.append(scores["Raw Pitch Accuracy"])
            gross.append(np.mean(cents > 50))
            report.append(f"{item.name} {voice}: RPA {scores['Raw Pitch Accuracy']:.3f}, "
                          f"GPE {np.mean(cents > 50):.3f}, median error {np.median(cents):.1f} cents")
    print("\n".join(report))
    assert np.mean(accuracies) > 0.93 and min(accuracies) > 0.8
    assert np.mean(gross) < 0.05


def test_node_in_a_graph_matches_the_offline_tracker(tmp_path, fixture_tracks):
    item, offline, _ = fixture_tracks[0]
    outer = [0, len(item.voices) - 1]  # soprano and bass: two voices are enough here
    write_wav(tmp_path / "stems.wav", item.load_stems()[outer], RATE)
    (tmp_path / "capture.py").write_text(
        "from sfgraph.graph.node import Node\n"
        "from sfgraph.graph.ports import Port\n"
        "class CaptureF0(Node):\n"
        "    type_name = 'test_capture_f0'\n"
        "    inputs = {'f0': Port('f0'), 'confidence': Port('control')}\n"
        "    def configure(self, inputs, context):\n"
        "        self.blocks = []\n"
        "        return {}\n"
        "    def process(self, f0, confidence):\n"
        "        self.blocks.append((f0, confidence))\n"
        "        return {}\n")
    (tmp_path / "g.yaml").write_text("""\
sample_rate: 16000
block_size: 1000
imports: [capture.py]
nodes:
  - {id: stems, type: file_in, params: {path: stems.wav}}
  - {id: f0, type: f0_crepe, params: {voices: [soprano, bass]}}
  - {id: sink, type: test_capture_f0}
connections:
  - stems.audio -> f0.audio
  - f0.f0 -> sink.f0
  - f0.confidence -> sink.confidence
""")
    from sfgraph.engine.offline import render

    graph = build_graph(load_graph_decl(str(tmp_path / "g.yaml")), output_dir=tmp_path)
    node = graph.nodes["f0"]
    assert node.output_specs["f0"].labels == ("soprano", "bass")
    assert node.output_specs["confidence"].kind == "control"
    assert node.lookahead == 512 + (8 + 1) * 256
    render(graph, progress=False)
    blocks = graph.nodes["sink"].blocks
    f0 = np.concatenate([b[0] for b in blocks], axis=1)
    frames = min(f0.shape[1], offline.f0_hz.shape[1])
    assert frames >= offline.f0_hz.shape[1] - 1  # the graph stream holds samples / 256 frames
    np.testing.assert_allclose(f0[:, :frames], offline.f0_hz[outer, :frames], atol=1e-3)


def test_node_rejects_a_voice_count_that_does_not_match_the_channels():
    from sfgraph.graph.errors import PortError
    from sfgraph.graph.node import GraphContext
    from sfgraph.graph.ports import audio_spec
    from sfgraph.graph.registry import node_types

    node = node_types()["f0_crepe"]("f0", {"voices": ["soprano", "alto"]})
    with pytest.raises(PortError, match="3 channel.*2 voices"):
        node.configure({"audio": audio_spec(3, RATE)}, GraphContext(RATE, 256, Path("."), Path(".")))
