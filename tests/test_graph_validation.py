"""Every validation error names the file, the line, the node and the port."""
from __future__ import annotations

import subprocess
import sys

import pytest

from sfgraph.cli import main
from sfgraph.graph.build import build_graph
from sfgraph.graph.errors import GraphError
from sfgraph.graph.declaration import load_graph_decl, parse_graph


def problems_of(path, overrides=()):
    with pytest.raises(GraphError) as info:
        build_graph(load_graph_decl(str(path), list(overrides)))
    return info.value.problems


def only(problems):
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


GOOD = """\
imports: ["{custom}"]
sample_rate: 16000
nodes:
  - {id: tone, type: test_tone, params: {seconds: 0.5}}
  - {id: amp, type: gain, params: {db: -6}}
  - {id: out, type: file_out, params: {path: out.wav}}
connections:
  - tone.audio -> amp.audio
  - amp.audio -> out.audio
"""


def test_good_graph_builds(graph_file):
    graph = build_graph(load_graph_decl(str(graph_file(GOOD))))
    assert graph.order == ["tone", "amp", "out"]


def test_unknown_node_type_suggests_close_names(graph_file):
    path = graph_file(GOOD.replace("type: gain", "type: gian"))
    p = only(problems_of(path))
    assert p.file == str(path) and p.line == 5 and p.node == "amp"
    assert "unknown node type 'gian'" in str(p) and "did you mean gain" in str(p)


def test_unknown_param_suggests(graph_file):
    path = graph_file(GOOD.replace("{db: -6}", "{dB: -6}"))
    p = only(problems_of(path))
    assert (p.line, p.node) == (5, "amp") and "unknown param 'dB'" in p.message and "'db'" in p.message


def test_wrong_type_and_out_of_range(graph_file):
    wrong = only(problems_of(graph_file(GOOD.replace("{db: -6}", "{db: loud}"))))
    assert wrong.node == "amp" and "param 'db'" in wrong.message and "expected a number" in wrong.message
    out = only(problems_of(graph_file(GOOD.replace("{db: -6}", "{db: 60}"))))
    assert "60 is out of range [-120, 24] dB" in out.message


def test_missing_required_input(graph_file):
    path = graph_file(GOOD.replace("  - tone.audio -> amp.audio\n", ""))
    p = only(problems_of(path))
    assert (p.node, p.port, p.line) == ("amp", "audio", 5)
    assert "required input 'audio' (audio) is not connected" in p.message


def test_port_kind_mismatch(graph_file):
    text = """\
imports: ["{custom}"]
nodes:
  - {id: frames, type: test_frames}
  - {id: amp, type: gain}
connections:
  - frames.f0 -> amp.audio
"""
    problems = problems_of(graph_file(text))
    kind = next(p for p in problems if "cannot connect" in p.message)
    assert (kind.node, kind.port, kind.line) == ("amp", "audio", 6)
    assert "cannot connect a f0 output to a audio input" in kind.message


def test_channel_mismatch(graph_file):
    text = """\
imports: ["{custom}"]
nodes:
  - {id: tone, type: test_tone, params: {channels: 2}}
  - {id: voices, type: split, params: {names: [s, a, t, b]}}
connections:
  - tone.audio -> voices.audio
"""
    p = only(problems_of(graph_file(text)))
    assert (p.node, p.port, p.line) == ("voices", "audio", 6)
    assert "expects 4 channel(s), got 2" in p.message


def test_rate_mismatch_for_frames(graph_file):
    text = """\
imports: ["{custom}"]
nodes:
  - {id: frames, type: test_frames, params: {frame_rate: 100}}
  - {id: sink, type: test_frame_sink}
connections:
  - frames.f0 -> sink.f0
"""
    p = only(problems_of(graph_file(text)))
    assert (p.node, p.port, p.line) == ("sink", "f0", 6)
    assert "100 frames/s" in p.message and "needs 62.5 frames/s" in p.message


