"""Bach generator: MIDI, performance and F0 (no fluidsynth needed), then rendering (skipped without fluidsynth)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_data_layout import spectral_f0_errors_cents

from sfgraph.data import bach
from sfgraph.data.bach import BachOptions, GeneratorError, make_item_audio, perform, read_chorale, resolve_program
from sfgraph.cli import main
from sfgraph.data.layout import load_dataset
from sfgraph.data.midi import PITCH_BEND_CENTER, MidiTrack, _variable_length

STILL = BachOptions(
    tempo_bpm=60.0, tempo_jitter=0.0, transpose=0, vibrato_cents=0.0, deviation_cents=0.0, fermata_stretch=2.0
)
# Four voices of two quarter notes each; the second has a fermata.
TWO_NOTES = {
    voice: [(0.0, 1.0, key, False), (1.0, 1.0, key + 2, True)]
    for voice, key in zip(("soprano", "alto", "tenor", "bass"), (72, 67, 60, 48), strict=True)
}


def chorale_path(name: str) -> Path:
    return next(path for path in bach.list_chorales() if path.stem == name)


def key_hz(key: float) -> float:
    return 440.0 * 2 ** ((key - 69) / 12)


def has_renderer() -> bool:
    try:
        bach.find_soundfont(None)
    except GeneratorError:
        return False
    return shutil.which("fluidsynth") is not None


needs_fluidsynth = pytest.mark.skipif(
    not has_renderer(),
    reason="needs the fluidsynth binary and a GM soundfont (apt-get install fluidsynth fluid-soundfont-gm)",
)


def test_resolve_program_accepts_names_and_one_based_numbers():
    assert resolve_program("choir") == 53 and resolve_program("solo") == 54 and resolve_program("54") == 54
    for bad in ("0", "129", "organ"):
        with pytest.raises(GeneratorError):
            resolve_program(bad)


def test_a_bare_soundfont_name_is_looked_for_where_debian_installs_them(tmp_path, monkeypatch):
    installed = tmp_path / "sf2" / "Mine.sf2"
    installed.parent.mkdir()
    installed.write_bytes(b"RIFF")
    monkeypatch.setattr(bach, "SOUNDFONT_CANDIDATES", (tmp_path / "sf2" / "Other.sf2",))
    assert bach.find_soundfonts("Mine.sf2") == (installed,)
    with pytest.raises(GeneratorError, match=rf"Missing.sf2: soundfont not found \(here or in {tmp_path / 'sf2'}\)"):
        bach.find_soundfont(Path("Missing.sf2"))
    with pytest.raises(GeneratorError, match="elsewhere/Mine.sf2: soundfont not found$"):
        bach.find_soundfont(Path("elsewhere/Mine.sf2"))  # a path is taken as it is


def test_midi_file_layout_and_event_order():
    assert (
        _variable_length(0) == b"\x00"
        and _variable_length(0x80) == b"\x81\x00"
        and _variable_length(0x3FFF) == b"\xff\x7f"
    )
    track = MidiTrack()
    track.add_note(0, 100, 60, 90)
    track.add_note(100, 200, 62, 90)
    track.add_pitch_bend(100, 9000)
    data = track.to_bytes(end_tick=300)
    assert (
        data[:4] == b"MThd" and data[8:14] == b"\x00\x00\x00\x01\x07\xd0"
    )  # format 0, one track, 2000 ticks per quarter
    # At tick 100 the old note ends, then the bend changes, then the new note starts.
    assert data.index(b"\x80\x3c\x00") < data.index(b"\xe0\x28\x46") < data.index(b"\x90\x3e\x5a")
    assert data.endswith(b"\xff\x2f\x00")


def test_performance_timing_fermata_and_f0():
    performance = perform("test", TWO_NOTES, STILL)
    soprano = performance.voices[0]
    np.testing.assert_allclose(soprano.note_on_s, [0.0, 1.0])
    # The fermata doubles the second note (2 s) and the singers breathe before
    # its end; event times are rounded to fluidsynth's 4 ms block grid.
    np.testing.assert_allclose(soprano.note_off_s, [1.0, 3.0 - bach.BREATH_S], atol=bach.EVENT_GRID_S)
    f0 = soprano.f0_at(np.array([0.5, 1.5, 2.9, 3.2]))
    np.testing.assert_allclose(f0[:2], [key_hz(72), key_hz(74)])
    assert f0[2] == 0.0 and f0[3] == 0.0
    assert performance.end_s == pytest.approx(3.0 - bach.BREATH_S, abs=bach.EVENT_GRID_S)


def test_performance_f0_follows_the_quantised_pitch_bends():
    options = replace(STILL, vibrato_cents=30.0, deviation_cents=10.0)
    voice = perform("test", TWO_NOTES, options).voices[3]
    times = np.arange(0.0, 1.0, 0.004)
    bend = voice.bend_values[np.searchsorted(voice.bend_s, times, side="right") - 1]
    expected = key_hz(48 + (bend - PITCH_BEND_CENTER) / PITCH_BEND_CENTER * bach.BEND_RANGE_SEMITONES)
    np.testing.assert_allclose(voice.f0_at(times), expected)
    cents = 1200 * np.log2(voice.f0_at(times) / key_hz(48))
    assert 5 < np.ptp(cents) < 2 * 30 * 1.3 + 2 * 2.5 * 10  # vibrato moves the pitch, within its bounds
    assert np.unique(voice.bend_s).size == voice.bend_s.size


def test_measured_tuning_enters_the_f0_but_not_the_midi_keys():
    plain = perform("test", TWO_NOTES, STILL).voices[0]
    tuned = perform("test", TWO_NOTES, STILL, tunings=[{72: -30.0}] * 4).voices[0]
    np.testing.assert_array_equal(tuned.keys, plain.keys)
    np.testing.assert_allclose(tuned.f0_at(np.array([0.5, 1.5])), [key_hz(72 - 0.3), key_hz(74)])


def test_performances_are_deterministic_per_seed():
    first = perform("bwvX", TWO_NOTES, BachOptions(seed=3))
    again = perform("bwvX", TWO_NOTES, BachOptions(seed=3))
    other = perform("bwvX", TWO_NOTES, BachOptions(seed=4))
    np.testing.assert_array_equal(first.voices[1].bend_values, again.voices[1].bend_values)
    assert first.tempo_bpm == again.tempo_bpm
    assert not np.array_equal(first.voices[1].bend_values, other.voices[1].bend_values)


def test_read_chorale_keeps_only_satb_scores():
    notes = read_chorale(chorale_path("bwv26.6"))
    assert list(notes) == ["soprano", "alto", "tenor", "bass"]
    onset, duration, key, fermata = notes["soprano"][0]
    assert (onset, duration, key) == (0.0, 1.0, 69)
    assert any(fermata for *_, fermata in notes["soprano"])
    assert read_chorale(chorale_path("bwv1.6")) is None  # has instrumental parts


def test_make_item_audio_sums_exactly_in_both_formats():
    stems = np.random.default_rng(0).uniform(-0.3, 0.3, size=(4, 1000)).astype(np.float32)
    gains = np.array([0.0, 3.0, -3.0, 1.0])
    mix, scaled = make_item_audio(stems, gains, 32)
    assert mix.dtype == np.float32 and np.abs(mix).max() == pytest.approx(bach.MIX_PEAK)
    np.testing.assert_array_equal(scaled.sum(axis=0, dtype=np.float32), mix)
    mix16, scaled16 = make_item_audio(stems, gains, 16)
    assert mix16.dtype == np.int16
    np.testing.assert_array_equal(scaled16.astype(np.int32).sum(axis=0), mix16)


def test_missing_fluidsynth_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bach.shutil, "which", lambda name: None)
    assert main(["data", "bach", str(tmp_path / "out"), "--count", "1", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "apt-get install fluidsynth" in error and "Traceback" not in error


@needs_fluidsynth
def test_measure_tuning_finds_a_known_detuning(monkeypatch):
    soundfont, fluidsynth = bach.find_soundfont(None), bach.find_fluidsynth()
    solo = bach.GM_PROGRAMS["solo"]
    tuning = bach.measure_tuning(solo, soundfont, fluidsynth)
    assert sorted(tuning) == list(bach.TUNING_KEYS)
    assert all(abs(cents) <= bach.TUNING_SEARCH_CENTS for cents in tuning.values())
    # Hold a -40 cent pitch bend under every calibration note: each key must measure 40 cents lower.
    bent = bach._voice_channel(solo)
    bend = bach.PITCH_BEND_CENTER - 40 / (100 * bach.BEND_RANGE_SEMITONES) * bach.PITCH_BEND_CENTER
    bent.add_pitch_bend(0, int(round(bend)))
    monkeypatch.setattr(bach, "_voice_channel", lambda program: bent)
    detuned = bach.measure_tuning(solo, soundfont, fluidsynth)
    assert np.median([detuned[key] - tuning[key] for key in range(48, 80)]) == pytest.approx(-40, abs=2)


@needs_fluidsynth
def test_generated_items_sum_to_mix_and_match_their_f0(tmp_path, capsys):
    arguments = ["--count", "2", "--seconds", "4", "--program", "solo", "--per-chorale", "1", "--seed", "7", "--quiet"]
    assert main(["data", "bach", str(tmp_path / "first"), *arguments]) == 0
    # The results depend on the patch, so the summary names the soundfont that played it.
    soundfont = Path(json.loads((tmp_path / "first" / "generation.json").read_text())["patches"][0]["soundfont"])
    assert soundfont == bach.find_soundfont(None)
    # one singer per part is recorded as before sections existed (the files are byte for byte the same)
    assert "section_size" not in json.loads((tmp_path / "first" / "generation.json").read_text())["options"]
    assert f"(GM program 54 of {soundfont})" in capsys.readouterr().out
    dataset = load_dataset(tmp_path / "first", require_stems=True, sample_rate=16000)
    assert len(dataset) == 2 and len({item.meta["chorale"] for item in dataset}) == 2
    for item in dataset:
        stems = item.load_stems()
        assert stems.dtype == np.float32 and item.num_samples == 4 * 16000
        np.testing.assert_allclose(stems.sum(axis=0), item.load_mix(), atol=1e-6, rtol=0)
        for voice_index, voice in enumerate(item.voices):
            errors = spectral_f0_errors_cents(stems[voice_index], item.f0_hz[voice_index])
            assert errors.size > 10, f"{item.name}/{voice}"
            assert np.median(np.abs(errors)) < 10 and np.mean(np.abs(errors) < 50) > 0.9, f"{item.name}/{voice}"

    # Same seed, same files; a non-empty folder is refused without --force.
    assert main(["data", "bach", str(tmp_path / "second"), *arguments, "--workers", "1"]) == 0
    for item in dataset:
        for path in [Path("mix.wav"), Path("f0/alto.csv"), Path("stems/bass.wav")]:
            assert (tmp_path / "first" / item.name / path).read_bytes() == (
                tmp_path / "second" / item.name / path
            ).read_bytes()
    assert main(["data", "bach", str(tmp_path / "second"), *arguments]) == 2


@needs_fluidsynth
@pytest.mark.skipif(not all(path.is_file() for path in bach.SOUNDFONT_CANDIDATES[:2]),
                    reason="needs both FluidR3_GM and TimGM6mb (apt-get install fluid-soundfont-gm timgm6mb-soundfont)")
def test_varied_material_draws_a_patch_per_voice_in_a_room_with_breath(tmp_path):
    """Several patches, reverb and breath noise: the stems still sum to the mixture and the
    F0s still match what is heard; each voice's patch is recorded."""
    soundfonts = [str(path) for path in bach.SOUNDFONT_CANDIDATES[:2]]
    arguments = ["--count", "2", "--seconds", "4", "--program", "solo", "--soundfont", ",".join(soundfonts),
                 "--reverb", "0.3", "--breath-db", "-20", "--per-chorale", "1", "--seed", "3", "--quiet"]
    assert main(["data", "bach", str(tmp_path / "varied"), *arguments]) == 0
    record = json.loads((tmp_path / "varied" / "generation.json").read_text())
    assert [patch["soundfont"] for patch in record["patches"]] == soundfonts
    dataset = load_dataset(tmp_path / "varied", require_stems=True, sample_rate=16000)
    drawn = set()
    for item in dataset:
        assert 0 <= item.meta["reverb"]["wet_level"] <= 0.3 and all(-32 <= db <= -20 for db in item.meta["breath_db"])
        drawn |= {(patch["soundfont"], patch["program"]) for patch in item.meta["patches"].values()}
        stems = item.load_stems()
        np.testing.assert_allclose(stems.sum(axis=0), item.load_mix(), atol=1e-6, rtol=0)
        for voice_index, voice in enumerate(item.voices):
            errors = spectral_f0_errors_cents(stems[voice_index], item.f0_hz[voice_index])
            assert np.median(np.abs(errors)) < 10, f"{item.name}/{voice}"
    assert len(drawn) > 1  # the voices sing different patches


