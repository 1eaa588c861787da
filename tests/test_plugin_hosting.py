"""Hosting a real VST3 plugin: pedalboard directly, the ``pedalboard`` node, and a whole graph.

The plugin is SfgraphTestGain.vst3, built from Debian's DPF sources by
``tests/plugins/build_test_vst3.sh`` (see its header for the packages it needs). Its
parameters, as pedalboard names them: ``gain_db`` (-80…20 dB), ``invert`` (bool) and
``delay_samples`` (0…1000, reported as the plugin's latency). The tests look for it at
``$SFGRAPH_TEST_VST3`` or ``.venv/test-plugins/SfgraphTestGain.vst3`` and skip if it isn't there.

Two things about hosting that the tests work with:
- pedalboard sets a hosted plugin's continuous parameter to the nearest of 1000 steps of its
  range (it probes the plugin's value texts at those steps), so the plugin's gain spans
  -80…20 dB and values set here are multiples of 0.1 dB (-6.0206 would become -6.0).
- a VST3 processor receives parameter changes only with audio: ``raw_state`` (or
  ``preset_data``) read before the plugin has processed anything still holds the old values,
  so a plugin whose state is saved processes a little silence first.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pedalboard
import pytest

from sfgraph.graph.node import GraphContext
from sfgraph.graph.params import ParamError
from sfgraph.graph.ports import audio_spec
from sfgraph.graph.registry import node_types

from helpers import read_wav, write_wav

REPO = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("SFGRAPH_TEST_VST3") or REPO / ".venv" / "test-plugins" / "SfgraphTestGain.vst3")
RATE = 48000
CONTEXT = GraphContext(RATE, 256, Path("."), Path("."))

pytestmark = [
    pytest.mark.skipif(not hasattr(pedalboard, "VST3Plugin"),
                       reason="this pedalboard build cannot host VST3 plugins"),
    pytest.mark.skipif(not BUNDLE.is_dir(),
                       reason=f"test VST3 plugin not built: {BUNDLE} is missing (build it with "
                              "tests/plugins/build_test_vst3.sh, which needs the Debian packages "
                              "dpf-source g++ make; or point SFGRAPH_TEST_VST3 at a built bundle)"),
]

def db(gain_db: float) -> float:
    return 10.0 ** (gain_db / 20.0)


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(7)
    return (0.25 * rng.standard_normal((2, RATE // 2))).astype(np.float32)


def load(**params) -> pedalboard.ExternalPlugin:
    return pedalboard.load_plugin(str(BUNDLE), parameter_values=params)


def settled(plugin: pedalboard.ExternalPlugin) -> pedalboard.ExternalPlugin:
    """Process a little silence so the plugin's processor has its parameters (see above)."""
    plugin(np.zeros((2, 64), dtype=np.float32), RATE)
    return plugin


def make(params: dict, channels: int = 2):
    node = node_types()["pedalboard"]("fx", params)
    node.output_specs = node.configure({"audio": audio_spec(channels, RATE)}, CONTEXT)
    node.context = CONTEXT
    node.prepare()
    return node


def run_in_blocks(node, audio: np.ndarray, sizes: list[int]) -> np.ndarray:
    out, start, i = [], 0, 0
    while start < audio.shape[-1]:
        n = sizes[i % len(sizes)]
        out.append(node.process(audio=audio[:, start:start + n])["audio"])
        start, i = start + n, i + 1
    return np.concatenate(out, axis=-1)


# --- pedalboard directly ---------------------------------------------------------------

def test_pedalboard_loads_the_plugin_and_its_parameters(audio):
    plugin = load()
    assert isinstance(plugin, pedalboard.VST3Plugin)
    assert plugin.name == "SfgraphTestGain"
    assert {"gain_db", "invert", "delay_samples"} <= set(plugin.parameters)
    assert plugin.parameters["gain_db"].range[:2] == (-80.0, 20.0)
    assert plugin.gain_db == pytest.approx(0.0, abs=1e-4) and not plugin.invert
    np.testing.assert_allclose(plugin(audio, RATE), audio, atol=1e-6)
    plugin.gain_db = -6.0
    plugin.invert = True
    np.testing.assert_allclose(plugin(audio, RATE), -db(-6.0) * audio, atol=1e-6)


# --- the pedalboard node ---------------------------------------------------------------

@pytest.mark.parametrize("params", [{}, {"gain_db": -6.0}, {"gain_db": 3.0, "invert": True}])
def test_node_matches_pedalboard_called_directly(audio, params):
    node = make({"plugin": str(BUNDLE), "params": params})
    assert node.latency == 0
    direct = load(**params)(audio, RATE)
    for sizes in ([256], [1, 17, 700, 5], [RATE]):
        ours = run_in_blocks(node, audio, sizes)
        assert ours.shape == audio.shape
        np.testing.assert_allclose(ours, direct, atol=1e-6, err_msg=f"blocks {sizes}")
        node.reset()


def test_node_params_set_plugin_parameters(audio):
    node = make({"plugin": str(BUNDLE), "params": {"gain_db": -6.0}})
    assert node.plugin.gain_db == pytest.approx(-6.0)
    out = run_in_blocks(node, audio, [256])
    np.testing.assert_allclose(out, db(-6.0) * audio, atol=1e-6)
    assert np.std(out) / np.std(audio) == pytest.approx(0.5, rel=0.01)  # -6 dB halves amplitude

    node = make({"plugin": str(BUNDLE), "params": {"invert": True}})
    np.testing.assert_allclose(run_in_blocks(node, audio, [256]), -audio, atol=1e-6)


