"""Built-in nodes: block-by-block equals whole-signal, mixing laws, pedalboard effects."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pedalboard
import pytest

from sfgraph.dsp.voice_config import VoiceConfig
from sfgraph.dsp.voice_controls import VoiceControlStream
from sfgraph.graph.errors import GraphError
from sfgraph.graph.node import GraphContext
from sfgraph.graph.params import ParamError
from sfgraph.graph.ports import StreamSpec, audio_spec
from sfgraph.graph.registry import node_types

CONTEXT = GraphContext(16000, 256, Path("."), Path("."))
VOICES = ("soprano", "alto", "tenor", "bass")
F0_SPEC = StreamSpec("f0", (4,), 62.5, VOICES)


# Params and input streams (channel counts for audio) of every built-in node that
# processes a stream; "{model}" stands for a small random model folder.
PROCESSORS = {
    "gain": ({"db": -6.0}, {"audio": 2}),
    "mixer": ({"inputs": 3, "gain_db": [0, -3, -6], "pan": [-1, 0, 0.5]}, {"in0": 1, "in1": 2, "in2": 4}),
    "split": ({"names": ["left", "right"]}, {"audio": 2}),
    "merge": ({"names": ["a", "b"]}, {"a": 1, "b": 2}),
    "pedalboard": ({"plugin": "Reverb", "params": {"room_size": 0.7}}, {"audio": 2}),
    "chain": ({"effects": {"comp": {"plugin": "Compressor"}, "verb": {"plugin": "Reverb"}},
               "channels": {"ch1": {"verb": {"room_size": 0.9}}}}, {"audio": 2}),
    "mask": ({"n_fft": 1024, "hop": 128}, {"mix": 1, "voices": 3}),
    "param_net": ({"model": "{model}"}, {"mix": 1, "f0": F0_SPEC}),
    "sf_synth": ({}, {"f0": F0_SPEC, "controls": StreamSpec("tensor", (4, 23), 62.5, VOICES, VoiceControlStream(
        VoiceConfig(), lambda: np.linspace(1.0, 0.1, 4 * 40).reshape(4, 40)))}),
    "resample": ({"rate": 16000}, {"audio": 2}),
    "f0_crepe": ({"model": "tiny"}, {"audio": 2}),
    "f0_multi": ({"viterbi_lag": 4, "basic_pitch": 0}, {"mix": 1}),  # basic-pitch looks 1.8 s ahead
    "f0_refine": ({"n_fft": 1024}, {"voices": 4, "f0": F0_SPEC}),
}


def make(type_name, params, inputs, rate=16000, model=None):
    params = {k: (str(model) if v == "{model}" else v) for k, v in params.items()}
    node = node_types()[type_name](type_name, params)
    specs = {p: s if isinstance(s, StreamSpec) else audio_spec(s, rate) for p, s in inputs.items()}
    node.output_specs = node.configure(specs, CONTEXT)
    node.input_specs = specs
    node.context = CONTEXT
    node.prepare()
    return node


def random_inputs(node, seconds=1.28, seed=1):
    """Random streams for every input: audio noise, F0 in the choir range."""
    rng = np.random.default_rng(seed)
    streams = {}
    for port, spec in node.input_specs.items():
        n = int(round(seconds * float(spec.rate)))
        if spec.kind == "f0":
            streams[port] = rng.uniform(80, 900, spec.shape + (n,)).astype(np.float32)
        elif spec.kind == "tensor":  # synthesizer parameters: positive, moderate
            streams[port] = rng.uniform(0.05, 0.5, spec.shape + (n,)).astype(np.float32)
        else:
            streams[port] = (0.3 * rng.standard_normal(spec.shape + (n,))).astype(np.float32)
    return streams


def run_in_blocks(node, inputs, sizes):
    """Feed ``inputs`` in blocks of ``sizes`` steps (cycled); a step is each port's quantum."""
    quanta = {p: node.input_ports[p].quantum for p in inputs}
    total = min(x.shape[-1] // quanta[p] for p, x in inputs.items())
    outputs, start, i = {}, 0, 0
    while start < total:
        n = min(sizes[i % len(sizes)], total - start)
        block = node.process(**{p: x[..., (start * quanta[p]):(start + n) * quanta[p]] for p, x in inputs.items()})
        for port, y in block.items():
            outputs.setdefault(port, []).append(y)
        start, i = start + n, i + 1
    return {p: np.concatenate(ys, axis=-1) for p, ys in outputs.items()}


def test_every_builtin_processor_is_covered():
    sinks_and_sources = {"file_in", "file_out", "f0_files", "f0_out", "f0_score", "f0_midi", "device_in", "device_out",
                         "meter"}
    builtins = {name for name, cls in node_types().items() if cls.__module__.startswith("sfgraph.nodes")}
    assert builtins - sinks_and_sources == set(PROCESSORS)


@pytest.mark.parametrize("type_name", sorted(PROCESSORS))
def test_block_by_block_equals_whole(type_name, tiny_model):
    params, streams = PROCESSORS[type_name]
    assert node_types()[type_name].block_exact
    node = make(type_name, params, streams, model=tiny_model)
    inputs = random_inputs(node)
    whole = run_in_blocks(node, inputs, [10**9])
    assert all(values.shape[-1] > 0 for values in whole.values()), {p: v.shape for p, v in whole.items()}
    for sizes in ([7], [64], [1, 17, 300, 5]):
        node = make(type_name, params, streams, model=tiny_model)
        pieces = run_in_blocks(node, inputs, sizes)
        for port in whole:
            np.testing.assert_allclose(pieces[port], whole[port], atol=2e-5, err_msg=f"{port} {sizes}")


def test_mixer_pan_mute_solo():
    mono = np.ones((1, 8), dtype=np.float32)
    node = make("mixer", {"inputs": 2, "pan": [-1.0, 1.0]}, {"in0": 1, "in1": 1})
    out = node.process(in0=mono, in1=2 * mono)["audio"]
    np.testing.assert_allclose(out[:, -1], [1.0, 2.0], atol=1e-6)
    centre = make("mixer", {"inputs": 1}, {"in0": 1}).process(in0=mono)["audio"]
    np.testing.assert_allclose(centre[:, -1], [np.sqrt(0.5)] * 2, atol=1e-6)  # constant power
    muted = make("mixer", {"inputs": 2, "mute": [True, False], "channels": 1}, {"in0": 1, "in1": 1})
    np.testing.assert_allclose(muted.process(in0=mono, in1=2 * mono)["audio"], 2 * mono)
    solo = make("mixer", {"inputs": 2, "solo": [True, False], "channels": 1}, {"in0": 1, "in1": 1})
    np.testing.assert_allclose(solo.process(in0=mono, in1=2 * mono)["audio"], mono)


def test_gain_change_ramps_without_a_step():
    node = make("gain", {"db": 0.0}, {"audio": 1})
    ones = np.ones((1, 256), dtype=np.float32)
    node.process(audio=ones)
    node.set_param("db", -20.0)
    out = node.process(audio=ones)["audio"][0]
    assert np.max(np.abs(np.diff(out))) < 1.0 / 256 + 1e-6
    assert out[-1] == pytest.approx(0.1, rel=1e-5)


@pytest.mark.parametrize("name, params", [
    ("Reverb", {"room_size": 0.8, "wet_level": 0.5}),
    ("Compressor", {"threshold_db": -20.0, "ratio": 4.0}),
    ("LadderFilter", {"cutoff_hz": 800.0}),
    ("Delay", {"delay_seconds": 0.01, "feedback": 0.3}),
])
def test_pedalboard_node_matches_pedalboard_called_directly(name, params):
    rng = np.random.default_rng(2)
    audio = (0.3 * rng.standard_normal((2, 16000))).astype(np.float32)
    node = make("pedalboard", {"plugin": name, "params": params}, {"audio": 2})
    direct = getattr(pedalboard, name)(**params)(audio, 16000)
    for sizes in ([256], [1, 17, 700, 5]):
        ours = run_in_blocks(node, {"audio": audio}, sizes)["audio"]
        np.testing.assert_allclose(ours, direct, atol=1e-6, err_msg=f"{name} {sizes}")
        node.reset()


def test_pedalboard_lfo_effect_matches_after_the_opening_silence():
    rng = np.random.default_rng(4)
    audio = (0.3 * rng.standard_normal((1, 16000))).astype(np.float32)
    node = make("pedalboard", {"plugin": "Chorus", "params": {"rate_hz": 2.0}}, {"audio": 1})
    ours = run_in_blocks(node, {"audio": audio}, [1, 17, 700, 5])["audio"]
    opened = np.concatenate([np.zeros((1, 512), np.float32), audio], axis=-1)
    direct = pedalboard.Chorus(rate_hz=2.0)(opened, 16000)[:, 512:]
    np.testing.assert_allclose(ours, direct, atol=1e-6)


def test_pedalboard_latency_is_measured_and_output_delayed():
    rng = np.random.default_rng(3)
    audio = (0.3 * rng.standard_normal((1, 32000))).astype(np.float32)
    node = make("pedalboard", {"plugin": "Resample", "params": {"target_sample_rate": 8000.0}}, {"audio": 1})
    assert node.latency > 0
    ours = run_in_blocks(node, {"audio": audio}, [256])["audio"]
    assert ours.shape == audio.shape
    direct = pedalboard.Resample(target_sample_rate=8000.0)(audio, 16000)  # pedalboard removes latency itself
    np.testing.assert_allclose(ours[:, node.latency:], direct[:, :32000 - node.latency], atol=1e-4)


def test_pedalboard_param_changes_while_running():
    node = make("pedalboard", {"plugin": "Gain", "params": {"gain_db": 0.0}}, {"audio": 1})
    node.set_param("params", {"gain_db": -6.0})
    assert node.plugin.gain_db == pytest.approx(-6.0)


def test_pedalboard_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown pedalboard effect 'Reverbb'; did you mean Reverb"):
        make("pedalboard", {"plugin": "Reverbb"}, {"audio": 1})
    with pytest.raises(ParamError, match="Reverb has no parameter 'room'; did you mean room_size"):
        make("pedalboard", {"plugin": "Reverb", "params": {"room": 1}}, {"audio": 1})
    with pytest.raises(ValueError, match="plugin file not found"):
        make("pedalboard", {"plugin": "/nowhere/x.vst3"}, {"audio": 1})


CHOIR_EFFECTS = {
    "eq": {"plugin": "PeakFilter", "params": {"cutoff_frequency_hz": 3000.0, "gain_db": 2.0, "q": 0.7}},
    "comp": {"plugin": "Compressor", "params": {"threshold_db": -24.0, "ratio": 3.0, "release_ms": 120.0}},
    "verb": {"plugin": "Reverb", "params": {"room_size": 0.6, "wet_level": 0.25, "dry_level": 0.8}},
}


def test_chain_equals_one_pedalboard_node_per_effect_and_channel():
    rng = np.random.default_rng(5)
    audio = (0.3 * rng.standard_normal((2, 16000))).astype(np.float32)
    voices = audio_spec(2, 16000, ["soprano", "bass"])
    chain = make("chain", {"effects": CHOIR_EFFECTS, "channels": {"bass": {"verb": {"wet_level": 0.1}}}},
                 {"audio": voices})
    ours = run_in_blocks(chain, {"audio": audio}, [1, 17, 700, 5])["audio"]
    assert chain.output_specs["audio"].labels == ("soprano", "bass")
    for channel, wet_level in enumerate([0.25, 0.1]):
        expected = audio[channel:channel + 1]
        for name, settings in CHOIR_EFFECTS.items():
            settings = {**settings, "params": {**settings["params"], **({"wet_level": wet_level} if name == "verb"
                                                                        else {})}}
            expected = run_in_blocks(make("pedalboard", settings, {"audio": 1}), {"audio": expected}, [256])["audio"]
        np.testing.assert_allclose(ours[channel:channel + 1], expected, atol=1e-6, err_msg=f"channel {channel}")


def test_chain_channel_params_change_while_running():
    node = make("chain", {"effects": {"amp": {"plugin": "Gain", "params": {"gain_db": 0.0}}},
                          "channels": {"ch0": {"amp": {"gain_db": -6.0}}}}, {"audio": 2})
    ones = np.ones((2, 64), dtype=np.float32)
    np.testing.assert_allclose(node.process(audio=ones)["audio"][:, -1], [10 ** (-6 / 20), 1.0], rtol=1e-5)
    node.set_param("channels", {"ch1": {"amp": {"gain_db": -20.0}}})
    np.testing.assert_allclose(node.process(audio=ones)["audio"][:, -1], [10 ** (-6 / 20), 0.1], rtol=1e-5)
    assert node.p.channels == {"ch0": {"amp": {"gain_db": -6.0}}, "ch1": {"amp": {"gain_db": -20.0}}}
    with pytest.raises(ParamError, match="no channel 'soprano'; channels: ch0, ch1"):
        node.set_param("channels", {"soprano": {"amp": {"gain_db": 0.0}}})


def test_chain_latency_is_the_effects_delay():
    node = make("chain", {"effects": {"down": {"plugin": "Resample", "params": {"target_sample_rate": 8000.0}},
                                      "verb": {"plugin": "Reverb"}}}, {"audio": 2})
    single = make("pedalboard", {"plugin": "Resample", "params": {"target_sample_rate": 8000.0}}, {"audio": 1})
    assert node.latency == single.latency > 0


@pytest.mark.parametrize("params, message", [
    ({"effects": {}}, "param 'effects': name at least one effect"),
    ({"effects": {"verb": "Reverb"}}, "'verb' must be a mapping such as {plugin: Reverb"),
    ({"effects": {"verb": {"plugin": "Reverbb"}}}, "unknown pedalboard effect 'Reverbb'; did you mean Reverb"),
    ({"effects": {"verb": {"plugin": "Reverb", "room": 1}}}, "param 'effects': 'verb': unknown param 'room'"),
    ({"effects": {"verb": {"plugin": "Reverb", "params": {"room": 1}}}},
     "effect 'verb' \\(Reverb\\) has no parameter 'room'; did you mean room_size"),
    ({"effects": {"verb": {"plugin": "Reverb"}}, "channels": {"bas": {"verb": {}}}},
     "no channel 'bas'; did you mean bass"),
    ({"effects": {"verb": {"plugin": "Reverb"}}, "channels": {"bass": {"delay": {}}}},
     "'bass': no effect 'delay' in the chain \\(verb\\)"),
])
def test_chain_errors_name_the_effect_channel_or_parameter(params, message):
    with pytest.raises(ValueError, match=message):
        make("chain", params, {"audio": audio_spec(2, 16000, ["tenor", "bass"])})


def test_split_labels_follow_names():
    node = make("split", {"names": ["soprano", "alto"]}, {"audio": 2})
    assert node.output_specs["alto"].labels == ("alto",)


def test_graph_level_effect_error_is_located(graph_file):
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.declaration import load_graph_decl

    text = """\
imports: ["{custom}"]
nodes:
  - {id: tone, type: test_tone}
  - {id: fx, type: pedalboard, params: {plugin: Reverb, params: {roomsize: 0.5}}}
connections:
  - tone.audio -> fx.audio
"""
    with pytest.raises(GraphError) as info:
        build_graph(load_graph_decl(str(graph_file(text))))
    p = info.value.problems[0]
    assert (p.node, p.line) == ("fx", 4) and "no parameter 'roomsize'" in p.message
