"""Evaluation: metric values on constructed cases, segment scoring, the eval command on the fixture."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sfgraph.data.audio import write_wav
from sfgraph.cli import main
from sfgraph.evaluation.scoring import (
    CLAMP_DB,
    evaluate,
    item_scores,
    parse_estimates,
    score_voices,
    sdr_db,
    si_sdr_db,
    summarize,
)
from sfgraph.data.layout import DatasetError, load_dataset

FIXTURE = Path(__file__).parent / "fixtures" / "bach_tiny"


@pytest.fixture(scope="module")
def references() -> np.ndarray:
    """Four independent noise 'voices', ``(4, 16000)``."""
    return np.random.default_rng(1).standard_normal((4, 16000)).astype(np.float32) * 0.1


def test_perfect_estimate_reaches_the_clamp(references):
    np.testing.assert_allclose(si_sdr_db(references, references), CLAMP_DB, atol=1e-6)
    np.testing.assert_allclose(sdr_db(references, references), CLAMP_DB, atol=1e-6)


def test_scaled_estimate_scores_like_a_perfect_one(references):
    scaled = references * np.array([0.5, 2.0, -1.0, 0.01], dtype=np.float32)[:, None]
    np.testing.assert_allclose(si_sdr_db(references, scaled), CLAMP_DB, atol=1e-6)
    np.testing.assert_allclose(sdr_db(references, scaled), CLAMP_DB, atol=1e-6)


def test_estimate_with_orthogonal_noise_scores_its_snr(references):
    noise = np.random.default_rng(2).standard_normal(references.shape)
    noise -= (
        np.sum(noise * references, axis=1, keepdims=True) / np.sum(references**2, axis=1, keepdims=True)
    ) * references
    snr_db = np.array([0.0, 5.0, 10.0, 20.0])
    noise *= np.sqrt(np.sum(references**2, axis=1) / np.sum(noise**2, axis=1) / 10 ** (snr_db / 10))[:, None]
    np.testing.assert_allclose(si_sdr_db(references, references + noise), snr_db, atol=1e-3)


def test_swapped_voices_are_not_forgiven(references):
    swapped = references[[1, 0, 2, 3]]
    si = si_sdr_db(references, swapped)
    sdr = sdr_db(references, swapped)
    # SDR lets a 512-tap filter fit some of the wrong voice, so it drops less than SI-SDR.
    assert si[0] < -20 and si[1] < -20 and sdr[0] < -10 and sdr[1] < -10
    np.testing.assert_allclose(si[2:], CLAMP_DB, atol=1e-6)


def test_segments_skip_silent_references(references):
    reference = references.copy()
    reference[0, 8000:] = 0.0  # voice 0 silent in the second half
    estimate = reference + 0.01 * np.random.default_rng(3).standard_normal(reference.shape).astype(np.float32)
    scores = score_voices(reference, estimate, sample_rate=8000, segment_seconds=1.0)
    assert [segment for segment, *_ in scores] == [0, 1]
    first, second = scores
    assert np.isfinite(first[3]).all()
    assert np.isnan(second[3][0]) and np.isnan(second[4][0])
    assert np.isfinite(second[3][1:]).all()


def test_parse_estimates_names_methods():
    assert parse_estimates(["ours=/a/b", "/x/nmf"]) == {"ours": Path("/a/b"), "nmf": Path("/x/nmf")}
    with pytest.raises(ValueError, match="used twice"):
        parse_estimates(["a=/x", "a=/y"])
    with pytest.raises(ValueError, match="NAME=DIR"):
        parse_estimates(["bad name=/x"])


def _copy_stems_as_estimates(dataset_dir: Path, out_dir: Path, swap: tuple[str, str] | None = None) -> None:
    for item in load_dataset(dataset_dir):
        for voice in item.voices:
            source = voice
            if swap and voice in swap:
                source = swap[1] if voice == swap[0] else swap[0]
            target = out_dir / item.name / f"{voice}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(item.stem_path(source), target)


def test_evaluate_scores_perfect_and_swapped_methods(tmp_path):
    _copy_stems_as_estimates(FIXTURE, tmp_path / "perfect")
    _copy_stems_as_estimates(FIXTURE, tmp_path / "swapped", swap=("soprano", "alto"))
    dataset = load_dataset(FIXTURE)
    rows = evaluate(dataset, {"perfect": tmp_path / "perfect", "swapped": tmp_path / "swapped"}, progress=False)
    assert len(rows) == 2 * 3 * 4
    scores = item_scores(rows)
    for item in dataset:
        assert scores[("perfect", item.name, "soprano")][0] == pytest.approx(CLAMP_DB)
        assert scores[("swapped", item.name, "soprano")][0] < 0
        assert scores[("swapped", item.name, "tenor")][0] == pytest.approx(CLAMP_DB)
    summary = summarize(rows)
    assert summary["perfect"]["voices"]["all"]["si_sdr"]["count"] == 12
    assert summary["swapped"]["voices"]["alto"]["si_sdr"]["median"] < 0


def test_eval_piped_into_a_reader_that_stops_early_still_writes_its_reports(tmp_path):
    """``sfgraph eval … | head -1``: the reader goes away after the first line; the
    tables are dropped but the command finishes, writes every report and exits 0."""
    _copy_stems_as_estimates(FIXTURE, tmp_path / "perfect")
    out = tmp_path / "report"
    command = [sys.executable, "-m", "sfgraph", "eval", str(FIXTURE), "--estimates", f"perfect={tmp_path / 'perfect'}",
               "-o", str(out), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # gone before the first line: every print meets a closed pipe
    errors = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, errors
    assert "Broken pipe" not in errors and "Exception ignored" not in errors
    assert sorted(p.name for p in out.iterdir()) == ["boxplot_perfect.png", "scores.csv", "summary.csv",
                                                      "summary.json"]


def test_eval_command_prints_table_and_writes_reports(tmp_path, capsys):
    _copy_stems_as_estimates(FIXTURE, tmp_path / "perfect")
    mixture = tmp_path / "mixture"
    for item in load_dataset(FIXTURE):
        for voice in item.voices:
            write_wav(mixture / item.name / f"{voice}.wav", item.load_mix(), item.sample_rate)
    out = tmp_path / "report"
    status = main(
        [
            "eval",
            str(FIXTURE),
            "--estimates",
            f"perfect={tmp_path / 'perfect'}",
            "--estimates",
            str(mixture),
            "-o",
            str(out),
            "--segment",
            "1",
            "--quiet",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert "SI-SDR (dB): mean / median over 3 items" in printed and "perfect" in printed and "mixture" in printed
    for name in ("scores.csv", "summary.csv", "summary.json", "boxplot_perfect.png", "boxplot_mixture.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["perfect"]["voices"]["all"]["si_sdr"]["mean"] == pytest.approx(CLAMP_DB)
    assert summary["mixture"]["voices"]["all"]["si_sdr"]["mean"] < 0
    header = (out / "scores.csv").read_text().splitlines()[0]
    assert header == "method,item,voice,segment,start_s,end_s,si_sdr_db,sdr_db"


def test_estimates_at_another_rate_are_resampled_to_the_stems(tmp_path):
    """A live graph's voices, rendered at 48 kHz, score as the same voices at 16 kHz would:
    the stems at 48 kHz (each sample held three times, a crude upsampling that is not the
    inverse of eval's) score far above any separation, and one that lasts longer than its
    stem is reported."""
    dataset = load_dataset(FIXTURE)
    for item in dataset:
        for voice, stem in zip(item.voices, item.load_stems()):
            write_wav(tmp_path / "live" / item.name / f"{voice}.wav", np.repeat(stem, 3), 48000)
    rows = evaluate(dataset, {"live": tmp_path / "live"}, progress=False)
    assert min(row.si_sdr_db for row in rows) > 15  # separations of the fixture score 10-17 dB
    first = dataset.items[0]
    write_wav(tmp_path / "live" / first.name / "alto.wav", np.zeros(3 * first.num_samples + 6, np.float32), 48000)
    with pytest.raises(DatasetError, match=r"alto.wav: .* s at 48000 Hz, the item's stems last"):
        evaluate(dataset, {"live": tmp_path / "live"}, progress=False)


def test_missing_and_mismatched_estimates_are_all_reported(tmp_path, capsys):
    _copy_stems_as_estimates(FIXTURE, tmp_path / "partial")
    (tmp_path / "partial" / "0001_bwv93.7_0" / "bass.wav").unlink()
    write_wav(tmp_path / "partial" / "0002_bwv343_0" / "alto.wav", np.zeros(100, np.float32), 16000)
    with pytest.raises(DatasetError) as caught:
        evaluate(load_dataset(FIXTURE), {"partial": tmp_path / "partial"}, progress=False)
    assert len(caught.value.problems) == 2
    status = main(
        ["eval", str(FIXTURE), "--estimates", str(tmp_path / "partial"), "-o", str(tmp_path / "report"), "--quiet"]
    )
    error = capsys.readouterr().err
    assert status == 2
    assert "0001_bwv93.7_0/bass.wav: missing" in error and "100 samples" in error and "Traceback" not in error
