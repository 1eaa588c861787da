"""Choral Singing Dataset converter, on a small folder in the published CSD layout built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sfgraph.data.audio import write_wav
from sfgraph.cli import main
from sfgraph.data.csd import convert_csd, read_csd_f0
from sfgraph.data.layout import DEFAULT_VOICES, DatasetError, load_dataset

CSD_RATE = 44100
CSD_HOP = 256  # the published F0 hop, 5.8 ms at 44.1 kHz
SECONDS = 0.6
ONSET_S = 0.1  # every singer is silent before this
VOICE_HZ = {"soprano": 440.0, "alto": 330.0, "tenor": 220.0, "bass": 110.0}


def singer_hz(voice: str, singer: int) -> float:
    return VOICE_HZ[voice] * (1 + 0.01 * singer)


def frame_at(seconds: float) -> int:
    """Index of the 16 kHz, 256-sample frame nearest to ``seconds``."""
    return int(round(seconds * 16000 / 256))


def make_csd(folder: Path, singers: tuple[int, ...] = (1, 2)) -> None:
    """Write CSD_ER_<voice>_<singer>.wav (sines) with F0 files in the two published flavours."""
    times = np.arange(int(SECONDS * CSD_RATE)) / CSD_RATE
    f0_times = np.arange(0, SECONDS, CSD_HOP / CSD_RATE)
    for voice in DEFAULT_VOICES:
        for singer in singers:
            hz = singer_hz(voice, singer)
            audio = np.where(times >= ONSET_S, 0.2 * np.sin(2 * np.pi * hz * times), 0.0)
            write_wav(folder / "ChoralSingingDataset" / f"CSD_ER_{voice}_{singer}.wav", audio, CSD_RATE)
            # pYIN style: negative values mark unvoiced frames.
            f0 = np.where(f0_times >= ONSET_S, hz, -hz)
            stem = folder / "ChoralSingingDataset" / f"CSD_ER_{voice}_{singer}"
            if voice in ("soprano", "alto"):
                rows = [f"{time:.6f} {value:.3f} 0.9" for time, value in zip(f0_times, f0, strict=True)]
                stem.with_suffix(".f0").write_text("\n".join(rows) + "\n")
            else:
                rows = [f"{time:.6f},{value:.3f}" for time, value in zip(f0_times, f0, strict=True)]
                stem.with_suffix(".csv").write_text("time,f0\n" + "\n".join(rows) + "\n")
    (folder / "ChoralSingingDataset" / "README.txt").write_text("not a recording")


def test_matched_conversion_gives_one_item_per_singer_number(tmp_path):
    make_csd(tmp_path / "csd")
    names = convert_csd(tmp_path / "csd", tmp_path / "out", progress=False)
    assert names == ["CSD_ER_s1_a1_t1_b1", "CSD_ER_s2_a2_t2_b2"]
    dataset = load_dataset(tmp_path / "out", require_stems=True, sample_rate=16000)
    item = dataset["CSD_ER_s2_a2_t2_b2"]
    assert item.num_samples == int(SECONDS * 16000)
    stems = item.load_stems()
    np.testing.assert_allclose(stems.sum(axis=0), item.load_mix(), atol=1e-6)
    for index, voice in enumerate(item.voices):
        assert item.f0_hz[index, frame_at(0.3)] == pytest.approx(singer_hz(voice, 2), rel=1e-4)
        assert item.f0_hz[index, frame_at(0.05)] == 0.0
        spectrum = np.abs(np.fft.rfft(stems[index, 3200:8000]))
        assert np.fft.rfftfreq(4800, 1 / 16000)[np.argmax(spectrum)] == pytest.approx(singer_hz(voice, 2), abs=4)
    assert item.meta["singers"]["tenor"] == "CSD_ER_tenor_2.wav"


def test_all_combinations(tmp_path):
    make_csd(tmp_path / "csd")
    assert (
        main(["data", "convert-csd", str(tmp_path / "csd"), str(tmp_path / "out"), "--combinations", "all", "--quiet"])
        == 0
    )
    assert len(load_dataset(tmp_path / "out")) == 2**4


def test_problems_are_listed_before_anything_is_written(tmp_path, capsys):
    make_csd(tmp_path / "csd")
    folder = tmp_path / "csd" / "ChoralSingingDataset"
    (folder / "CSD_ER_bass_2.csv").unlink()
    (folder / "CSD_ER_tenor_2.wav").unlink()
    (folder / "CSD_ER_tenor_2.csv").unlink()
    (folder / "CSD_ER_alto_1.f0").write_text("0.0 100\n0.01 oops\n")
    with pytest.raises(DatasetError) as caught:
        convert_csd(tmp_path / "csd", tmp_path / "out", progress=False)
    message = str(caught.value)
    assert "CSD_ER_bass_2.f0: missing" in message
    assert "CSD_ER_tenor_2.wav missing" in message
    assert "CSD_ER_alto_1.f0: lines 2" in message
    assert not (tmp_path / "out").exists()
    assert main(["data", "convert-csd", str(tmp_path / "csd"), str(tmp_path / "out"), "--quiet"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_read_csd_f0_marks_negative_and_nan_as_unvoiced(tmp_path):
    path = tmp_path / "x.f0"
    path.write_text("time f0\n0.0 -120.0\n0.01 nan\n0.02 130.5\n")
    times, f0, problems = read_csd_f0(path)
    assert problems == []
    np.testing.assert_allclose(times, [0.0, 0.01, 0.02])
    np.testing.assert_allclose(f0, [0.0, 0.0, 130.5])
