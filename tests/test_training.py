"""Training: the loss falls, resuming is exact, stems are never read, errors are clear."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sfgraph.cli import main
from sfgraph.model.checkpoint import load_model, save_model
from sfgraph.model.errors import ModelError
from sfgraph.model.network import NetworkConfig, ParamNet

from helpers import FIXTURES

TINY = ["--hidden", "16", "--segment-seconds", "1", "--batch-size", "2", "--threads", "1", "-q"]


def train_args(dataset, model_dir, steps, *extra):
    return ["train", str(dataset), "-o", str(model_dir), "--steps", str(steps), *TINY, *extra]


@pytest.fixture(scope="module")
def dataset_without_stems(tmp_path_factory):
    """The fixture dataset with its stems removed: training must not need them."""
    root = tmp_path_factory.mktemp("data") / "bach_tiny"
    shutil.copytree(FIXTURES / "bach_tiny", root)
    for stems in root.glob("*/stems"):
        shutil.rmtree(stems)
    return root


def log_rows(model_dir):
    lines = (Path(model_dir) / "log.csv").read_text().splitlines()[1:]
    return [dict(zip(("step", "train", "validation", "lr", "seconds"), map(float, l.split(",")))) for l in lines]


def test_tiny_training_decreases_the_loss_without_stems(dataset_without_stems, tmp_path):
    model_dir = tmp_path / "model"
    assert main(train_args(dataset_without_stems, model_dir, 60, "--eval-every", "20", "--learning-rate", "3e-3")) == 0
    rows = log_rows(model_dir)
    assert [r["step"] for r in rows] == [20, 40, 60]
    assert rows[-1]["validation"] < rows[0]["validation"]
    assert rows[-1]["train"] < rows[0]["train"]
    description = json.loads((model_dir / "model.json").read_text())
    assert description["voices"] == ["soprano", "alto", "tenor", "bass"]
    assert (model_dir / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    network = load_model(model_dir)
    assert network.config.hidden == 16


def test_the_training_loader_never_opens_stems(monkeypatch):
    """Record every file opened while loading training data from a dataset that has stems:
    Python-level opens (an audit hook) and audio files (through pedalboard, in C++)."""
    import sfgraph.data.audio as audio
    from sfgraph.dsp.voice_config import VoiceConfig
    from sfgraph.model.config import TrainConfig
    from sfgraph.data.layout import load_training_dataset
    from sfgraph.model.train import load_segments

    opened = []
    sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and args else None)
    real_audio_file = audio.AudioFile
    monkeypatch.setattr(audio, "AudioFile", lambda path, *a, **k: opened.append(str(path)) or real_audio_file(path, *a, **k))
    train, validation, voices = load_segments(load_training_dataset(FIXTURES / "bach_tiny"),
                                              TrainConfig(segment_seconds=1), VoiceConfig())
    assert voices == ("soprano", "alto", "tenor", "bass") and len(train.mixes) == 2
    assert sum(p.endswith("mix.wav") for p in opened) >= 3 and any(p.endswith("soprano.csv") for p in opened)
    assert not [p for p in opened if "stems" in p]


def test_resume_after_kill_equals_an_uninterrupted_run(dataset_without_stems, tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    args = ["--eval-every", "5", "--seed", "3"]
    assert main(train_args(dataset_without_stems, whole, 20, *args)) == 0
    command = [sys.executable, "-m", "sfgraph.train", *train_args(dataset_without_stems, resumed, 20, *args)[1:]]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            rows = log_rows(resumed) if (resumed / "log.csv").exists() else []
            if rows and rows[-1]["step"] >= 10:
                break
            time.sleep(0.05)
        assert process.poll() is None, "training ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert main(train_args(dataset_without_stems, resumed, 20, *args, "--resume")) == 0
    first = torch.load(whole / "checkpoint.pt", weights_only=False)["network"]
    second = torch.load(resumed / "checkpoint.pt", weights_only=False)["network"]
    for name in first:
        torch.testing.assert_close(second[name], first[name], rtol=0, atol=0, msg=name)


def test_resume_with_other_frame_settings_is_refused(dataset_without_stems, tmp_path, capsys):
    model_dir = tmp_path / "model"
    assert main(train_args(dataset_without_stems, model_dir, 4, "--eval-every", "2", "--no-causal-frames")) == 0
    assert load_model(model_dir).config.causal_frames is False
    assert main(train_args(dataset_without_stems, model_dir, 6, "--eval-every", "2", "--resume")) != 0
    assert "causal_frames False (now True)" in capsys.readouterr().err


def test_init_starts_from_a_trained_model_and_checks_its_settings(dataset_without_stems, tmp_path, capsys):
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    assert main(train_args(dataset_without_stems, base, 40, "--eval-every", "20", "--learning-rate", "3e-3")) == 0
    base_loss = min(row["validation"] for row in log_rows(base))
    # One step at a negligible learning rate: the first validation is the base model's.
    frozen = ["--eval-every", "1", "--learning-rate", "1e-9", "--final-learning-rate", "1e-9", "--seed", "5"]
    # The starting model's separation settings (as the shipped choir model's) carry over.
    description = json.loads((base / "model.json").read_text())
    separation = {"section_cents": 10.0, "synth_noise": 0.0}
    (base / "model.json").write_text(json.dumps({**description, "separation": separation}))
    assert main(train_args(dataset_without_stems, tuned, 1, *frozen, "--init", str(base))) == 0
    assert log_rows(tuned)[0]["validation"] == pytest.approx(base_loss, rel=1e-4)
    assert json.loads((tuned / "model.json").read_text())["training"]["init"] == str(base)
    assert json.loads((tuned / "model.json").read_text())["separation"] == separation
    # Resuming without --init continues from the checkpoint and keeps the record of the start.
    assert main(train_args(dataset_without_stems, tuned, 2, *frozen, "--resume")) == 0
    assert [row["step"] for row in log_rows(tuned)] == [1, 2]
    assert torch.load(tuned / "checkpoint.pt", weights_only=False)["state"]["init"] == str(base)
    assert json.loads((tuned / "model.json").read_text())["separation"] == separation
    assert main(train_args(dataset_without_stems, tmp_path / "fresh", 1, *frozen)) == 0
    assert log_rows(tmp_path / "fresh")[0]["validation"] > 1.2 * base_loss
    assert "separation" not in json.loads((tmp_path / "fresh" / "model.json").read_text())

    wide = train_args(dataset_without_stems, tmp_path / "wide", 1, *frozen, "--init", str(base), "--hidden", "24")
    assert main(wide) == 2
    assert f"--init {base}: that model has hidden 16 (now 24): pass --hidden 16" in capsys.readouterr().err
    missing = tmp_path / "missing"
    assert main(train_args(dataset_without_stems, tmp_path / "none", 1, "--init", str(missing))) == 2
    assert f"--init {missing}: model folder not found: {missing}" in capsys.readouterr().err
    assert main(train_args(dataset_without_stems, tuned, 3, "--init", str(base), "--resume")) == 2
    assert "--init starts a new run and --resume continues one" in capsys.readouterr().err
    assert main(train_args(dataset_without_stems, tmp_path / "none", 1, "--resume")) == 2
    assert f"--resume: no checkpoint at {tmp_path / 'none' / 'checkpoint.pt'}" in capsys.readouterr().err
    other = tmp_path / "other"
    save_model(other, ParamNet(NetworkConfig(hidden=16, f0_hidden=8, causal_frames=True)))
    assert main(train_args(dataset_without_stems, tmp_path / "none", 1, "--init", str(other))) == 2
    assert "that model has f0_hidden 8 (now 64): no training flag sets these" in capsys.readouterr().err


def test_distributed_training_keeps_ranks_identical(dataset_without_stems, tmp_path):
    model_dir = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "sfgraph.train", *train_args(dataset_without_stems, model_dir, 6, "--eval-every", "3")[1:],
               "--keep-rank-weights"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    ranks = [torch.load(model_dir / f"final_weights_rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name in ranks[0]:
        torch.testing.assert_close(ranks[1][name], ranks[0][name], rtol=0, atol=0, msg=name)
    assert [r["step"] for r in log_rows(model_dir)] == [3, 6]


def test_model_folder_errors_are_clear(tmp_path):
    from sfgraph.model.checkpoint import save_model
    from sfgraph.model.network import NetworkConfig, ParamNet

    good = tmp_path / "good"
    save_model(good, ParamNet(NetworkConfig(hidden=8, f0_hidden=4)))
    with pytest.raises(ModelError, match="model folder not found"):
        load_model(tmp_path / "missing")
    old = tmp_path / "old"
    shutil.copytree(good, old)
    description = json.loads((old / "model.json").read_text())
    description["format_version"] = 0
    (old / "model.json").write_text(json.dumps(description))
    with pytest.raises(ModelError, match="model format version 0"):
        load_model(old)
    truncated = tmp_path / "truncated"
    shutil.copytree(good, truncated)
    data = (truncated / "weights.pt").read_bytes()
    (truncated / "weights.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="weights.pt: corrupted or truncated"):
        load_model(truncated)
    corrupted = tmp_path / "corrupted"
    shutil.copytree(good, corrupted)
    (corrupted / "weights.pt").write_bytes(b"not a torch file at all" * 10)
    with pytest.raises(ModelError, match="corrupted or truncated"):
        load_model(corrupted)
    mismatched = tmp_path / "mismatched"
    shutil.copytree(good, mismatched)
    description = json.loads((mismatched / "model.json").read_text())
    description["network"]["hidden"] = 12
    (mismatched / "model.json").write_text(json.dumps(description))
    with pytest.raises(ModelError, match="weights do not match model.json"):
        load_model(mismatched)


def test_separate_reports_voice_mismatch_and_bad_model(tmp_path, capsys):
    from sfgraph.model.checkpoint import save_model
    from sfgraph.model.network import NetworkConfig, ParamNet

    model = tmp_path / "trio"
    save_model(model, ParamNet(NetworkConfig(voices=("soprano", "alto", "bass"), hidden=8, f0_hidden=4)))
    item = FIXTURES / "bach_tiny" / "0000_bwv159.5_0"
    code = main(["separate", str(item / "mix.wav"), "--f0", str(item / "f0"), "--model", str(model),
                 "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "the model separates soprano, alto, bass" in err and "soprano, alto, tenor, bass" in err
    (tmp_path / "broken").mkdir()
    code = main(["separate", str(item / "mix.wav"), "--f0", str(item / "f0"), "--model", str(tmp_path / "broken"),
                 "-o", str(tmp_path / "out"), "-q"])
    assert code == 2 and "not an sfgraph model folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_init_takes_the_starting_models_width_and_frames_unless_given(dataset_without_stems, tmp_path, capsys):
    base = tmp_path / "base"
    save_model(base, ParamNet(NetworkConfig(hidden=12, causal_frames=False)))
    small = ["--steps", "1", "--eval-every", "1", "--segment-seconds", "1", "--batch-size", "2", "--threads", "1", "-q"]
    tuned = tmp_path / "tuned"
    assert main(["train", str(dataset_without_stems), "-o", str(tuned), *small, "--init", str(base)]) == 0
    config = load_model(tuned).config
    assert (config.hidden, config.causal_frames) == (12, False)
    # given flags still win (and are checked against the model)
    assert main(["train", str(dataset_without_stems), "-o", str(tmp_path / "other"), *small, "--init", str(base),
                 "--hidden", "16"]) == 2
    assert "that model has hidden 12 (now 16): pass --hidden 12" in capsys.readouterr().err
    # without --init, the defaults
    fresh = tmp_path / "fresh"
    assert main(["train", str(dataset_without_stems), "-o", str(fresh), *small]) == 0
    assert (load_model(fresh).config.hidden, load_model(fresh).config.causal_frames) == (256, True)


def test_a_models_voice_settings_go_through_training_init_and_resume(dataset_without_stems, tmp_path,
                                                                     other_voice_model):
    """A model folder carries its voice model (model.json): a run trains for the settings it
    is given, and --init and --resume take the starting or resumed model's."""
    from sfgraph.data.layout import load_training_dataset
    from sfgraph.model.checkpoint import read_model_config
    from sfgraph.model.config import TrainConfig
    from sfgraph.model.train import train

    voice = load_model(other_voice_model).config.voice
    base = tmp_path / "base"
    settings = TrainConfig(steps=2, eval_every=2, hidden=16, segment_seconds=1, batch_size=2)
    dataset = load_training_dataset(dataset_without_stems, settings.validation_items)
    train(dataset, base, settings, progress=False, threads=1, voice=voice)
    assert read_model_config(base)[0].voice == voice
    tuned = tmp_path / "tuned"
    assert main(train_args(dataset_without_stems, tuned, 1, "--eval-every", "1", "--init", str(base))) == 0
    assert load_model(tuned).config.voice == voice
    assert main(train_args(dataset_without_stems, base, 3, "--eval-every", "1", "--resume")) == 0
    assert [row["step"] for row in log_rows(base)] == [2, 3]
    assert load_model(base).config.voice == voice