def test_room_and_breath_are_linear_in_the_stems():
    """The room is the same linear filter for every voice, so the mixture of reverberant
    stems is the reverberant mixture; breath noise only adds where a voice sings."""
    rng = np.random.default_rng(0)
    stems = np.zeros((2, 16000), dtype=np.float32)
    stems[0, 4000:8000] = np.sin(2 * np.pi * 220 * np.arange(4000) / 16000)
    stems[1, 10000:12000] = 0.5 * np.sin(2 * np.pi * 330 * np.arange(2000) / 16000)
    wet, drawn = bach.add_room_and_breath(stems, 0.5, None, np.random.default_rng(1))
    together, _ = bach.add_room_and_breath(stems.sum(axis=0, keepdims=True), 0.5, None, np.random.default_rng(1))
    np.testing.assert_allclose(wet.sum(axis=0), together[0], atol=1e-5)
    assert np.abs(wet[0, 8400:9000]).max() > 1e-3  # the room rings on after the note
    breathy, drawn = bach.add_room_and_breath(stems, 0.0, -20.0, rng)
    assert "reverb" not in drawn and len(drawn["breath_db"]) == 2
    assert np.abs(breathy[0, :3500]).max() == 0  # no breath where nothing is sung
    noise = breathy[0, 4500:7500] - stems[0, 4500:7500]
    level = 20 * np.log10(np.sqrt(np.mean(noise**2)) / np.sqrt(np.mean(stems[0, 4500:7500] ** 2)))
    assert drawn["breath_db"][0] - 1.5 < level < drawn["breath_db"][0] + 1.5


