"""The sfgraph command line, as a user runs it."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np

from sfgraph.cli import main
from sfgraph.graph import registry

from helpers import FIXTURES, read_wav, write_wav

CHAIN = """\
sample_rate: 16000
nodes:
  - {id: in, type: file_in, params: {path: in.wav}}
  - {id: amp, type: gain, params: {db: 0}}
  - {id: out, type: file_out, params: {path: "voices/{label}.wav"}}
connections:
  - in.audio -> amp.audio
  - amp.audio -> out.audio
"""


def test_render_with_override_and_output_folder(graph_file, tmp_path, capsys):
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 8000)).astype(np.float32)
    write_wav(tmp_path / "in.wav", audio, 16000)
    path = graph_file(CHAIN)
    assert main(["render", str(path), "-p", "amp.db=-6.0206", "-o", str(tmp_path / "out"), "-q"]) == 0
    for i, label in enumerate(["ch0", "ch1"]):
        out, rate = read_wav(tmp_path / "out" / "voices" / f"{label}.wav")
        np.testing.assert_allclose(out[0], audio[i] / 2, atol=1e-5)
    assert "wrote" in capsys.readouterr().out


def test_render_block_size(graph_file, tmp_path, capsys):
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (2, 8000)).astype(np.float32)
    write_wav(tmp_path / "in.wav", audio, 16000)
    path = graph_file(CHAIN)
    assert main(["render", str(path), "-o", str(tmp_path), "-q"]) == 0
    assert "in 1 blocks of 16384 " in capsys.readouterr().out  # offline: large blocks, whatever the graph says
    assert main(["render", str(path), "-o", str(tmp_path / "small"), "-q", "--block-size", "100"]) == 0
    assert "in 81 blocks of 100 " in capsys.readouterr().out  # the 81st finds the end
    for label in ("ch0", "ch1"):
        np.testing.assert_array_equal(read_wav(tmp_path / "small" / "voices" / f"{label}.wav")[0],
                                      read_wav(tmp_path / "voices" / f"{label}.wav")[0])


def test_render_missing_input_file_names_it(graph_file, capsys):
    assert main(["render", str(graph_file(CHAIN)), "-q"]) == 2
    err = capsys.readouterr().err
    assert "node 'in'" in err and "in.wav" in err and "Traceback" not in err


def test_describe_list_and_graphs(capsys):
    assert main(["describe", "gain"]) == 0
    out = capsys.readouterr().out
    assert "db: float, [dB], range [-120, 24], default 0.0, live" in out
    assert main(["list-nodes"]) == 0
    assert "pedalboard" in capsys.readouterr().out
    assert main(["describe", "gian"]) == 2
    assert "did you mean gain" in capsys.readouterr().err
    assert main(["graphs"]) == 0
    assert "effects_chain" in capsys.readouterr().out


def test_draw_writes_png_and_svg(graph_file, tmp_path):
    write_wav(tmp_path / "in.wav", np.zeros((1, 100)), 16000)
    for suffix in ("png", "svg"):
        target = tmp_path / f"graph.{suffix}"
        assert main(["draw", str(graph_file(CHAIN)), "-o", str(target)]) == 0
        assert target.stat().st_size > 1000
    assert (tmp_path / "graph.png").read_bytes()[:4] == b"\x89PNG"


def test_every_command_has_help():
    for command in ([], ["render"], ["validate"], ["describe"], ["list-nodes"], ["graphs"], ["draw"], ["separate"],
                    ["train"], ["data"], ["data", "bach"], ["eval"], ["baseline"], ["f0"], ["eval-f0"], ["live"]):
        result = subprocess.run([sys.executable, "-m", "sfgraph", *command, "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "usage: sfgraph" in result.stdout


def test_node_type_from_an_entry_point(tmp_path, monkeypatch):
    """A package that declares an ``sfgraph.nodes`` entry point adds node types."""
    (tmp_path / "choir_extras.py").write_text(textwrap.dedent("""
        from sfgraph.graph.node import Node
        from sfgraph.graph.ports import Port

        class Invert(Node):
            type_name = "test_entry_point_invert"
            inputs = {"audio": Port("audio")}
            outputs = {"audio": Port("audio")}

            def process(self, audio):
                return {"audio": -audio}
    """))
    dist = tmp_path / "choir_extras-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: choir-extras\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sfgraph.nodes]\ninvert = choir_extras\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.load_entry_points()
    assert "test_entry_point_invert" in registry.node_types()


def test_separate_graph_builds_every_variant_of_separate():
    from sfgraph.cli.separate import separate_graph

    def sources(decl):
        return {n.id: (n.type, n.params) for n in decl.nodes}, [str(c) for c in decl.connections]

    plain_nodes, plain_connections = sources(separate_graph("mix.wav", "f0_dir"))
    assert plain_nodes["mix"][1]["path"] == "mix.wav"
    assert plain_nodes["f0"] == ("f0_files", {"dir": "f0_dir"})
    assert plain_nodes["net"][1] == {"model": "sfgraph:models/default", "device": "auto"}
    assert plain_nodes["mask"][1]["n_fft"] == 2048 and plain_nodes["mask"][1]["power"] == 1.0
    assert plain_nodes["mask"][1]["fit_seconds"] == 2.0
    assert plain_nodes["mask"][1]["low_n_fft"] == 4096 and plain_nodes["mask"][1]["crossover_hz"] == 600
    assert "synth_out" not in plain_nodes
    assert sources(separate_graph("mix.wav", "f0_dir", low_n_fft=0))[0]["mask"][1]["low_n_fft"] is None
    assert sources(separate_graph("mix.wav", "f0_dir", low_n_fft=8192))[0]["mask"][1]["low_n_fft"] == 8192

    nodes, connections = sources(separate_graph("mix.wav", "chorale.MID", model="mine/", synth=True, power=2,
                                                n_fft=4096, mask_fit=0, device="cpu"))
    assert nodes["f0"] == ("f0_score", {"path": "chorale.MID", "align_to": "mix.wav"})
    assert nodes["net"][1] == {"model": "mine/", "device": "cpu"}
    # a mask STFT as long as the low band's: that size throughout
    assert nodes["mask"][1] == {**plain_nodes["mask"][1], "n_fft": 4096, "power": 2, "fit_seconds": 0,
                                "low_n_fft": None}
    assert nodes["synth_out"] == ("file_out", {"path": "synth/{label}.wav"})
    assert connections == plain_connections + ["synth.voices -> synth_out.audio"]

    nodes, connections = sources(separate_graph("mix.wav", "auto", ranges=["C4-A5", "F3-D5", "C3-A4", "E2-E4"],
                                                synth=True, mask_fit=0, device="cpu"))
    assert nodes["f0"] == ("f0_multi", {"unison_leap_cents": 0, "voices": ["soprano", "alto", "tenor", "bass"],
                                        "ranges": ["C4-A5", "F3-D5", "C3-A4", "E2-E4"]})
    assert nodes["refine"][0] == "f0_refine"
    assert nodes["net"][1] == nodes["net2"][1] == {"model": "sfgraph:models/default", "device": "cpu"}
    assert nodes["mask"][1]["fit_seconds"] == nodes["mask2"][1]["fit_seconds"] == 0
    # two resolutions for the separation written; the first pass, which feeds the refinement, keeps one
    assert "low_n_fft" not in nodes["mask"][1] and nodes["mask2"][1]["low_n_fft"] == 4096
    # the first pass separates for the refinement, the second for the output
    assert {"mix.audio -> f0.mix", "mask.voices -> refine.voices", "f0.f0 -> refine.f0", "refine.f0 -> net2.f0",
            "refine.f0 -> synth2.f0", "mask2.voices -> out.audio", "synth2.voices -> synth_out.audio",
            "refine.f0 -> f0_out.f0"} <= set(connections)
    assert nodes["f0_out"] == ("f0_out", {"dir": "f0"})


def test_errors_name_the_command_and_exit_by_the_policy(tmp_path, capsys):
    """One policy for every command: ``sfgraph COMMAND: error: MESSAGE``, 2 for input to fix,
    1 for a failure while running."""
    assert main(["data", "check", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("sfgraph data check: error: 1 problem(s) in dataset")
    assert main(["f0", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "f0"), "--method", "score"]) == 2
    assert capsys.readouterr().err == "sfgraph f0: error: --method score needs --score FILE (a MIDI file or a MusicXML score)\n"
    for item in (FIXTURES / "bach_tiny").glob("*/f0"):
        shutil.copytree(item, tmp_path / "truth" / item.parent.name)
    (tmp_path / "report.json").mkdir()  # in the way of eval-f0's report
    assert main(["eval-f0", str(FIXTURES / "bach_tiny"), "--estimates", f"truth={tmp_path / 'truth'}",
                 "-o", str(tmp_path / "report.json")]) == 1
    assert capsys.readouterr().err.startswith("sfgraph eval-f0: error: ")


def test_building_the_parser_imports_nothing_heavy():
    code = ("import sys; from sfgraph.cli import build_parser; build_parser(); "
            "print(sorted({'numpy', 'torch', 'pedalboard', 'yaml'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
