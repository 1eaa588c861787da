"""Separation nodes inside graphs: offline renders equal the whole-signal functions."""
from __future__ import annotations

import numpy as np
import pytest

from sfgraph.data.layout import write_f0_csv
from sfgraph.dsp.mask_fit import MixtureFit
from sfgraph.dsp.stft import mask_separate
from sfgraph.engine.offline import render
from sfgraph.graph.build import build_graph
from sfgraph.graph.declaration import load_graph_decl

from helpers import read_wav, write_wav

ORACLE = """\
sample_rate: 16000
block_size: 300
nodes:
  - {id: mix, type: file_in, params: {path: mix.wav}}
  - {id: stems, type: file_in, params: {path: stems.wav}}
  - {id: mask, type: mask, params: {n_fft: 2048, hop: 256, power: 1, synthesis: SYNTHESIS, fit_seconds: FIT,
                                    section_cents: CENTS, low_n_fft: LOW, crossover_hz: 600}}
  - {id: out, type: file_out, params: {path: "sep/{label}.wav"}}
connections:
  - mix.audio -> mask.mix
  - stems.audio -> mask.voices
  - mask.voices -> out.audio
"""


@pytest.mark.parametrize("fit_seconds, section_cents, synthesis, low_n_fft",
                         [(0.0, 0.0, None, None), (2.0, 0.0, None, None), (2.0, 12.0, None, None),
                          (0.0, 0.0, 512, None), (2.0, 0.0, 512, None), (2.0, 12.0, 512, None),
                          (2.0, 0.0, None, 4096)])
def test_mask_node_in_a_graph_equals_mask_separate(graph_file, tmp_path, synthesis, fit_seconds, section_cents,
                                                   low_n_fft):
    """The render, its latency removed, equals the whole-signal function; ``low_n_fft``: the
    graph's latency is the longer STFT's."""
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2 + 77) / 16000
    stems = np.stack([0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
                      for f in (523.0, 330.0, 196.0)]) + 0.01 * rng.standard_normal((3, t.size))
    mix = stems.sum(axis=0)
    write_wav(tmp_path / "mix.wav", mix, 16000)
    write_wav(tmp_path / "stems.wav", stems, 16000)
    path = graph_file(ORACLE.replace("SYNTHESIS", "null" if synthesis is None else str(synthesis))
                      .replace("FIT", str(fit_seconds)).replace("CENTS", str(section_cents))
                      .replace("LOW", "null" if low_n_fft is None else str(low_n_fft)))
    graph = build_graph(load_graph_decl(str(path)), output_dir=tmp_path)
    assert graph.total_latency() * 16000 == (low_n_fft or synthesis or 2048) - 256
    render(graph, progress=False)
    fit = MixtureFit(seconds=fit_seconds) if fit_seconds else None
    expected = mask_separate(mix.astype(np.float32), stems.astype(np.float32), 2048, 256, 1.0, synthesis, fit, 16000,
                             section_cents, low_n_fft, 600)
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


