"""The live engine's parts that need no sound device: rings, the live error policy,
param control and MIDI mapping, device nodes offline, the shipped live graphs offline."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from sfgraph.buffers import FrameRing
from sfgraph.cli import build_parser
from sfgraph.engine.live import LiveEngine, build_live_graph
from sfgraph.engine.midi_map import midi_section_yaml, parse_midi_map
from sfgraph.engine.offline import render
from sfgraph.engine.param_control import ControlError, ParamControl, bind_target, parse_assignment
from sfgraph.engine.scheduler import Scheduler
from sfgraph.graph.build import build_graph
from sfgraph.graph.errors import GraphError, NodeError
from sfgraph.graph.declaration import load_graph_decl
from sfgraph.graph.node import Node
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port

from helpers import FIXTURES, read_wav, write_wav

ITEM = FIXTURES / "bach_tiny" / "0000_bwv159.5_0"


class Glitch(Node):
    """Passes audio through, but raises in block ``raise_at`` and returns NaN in block ``nan_at``."""

    type_name = "test_live_glitch"
    inputs = {"audio": Port("audio")}
    outputs = {"audio": Port("audio")}
    params = {"raise_at": Param("int", -1), "nan_at": Param("int", -1)}

    def prepare(self):
        self.blocks = 0

    def process(self, audio):
        self.blocks += 1
        if self.blocks == self.p.raise_at:
            raise RuntimeError("deliberate glitch")
        if self.blocks == self.p.nan_at:
            return {"audio": np.full_like(audio, np.nan)}
        return {"audio": audio}


GLITCH = """\
imports: ["{custom}"]
sample_rate: 16000
block_size: 100
nodes:
  - {id: tone, type: test_tone, params: {hz: 300, seconds: 0.5}}
  - {id: glitch, type: test_live_glitch, params: {raise_at: 5, nan_at: 9}}
  - {id: out, type: file_out, params: {path: out.wav}}
connections:
  - tone.audio -> glitch.audio
  - glitch.audio -> out.audio
"""

MIXER = """\
imports: ["{custom}"]
sample_rate: 16000
block_size: 160
nodes:
  - {id: tone, type: test_tone, params: {seconds: 0.5}}
  - {id: mix, type: mixer, params: {inputs: 1, channels: 2, gain_db: [0], pan: [0], mute: [false]}}
  - {id: verb, type: pedalboard, params: {plugin: Reverb, params: {wet_level: 0.3}}}
  - {id: out, type: file_out, params: {path: out.wav}}
connections:
  - tone.audio -> mix.in0
  - mix.audio -> verb.audio
  - verb.audio -> out.audio
