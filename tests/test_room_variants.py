"""examples/room_variants.py: a dataset as a quieter, noisier or reverberant recording."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "room_variants.py"
RATE = 16000


@pytest.fixture
def dataset(tmp_path):
    item = tmp_path / "data" / "item"
    (item / "stems").mkdir(parents=True)
    (item / "f0").mkdir()
    t = np.arange(RATE) / RATE
    sung = t < 0.5  # the last half second is silent, for a room to ring into
    stems = {"soprano": 0.3 * np.sin(2 * np.pi * 440 * t) * sung, "bass": 0.3 * np.sin(2 * np.pi * 110 * t) * sung}
    for name, stem in stems.items():
        sf.write(item / "stems" / f"{name}.wav", stem, RATE, subtype="FLOAT")
        (item / "f0" / f"{name}.csv").write_text("time_s,f0_hz\n0.0000,440.0\n")
    sf.write(item / "mix.wav", sum(stems.values()), RATE, subtype="FLOAT")
    return tmp_path / "data", stems


def variant(dataset_dir, out, *options):
    result = subprocess.run([sys.executable, str(SCRIPT), str(dataset_dir), str(out), *options],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    item = out / "item"
    stems = {name: sf.read(item / "stems" / f"{name}.wav")[0] for name in ("soprano", "bass")}
    return sf.read(item / "mix.wav")[0], stems, item


def test_gain_scales_stems_and_mixture(dataset, tmp_path):
    source, stems = dataset
    mix, out_stems, item = variant(source, tmp_path / "quiet", "--gain-db", "-20")
    for name, stem in stems.items():
        np.testing.assert_allclose(out_stems[name], 0.1 * stem, atol=1e-6)
    np.testing.assert_allclose(mix, 0.1 * sum(stems.values()), atol=1e-6)
    assert (item / "f0" / "soprano.csv").read_text() == (source / "item" / "f0" / "soprano.csv").read_text()


def test_noise_sits_at_the_asked_snr_under_clean_stems(dataset, tmp_path):
    source, stems = dataset
    mix, out_stems, _ = variant(source, tmp_path / "noisy", "--snr-db", "20")
    clean = sum(stems.values())
    for name, stem in stems.items():
        np.testing.assert_allclose(out_stems[name], stem, atol=1e-6)
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((mix - clean) ** 2))
    assert snr == pytest.approx(20, abs=0.01)


def test_reverb_keeps_the_mixture_the_sum_of_reverberant_stems(dataset, tmp_path):
    source, stems = dataset
    mix, out_stems, _ = variant(source, tmp_path / "hall", "--reverb", "0.6")
    np.testing.assert_allclose(mix, sum(out_stems.values()), atol=1e-6)
    for name, stem in out_stems.items():
        sung, after = stem[:RATE // 2], stem[RATE // 2:RATE // 2 + RATE // 10]
        assert np.sqrt(np.mean(after ** 2)) > 0.01 * np.sqrt(np.mean(sung ** 2)), name  # the room rings on


def test_bad_room_size_is_refused_by_name(dataset, tmp_path):
    source, _ = dataset
    result = subprocess.run([sys.executable, str(SCRIPT), str(source), str(tmp_path / "x"), "--reverb", "2"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--reverb" in result.stderr