def test_a_section_model_starts_from_a_solo_model_where_the_shapes_allow(dataset_without_stems, tmp_path):
    """--voice-model section with a solo --init model: the section network takes every solo
    weight, its decoders' last layers the rows they share; the spread output is new."""
    from sfgraph.dsp.voice_config import VOICE_MODELS

    solo = tmp_path / "solo"
    assert main(train_args(dataset_without_stems, solo, 1, "--eval-every", "1")) == 0
    section = tmp_path / "section"
    assert main(train_args(dataset_without_stems, section, 1, "--eval-every", "1", "--init", str(solo),
                           "--voice-model", "section", "--learning-rate", "1e-9", "--final-learning-rate", "1e-9")) == 0
    start, tuned = load_model(solo), load_model(section)
    assert tuned.config.voice == VOICE_MODELS["section"] and not start.config.voice.is_section
    last = "decoders.0.out.2.weight"
    assert tuned.state_dict()[last].shape[0] == start.state_dict()[last].shape[0] + 1
    torch.testing.assert_close(tuned.state_dict()[last][:-1], start.state_dict()[last], rtol=0, atol=1e-6)
    # a section model does not become a solo one
    assert main(train_args(dataset_without_stems, tmp_path / "back", 1, "--init", str(section),
                           "--voice-model", "solo")) == 2


