"""The offline scheduler: delay compensation, resampling, block sizes (the shipped graphs' too), atomic outputs."""
from __future__ import annotations

import numpy as np
import pytest

from sfgraph.engine.offline import OFFLINE_BLOCK_SIZE, offline_block_size, render
from sfgraph.engine.scheduler import Scheduler
from sfgraph.graph.build import build_graph
from sfgraph.graph.errors import GraphError, NodeError
from sfgraph.graph.declaration import load_graph_decl

from helpers import FIXTURES, read_wav, write_wav

BRANCHES = """\
imports: ["{custom}"]
sample_rate: 16000
block_size: 100
nodes:
  - {id: src, type: file_in, params: {path: noise.wav}}
  - {id: late, type: test_latent_delay, params: {samples: 37}}
  - {id: direct, type: gain}
  - {id: sum, type: mixer, params: {inputs: 2, channels: 1}}
  - {id: out, type: file_out, params: {path: sum.wav}}
connections:
  - src.audio -> late.audio
  - src.audio -> direct.audio
  - late.audio -> sum.in0
  - direct.audio -> sum.in1
  - sum.audio -> out.audio
"""


@pytest.fixture
def noise(tmp_path):
    rng = np.random.default_rng(0)
    audio = (0.25 * rng.standard_normal((1, 16000 * 2 + 123))).astype(np.float32)
    write_wav(tmp_path / "noise.wav", audio, 16000)
    return audio


def build(path, **kwargs):
    return build_graph(load_graph_decl(str(path)), output_dir=path.parent, **kwargs)


def run_raw(graph, blocks):
    """Run without output alignment and collect what reaches each sink."""
    scheduler = Scheduler(graph, align_outputs=False)
    scheduler.prepare()
    collected = []
    sink = graph.nodes["out"]
    sink.process = lambda audio: collected.append(audio) or {}
    for _ in range(blocks):
        scheduler.run_block()
    scheduler.close(ok=False)
    return np.concatenate(collected, axis=-1)


def test_delay_compensation_is_sample_exact(graph_file, noise):
    graph = build(graph_file(BRANCHES))
    assert graph.total_latency() * 16000 == 37
    assert {e.connection.src: e.pad for e in graph.incoming("sum")} == {"late": 0, "direct": 37}
    raw = run_raw(graph, blocks=50)
    # both branches arrive delayed by the reported latency: the sum is 2x the input, shifted
    np.testing.assert_array_equal(raw[:, :37], 0)
    np.testing.assert_allclose(raw[:, 37:5000], 2 * noise[:, :5000 - 37], atol=1e-6)


def test_offline_render_removes_latency(graph_file, noise):
    path = graph_file(BRANCHES)
    result = render(build(path), progress=False)
    out, rate = read_wav(path.parent / "sum.wav")
    assert rate == 16000 and out.shape == noise.shape
    np.testing.assert_allclose(out, 2 * noise, atol=1e-6)
    assert result.latency * 16000 == 37


@pytest.mark.parametrize("block_size", [64, 256, 1000])
def test_render_same_for_any_block_size(graph_file, noise, block_size):
    path = graph_file(BRANCHES.replace("block_size: 100", f"block_size: {block_size}"))
    render(build(path), progress=False)
    out, _ = read_wav(path.parent / "sum.wav")
    np.testing.assert_allclose(out, 2 * noise, atol=1e-6)


