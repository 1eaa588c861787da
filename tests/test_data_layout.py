"""Dataset layout: loading the committed fixture, round trips, and validation that reports every problem."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sfgraph.atomic import write_text
from sfgraph.data.audio import read_mono, write_wav
from sfgraph.data.layout import (
    DEFAULT_VOICES,
    HOP_LENGTH,
    SAMPLE_RATE,
    DatasetError,
    frame_times,
    load_dataset,
    load_item,
    read_f0_csv,
    resample_f0,
    voice_order,
    write_item,
)

FIXTURE = Path(__file__).parent / "fixtures" / "bach_tiny"


def spectral_f0_errors_cents(stem: np.ndarray, f0_hz: np.ndarray, settle_frames: int = 10) -> np.ndarray:
    """Cents between each sustained frame's F0 and the strongest spectral peak within +-6 % of it.

    ``stem``: ``(n_samples,)`` at 16 kHz; ``f0_hz``: ``(n_frames,)`` on 256-sample
    frames. Only frames at least ``settle_frames`` after and 6 before a pitch
    change or silence are tested: around note changes the previous note's
    release and the new note's attack overlap.
    """
    window = 1024
    n_fft = 16384
    freqs = np.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
    hann = np.hanning(window)
    steady = np.zeros(f0_hz.size, dtype=bool)
    run = 0
    for frame in range(f0_hz.size):
        same = (
            frame > 0
            and f0_hz[frame] > 0
            and f0_hz[frame - 1] > 0
            and abs(1200 * np.log2(f0_hz[frame] / f0_hz[frame - 1])) < 60
        )
        run = run + 1 if same else 0
        steady[frame] = run >= settle_frames
    errors = []
    for frame in np.flatnonzero(steady):
        ahead = f0_hz[frame : frame + 7]
        centre = frame * HOP_LENGTH
        if (
            ahead.size < 7
            or (ahead <= 0).any()
            or np.abs(1200 * np.log2(ahead / f0_hz[frame])).max() > 60
            or centre + window // 2 > stem.size
        ):
            continue
        spectrum = np.abs(np.fft.rfft(stem[centre - window // 2 : centre + window // 2] * hann, n_fft))
        band = (freqs > f0_hz[frame] * 0.94) & (freqs < f0_hz[frame] * 1.06)
        peak = freqs[band][np.argmax(spectrum[band])]
        # The fundamental must be a real partial, not leakage: within 30 dB of the frame's strongest peak.
        assert spectrum[band].max() > spectrum.max() * 10 ** (-30 / 20), f"no partial at the F0 of frame {frame}"
        errors.append(1200 * np.log2(peak / f0_hz[frame]))
    return np.array(errors)


def test_fixture_loads_with_four_voices_and_frame_grid():
    dataset = load_dataset(FIXTURE, require_stems=True, sample_rate=SAMPLE_RATE)
    assert len(dataset) == 3
    assert dataset.voices == DEFAULT_VOICES
    for item in dataset:
        assert item.num_samples == 3 * SAMPLE_RATE
        assert item.f0_hz.shape == (4, 1 + item.num_samples // HOP_LENGTH)
        np.testing.assert_allclose(item.f0_times, frame_times(item.num_samples), atol=1e-6)
        np.testing.assert_array_equal(item.f0_on_frames(), item.f0_hz)
        assert item.meta["program"] == 54


def test_fixture_stems_sum_to_mix():
    for item in load_dataset(FIXTURE):
        np.testing.assert_allclose(item.load_stems().sum(axis=0), item.load_mix(), atol=1e-6, rtol=0)


def test_fixture_f0_matches_spectral_peak_of_each_stem():
    for item in load_dataset(FIXTURE):
        stems = item.load_stems()
        for voice_index, voice in enumerate(item.voices):
            errors = spectral_f0_errors_cents(stems[voice_index], item.f0_hz[voice_index])
            assert errors.size > 20, f"{item.name}/{voice}: too few sustained frames to test"
            # A semitone is 100 cents; vibrato (up to 33 cents) inside the 64 ms window blurs the peak.
            assert np.median(np.abs(errors)) < 10, f"{item.name}/{voice}"
            assert np.mean(np.abs(errors) < 50) > 0.95, f"{item.name}/{voice}"


def test_write_item_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    stems = rng.uniform(-0.2, 0.2, size=(2, 5000)).astype(np.float32)
    times = frame_times(5000)
    f0 = np.stack([np.full(times.size, 220.0), np.where(times < 0.1, 0.0, 110.5)])
    write_item(
        tmp_path / "one",
        mix=stems.sum(axis=0),
        sample_rate=SAMPLE_RATE,
        voices=("lead", "drone"),
        f0_times=times,
        f0_hz=f0,
        stems=stems,
        meta={"voices": ["lead", "drone"]},
    )
    item = load_item(tmp_path / "one")
    assert item.voices == ("lead", "drone")  # meta.json fixes the order
    np.testing.assert_array_equal(item.load_stems(), stems)
    np.testing.assert_allclose(item.f0_hz, f0, atol=1e-4)
    assert not any(path.name.startswith(".") for path in (tmp_path / "one").rglob("*")), "temporary files left behind"


def test_voice_order_puts_default_voices_first():
    assert voice_order(["zeta", "bass", "alpha", "soprano"]) == ("soprano", "bass", "alpha", "zeta")


def test_resample_f0_interpolates_in_log_frequency_and_keeps_voicing():
    times = np.array([0.0, 0.01, 0.02, 0.03])
    f0 = np.array([[100.0, 400.0, 0.0, 0.0]])
    resampled = resample_f0(times, f0, np.array([0.005, 0.013, 0.017, 0.05]))
    np.testing.assert_allclose(resampled[0, 0], 200.0)  # geometric midpoint of 100 and 400
    assert resampled[0, 1] == 400.0  # nearest frame voiced, the other neighbour not: copied
    assert resampled[0, 2] == 0.0  # nearest frame unvoiced
    assert resampled[0, 3] == 0.0  # beyond the track


def _good_item(folder: Path, n_samples: int = 4096) -> None:
    stems = np.zeros((4, n_samples), dtype=np.float32)
    times = frame_times(n_samples)
    write_item(
        folder,
        mix=stems.sum(axis=0),
        sample_rate=SAMPLE_RATE,
        voices=DEFAULT_VOICES,
        f0_times=times,
        f0_hz=np.full((4, times.size), 200.0),
        stems=stems,
    )


def test_validation_reports_every_problem_with_its_file(tmp_path):
    _good_item(tmp_path / "a_good")
    broken = tmp_path / "b_broken"
    _good_item(broken)
    (broken / "f0" / "tenor.csv").unlink()  # missing f0 file while stems/tenor.wav exists
    write_wav(broken / "stems" / "alto.wav", np.zeros(4096, np.float32), 22050)  # sample-rate mismatch
    write_wav(broken / "stems" / "bass.wav", np.zeros(4000, np.float32), SAMPLE_RATE)  # length mismatch
    rows = ["time_s,f0_hz", "0.000000,200", "0.016000,-5", "0.016000,nan", "0.048000,abc"]
    rows += [f"{0.016 * frame:.6f},200" for frame in range(4, 17)]
    write_text(broken / "f0" / "soprano.csv", "\n".join(rows) + "\n")
    stereo = tmp_path / "c_stereo"
    _good_item(stereo)
    from pedalboard.io import AudioFile

    with AudioFile(str(stereo / "mix.wav"), "w", samplerate=SAMPLE_RATE, num_channels=2, bit_depth=32) as audio_file:
        audio_file.write(np.zeros((2, 4096), np.float32))
    (stereo / "f0" / "alto.csv").write_text("time,f0\n0,1\n")
    no_mix = tmp_path / "d_no_mix"
    _good_item(no_mix)
    (no_mix / "mix.wav").unlink()
    (no_mix / "meta.json").write_text("{not json")

    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path)
    problems = caught.value.problems
    message = str(caught.value)
    expected = [
        (broken / "stems" / "tenor.wav", "no matching"),
        (broken / "stems" / "alto.wav", "sample rate 22050 Hz"),
        (broken / "stems" / "bass.wav", "4000 samples"),
        (broken / "f0" / "soprano.csv", "f0 is negative"),
        (broken / "f0" / "soprano.csv", "f0 is NaN"),
        (broken / "f0" / "soprano.csv", "time does not increase"),
        (broken / "f0" / "soprano.csv", "not two numbers"),
        (stereo / "mix.wav", "2 channels"),
        (stereo / "f0" / "alto.csv", "header"),
        (no_mix / "mix.wav", "missing"),
        (no_mix / "meta.json", "not valid JSON"),
    ]
    for path, text in expected:
        assert any(problem.startswith(str(path)) and text in problem for problem in problems), (
            f"{path}: {text!r} not reported in\n{message}"
        )
    assert not any("a_good" in problem for problem in problems)
    assert "row 3" in message and "row 4" in message  # rows are quoted by file line number


def test_requested_voice_and_required_stems_are_checked(tmp_path):
    _good_item(tmp_path / "item")
    with pytest.raises(DatasetError, match="voice 'baritone' was requested"):
        load_dataset(tmp_path, voices=["soprano", "baritone"])
    item = load_item(tmp_path / "item", voices=["bass", "soprano"])
    assert item.voices == ("bass", "soprano") and item.f0_hz.shape[0] == 2
    for stem in (tmp_path / "item" / "stems").iterdir():
        stem.unlink()
    (tmp_path / "item" / "stems").rmdir()
    with pytest.raises(DatasetError, match="ground truth is required"):
        load_dataset(tmp_path, require_stems=True)


def test_a_voice_missing_from_one_item_is_reported(tmp_path):
    _good_item(tmp_path / "first")
    _good_item(tmp_path / "second")
    for path in (tmp_path / "second" / "f0" / "alto.csv", tmp_path / "second" / "stems" / "alto.wav"):
        path.unlink()
    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path)
    assert caught.value.problems == [
        f"{tmp_path / 'second' / 'f0' / 'alto.csv'}: missing (other items have voice 'alto')"
    ]
    assert len(load_dataset(tmp_path, voices=["soprano", "bass"])) == 2


def test_stems_can_be_ignored(tmp_path):
    _good_item(tmp_path / "item")
    write_wav(tmp_path / "item" / "stems" / "bass.wav", np.zeros(10, np.float32), SAMPLE_RATE)  # a broken stem
    with pytest.raises(DatasetError, match="10 samples"):
        load_dataset(tmp_path)
    dataset = load_dataset(tmp_path, use_stems=False)
    assert not dataset[0].has_stems


def test_f0_length_must_cover_the_mix(tmp_path):
    _good_item(tmp_path / "item", n_samples=16000)
    times = frame_times(8000)
    write_text(tmp_path / "item" / "f0" / "bass.csv", "time_s,f0_hz\n" + "".join(f"{time:.6f},100\n" for time in times))
    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path)
    message = str(caught.value)
    assert "times differ from" in message
    assert "length mismatch" in message or "lasts 1.000 s" in message


def test_empty_or_missing_dataset_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="no item folders"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="not a folder"):
        load_dataset(tmp_path / "nothing")


def test_read_f0_csv_and_mono_reader(tmp_path):
    times, f0 = read_f0_csv(FIXTURE / "0000_bwv159.5_0" / "f0" / "bass.csv")
    assert times.shape == f0.shape == (188,)
    audio, rate = read_mono(FIXTURE / "0000_bwv159.5_0" / "mix.wav")
    assert rate == SAMPLE_RATE and audio.dtype == np.float32 and audio.shape == (48000,)
    assert json.loads((FIXTURE / "0000_bwv159.5_0" / "meta.json").read_text())["chorale"] == "bwv159.5"
