"""`sfgraph separate` with the bundled model, on held-out fixture chorales."""
from __future__ import annotations

import numpy as np

from sfgraph.cli import main
from sfgraph.evaluation.scoring import si_sdr_db
from sfgraph.data.layout import load_item

from helpers import FIXTURES, read_wav


def test_bundled_model_separates_the_fixture_well_above_the_floor(tmp_path):
    scores, floors = [], []
    for folder in sorted((FIXTURES / "bach_tiny").iterdir()):
        if not folder.is_dir():
            continue
        item = load_item(folder, require_stems=True)
        out = tmp_path / item.name
        assert main(["separate", str(folder / "mix.wav"), "--f0", str(folder / "f0"), "-o", str(out), "-q"]) == 0
        estimates = np.stack([read_wav(out / f"{voice}.wav")[0][0] for voice in item.voices])
        stems, mix = item.load_stems(), item.load_mix()
        assert estimates.shape == stems.shape
        scores.append(si_sdr_db(stems, estimates))
        floors.append(si_sdr_db(stems, np.repeat(mix[None], len(item.voices), axis=0)))
    ours, floor = float(np.mean(scores)), float(np.mean(floors))
    assert ours > floor + 12.0, (ours, floor)
    assert min(np.mean(scores, axis=0)) > 3.0  # every voice, not just the easy ones


def test_a_model_folders_separation_settings_are_its_defaults_and_the_options_override_them(tmp_path, capsys):
    """model.json's ``separation`` sets the mask's section width and the synthesized voices'
    noise for ``separate``; --section-cents and --synth-noise override them; a bad setting is
    an input error naming the file."""
    import json
    import shutil

    from sfgraph.cli.separate import separate_graph
    from sfgraph.resources import resolve_resource

    model = tmp_path / "choir"
    shutil.copytree(resolve_resource("sfgraph:models/default"), model)
    description = json.loads((model / "model.json").read_text())

    def settings(**given):
        decl = separate_graph("mix.wav", "f0", model=str(model), **given)
        return decl.node("mask").params.get("section_cents", 0.0), decl.node("synth").params.get("noise", 1.0)

    assert settings() == (0.0, 1.0)  # none recorded: the nodes' defaults
    (model / "model.json").write_text(json.dumps({**description, "separation": {"section_cents": 10,
                                                                               "synth_noise": 0}}))
    assert settings() == (10.0, 0.0)
    assert settings(section_cents=0.0, synth_noise=0.5) == (0.0, 0.5)
    assert settings(section_cents=4.0) == (4.0, 0.0)
    auto = separate_graph("mix.wav", "auto", model=str(model))  # both passes of --f0 auto
    assert [auto.node(name).params["section_cents"] for name in ("mask", "mask2")] == [10.0, 10.0]
    assert [auto.node(name).params["noise"] for name in ("synth", "synth2")] == [0.0, 0.0]
    # --f0 auto's first pass masks with the harmonic part alone, whatever the output's noise
    auto = separate_graph("mix.wav", "auto", model=str(model), synth_noise=0.5)
    assert [auto.node(name).params["noise"] for name in ("synth", "synth2")] == [0.0, 0.5]
    assert [separate_graph("mix.wav", "auto").node(name).params.get("noise", 1.0)
            for name in ("synth", "synth2")] == [0.0, 1.0]  # the bundled model
    assert separate_graph("mix.wav", "f0").node("mask").params.get("section_cents", 0.0) == 0.0  # the bundled model

    folder = FIXTURES / "bach_tiny" / sorted(p.name for p in (FIXTURES / "bach_tiny").iterdir() if p.is_dir())[0]
    for bad, message in (({"section_cents": -3}, "section_cents = -3: give a number from 0 to 100"),
                         ({"mask_width": 3}, "unknown separation setting 'mask_width'")):
        (model / "model.json").write_text(json.dumps({**description, "separation": bad}))
        code = main(["separate", str(folder / "mix.wav"), "--f0", str(folder / "f0"), "--model", str(model),
                     "-o", str(tmp_path / "out"), "-q"])
        assert code == 2 and message in capsys.readouterr().err
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_choir_model_separates_with_its_section_settings(tmp_path):
    """The bundled choir model (sfgraph:models/choir) is a section voice model trained with the
    spread prior, asks for masks from its voices' harmonic part widened by 10 cents, and
    separates a fixture chorale well above the floor."""
    from sfgraph.model.checkpoint import load_model, separation_settings
    from sfgraph.resources import resolve_resource

    folder = resolve_resource("sfgraph:models/choir")
    assert separation_settings(folder) == {"section_cents": 10.0, "synth_noise": 0.0}
    choir = load_model(folder)
    assert choir.config.voices == load_model(resolve_resource("sfgraph:models/default")).config.voices
    assert choir.config.voice.is_section
    item = load_item(sorted(p for p in (FIXTURES / "bach_tiny").iterdir() if p.is_dir())[0], require_stems=True)
    out = tmp_path / "out"
    assert main(["separate", str(item.path / "mix.wav"), "--f0", str(item.path / "f0"), "--model",
                 "sfgraph:models/choir", "-o", str(out), "-q"]) == 0
    estimates = np.stack([read_wav(out / f"{voice}.wav")[0][0] for voice in item.voices])
    floor = si_sdr_db(item.load_stems(), np.repeat(item.load_mix()[None], len(item.voices), axis=0)).mean()
    ours = si_sdr_db(item.load_stems(), estimates).mean()
    assert ours > floor + 8.0, (ours, floor)


def test_an_f0_folder_without_a_voice_of_the_model_names_the_missing_voice(tmp_path, capsys):
    import shutil

    item = next(p for p in sorted((FIXTURES / "bach_tiny").iterdir()) if p.is_dir())
    f0 = tmp_path / "f0"
    shutil.copytree(item / "f0", f0)
    (f0 / "bass.csv").unlink()
    (f0 / "notes.csv").write_text("time_s,f0_hz\n0.0,0.0\n")
    code = main(["separate", str(item / "mix.wav"), "--f0", str(f0), "-o", str(tmp_path / "out"), "-q"])
    assert code == 2
    assert ("node 'net' port 'f0': the model separates soprano, alto, tenor, bass; the F0 input has soprano, "
            "alto, tenor, notes: no F0 for bass") in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
