"""`separate --adapt`: fine-tuning a model on the recording it separates (mixture and F0 only)."""
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
from sfgraph.cli.separate import fit_sung_ranges_to, refined_f0, separate_graph
from sfgraph.data.layout import load_item, read_f0_csv, write_f0_csv
from sfgraph.dsp.voice_config import VoiceConfig
from sfgraph.model.adapt import AdaptOptions, adapt, recording_spans, split_recording
from sfgraph.model.train import evaluate
from sfgraph.model.checkpoint import load_model
from sfgraph.resources import resolve_path

from helpers import read_wav, write_wav

DEMO = resolve_path("sfgraph:assets/demo/quartet")


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory) -> Path:
    """The first 5 s of the bundled demo clip, with its F0 files cut to match."""
    folder = tmp_path_factory.mktemp("short")
    item = load_item(DEMO)
    seconds = 5.0
    write_wav(folder / "mix.wav", item.load_mix()[: int(seconds * 16000)], 16000)
    keep = item.f0_times <= seconds
    (folder / "f0").mkdir()
    for voice, f0 in zip(item.voices, item.f0_hz, strict=True):
        write_f0_csv(folder / "f0" / f"{voice}.csv", item.f0_times[keep], f0[keep])
    return folder


def demo_inputs(seconds: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    item = load_item(DEMO)
    samples = int(seconds * 16000)
    return item.load_mix()[:samples], item.f0_on_frames(256)[:, : samples // 256 + 1]


@pytest.mark.parametrize("seconds", [4.0, 5.0, 10.0, 100.0])
def test_the_recording_is_split_into_training_and_held_back_spans_that_tile_it(seconds):
    frames = int(seconds * 62.5)
    train, held = recording_spans(frames, 62.5, 4.0)
    spans = sorted(train + held)
    assert spans[0][0] == 0 and spans[-1][1] == frames
    assert all(end == next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))  # no gap, no overlap
    held_frames = sum(b - a for a, b in held)
    assert held and 0.1 < held_frames / frames < 0.3
    assert max(b - a for a, b in held) <= 4.0 * 62.5


def test_too_short_a_recording_is_refused():
    mix, f0 = demo_inputs(1.0)
    with pytest.raises(ValueError, match="at least 2 s"):
        split_recording(mix, f0, VoiceConfig(), 4.0)


def test_adaptation_lowers_the_loss_on_the_held_back_part_and_is_deterministic(tiny_model):
    start = load_model(tiny_model)
    mix, f0 = demo_inputs()
    # one thread throughout: with the idle cores' count, a busy machine changes it between runs,
    # and with it the order of torch's sums
    options = AdaptOptions(minutes=5, max_steps=12, eval_every=4, learning_rate=3e-3, seed=7, threads=1)
    adapted, result = adapt(start, mix, f0, options, progress=False)
    assert result.steps == 12 and result.best_step > 0
    assert result.best_loss < 0.9 * result.initial_loss
    _, held = split_recording(mix, f0, VoiceConfig(), options.segment_seconds)
    assert evaluate(adapted, held, 4, "cpu") == pytest.approx(result.best_loss, rel=1e-5)
    assert evaluate(start, held, 4, "cpu") == pytest.approx(result.initial_loss, rel=1e-5)  # start untouched
    again, _ = adapt(start, mix, f0, options, progress=False)
    for name, weights in adapted.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], weights, rtol=0, atol=0, msg=name)


def test_adaptation_never_hands_back_a_model_worse_than_the_start_on_its_held_back_part(tiny_model):
    start = load_model(tiny_model)
    mix, f0 = demo_inputs()
    # a learning rate far too high: every step makes things worse, so the start comes back
    adapted, result = adapt(start, mix, f0, AdaptOptions(minutes=5, max_steps=4, eval_every=2, learning_rate=5.0,
                                                         warmup_steps=1), progress=False)
    assert result.best_loss <= result.initial_loss
    if result.best_step == 0:
        for name, weights in start.state_dict().items():
            torch.testing.assert_close(adapted.state_dict()[name], weights, rtol=0, atol=0)


def test_a_spread_prior_enters_the_adaptation_loss_of_a_section_model_only(other_voice_model, tiny_model):
    """The step adaptation takes (``training_step`` with ``AdaptOptions.spread_prior``): from
    the same section model and batch, a strong prior leaves a narrower spread than none; a
    solo model, which has no spread, refuses a prior."""
    import copy

    from sfgraph.model.train import training_step

    section = load_model(other_voice_model)
    mix, f0 = demo_inputs()
    train_set, _ = split_recording(mix, f0, section.config.voice, 4.0)
    spreads = {}
    for name, prior in (("none", None), ("strong", {"weight": 100.0, "cents": 0.5})):
        model = copy.deepcopy(section)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        training_step(model, model.config, optimizer, train_set, 2, torch.Generator().manual_seed(0), "cpu", prior)
        model.eval()
        with torch.no_grad():
            f0_frames = torch.from_numpy(f0).float()[None]
            spread = model(torch.from_numpy(mix)[None], f0_frames).spread
        spreads[name] = spread[f0_frames[..., :spread.shape[-1]] > 0].mean().item()
    assert spreads["strong"] < spreads["none"] - 1.0, spreads
    with pytest.raises(ValueError, match="section voice models"):
        adapt(load_model(tiny_model), mix, f0, AdaptOptions(minutes=1, spread_prior={"weight": 1.0, "cents": 10.0}),
              progress=False)