def test_the_spread_prior_holds_a_section_models_spread_down(dataset_without_stems, tmp_path):
    """--spread-prior-weight: the same section training with the prior gives voiced frames a
    narrower spread than without it, and model.json records the prior."""
    from sfgraph.data.layout import load_item
    from sfgraph.model.train import spread_prior

    spread = torch.tensor([[[5.0, 30.0, 50.0]]])
    f0 = torch.tensor([[[200.0, 200.0, 0.0]]])
    assert spread_prior(spread, f0, 10.0).item() == pytest.approx(10.0)  # (0 + 20) / 2 voiced frames

    item = load_item(next(p for p in sorted(dataset_without_stems.iterdir()) if p.is_dir()), use_stems=False)
    mix = torch.from_numpy(item.load_mix())[None]
    f0 = torch.from_numpy(item.f0_on_frames()).float()[None]
    spreads = {}
    for weight in ("0", "1"):
        model_dir = tmp_path / f"prior_{weight}"
        assert main(train_args(dataset_without_stems, model_dir, 12, "--voice-model", "section", "--learning-rate",
                               "3e-3", "--spread-prior-weight", weight, "--spread-prior-cents", "2")) == 0
        with torch.no_grad():
            controls = load_model(model_dir)(mix, f0)
        voiced = f0[..., :controls.spread.shape[-1]] > 0
        spreads[weight] = controls.spread[voiced].mean().item()
        description = json.loads((model_dir / "model.json").read_text())
        assert description["training"]["spread_prior_weight"] == float(weight)
        assert description.get("spread_prior") == ({"weight": 1.0, "cents": 2.0} if weight == "1" else None)
    assert spreads["1"] < spreads["0"] - 2.0, spreads