def test_section_singers_share_tempo_but_not_timing_or_pitch_and_the_part_f0_is_their_mean():
    """Each singer of a section draws its own detune, timing and vibrato; the part's F0 is
    their mean in cents where any sings, so it lies within their spread."""
    options = replace(BachOptions(seed=2), section_size=3)
    singers = [perform("test", TWO_NOTES, options, singer=singer) for singer in range(3)]
    assert len({(performance.tempo_bpm, performance.transpose) for performance in singers}) == 1
    onsets = np.array([performance.voices[0].note_on_s for performance in singers])
    assert np.ptp(onsets[:, 1]) > 0 and np.all(np.ptp(onsets, axis=0) <= 5 * options.section_jitter_s + 1e-9)
    times = np.arange(0.0, 2.5, 0.005)
    singers_f0 = np.stack([[voice.f0_at(times) for voice in performance.voices] for performance in singers])
    part = bach.section_f0(singers_f0)
    singing = singers_f0 > 0
    assert np.all((part > 0) == singing.any(axis=0))
    lowest = np.where(singing, singers_f0, np.inf).min(axis=0)
    highest = np.where(singing, singers_f0, 0.0).max(axis=0)
    inside = singing.any(axis=0)
    assert np.all((lowest[inside] <= part[inside] * (1 + 1e-12)) & (part[inside] <= highest[inside] * (1 + 1e-12)))
    assert np.max(1200 * np.log2(highest[inside] / lowest[inside])) > 5  # the singers really differ
    assert np.array_equal(bach.section_f0(singers_f0[:1]), singers_f0[0])