@pytest.mark.parametrize("causal", [False, True])
def test_param_net_node_streams_the_networks_frames(tmp_path, causal):
    """The param_net node, fed block by block, gives the whole-signal forward pass's frames. A
    causal_frames network's frame t depends on the mixture before sample t·256 only, and the
    node emits it with the hop before it (one frame ahead of its input)."""
    import torch

    from sfgraph.graph.node import GraphContext
    from sfgraph.graph.ports import StreamSpec, audio_spec
    from sfgraph.graph.registry import node_types
    from sfgraph.model.checkpoint import save_model
    from sfgraph.model.network import NetworkConfig, ParamNet

    torch.manual_seed(1)
    network = ParamNet(NetworkConfig(hidden=16, f0_hidden=8, causal_frames=causal)).eval()
    rng = np.random.default_rng(2)
    mix = torch.from_numpy(0.3 * rng.standard_normal((1, 256 * 20)).astype(np.float32))
    f0 = torch.from_numpy(rng.uniform(100, 600, (1, 4, 20)).astype(np.float32))
    with torch.no_grad():
        whole = network(mix, f0)
        changed = mix.clone()
        changed[:, 256 * 12:] += 0.5
        later = network(changed, f0)
    unchanged = 13 if causal else 12  # frames whose analysis window ends by sample 12·256
    np.testing.assert_array_equal(later.amplitude[:, :, :unchanged], whole.amplitude[:, :, :unchanged])
    assert not np.allclose(later.amplitude[:, :, unchanged], whole.amplitude[:, :, unchanged])

    save_model(tmp_path / "model", network)
    node = node_types()["param_net"]("net", {"model": str(tmp_path / "model"), "device": "cpu"})
    context = GraphContext(16000, 256, tmp_path, tmp_path)
    specs = {"mix": audio_spec(1, 16000), "f0": StreamSpec("f0", (4,), 62.5, ("soprano", "alto", "tenor", "bass"))}
    node.output_specs, node.input_specs, node.context = node.configure(specs, context), specs, context
    node.prepare()
    first = node.process(mix=mix.numpy()[:, :256 * 3], f0=f0.numpy()[0, :, :3])["controls"]
    assert first.shape[-1] == (4 if causal else 3)
    rest = node.process(mix=mix.numpy()[:, 256 * 3:], f0=f0.numpy()[0, :, 3:])["controls"]
    streamed = np.concatenate([first, rest], axis=-1)[..., :20]
    np.testing.assert_allclose(streamed, whole.map(lambda values: values[0].numpy()).pack_frames(),
                               atol=1e-5)
    np.testing.assert_array_equal(node.output_specs["controls"].constants.noise_bands(), whole.noise_bands[0].numpy())


def test_separate_on_the_demo_clip_equals_the_whole_signal_mask(tmp_path):
    """``sfgraph separate`` streams the mask STFT block by block (framing by views, overlap-add
    by hop slices, the mixture fit frame by frame); on the bundled demo clip its voices equal
    ``mask_separate`` applied at once
    to the mixture and the synthesized voices it wrote (but for the last window, where the
    stream sees the voices the synthesizer goes on making past the end, and the files hold zeros;
    below 600 Hz the masks are a 4096-sample STFT's, above it a 2048-sample one's)."""
    from sfgraph.cli import main
    from sfgraph.resources import resolve_resource

    demo = resolve_resource("sfgraph:assets/demo/quartet")
    assert main(["separate", str(demo / "mix.wav"), "--f0", str(demo / "f0"), "-o", str(tmp_path), "--synth",
                 "-q"]) == 0
    mix, _ = read_wav(demo / "mix.wav")
    voices = ("soprano", "alto", "tenor", "bass")
    synth = np.concatenate([read_wav(tmp_path / "synth" / f"{voice}.wav")[0] for voice in voices])
    expected = mask_separate(mix[0], synth, 2048, 256, 1.0, fit=MixtureFit(), sample_rate=16000, low_n_fft=4096,
                             crossover_hz=600)
    for j, voice in enumerate(voices):
        out, _ = read_wav(tmp_path / f"{voice}.wav")
        np.testing.assert_allclose(out[0, :-4096], expected[j, :-4096], atol=1e-4)


SYNTH = """\
sample_rate: 16000
block_size: 300
nodes:
  - {id: mix, type: file_in, params: {path: mix.wav}}
  - {id: f0, type: f0_files, params: {dir: f0}}
  - {id: net, type: param_net, params: {model: MODEL, device: cpu}}
  - {id: synth, type: sf_synth}
  - {id: out, type: file_out, params: {path: "synth/{label}.wav"}}
connections:
  - mix.audio -> net.mix
  - f0.f0 -> net.f0
  - f0.f0 -> synth.f0
  - net.controls -> synth.controls
  - synth.voices -> out.audio
"""