def test_a_section_model_carries_its_spread_prior_into_further_training(dataset_without_stems, tmp_path, capsys):
    """model.json's spread_prior: `train --init` keeps the model's prior unless a flag changes
    it; a solo voice model, which has no spread, refuses one."""
    from sfgraph.model.checkpoint import spread_prior_setting

    start = tmp_path / "start"
    assert main(train_args(dataset_without_stems, start, 1, "--voice-model", "section",
                           "--spread-prior-weight", "0.5", "--spread-prior-cents", "4")) == 0
    assert spread_prior_setting(start) == {"weight": 0.5, "cents": 4.0}
    runs = {"kept": [], "cents": ["--spread-prior-cents", "6"], "off": ["--spread-prior-weight", "0"]}
    for name, flags in runs.items():
        assert main(train_args(dataset_without_stems, tmp_path / name, 1, "--init", str(start), *flags)) == 0
    assert spread_prior_setting(tmp_path / "kept") == {"weight": 0.5, "cents": 4.0}
    assert spread_prior_setting(tmp_path / "cents") == {"weight": 0.5, "cents": 6.0}
    assert spread_prior_setting(tmp_path / "off") is None
    capsys.readouterr()
    assert main(train_args(dataset_without_stems, tmp_path / "solo", 1, "--spread-prior-weight", "0.5")) == 2
    assert "--spread-prior-weight 0.5: only a section voice model has a spread" in capsys.readouterr().err
    # refused before --force empties the folder of its earlier run
    assert main(train_args(dataset_without_stems, tmp_path / "off", 1, "--force", "--voice-model", "solo",
                           "--spread-prior-weight", "0.5")) == 2
    assert (tmp_path / "off" / "model.json").exists()