def test_separate_adapt_writes_a_complete_model_that_reloads(short_recording, tmp_path, capsys):
    out = tmp_path / "out"
    arguments = ["separate", str(short_recording / "mix.wav"), "--f0", str(short_recording / "f0"), "-q"]
    assert main([*arguments, "--adapt", "2", "--adapt-steps", "6", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6 steps" in printed and f"model in {out / 'model'}" in printed
    assert sorted(p.name for p in out.iterdir()) == ["alto.wav", "bass.wav", "model", "soprano.wav", "tenor.wav"]
    assert sorted(p.name for p in (out / "model").iterdir()) == ["model.json", "weights.pt"]
    record = json.loads((out / "model" / "model.json").read_text())["training"]["adapted"]
    assert record["recording"] == str((short_recording / "mix.wav").resolve())
    assert record["start_model"] == "sfgraph:models/default" and record["steps"] == 6 and record["minutes"] == 2
    assert record["best_loss"] <= record["initial_loss"]  # a 5-s recording adapts without getting worse
    adapted = read_wav(out / "soprano.wav")[0]
    # the folder reloads: separating with --model gives the same voices
    again = tmp_path / "again"
    assert main([*arguments, "--model", str(out / "model"), "-o", str(again)]) == 0
    np.testing.assert_array_equal(read_wav(again / "soprano.wav")[0], adapted)
    # and they differ from the bundled model's unless no step beat it
    plain = tmp_path / "plain"
    assert main([*arguments, "-o", str(plain)]) == 0
    assert (record["best_step"] == 0) == np.array_equal(read_wav(plain / "soprano.wav")[0], adapted)


def test_separate_adapt_keeps_the_models_voice_settings(short_recording, tmp_path, other_voice_model):
    """Adapting a model with another voice model than the default keeps its settings in the
    adapted model folder, the separation settings it ran with, so it reloads to the same
    voices, and its spread prior."""
    from sfgraph.model.checkpoint import read_model_config, separation_settings, spread_prior_setting

    model = tmp_path / "section_model"
    shutil.copytree(other_voice_model, model)
    description = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**description, "spread_prior": {"weight": 0.5, "cents": 4.0}}))
    out = tmp_path / "out"
    arguments = ["separate", str(short_recording / "mix.wav"), "--f0", str(short_recording / "f0"), "-q"]
    assert main([*arguments, "--model", str(model), "--adapt", "2", "--adapt-steps", "2",
                 "--section-cents", "8", "--synth-noise", "0", "-o", str(out)]) == 0
    assert read_model_config(out / "model")[0].voice == read_model_config(other_voice_model)[0].voice
    assert separation_settings(out / "model") == {"section_cents": 8.0, "synth_noise": 0.0}
    # it adapted with the model's spread prior, and the adapted model carries it on
    assert spread_prior_setting(out / "model") == {"weight": 0.5, "cents": 4.0}
    assert read_model_config(out / "model")[1]["training"]["adapted"]["options"]["spread_prior"] == \
        {"weight": 0.5, "cents": 4.0}
    again = tmp_path / "again"
    assert main([*arguments, "--model", str(out / "model"), "-o", str(again)]) == 0
    np.testing.assert_array_equal(read_wav(again / "alto.wav")[0], read_wav(out / "alto.wav")[0])


@pytest.mark.parametrize("flags, message", [
    (["--adapt", "0"], "--adapt 0: give the minutes"),
    (["--adapt", "-2"], "--adapt -2: give the minutes"),
    (["--adapt", "1", "--adapt-steps", "0"], "--adapt-steps 0: give a positive number"),
    (["--adapt-steps", "5"], "--adapt-steps 5: give a positive number of steps, with --adapt"),
])
def test_bad_adapt_values_are_one_line_errors(short_recording, tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    code = main(["separate", str(short_recording / "mix.wav"), "--f0", str(short_recording / "f0"), "-q",
                 "-o", str(out), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("sfgraph separate: error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_ctrl_c_during_adaptation_leaves_no_outputs_and_no_model(short_recording, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "sfgraph", "separate", str(short_recording / "mix.wav"), "--f0",
         str(short_recording / "f0"), "--adapt", "5", "-o", str(out)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # as at a terminal: a shell's background job (`make test &`) starts with SIGINT ignored,
        # and Python then installs no KeyboardInterrupt handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = ""
    deadline = time.monotonic() + 120
    while "steps 1," not in seen and time.monotonic() < deadline:  # a training step has run
        seen += process.stderr.read(1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, seen + err
    assert "interrupted" in err
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))


def test_adapt_with_f0_from_the_mixture(short_recording, tmp_path, capsys):
    """--f0 auto: the adaptation learns from the refined F0, the frames the graph's second
    pass separates with (what `separate --f0 auto` writes to OUTPUT/f0)."""
    mix = str(short_recording / "mix.wav")
    assert main(["separate", mix, "--f0", "auto", "-q", "-o", str(tmp_path / "plain")]) == 0
    written = np.stack([read_f0_csv(tmp_path / "plain" / "f0" / f"{voice}.csv")[1]
                        for voice in ("soprano", "alto", "tenor", "bass")])
    decl = separate_graph(mix, "auto")
    _, peaks = fit_sung_ranges_to(decl)  # as the command does, before its graph is built
    refined = refined_f0(decl, peaks)
    np.testing.assert_allclose(refined, written)
    assert (refined > 0).sum() > 0.5 * refined.size
    out = tmp_path / "out"
    assert main(["separate", mix, "--f0", "auto", "--adapt", "1", "--adapt-steps", "2", "-q", "-o", str(out)]) == 0
    assert "2 steps" in capsys.readouterr().out
    assert (out / "model" / "weights.pt").is_file() and (out / "bass.wav").is_file()