def test_sf_synth_renders_with_the_voice_settings_of_the_param_nets_model(graph_file, tmp_path, other_voice_model):
    """A model whose voice model is not the default one (fewer harmonics, LPC order, noise
    bands, another tilt, a section): param_net and sf_synth render its voices with its settings, the
    whole-signal synthesis of its controls, which the default tilt and harmonics change."""
    import dataclasses

    import torch

    from sfgraph.dsp.voice_config import VoiceConfig
    from sfgraph.dsp.voice_numba import synthesize_voices_numba
    from sfgraph.model.checkpoint import load_model
    from sfgraph.resources import resolve_resource

    demo = resolve_resource("sfgraph:assets/demo/quartet")
    frames = 120
    write_wav(tmp_path / "mix.wav", read_wav(demo / "mix.wav")[0][:, :frames * 256], 16000)
    (tmp_path / "f0").symlink_to(demo / "f0")
    graph = build_graph(load_graph_decl(str(graph_file(SYNTH.replace("MODEL", str(other_voice_model))))),
                        output_dir=tmp_path)
    network = load_model(other_voice_model)
    voice = network.config.voice
    assert graph.nodes["net"].output_specs["controls"].shape == (4, 2 + 13 + 1)  # and the section's spread
    render(graph, progress=False)
    synthesized = np.concatenate([read_wav(tmp_path / "synth" / f"{name}.wav")[0] for name in network.config.voices])
    assert synthesized.shape == (4, frames * 256)

    f0 = graph.nodes["f0"].track[:, :frames].astype(np.float32)
    mix = torch.from_numpy(read_wav(tmp_path / "mix.wav")[0])
    with torch.no_grad():
        controls = network(mix, torch.from_numpy(f0)[None]).map(lambda values: values[0].numpy())
    assert controls.lsf_increments.shape == (4, frames, 13) and controls.noise_bands.shape == (4, 16)
    assert controls.spread.shape == (4, frames)
    expected = synthesize_voices_numba(f0, controls, config=voice)
    end = (frames - 1) * 256  # the stream renders the last segment only once the timeline goes on
    np.testing.assert_allclose(synthesized[:, :end], expected[:, :end], atol=1e-5)
    defaults = VoiceConfig()
    default_source = dataclasses.replace(voice, n_harmonics=defaults.n_harmonics, tilt_corner_hz=defaults.tilt_corner_hz)
    assert np.abs(synthesize_voices_numba(f0, controls, config=default_source)[:, :end] - expected[:, :end]).max() > 1e-2


def test_sf_synth_noise_scales_the_voices_noise_part(graph_file, tmp_path):
    """``noise: 0`` renders the harmonic part alone: the whole-signal synthesis of the
    bundled model's controls with every noise gain at zero; 0.5 adds half the noise."""
    import torch

    from sfgraph.dsp.voice_numba import synthesize_voices_numba
    from sfgraph.model.checkpoint import load_model
    from sfgraph.resources import resolve_resource

    demo = resolve_resource("sfgraph:assets/demo/quartet")
    frames = 120
    write_wav(tmp_path / "mix.wav", read_wav(demo / "mix.wav")[0][:, :frames * 256], 16000)
    (tmp_path / "f0").symlink_to(demo / "f0")
    network = load_model(resolve_resource("sfgraph:models/default"))
    rendered = {}
    for noise in (0.0, 0.5, 1.0):
        graph_text = SYNTH.replace("MODEL", "sfgraph:models/default").replace(
            "{id: synth, type: sf_synth}", f"{{id: synth, type: sf_synth, params: {{noise: {noise}}}}}")
        graph = build_graph(load_graph_decl(str(graph_file(graph_text))), output_dir=tmp_path)
        render(graph, progress=False)
        rendered[noise] = np.concatenate([read_wav(tmp_path / "synth" / f"{name}.wav")[0]
                                          for name in network.config.voices])
    f0 = graph.nodes["f0"].track[:, :frames].astype(np.float32)
    with torch.no_grad():
        controls = network(torch.from_numpy(read_wav(tmp_path / "mix.wav")[0]), torch.from_numpy(f0)[None]
                           ).map(lambda values: values[0].numpy())
    harmonic = synthesize_voices_numba(f0, controls._replace(noise_gain=0 * controls.noise_gain),
                                       config=network.config.voice)
    end = (frames - 1) * 256
    # param_net runs the torch-free network on the CPU: its controls match torch's to ~1e-5
    np.testing.assert_allclose(rendered[0.0][:, :end], harmonic[:, :end], atol=1e-4)
    residual, half, whole = (np.abs(rendered[scale][:, :end] - harmonic[:, :end]).mean() for scale in (0.0, 0.5, 1.0))
    assert whole > 50 * residual and half == pytest.approx(whole / 2, rel=0.1), (residual, half, whole)