@pytest.mark.parametrize("prior", [{"weight": -1, "cents": 10}, {"weight": 0.1}, "0.02",
                                   {"weight": float("inf"), "cents": 10}, {"weight": 0.1, "cents": 0}])
def test_a_bad_spread_prior_in_model_json_names_the_file(other_voice_model, tmp_path, prior):
    from sfgraph.model.checkpoint import spread_prior_setting

    model = tmp_path / "model"
    shutil.copytree(other_voice_model, model)
    description = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**description, "spread_prior": prior}))
    with pytest.raises(ModelError, match=f"{model / 'model.json'}: 'spread_prior' must be"):
        spread_prior_setting(model)
    (model / "model.json").write_text(json.dumps({**description, "spread_prior": {"weight": 0, "cents": 10}}))
    assert spread_prior_setting(model) is None  # weight 0: off


def test_a_model_json_without_voice_settings_has_the_default_ones(tmp_path):
    """The voice settings are recorded in model.json; where they are missing, the model was
    made for the default voice model."""
    from sfgraph.dsp.voice_config import VoiceConfig

    save_model(tmp_path, ParamNet(NetworkConfig(hidden=8, f0_hidden=4)))
    description = json.loads((tmp_path / "model.json").read_text())
    assert description["network"]["voice"]["n_harmonics"] == VoiceConfig().n_harmonics
    del description["network"]["voice"]
    (tmp_path / "model.json").write_text(json.dumps(description))
    assert load_model(tmp_path).config.voice == VoiceConfig()


def test_segments_cut_the_items_harmonic_sines_with_their_f0():
    """The F0-only harmonic sines are made once per item and cut with the F0 (zero past the end)."""
    from sfgraph.dsp.voice_config import VoiceConfig
    from sfgraph.dsp.voice_torch import unit_harmonic_sines
    from sfgraph.model.train import Segments

    config = VoiceConfig()
    f0 = np.linspace(100.0, 300.0, 4 * 40, dtype=np.float32).reshape(4, 40)
    segments = Segments([np.zeros(40 * config.hop, np.float32)], [f0], 16 * config.hop, config)
    item = unit_harmonic_sines(torch.from_numpy(f0)[None], config)[0]
    mix, f0_cut, sines = segments.cut(0, 30)
    assert mix.shape == (16 * config.hop,) and f0_cut.shape == (4, 16) and sines.shape == (4, 16, config.hop)
    assert torch.equal(sines[:, :10], item[:, 30:]) and not sines[:, 10:].any()
