"""Separation nodes inside graphs: offline renders equal the whole-signal functions."""
from __future__ import annotations

import numpy as np

from sfgraph.data.layout import write_f0_csv
from sfgraph.dsp.stft import mask_separate
from sfgraph.engine.offline import render
from sfgraph.graph.build import build_graph
from sfgraph.graph.model import load_graph_decl

from helpers import read_wav, write_wav

ORACLE = """\
sample_rate: 16000
block_size: 300
nodes:
  - {id: mix, type: file_in, params: {path: mix.wav}}
  - {id: stems, type: file_in, params: {path: stems.wav}}
  - {id: mask, type: mask, params: {n_fft: 2048, hop: 256, power: 1}}
  - {id: out, type: file_out, params: {path: "sep/{label}.wav"}}
connections:
  - mix.audio -> mask.mix
  - stems.audio -> mask.voices
  - mask.voices -> out.audio
"""


def test_mask_node_in_a_graph_equals_mask_separate(graph_file, tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2 + 77) / 16000
    stems = np.stack([0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
                      for f in (523.0, 330.0, 196.0)]) + 0.01 * rng.standard_normal((3, t.size))
    mix = stems.sum(axis=0)
    write_wav(tmp_path / "mix.wav", mix, 16000)
    write_wav(tmp_path / "stems.wav", stems, 16000)
    path = graph_file(ORACLE)
    graph = build_graph(load_graph_decl(str(path)), output_dir=tmp_path)
    assert graph.total_latency() * 16000 == 2048 - 256
    render(graph, progress=False)
    expected = mask_separate(mix.astype(np.float32), stems.astype(np.float32), 2048, 256, 1.0)
    for j in range(3):
        out, _ = read_wav(tmp_path / "sep" / f"ch{j}.wav")
        assert out.shape[-1] == mix.size
        np.testing.assert_allclose(out[0], expected[j], atol=1e-5)


def test_f0_files_source_follows_the_audio_duration(graph_file, tmp_path):
    folder = tmp_path / "f0"
    folder.mkdir()
    frames = np.arange(70)
    for voice, hz in (("soprano", 440.0), ("bass", 110.0)):
        write_f0_csv(folder / f"{voice}.csv", frames * 256 / 16000, np.where(frames < 60, hz, 0.0))
    write_wav(tmp_path / "mix.wav", np.zeros(16000), 16000)
    text = """\
sample_rate: 16000
nodes:
  - {id: mix, type: file_in, params: {path: mix.wav}}
  - {id: f0, type: f0_files, params: {dir: f0}}
  - {id: out, type: file_out, params: {path: mix_copy.wav}}
connections:
  - mix.audio -> out.audio
"""
    graph = build_graph(load_graph_decl(str(graph_file(text))), output_dir=tmp_path)
    spec = graph.nodes["f0"].output_specs["f0"]
    assert spec.labels == ("soprano", "bass") and spec.rate == 62.5
    np.testing.assert_array_equal(graph.nodes["f0"].track[:, 59], [440.0, 110.0])
    np.testing.assert_array_equal(graph.nodes["f0"].track[:, 60], [0.0, 0.0])
    render(graph, progress=False)
    assert read_wav(tmp_path / "mix_copy.wav")[0].shape[-1] == 16000