@needs_fluidsynth
def test_section_items_sum_to_mix_and_record_every_singer(tmp_path):
    arguments = ["--count", "1", "--seconds", "4", "--program", "solo", "--per-chorale", "1", "--seed", "7",
                 "--quiet", "--section-size", "2"]
    assert main(["data", "bach", str(tmp_path / "sections"), *arguments]) == 0
    record = json.loads((tmp_path / "sections" / "generation.json").read_text())
    assert record["options"]["section_size"] == 2
    (item,) = load_dataset(tmp_path / "sections", require_stems=True, sample_rate=16000)
    assert all(len(singers) == 2 for singers in item.meta["section_patches"].values())
    stems = item.load_stems()
    np.testing.assert_allclose(stems.sum(axis=0), item.load_mix(), atol=1e-6, rtol=0)
    for voice_index, voice in enumerate(item.voices):  # the section's mean F0 is what is heard
        errors = spectral_f0_errors_cents(stems[voice_index], item.f0_hz[voice_index])
        assert np.median(np.abs(errors)) < 20, voice
    # --section-f0 first: the same audio, the F0 of one singer per part (a real choir tracked on
    # one singer): apart from the mean by that singer's detune and intonation, more only at
    # note changes, where the singers' onsets differ
    assert main(["data", "bach", str(tmp_path / "first"), *arguments, "--section-f0", "first"]) == 0
    assert json.loads((tmp_path / "first" / "generation.json").read_text())["options"]["section_f0"] == "first"
    (first,) = load_dataset(tmp_path / "first", require_stems=True, sample_rate=16000)
    assert np.array_equal(first.load_mix(), item.load_mix())
    both = (first.f0_hz > 0) & (item.f0_hz > 0)
    apart_cents = np.abs(1200 * np.log2(first.f0_hz[both] / item.f0_hz[both]))
    assert 0 < np.median(apart_cents) < 30 and np.quantile(apart_cents, 0.9) < 30


def test_solo_parts_keep_their_record():
    """Section size 1 writes what the generator wrote before sections: its settings stay
    out of generation.json, and the singer's draws are the solo performance's."""
    solo = BachOptions(seed=4)
    changed = perform("test", TWO_NOTES, replace(solo, section_detune_cents=50.0, section_jitter_s=0.2))
    for voice, expected in zip(changed.voices, perform("test", TWO_NOTES, solo).voices, strict=True):
        for name in ("note_on_s", "note_off_s", "keys", "bend_s", "bend_values"):
            assert np.array_equal(getattr(voice, name), getattr(expected, name)), name