def test_cycle_is_reported(graph_file):
    text = """\
nodes:
  - {id: a, type: gain}
  - {id: b, type: gain}
connections:
  - a.audio -> b.audio
  - b.audio -> a.audio
"""
    p = only(problems_of(graph_file(text)))
    assert "cycle between nodes a, b" in p.message and p.line == 5


def test_duplicate_ids(graph_file):
    text = GOOD.replace("  - {id: out,", "  - {id: amp, type: gain}\n  - {id: out,")
    p = only(problems_of(graph_file(text)))
    assert (p.node, p.line) == ("amp", 6) and "duplicate node id (first defined on line 5)" in p.message


def test_unknown_connection_endpoints(graph_file):
    problems = problems_of(graph_file(GOOD.replace("amp.audio -> out.audio", "amp.sound -> uot.audio")))
    messages = [str(p) for p in problems]
    assert any(":9: node 'amp' port 'sound'" in m and "gain has no output 'sound'" in m for m in messages)
    assert any("no node 'uot'" in m and "'out'" in m for m in messages)


def test_all_problems_reported_at_once(graph_file):
    text = GOOD.replace("type: gain", "type: gian").replace("{path: out.wav}", "{path: out.wav, bits: 3}")
    problems = problems_of(graph_file(text))
    assert {p.node for p in problems} == {"amp", "out"}


def test_a_missing_input_file_is_reported_beside_the_connection_problems(graph_file):
    text = GOOD.replace("type: test_tone, params: {seconds: 0.5}", "type: file_in, params: {path: nowhere.wav}")
    problems = problems_of(graph_file(text.replace("amp.audio -> out.audio", "amp.sound -> out.audio")))
    messages = [str(p) for p in problems]
    assert len(messages) == 2, messages
    assert any("node 'amp' port 'sound'" in m for m in messages)
    assert any(":4: node 'tone'" in m and "nowhere.wav" in m for m in messages)


def test_malformed_yaml_has_line_and_no_traceback(graph_file, capsys):
    path = graph_file("nodes:\n  - {id: a, type: gain\nconnections: []\n")
    with pytest.raises(GraphError) as info:
        load_graph_decl(str(path))
    assert info.value.problems[0].line is not None and "invalid YAML" in str(info.value)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "invalid YAML" in err and "Traceback" not in err


def test_unknown_top_level_key_and_bad_connection_syntax():
    with pytest.raises(GraphError) as info:
        parse_graph("nodse: []\nnodes: [{id: a, type: gain}]\nconnections: ['a.audio => b.audio']\n", "x.yaml")
    text = str(info.value)
    assert "x.yaml:1: unknown key 'nodse'; did you mean 'nodes'" in text
    assert "x.yaml:3: connection must read 'node.port -> node.port'" in text


def test_import_failure_is_located(graph_file):
    path = graph_file(GOOD.replace('imports: ["{custom}"]', "imports: [no_such_module_xyz]"))
    problems = problems_of(path)
    assert problems[0].line == 1 and "cannot import 'no_such_module_xyz'" in problems[0].message


def test_override_of_unknown_node(graph_file):
    with pytest.raises(GraphError, match="no node 'amq'.*'amp'"):
        load_graph_decl(str(graph_file(GOOD)), ["amq.db=3"])


def test_validate_cli_prints_every_problem(graph_file):
    text = GOOD.replace("type: gain", "type: gian").replace("{path: out.wav}", "{path: out.wav, bits: 3}")
    result = subprocess.run([sys.executable, "-m", "sfgraph", "validate", str(graph_file(text))],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "2 problems" in result.stderr and "gian" in result.stderr and "bits" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_checks_the_midi_section(graph_file, capsys):
    text = GOOD + "midi:\n  map:\n    - {cc: 7, param: amq.db, range: [-60, 0]}\n"
    assert main(["validate", str(graph_file(text))]) == 2
    err = capsys.readouterr().err
    assert "midi section" in err and "amq" in err
    fixed = GOOD + "midi:\n  map:\n    - {cc: 7, param: amp.db, range: [-60, 0]}\n"
    assert main(["validate", str(graph_file(fixed))]) == 0
    assert "1 MIDI mapping(s)" in capsys.readouterr().out