"""


def test_ring_reads_by_position_so_late_and_lost_frames_keep_the_timeline():
    ring = FrameRing(channels=2, capacity=8)
    frames = np.arange(40, dtype=np.float32).reshape(20, 2)
    ring.write(frames[:5])
    out = np.full((6, 2), -1.0, dtype=np.float32)
    assert ring.read_into(out, 0) == (1, 0)  # frame 5 is not written yet: silence
    np.testing.assert_array_equal(out, np.vstack([frames[:5], np.zeros((1, 2))]))
    ring.write(frames[5:13])  # 13 frames written into 8 slots: frames 0-4 are gone
    assert ring.read_into(out[:4], 2) == (0, 3)
    np.testing.assert_array_equal(out[:4], np.vstack([np.zeros((3, 2)), frames[5:6]]))
    assert ring.read_into(out[:4], 10) == (1, 0)  # across the wrap, then one frame early
    np.testing.assert_array_equal(out[:4], np.vstack([frames[10:13], np.zeros((1, 2))]))
    ring.write_zeros(3)
    assert ring.written == 16


def test_live_policy_silences_the_failing_block_and_goes_on(graph_file):
    graph = build_graph(load_graph_decl(str(graph_file(GLITCH))))
    scheduler = Scheduler(graph, on_error="silence")
    scheduler.prepare()
    received = []
    graph.nodes["out"].process = lambda audio: received.append(audio) or {}
    for _ in range(12):
        scheduler.run_block()
    scheduler.close(ok=False)
    out = np.concatenate(received, axis=-1)[0]
    tone = 0.5 * np.sin(2 * np.pi * 300 * np.arange(1200) / 16000)
    silent = np.zeros(1200, dtype=bool)
    silent[400:500] = silent[800:900] = True  # blocks 5 and 9
    np.testing.assert_array_equal(out[silent], 0)
    np.testing.assert_allclose(out[~silent], tone[~silent], atol=1e-6)
    assert [(tick, e.node_id) for tick, e in scheduler.errors] == [(5, "glitch"), (9, "glitch")]
    assert "RuntimeError: deliberate glitch" in str(scheduler.errors[0][1])
    assert "output 'audio' holds NaN or infinite values" in str(scheduler.errors[1][1])


@pytest.mark.parametrize("failure, message", [("raise_at", "deliberate glitch"), ("nan_at", "NaN")])
def test_offline_still_fails_loudly(graph_file, tmp_path, failure, message):
    text = GLITCH.replace("raise_at: 5, nan_at: 9", f"{failure}: 3")
    with pytest.raises(NodeError, match=message):
        render(build_graph(load_graph_decl(str(graph_file(text))), output_dir=tmp_path), progress=False,
               block_size=100)  # the failure comes after some good blocks
    assert not (tmp_path / "out.wav").exists()


def test_param_targets_name_what_they_change(graph_file):
    graph = build_graph(load_graph_decl(str(graph_file(MIXER))))
    assert bind_target(graph, "mix.gain_db[0]").current() == 0.0
    assert bind_target(graph, "verb.params.wet_level").current() == 0.3
    assert bind_target(graph, "mix.mute[0]").kind == "bool"
    for text, message in [("mix.gain[0]", "no param 'gain'"), ("mix.inputs", "cannot change while running"),
                          ("mix.gain_db[1]", "has 1 items"), ("mix.gain_db", "name one item"),
                          ("mix.solo[0]", "does not set 'solo'"), ("verb.params.room_size", "does not set"),
                          ("nix.gain_db[0]", "no node 'nix'"), ("mix gain", "must read NODE.PARAM")]:
        with pytest.raises(ControlError, match=message):
            bind_target(graph, text)
    target, value = parse_assignment(graph, "mix.pan[0]=-0.5")
    assert (target.name, value) == ("mix.pan[0]", -0.5)
    with pytest.raises(ControlError, match="out of range"):
        parse_assignment(graph, "mix.pan[0]=3")


def test_numeric_changes_glide_one_step_per_block_and_bools_switch(graph_file):
    graph = build_graph(load_graph_decl(str(graph_file(MIXER))))
    blocks = [0]
    control = ParamControl(block_seconds=0.01, block_counter=lambda: blocks[0], smoothing_ms=30)
    mixer, verb = graph.nodes["mix"], graph.nodes["verb"]
    control.submit(bind_target(graph, "mix.gain_db[0]"), -30.0)
    control.submit(bind_target(graph, "mix.mute[0]"), True)
    control.submit(bind_target(graph, "verb.params.wet_level"), 0.6, smoothing_ms=20)
    seen = []
    for _ in range(4):
        control.apply_pending()
        blocks[0] += 1
        seen.append((mixer.p.gain_db[0], mixer.p.mute[0], verb.plugin.wet_level))
    assert [g for g, _, _ in seen] == pytest.approx([-10.0, -20.0, -30.0, -30.0])
    assert all(mute for _, mute, _ in seen)
    assert [w for _, _, w in seen] == pytest.approx([0.45, 0.6, 0.6, 0.6], abs=1e-6)
    assert control.applied[0].applied_block == 1 and control.applied[0].source == "terminal"
    control.submit(bind_target(graph, "mix.pan[0]"), 0.5, smoothing_ms=0)
    control.apply_pending()
    assert mixer.p.pan == [0.5]


def test_midi_map_translates_controllers_notes_and_programs(graph_file):
    graph = build_graph(load_graph_decl(str(graph_file(MIXER))))
    section = {"smoothing_ms": 10, "map": [
        {"cc": 7, "param": "mix.gain_db[0]", "range": [-60, 6]},
        {"cc": 10, "channel": 2, "param": "mix.pan[0]"},
        {"note": 36, "param": "mix.mute[0]", "mode": "toggle"},
        {"note": 37, "param": "mix.mute[0]", "mode": "hold"},
        {"note": 60, "param": "verb.params.wet_level", "range": [0, 1]},
        {"program": 3, "param": "verb.params.wet_level", "value": 0.9},
    ]}
    midi = parse_midi_map(graph, section)
    assert midi.smoothing_ms == 10

    def values(message):
        return [(rule.target.name, value) for rule, value in midi.translate(message)]

    assert values([0xB0, 7, 127]) == [("mix.gain_db[0]", 6.0)]
    assert values([0xB0, 7, 0]) == [("mix.gain_db[0]", -60.0)]
    assert values([0xB0, 10, 127]) == []  # channel 1; the entry listens on channel 2
    assert values([0xB1, 10, 0]) == [("mix.pan[0]", -1.0)]  # declared range of pan
    assert values([0x90, 36, 100]) == [("mix.mute[0]", True)]
    assert values([0x80, 36, 0]) == []
    assert values([0x90, 37, 90]) == [("mix.mute[0]", True)]
    assert values([0x90, 37, 0]) == [("mix.mute[0]", False)]  # note-on at velocity 0 is a note-off
    assert values([0x90, 60, 127]) == [("verb.params.wet_level", 1.0)]
    assert values([0xC0, 3]) == [("verb.params.wet_level", 0.9)]
    assert values([0xE0, 0, 64]) == []  # pitch bend: not mapped
    again = parse_midi_map(graph, load_section(midi_section_yaml(midi.rules, midi.smoothing_ms)))
    assert [r.describe() for r in again.rules] == [r.describe() for r in midi.rules]


def load_section(text):
    import yaml

    return yaml.safe_load(text)["midi"]


def test_midi_map_problems_are_all_reported(graph_file):
    graph = build_graph(load_graph_decl(str(graph_file(MIXER))))
    section = {"smoothing": 3, "map": [
        {"cc": 7, "param": "mix.gain_db[0]", "range": [-60, 60]},
        {"cc": 300, "param": "mix.gain_db[0]"},
        {"cc": 7, "note": 3, "param": "mix.gain_db[0]"},
        {"note": 40, "param": "mix.mute[0]", "mode": "latch"},
        {"cc": 8, "param": "verb.params.wet_level"},
        {"program": 1, "param": "mix.pan[0]"},
    ]}
    with pytest.raises(GraphError) as info:
        parse_midi_map(graph, section)
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 7, messages
    for expected in ["unknown key 'smoothing'", "entry 1: mix.gain_db[0]: item 0: 60 is out of range",
                     "entry 2: cc must be a number 0..127", "entry 3: name exactly one message",
                     "entry 4: mode must be one of toggle, hold", "entry 5: verb.params.wet_level has no declared range",
                     "entry 6: a program entry needs the 'value'"]:
        assert any(expected in m for m in messages), (expected, messages)


def test_device_nodes_stand_in_with_files_offline(graph_file, tmp_path):
    rng = np.random.default_rng(0)
    audio = (0.2 * rng.standard_normal((2, 16000))).astype(np.float32)
    write_wav(tmp_path / "rec.wav", audio, 16000)
    text = """\