def test_separation_nodes_refuse_what_they_cannot_render(tmp_path):
    """param_net refuses a model made for another frame grid than the F0 nodes', and sf_synth
    a tensor stream that does not carry the voice settings of a param_net's model."""
    from sfgraph.dsp.voice_config import VoiceConfig
    from sfgraph.graph.errors import PortError
    from sfgraph.graph.node import GraphContext
    from sfgraph.graph.ports import StreamSpec, audio_spec
    from sfgraph.graph.registry import node_types
    from sfgraph.model.checkpoint import save_model
    from sfgraph.model.network import NetworkConfig, ParamNet

    save_model(tmp_path / "model", ParamNet(NetworkConfig(hidden=8, f0_hidden=4,
                                                          voice=VoiceConfig(frame_size=256, hop=128))))
    node = node_types()["param_net"]("net", {"model": str(tmp_path / "model"), "device": "cpu"})
    context = GraphContext(16000, 256, tmp_path, tmp_path)
    f0 = StreamSpec("f0", (4,), 62.5, ("soprano", "alto", "tenor", "bass"))
    with pytest.raises(ValueError, match="a model for 16000 Hz audio in 128-sample frames; graphs run 16000 Hz "
                                         "in 256-sample frames"):
        node.configure({"mix": audio_spec(1, 16000), "f0": f0}, context)
    synth = node_types()["sf_synth"]("synth", {})
    with pytest.raises(PortError, match="expects the voice controls of a param_net"):
        synth.configure({"f0": f0, "controls": StreamSpec("tensor", (4, 23), 62.5, f0.labels)}, context)

@pytest.mark.parametrize("causal", [False, True])
def test_leading_silence_does_not_change_the_networks_frames(causal):
    """A stream that starts with silence (an all-zero mixture, every voice unvoiced), as a
    branch that delay compensation pads with zeros does, gives the frames the sound alone
    gives once the sound comes: the network is left as one silent frame leaves it."""
    import torch

    from sfgraph.model.network import NetworkConfig, ParamNet, StreamingParamNet

    torch.manual_seed(3)
    network = ParamNet(NetworkConfig(hidden=16, f0_hidden=8, causal_frames=causal)).eval()
    rng = np.random.default_rng(4)
    mix = (0.3 * rng.standard_normal(256 * 20)).astype(np.float32)
    f0 = rng.uniform(100, 600, (4, 20)).astype(np.float32)
    alone = StreamingParamNet(network).process(mix, f0).pack_frames()
    silence = 9
    stream = StreamingParamNet(network)
    quiet = stream.process(np.zeros(256 * 5, np.float32), np.zeros((4, 5), np.float32)).pack_frames()
    rest = stream.process(np.concatenate([np.zeros(256 * (silence - 5), np.float32), mix]),
                          np.concatenate([np.zeros((4, silence - 5), np.float32), f0], axis=1)).pack_frames()
    delayed = np.concatenate([quiet, rest], axis=-1)
    lead = silence + (1 if causal else 0)  # a causal network's own first frame is silent too
    np.testing.assert_allclose(delayed[..., lead - (1 if causal else 0):], alone, atol=1e-5)
    np.testing.assert_array_equal(delayed[..., 1:lead], np.repeat(delayed[..., :1], lead - 1, axis=-1))
