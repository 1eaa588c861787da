"""Scores as F0 (sfgraph.f0.score, the f0_score node), aligning them to recordings, and the f0 command."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import FIXTURES, write_wav

from sfgraph.data.bach import BachOptions, perform, read_chorale, voice_track
from sfgraph.data.layout import load_item, read_f0_csv
from sfgraph.data.midi import TICKS_PER_SECOND, MidiTrack, seconds_to_tick
from sfgraph.f0.align import align_score
from sfgraph.f0.score import Score, ScoreError, read_score
from sfgraph.graph.node import GraphContext
from sfgraph.graph.registry import node_types

RATE = 16000
FRAME_S = 256 / RATE


def hz(key: float) -> float:
    return 440.0 * 2 ** ((key - 69) / 12)


def midi_file(path: Path, tracks: list[MidiTrack], end_s: float) -> Path:
    """A format-1 file with one MTrk chunk per MidiTrack (each written by sfgraph.data.midi)."""
    chunks = [track.to_bytes(seconds_to_tick(end_s))[14:] for track in tracks]  # drop each file's MThd
    path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 1, len(chunks), TICKS_PER_SECOND) + b"".join(chunks))
    return path


def chords_midi(path: Path, onsets_s: np.ndarray, keys: np.ndarray) -> Path:
    """Four voices (one track each) singing ``keys`` (chords, voices) from each onset to the next."""
    tracks = []
    for voice in range(keys.shape[1]):
        track = MidiTrack(channel=voice)
        for start, stop, key in zip(onsets_s[:-1], onsets_s[1:], keys[:, voice]):
            track.add_note(seconds_to_tick(start), seconds_to_tick(stop), int(key), 90)
        tracks.append(track)
    return midi_file(path, tracks, onsets_s[-1] + 0.5)


def sing(score: Score, seconds: float, seed: int = 0) -> np.ndarray:
    """A "recording" of ``score``: a brighter timbre than the aligner's rendering, vibrato, a little noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = score.f0_at(t) * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0 / RATE, axis=1)
    voiced = f0 > 0
    audio = sum(np.where(voiced & (k * f0 < RATE / 2), 0.7 ** k * np.sin(k * phase), 0.0).sum(axis=0)
                for k in range(1, 12))
    return (0.2 * audio + 0.001 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def chorale_like(tmp_path):
    """A MIDI score of 12 four-part chords of uneven lengths, its path, and its chord onsets (s)."""
    rng = np.random.default_rng(3)
    onsets = np.concatenate([[0.0], np.cumsum(rng.choice([0.3, 0.5, 0.8], 12))])
    keys = np.array([72, 65, 57, 48]) + rng.integers(-5, 6, size=(12, 4))
    return chords_midi(tmp_path / "score.mid", onsets, keys), onsets, keys


def test_midi_tracks_tempo_and_pitch_bend_give_hz_per_frame(tmp_path):
    soprano = MidiTrack(channel=0)
    soprano.add_pitch_bend_range(0, 12)  # RPN 0: a full throw is an octave
    soprano.add_note(0, seconds_to_tick(1.0), 69, 90)
    soprano.add_note(seconds_to_tick(1.0), seconds_to_tick(2.0), 71, 90)
    soprano.add_pitch_bend(seconds_to_tick(1.5), 8192 + 4096)  # half a throw: +6 semitones
    bass = MidiTrack(channel=1)
    bass.add_note(seconds_to_tick(0.5), seconds_to_tick(2.0), 45, 90)
    path = midi_file(tmp_path / "two.mid", [soprano, bass], 2.5)

    score = read_score(path, ["soprano", "bass"])  # unnamed tracks: one name per track, in order
    assert score.voices == ("soprano", "bass")
    times = np.arange(160) * FRAME_S
    f0 = score.f0_at(times)
    expected_soprano = np.select([times < 1.0, times < 1.5, times < 2.0], [hz(69), hz(71), hz(77)], 0.0)
    expected_bass = np.where((times >= 0.5) & (times < 2.0), hz(45), 0.0)
    np.testing.assert_allclose(f0[0], expected_soprano, rtol=1e-9)
    np.testing.assert_allclose(f0[1], expected_bass, rtol=1e-9)


def test_a_generated_performance_reads_back_as_its_own_f0(tmp_path):
    """A Bach chorale voice as the generator performs and writes it (vibrato as pitch bend)."""
    from music21 import corpus

    chorale = read_chorale(Path(corpus.getWork("bach/bwv159.5")))
    soprano = perform("bwv159.5", chorale, BachOptions()).voices[0]
    path = tmp_path / "soprano.mid"
    voice_track(soprano, 54).write(path, seconds_to_tick(float(soprano.note_off_s[-1]) + 1))
    times = np.arange(int(soprano.note_off_s[-1] / FRAME_S)) * FRAME_S
    np.testing.assert_allclose(read_score(path).f0_at(times)[0], soprano.f0_at(times), rtol=1e-9)


def test_a_format_0_file_has_one_voice_per_channel(tmp_path):
    low, high = MidiTrack(channel=3), MidiTrack(channel=0)
    low.add_note(0, 2000, 48, 90)
    high.add_note(1000, 2000, 72, 90)
    low._events += high._events  # one track, two channels
    path = tmp_path / "zero.mid"
    path.write_bytes(low.to_bytes(3000))
    score = read_score(path)
    assert score.voices == ("voice1", "voice2")  # channels in order: 1 then 4
    np.testing.assert_allclose(score.f0_at([0.75]), [[hz(72)], [hz(48)]])


def test_musicxml_parts_give_hz_per_frame(tmp_path):
    from music21 import meter, note, stream, tempo

    parts = []
    for name, pitches in (("Soprano", ["C5", "D5", None]), ("Alto", ["A4", "A4", "G4"])):
        part = stream.Part()
        part.partName = name
        part.append(meter.TimeSignature("4/4"))
        if name == "Soprano":
            part.append(tempo.MetronomeMark(number=90))
        for pitch, length in zip(pitches, (2.0, 1.0, 1.0)):
            part.append(note.Rest(quarterLength=length) if pitch is None else note.Note(pitch, quarterLength=length))
        parts.append(part)
    path = tmp_path / "duet.musicxml"
    stream.Score(parts).write("musicxml", fp=str(path))

    score = read_score(path)
    assert score.voices == ("soprano", "alto")
    quarter = 60 / 90
    times = np.arange(int(4 * quarter / FRAME_S) + 5) * FRAME_S
    f0 = score.f0_at(times)
    expected = np.stack([np.select([times < 2 * quarter, times < 3 * quarter], [hz(72), hz(74)], 0.0),
                         np.select([times < 2 * quarter, times < 3 * quarter, times < 4 * quarter],
                                   [hz(69), hz(69), hz(67)], 0.0)])
    np.testing.assert_allclose(f0, expected, rtol=1e-9)
    assert read_score(path, ["alto"]).voices == ("alto",)
    with pytest.raises(ScoreError, match="2 parts: 1: Soprano, 2: Alto"):
        read_score(path, ["tenor"])


def make_node(type_name, params, tmp_path, mode="offline"):
    node = node_types()[type_name](type_name, params)
    context = GraphContext(RATE, 256, tmp_path, tmp_path, mode)
    node.output_specs = node.configure({}, context)
    node.context = context
    node.prepare()
    return node


def test_score_node_places_the_score_with_offset_and_tempo_scale(chorale_like, tmp_path):
    path, onsets, keys = chorale_like
    node = make_node("f0_score", {"path": str(path), "offset_s": 0.5, "tempo_scale": 2.0}, tmp_path)
    spec = node.output_specs["f0"]
    assert spec.labels == ("soprano", "alto", "tenor", "bass") and spec.rate == 62.5
    times = np.arange(node.track.shape[1]) * FRAME_S
    expected = read_score(path).placed(0.5, 2.0).f0_at(times)
    np.testing.assert_array_equal(node.track, expected.astype(np.float32))
    chord = 4
    middle = 0.5 + (onsets[chord] + onsets[chord + 1]) / 4
    np.testing.assert_allclose(node.track[:, int(round(middle / FRAME_S))], [hz(k) for k in keys[chord]], rtol=1e-6)
    blocks = [node.process(n=n)["f0"] for n in (7, 100, 1000)]
    assert node.done and sum(b.shape[1] for b in blocks) == node.track.shape[1]


def test_a_score_off_by_a_known_offset_and_tempo_is_realigned_within_50_ms(chorale_like, tmp_path):
    path, onsets, keys = chorale_like
    offset, tempo_scale = 0.37, 0.9  # the performance starts 0.37 s late and runs 10 % slow
    truth = read_score(path).placed(offset, tempo_scale)
    recording = sing(truth, truth.end_s + 0.6)
    aligned = align_score(read_score(path), recording, RATE)
    errors = np.concatenate([a.note_on_s - t.note_on_s for a, t in zip(aligned.parts, truth.parts)])
    assert np.max(np.abs(errors)) < 0.05, np.round(errors * 1000)

    write_wav(tmp_path / "recording.wav", recording, RATE)
    node = make_node("f0_score", {"path": str(path), "align_to": "recording.wav"}, tmp_path)
    times = np.arange(node.track.shape[1]) * FRAME_S
    assert node.track.shape[1] == int(round(recording.size / 256)) + 1
    agree = np.isclose(node.track, truth.f0_at(times), rtol=1e-4)
    assert agree.mean() > 0.95


def test_a_chorale_score_aligns_to_its_rendering():
    """The fixture's first item against its own chorale's score: note onsets as the generator played them."""
    from dataclasses import replace

    from music21 import corpus

    root = FIXTURES / "bach_tiny"
    generation = json.loads((root / "generation.json").read_text())
    options = BachOptions(**{k: v for k, v in generation["options"].items() if k in BachOptions.__dataclass_fields__})
    item = load_item(root / generation["items"][0])
    path = Path(corpus.getWork("bach/" + item.meta["chorale"]))
    played = perform(item.meta["chorale"], read_chorale(path), options).voices
    score = read_score(path)
    # The excerpt: the notes the item holds (the score and the performance list the same notes).
    excerpt = []
    for part, voice in zip(score.parts, played):
        keep = np.zeros(part.note_on_s.size, bool)
        keep[:voice.note_on_s.size] = voice.note_on_s[:part.note_on_s.size] < item.duration_s - 0.1
        excerpt.append(replace(part, note_on_s=part.note_on_s[keep], note_off_s=part.note_off_s[keep],
                               keys=part.keys[keep] + item.meta["transpose_semitones"],
                               velocities=part.velocities[keep], tuning_cents=part.tuning_cents[keep]))
    aligned = align_score(Score(score.voices, tuple(excerpt)), item.load_mix(), item.sample_rate)
    errors = np.concatenate([a.note_on_s - v.note_on_s[:a.note_on_s.size] for a, v in zip(aligned.parts, played)])
    print(f"onset errors (ms): {np.round(errors * 1000).astype(int)}")
    assert np.median(np.abs(errors)) < 0.04 and np.max(np.abs(errors)) < 0.1


def test_f0_command_writes_the_dataset_layout(chorale_like, tmp_path):
    from sfgraph.cli import main

    path, _, _ = chorale_like
    truth = read_score(path).placed(0.25, 1.0)
    write_wav(tmp_path / "mix.wav", sing(truth, truth.end_s + 0.5), RATE)
    assert main(["f0", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "f0"), "--method", "score",
                 "--score", str(path), "--align"]) == 0
    times, soprano = read_f0_csv(tmp_path / "f0" / "soprano.csv")
    assert sorted(p.name for p in (tmp_path / "f0").iterdir()) == ["alto.csv", "bass.csv", "soprano.csv", "tenor.csv"]
    assert times.size == 1 + int((truth.end_s + 0.5) * RATE) // 256
    assert np.mean(np.isclose(soprano, truth.f0_at(times)[0], rtol=1e-3)) > 0.95

    stems = tmp_path / "stems"
    stems.mkdir()
    t = np.arange(RATE // 2) / RATE
    for voice, frequency in (("soprano", 440.0), ("bass", 110.0)):
        write_wav(stems / f"{voice}.wav", 0.3 * np.sin(2 * np.pi * frequency * t), RATE)
    assert main(["f0", str(stems), "-o", str(tmp_path / "crepe")]) == 0
    for voice, frequency in (("soprano", 440.0), ("bass", 110.0)):
        _, f0 = read_f0_csv(tmp_path / "crepe" / f"{voice}.csv")
        assert abs(1200 * np.log2(np.median(f0[4:-4]) / frequency)) < 10


def test_f0_command_reports_bad_input(tmp_path, capsys):
    from sfgraph.cli import main

    write_wav(tmp_path / "mix.wav", np.zeros(RATE), RATE)
    assert main(["f0", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "f0"), "--method", "score"]) == 2
    assert "--method score needs --score" in capsys.readouterr().err
    assert main(["f0", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "f0"), "--voices", "soprano,alto"]) == 2
    assert "1 channel(s) but 2 voices" in capsys.readouterr().err
    assert main(["f0", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "f0"), "--method", "score",
                 "--score", str(tmp_path / "none.mid")]) == 2
    assert "score not found" in capsys.readouterr().err