sample_rate: 48000
nodes:
  - {id: mic, type: device_in, params: {channels: 2, file: rec.wav}}
  - {id: low, type: resample, params: {rate: 16000}}
  - {id: out, type: device_out}
connections:
  - mic.audio -> low.audio
  - low.audio -> out.audio
"""
    path = graph_file(text)
    graph = build_graph(load_graph_decl(str(path)), output_dir=tmp_path)
    render(graph, progress=False)
    out, rate = read_wav(tmp_path / "out.wav")  # default file: <node id>.wav, at the device rate
    assert rate == 48000 and out.shape == (2, 48000)
    with pytest.raises(GraphError, match=r"device_in reads a sound device, live only .* -p mic.file="):
        build_graph(load_graph_decl(str(graph_file(text.replace(", file: rec.wav", "")))))
    with pytest.raises(GraphError, match="has 2 channel"):
        build_graph(load_graph_decl(str(graph_file(text.replace("channels: 2", "channels: 3")))))
    live = build_live_graph(load_graph_decl(str(graph_file(text.replace(", file: rec.wav", "")))))
    assert live.nodes["mic"].output_specs["audio"].channels == 2


def test_the_rehearsal_outlasts_a_lookahead_and_primes_for_it(graph_file):
    """Half a second of look-ahead (as f0_multi's) holds output back for 94 blocks: the
    rehearsal runs until output arrives, and the priming covers the wait."""
    text = """\
imports: ["{custom}"]
sample_rate: 48000
block_size: 256
nodes:
  - {id: tone, type: test_tone, params: {seconds: 2}}
  - {id: ahead, type: test_hold_back, params: {samples: 24000}}
  - {id: out, type: device_out}
connections:
  - tone.audio -> ahead.audio
  - ahead.audio -> out.audio
"""
    graph = build_live_graph(load_graph_decl(str(graph_file(text))))
    assert graph.total_latency() == Fraction(1, 2) and graph.lookahead["out"] == Fraction(1, 2)
    assert graph.arrival["out"] == 0
    engine = LiveEngine(graph)
    try:
        engine.prepare()
    finally:
        engine.scheduler.close(ok=False)
    assert engine.target_delay >= 24000 + engine.ahead_blocks * 256
    parts = engine._latency_parts
    assert parts["lookahead"] == 24000 and parts["nodes"] == 0 and 0 <= parts["scheduling"] < 256


@pytest.mark.parametrize("name", ["separate_live", "choir_fx", "choir_fx_midi"])
def test_shipped_live_graphs_render_offline(name, tiny_model, tmp_path):
    overrides = [f"net.model={tiny_model}", f"mic.file={ITEM / 'mix.wav'}", f"f0.dir={ITEM / 'f0'}"]
    graph = build_graph(load_graph_decl(name, overrides), output_dir=tmp_path)
    assert graph.nodes["mask"].latency <= 256  # a low-delay mask (16 ms at 16 kHz)
    parse_midi_map(graph)
    render(graph, progress=False)
    written = [p for node in graph.nodes.values() for p in getattr(node, "written", [])]
    expected_channels = 1 if name == "separate_live" else 2
    assert len(written) == (4 if name == "separate_live" else 1)
    for path in written:
        audio, rate = read_wav(path)
        assert rate == 48000 and audio.shape == (expected_channels, 3 * 48000)
        assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-3


def test_live_commands_have_help():
    parser = build_parser()
    for command in ("live", "devices", "midi-learn"):
        with pytest.raises(SystemExit) as info:
            parser.parse_args([command, "--help"])
        assert info.value.code == 0
    args = parser.parse_args(["live", "choir_fx", "--blocksize", "128", "--duration", "60", "--report", "r.json"])
    assert (args.blocksize, args.duration, args.ahead) == (128, 60.0, 2)