def test_resampling_where_a_node_needs_another_rate(graph_file):
    text = """\
imports: ["{custom}"]
sample_rate: 48000
block_size: 256
nodes:
  - {id: tone, type: test_tone, params: {hz: 1000, seconds: 1.5}}
  - {id: narrow, type: test_rate_16k}
  - {id: out, type: file_out, params: {path: tone16k.wav}}
connections:
  - tone.audio -> narrow.audio
  - narrow.audio -> out.audio
"""
    path = graph_file(text)
    graph = build(path)
    assert graph.nodes["out"].input_specs["audio"].rate == 16000
    render(graph, progress=False)
    out, rate = read_wav(path.parent / "tone16k.wav")
    assert rate == 16000 and out.shape[-1] == 24000
    middle = slice(1000, 23000)  # away from the resampler's start-up and end
    t = np.arange(24000)[middle] / 16000
    # the tone's phase gives the stream's delay: aligned to within half a sample
    phase = np.angle(np.sum(out[0, middle] * np.exp(-2j * np.pi * 1000 * t)))
    delay_samples = -(phase + np.pi / 2) / (2 * np.pi * 1000) * 16000
    assert abs(delay_samples) < 0.5
    expected = 0.5 * np.sin(2 * np.pi * 1000 * (t - delay_samples / 16000))
    np.testing.assert_allclose(out[0, middle], expected, atol=2e-3)


def test_interrupted_render_leaves_no_output(graph_file, noise, tmp_path):
    text = BRANCHES.replace("type: gain}", "type: test_fail_after, params: {after: 1}}")
    path = graph_file(text)
    with pytest.raises(NodeError, match="node 'direct' \\(test_fail_after\\): RuntimeError: deliberate failure"):
        render(build(path), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.yaml", "noise.wav"]


def test_output_replaced_atomically(graph_file, noise, tmp_path):
    path = graph_file(BRANCHES)
    (tmp_path / "sum.wav").write_bytes(b"previous result")
    with pytest.raises(NodeError):
        failing = BRANCHES.replace("type: gain}", "type: test_fail_after, params: {after: 1}}")
        render(build(graph_file(failing, "failing.yaml")), progress=False)
    assert (tmp_path / "sum.wav").read_bytes() == b"previous result"
    render(build(path), progress=False)
    assert read_wav(tmp_path / "sum.wav")[0].shape == noise.shape


def test_offline_blocks_are_large_unless_a_node_is_not_block_exact(graph_file, noise):
    graph = build(graph_file(BRANCHES))
    assert offline_block_size(graph) == OFFLINE_BLOCK_SIZE and offline_block_size(graph, 64) == 64
    graph.nodes["direct"].block_exact = False
    assert offline_block_size(graph) == 100
    with pytest.raises(GraphError, match=r"g.yaml:7: node 'direct': gain gives a result that depends on the block "
                                         r"size: this graph renders only in its own blocks of 100, not 64"):
        offline_block_size(graph, 64)
    assert render(graph, progress=False).block_size == 100


# Shipped graphs on the 3-s fixture item with a small random model: what CI can run.
ITEM = FIXTURES / "bach_tiny" / "0000_bwv159.5_0"
SHIPPED = {
    "effects_chain": ["in.path={mix}"],
    "separate": ["mix.path={mix}", "f0.dir={f0}", "net.model={model}", "net.device=cpu"],
    "choir_fx": ["mic.file={mix}", "f0.dir={f0}", "net.model={model}"],
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_graph_renders_the_same_in_live_and_large_blocks(name, tiny_model, tmp_path):
    overrides = [o.format(mix=ITEM / "mix.wav", f0=ITEM / "f0", model=tiny_model) for o in SHIPPED[name]]
    outputs = {}
    for block_size in (256, None):
        folder = tmp_path / str(block_size)
        graph = build_graph(load_graph_decl(name, overrides), output_dir=folder)
        result = render(graph, progress=False, block_size=block_size)
        assert result.block_size == (256 if block_size else max(OFFLINE_BLOCK_SIZE, graph.context.block_size))
        outputs[block_size] = {p.name: read_wav(p)[0] for p in sorted(folder.iterdir())}
    assert len(outputs[256]) >= 1 and outputs[256].keys() == outputs[None].keys()
    for file, audio in outputs[256].items():
        assert audio.shape == outputs[None][file].shape and np.abs(audio).max() > 0.01
        np.testing.assert_allclose(outputs[None][file], audio, atol=1e-5, err_msg=file)