def test_node_param_change_while_running_keeps_other_params(audio):
    node = make({"plugin": str(BUNDLE), "params": {"gain_db": 0.0, "invert": True}})
    first = run_in_blocks(node, audio[:, :4096], [256])
    node.set_param("params", {"gain_db": -12.0})
    assert node.p.params == {"gain_db": -12.0, "invert": True}
    second = run_in_blocks(node, audio[:, 4096:8192], [256])
    np.testing.assert_allclose(first, -audio[:, :4096], atol=1e-6)
    np.testing.assert_allclose(second, -db(-12.0) * audio[:, 4096:8192], atol=1e-6)


def test_node_parameter_errors_name_the_problem():
    with pytest.raises(ParamError, match=r"has no parameter 'gain'; did you mean gain_db\?"):
        make({"plugin": str(BUNDLE), "params": {"gain": -6.0}})
    with pytest.raises(ParamError, match=r"has no parameter 'inverted'; did you mean invert\b"):
        make({"plugin": str(BUNDLE), "params": {"inverted": True}})
    with pytest.raises(ParamError, match=r"has no parameter 'wet'; it has .*delay_samples, gain_db, invert"):
        make({"plugin": str(BUNDLE), "params": {"wet": 1.0}})
    with pytest.raises(ParamError, match=r"parameter 'gain_db' = -100.*out of range"):
        make({"plugin": str(BUNDLE), "params": {"gain_db": -100}})


def test_node_plugin_load_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="plugin file not found"):
        make({"plugin": str(tmp_path / "Nothing.vst3")})
    bogus = tmp_path / "Bogus.vst3"
    bogus.mkdir()
    with pytest.raises(ValueError, match=f"cannot load plugin {bogus}"):
        make({"plugin": str(bogus)})
    with pytest.raises(ValueError, match="plugin state file not found"):
        make({"plugin": str(BUNDLE), "state": str(tmp_path / "missing.bin")})


def test_raw_state_round_trips_through_the_node(audio, tmp_path):
    saved = settled(load(gain_db=-12.0, invert=True))
    state = tmp_path / "gain.state"
    state.write_bytes(saved.raw_state)

    node = make({"plugin": str(BUNDLE), "state": str(state)})
    assert node.plugin.gain_db == pytest.approx(-12.0) and node.plugin.invert
    np.testing.assert_allclose(run_in_blocks(node, audio, [256]), -db(-12.0) * audio, atol=1e-6)
    assert node.plugin.raw_state == saved.raw_state

    # params are applied on top of the state
    node = make({"plugin": str(BUNDLE), "state": str(state), "params": {"gain_db": -3.0}})
    assert node.plugin.gain_db == pytest.approx(-3.0) and node.plugin.invert


def test_vstpreset_round_trips_through_the_node(audio, tmp_path):
    saved = settled(load(gain_db=-9.0, invert=False))
    preset = tmp_path / "gain.vstpreset"
    preset.write_bytes(saved.preset_data)

    node = make({"plugin": str(BUNDLE), "state": str(preset)})
    assert node.plugin.gain_db == pytest.approx(-9.0) and not node.plugin.invert
    np.testing.assert_allclose(run_in_blocks(node, audio, [300]), db(-9.0) * audio, atol=1e-6)


def test_node_measures_plugin_latency_and_delays_output(audio):
    node = make({"plugin": str(BUNDLE), "params": {"delay_samples": 100, "gain_db": -6.0}})
    assert node.latency == 100
    direct = load(delay_samples=100, gain_db=-6.0)(audio, RATE)  # pedalboard removes latency itself
    np.testing.assert_allclose(direct, db(-6.0) * audio, atol=1e-6)
    for sizes in ([256], [1, 17, 700, 5]):
        ours = run_in_blocks(node, audio, sizes)
        np.testing.assert_array_equal(ours[:, :100], 0)
        np.testing.assert_allclose(ours[:, 100:], direct[:, :-100], atol=1e-6, err_msg=f"blocks {sizes}")
        node.reset()


# --- a whole graph ---------------------------------------------------------------------

GRAPH = """\
sample_rate: 48000
block_size: 256
nodes:
  - {{id: in, type: file_in, params: {{path: in.wav}}}}
  - {{id: fx, type: pedalboard, params: {{plugin: "{bundle}", params: {params}}}}}
  - {{id: out, type: file_out, params: {{path: out.wav}}}}
connections:
  - in.audio -> fx.audio
  - fx.audio -> out.audio
"""


@pytest.mark.parametrize("params, gain, latency", [
    ({"gain_db": -6.0, "invert": True}, -db(-6.0), 0),
    pytest.param({"gain_db": -6.0, "delay_samples": 240}, db(-6.0), 240),
], ids=["gain", "gain+latency"])
def test_graph_renders_through_the_plugin(tmp_path, audio, params, gain, latency):
    from sfgraph.engine.offline import render
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.declaration import load_graph_decl

    write_wav(tmp_path / "in.wav", audio, RATE)
    flow = "{" + ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items()) + "}"
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH.format(bundle=BUNDLE, params=flow))

    result = render(build_graph(load_graph_decl(str(path)), output_dir=tmp_path), progress=False)
    out, rate = read_wav(tmp_path / "out.wav")
    assert rate == RATE and out.shape == audio.shape
    assert result.latency * RATE == latency
    np.testing.assert_allclose(out, gain * audio, atol=1e-6)  # file_out writes float wav by default
