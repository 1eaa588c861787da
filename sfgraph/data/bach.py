"""Synthetic choir data: four-part Bach chorales rendered with a General MIDI soundfont.

Each chorale of music21's corpus with exactly the four parts Soprano, Alto,
Tenor, Bass is "performed" (tempo, fermatas, transposition, per-note
intonation, slow drift and vibrato, all as MIDI pitch bend), each voice is
rendered alone with fluidsynth (float output, reverb and chorus off), and the
rendering is cut into items of a fixed length (a "soundfont" named ``festival`` is
Festival's diphone voice singing words instead, ``sfgraph.data.festival``); the first item of a chorale
starts at its first note, so there is no leading silence, and a last piece
shorter than an item is dropped. The ground-truth F0 of every
voice is computed from the very event list written to the MIDI file, pitch
bends included, on the frame grid ``t * 256 / 16000`` s. The mixture is the
exact sum of the stems.

Everything random is drawn from generators seeded by ``(seed, chorale name)``,
so a chorale is performed the same way whatever else is generated with it;
fluidsynth renders bit-identically run to run.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sfgraph.atomic import write_text
from sfgraph.data.audio import read_wav
from sfgraph.data.festival import FestivalError, find_text2wave, keep_f0_near_score, octaves_down, render_festival
from sfgraph.data.layout import write_item
from sfgraph.data.midi import MidiTrack, seconds_to_tick, tick_to_seconds
from sfgraph.grid import DEFAULT_VOICES, HOP_LENGTH, SAMPLE_RATE, frame_times
from sfgraph.music import (
    BEND_RANGE_SEMITONES,
    PITCH_BEND_CENTER,
    PITCH_BEND_MAX,
    ChoralePerformance,
    VoicePerformance,
    midi_to_hz,
)

# General MIDI programs, 1-based as printed in the GM list.
GM_PROGRAMS = {"choir": 53, "solo": 54, "synth": 55}  # 53 Choir Aahs, 54 Voice Oohs, 55 Synth Voice
SOUNDFONT_CANDIDATES = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),  # Debian fluid-soundfont-gm
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),  # Debian timgm6mb-soundfont
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/sounds/sf3/MuseScore_General.sf3"),  # Debian musescore-general-soundfont
)
PART_NAMES = ("Soprano", "Alto", "Tenor", "Bass")

# fluidsynth applies MIDI events at the start of its 64-sample blocks; events
# are placed on that grid so the F0 computed from them is what is heard.
EVENT_GRID_S = 64 / SAMPLE_RATE
# Pitch-bend update period for vibrato and drift (two fluidsynth blocks).
CONTROL_PERIOD_S = 2 * EVENT_GRID_S
VIBRATO_DELAY_S = 0.2  # singers start vibrato some time after the onset
VIBRATO_RAMP_S = 0.3
BREATH_S = 0.15  # notes under a fermata end this early: the singers breathe
REARTICULATION_S = 0.04  # gap before a repeated note of the same pitch
MIN_NOTE_S = 0.03  # notes shortened below this by breaths or re-articulation are dropped
# GM voice patches release slowly (about 300 ms to -30 dB), so the previous
# note would ring under the next one, unlike a singer moving to a new pitch.
# SF2 generator 38 (volume-envelope release) is offset by -3600 timecents
# (8 times shorter) through the SoundFont NRPN, which fluidsynth scales by 2.
SF2_GENERATOR_RELEASE = 38
RELEASE_OFFSET_NRPN = -3600 // 2
RELEASE_TAIL_S = 1.5  # rendered after the last note-off so releases ring out
# A chunk may end this long after the last note-off and still count as full.
CHUNK_END_ALLOWANCE_S = 0.5
MIX_PEAK = 0.8  # every item is scaled so its mixture peaks here
PCM16_SCALE = 32767  # pedalboard reads 16-bit sample k as k / 32767
# Keys whose tuning is measured: C1 to C7, wider than any (transposed) chorale voice.
TUNING_KEYS = range(24, 97)
TUNING_NOTE_S = 1.0
TUNING_GAP_S = 0.3
TUNING_SEARCH_CENTS = 100
FLUIDSYNTH_GAIN = 0.5  # render level; float output never clips and every item is normalised anyway


class GeneratorError(Exception):
    """The generator cannot run (missing fluidsynth or soundfont, too few chorales ...)."""


def default_workers() -> int:
    """fluidsynth processes to run at once: one per core, at most one per voice."""
    return max(1, min(len(DEFAULT_VOICES), os.cpu_count() or 1))


@dataclass(frozen=True)
class BachOptions:
    """Settings of ``generate_bach``. Times in seconds, pitches in cents or semitones."""

    count: int = 10
    seconds: float = 20.0
    # Patches: every (soundfont, program) pair. With one, every voice sings it; with
    # several, each voice of each chorale draws its own (like different singers).
    soundfonts: tuple[Path, ...] = ()  # empty: the first installed GM soundfont
    programs: tuple[int, ...] = (GM_PROGRAMS["choir"],)  # 1-based GM programs
    seed: int = 0
    tempo_bpm: float = 80.0  # quarter notes per minute
    tempo_jitter: float = 0.1  # each chorale's tempo is tempo_bpm * (1 +- jitter)
    transpose: int = 2  # each chorale is transposed by a whole number of semitones in +-transpose
    vibrato_cents: float = 25.0  # peak vibrato depth (each note varies it by +-30 %)
    vibrato_rate_hz: float = 5.5  # each note varies it by +-10 %
    deviation_cents: float = 8.0  # std of per-note intonation offsets; slow drift has half this std
    level_db: float = 3.0  # per-voice level drawn per item in +-level_db
    fermata_stretch: float = 1.6  # notes under a fermata last this much longer
    per_chorale: int = 0  # at most this many items per chorale (0 = as many as fit)
    bit_depth: int = 32  # 32 = float WAV; 16 = PCM (stems are rounded before summing, so the sum stays exact)
    reverb: float = 0.0  # room reverb per chorale: wet level drawn in [0, reverb] (0 = dry, as rendered)
    breath_db: float | None = None  # breath noise per voice, drawn up to this level under the voice (dB); None: none
    # Singers per part: each draws its own patch, a constant detune in +-section_detune_cents,
    # note onsets and ends shifted by N(0, section_jitter_s) and its own intonation and vibrato.
    section_size: int = 1
    section_detune_cents: float = 15.0
    section_jitter_s: float = 0.03
    # The part's F0: "mean" of its singers (in cents), or the "first" singer's alone, as a
    # real choir's F0 tracked on one singer per part.
    section_f0: str = "mean"
    workers: int = field(default_factory=default_workers)  # fluidsynth processes run at once


def resolve_program(value: str | int) -> int:
    """1-based GM program from ``'choir'``, ``'solo'`` or a number 1..128."""
    if isinstance(value, str) and value.lower() in GM_PROGRAMS:
        return GM_PROGRAMS[value.lower()]
    try:
        program = int(value)
    except ValueError:
        raise GeneratorError(f"program {value!r}: expected 'choir', 'solo', 'synth' or a GM program number 1..128") from None
    if not 1 <= program <= 128:
        raise GeneratorError(f"program {program}: GM programs are numbered 1..128 (53 Choir Aahs, 54 Voice Oohs)")
    return program


def find_soundfont(path: Path | None) -> Path:
    """The soundfont to use: ``path`` if given (a bare file name is also looked for where
    Debian installs soundfonts, as ``FluidR3_GM.sf2``), else the first installed Debian GM
    soundfont."""
    if path is not None:
        path = Path(path)
        if path.is_file():
            return path
        folders = list(dict.fromkeys(candidate.parent for candidate in SOUNDFONT_CANDIDATES))
        if path.parent == Path("."):
            for folder in folders:
                if (folder / path).is_file():
                    return folder / path
            raise GeneratorError(f"{path}: soundfont not found (here or in {', '.join(map(str, folders))})")
        raise GeneratorError(f"{path}: soundfont not found")
    for candidate in SOUNDFONT_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise GeneratorError(
        "no General MIDI soundfont found (looked for "
        + ", ".join(str(candidate) for candidate in SOUNDFONT_CANDIDATES)
        + "); install one with 'apt-get install fluid-soundfont-gm' or 'timgm6mb-soundfont', or pass --soundfont"
    )


def find_soundfonts(value: str | None) -> tuple[Path, ...]:
    """Soundfonts named on the command line, separated by commas: paths, ``all`` (every
    installed Debian GM soundfont) and ``festival`` (Festival's singing voice, ``FESTIVAL``);
    None: the first installed GM soundfont."""
    if value is None:
        return (find_soundfont(None),)
    found: dict[Path, None] = {}
    for token in (token.strip() for token in value.split(",")):
        if token.lower() == "festival":
            find_text2wave_or_fail()
            found[FESTIVAL] = None
        elif token.lower() == "all":
            installed: dict[Path, Path] = {}
            for candidate in SOUNDFONT_CANDIDATES:  # each file once, under the first name that reaches it
                if candidate.is_file():
                    installed.setdefault(candidate.resolve(), candidate)
            if not installed:
                find_soundfont(None)  # raises, naming what to install
            found.update(dict.fromkeys(installed.values()))
        else:
            found[find_soundfont(Path(token))] = None
    return tuple(found)


def find_text2wave_or_fail() -> str:
    try:
        return find_text2wave()
    except FestivalError as exc:
        raise GeneratorError(str(exc)) from None


def find_fluidsynth() -> str:
    """Path of the fluidsynth binary."""
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise GeneratorError("fluidsynth not found on PATH; install it with 'apt-get install fluidsynth'")
    return binary


def list_chorales() -> list[Path]:
    """Paths of music21's Bach corpus MusicXML files, sorted by file name."""
    from music21 import corpus

    return sorted(
        (Path(path) for path in corpus.getComposer("bach") if str(path).endswith(".mxl")), key=lambda path: path.name
    )


def read_chorale(path: Path) -> dict[str, list[tuple[float, float, int, bool]]] | None:
    """Notes of a four-part chorale: ``{voice: [(onset_q, duration_q, midi_key, fermata), ...]}``.

    Times in quarter notes. Returns None unless the score has exactly the
    parts Soprano, Alto, Tenor, Bass. Tied notes are merged; a chord (never
    seen in the corpus) keeps its top note so each voice stays monophonic.
    """
    from music21 import chord, corpus, expressions

    score = corpus.parse(str(path))
    names = tuple((part.partName or "").strip() for part in score.parts)
    if names != PART_NAMES:
        return None
    voices: dict[str, list[tuple[float, float, int, bool]]] = {}
    for voice, part in zip(DEFAULT_VOICES, score.parts, strict=True):
        notes = []
        for element in part.stripTies().flatten().notes:
            duration = float(element.quarterLength)
            if duration <= 0:
                continue  # grace notes have no duration of their own
            key = max(p.midi for p in element.pitches) if isinstance(element, chord.Chord) else element.pitch.midi
            fermata = any(isinstance(expression, expressions.Fermata) for expression in element.expressions)
            notes.append((float(element.offset), duration, int(key), fermata))
        if not notes:
            return None
        voices[voice] = sorted(notes)
    return voices


def _time_map(
    notes: dict[str, list[tuple[float, float, int, bool]]], seconds_per_quarter: float, fermata_stretch: float
):
    """Piecewise-linear map from quarter notes to seconds, slower under fermatas.

    Returns ``(quarters, seconds)`` breakpoints for ``np.interp``; the first
    onset of any voice maps to 0 s.
    """
    start = min(voice_notes[0][0] for voice_notes in notes.values())
    end = max(onset + duration for voice_notes in notes.values() for onset, duration, _, _ in voice_notes)
    spans = sorted(
        (onset, onset + duration)
        for voice_notes in notes.values()
        for onset, duration, _, fermata in voice_notes
        if fermata
    )
    merged: list[list[float]] = []
    for span_start, span_end in spans:
        if merged and span_start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], span_end)
        else:
            merged.append([span_start, span_end])
    quarters, seconds = [start], [0.0]
    for span_start, span_end in merged:
        for point, slope in ((span_start, seconds_per_quarter), (span_end, seconds_per_quarter * fermata_stretch)):
            if point > quarters[-1]:
                seconds.append(seconds[-1] + (point - quarters[-1]) * slope)
                quarters.append(point)
    if end > quarters[-1]:
        seconds.append(seconds[-1] + (end - quarters[-1]) * seconds_per_quarter)
        quarters.append(end)
    return np.array(quarters), np.array(seconds)


def _on_grid(seconds: np.ndarray | float) -> np.ndarray:
    """Round times to the fluidsynth event grid (a whole number of MIDI ticks)."""
    return np.round(np.asarray(seconds) / EVENT_GRID_S) * EVENT_GRID_S


def perform(
    chorale: str,
    notes: dict[str, list[tuple[float, float, int, bool]]],
    options: BachOptions,
    tunings: Sequence[Mapping[int, float]] | None = None,
    singer: int = 0,
) -> ChoralePerformance:
    """Turn a chorale's notes into a performance (tempo, transposition, intonation, vibrato).

    ``tunings``: per voice, cents by which each MIDI key of its patch sounds above
    nominal (``measure_tuning``); they enter the F0, not the MIDI events.
    ``singer``: which singer of each part's section (``options.section_size`` > 1) this
    performance is: all share the tempo and transposition; each draws its own detune
    (cents, constant), timing jitter, intonation and vibrato from ``(seed, chorale, 5, singer)``.
    """
    crc = zlib.crc32(chorale.encode())
    rng = np.random.default_rng([options.seed, crc])
    tempo = options.tempo_bpm * (1 + rng.uniform(-options.tempo_jitter, options.tempo_jitter))
    transpose = int(rng.integers(-options.transpose, options.transpose + 1))
    in_section = options.section_size > 1
    if in_section:
        rng = np.random.default_rng([options.seed, crc, 5, singer])
    quarters, seconds = _time_map(notes, 60.0 / tempo, options.fermata_stretch)
    end_s = float(seconds[-1])
    control_times = np.arange(0.0, end_s + CONTROL_PERIOD_S, CONTROL_PERIOD_S)

    voices = []
    for voice_index, voice in enumerate(DEFAULT_VOICES):
        tuning = tunings[voice_index] if tunings is not None else {}
        voice_notes = notes[voice]
        onsets_q = np.array([onset for onset, _, _, _ in voice_notes])
        ends_q = onsets_q + np.array([duration for _, duration, _, _ in voice_notes])
        keys = np.clip(np.array([key for _, _, key, _ in voice_notes]) + transpose, 0, 127)
        fermatas = np.array([fermata for _, _, _, fermata in voice_notes])
        on = np.interp(onsets_q, quarters, seconds)
        off = np.interp(ends_q, quarters, seconds) - np.where(fermatas, BREATH_S, 0.0)
        repeated = np.zeros(len(on), dtype=bool)
        repeated[:-1] = (keys[1:] == keys[:-1]) & (np.abs(on[1:] - off[:-1]) < 1e-9)
        off = off - np.where(repeated, REARTICULATION_S, 0.0)
        detune = 0.0
        if in_section:
            detune = rng.uniform(-options.section_detune_cents, options.section_detune_cents)
            jitter = options.section_jitter_s
            on = np.maximum(on + np.clip(rng.normal(0, jitter, on.size), -2.5 * jitter, 2.5 * jitter), 0.0)
            off = off + np.clip(rng.normal(0, jitter, off.size), -2.5 * jitter, 2.5 * jitter)
        # A voice is monophonic: a note ends at the latest where the next begins.
        off[:-1] = np.minimum(off[:-1], on[1:])
        on, off = _on_grid(on), _on_grid(off)
        keep = off - on >= MIN_NOTE_S
        on, off, keys = on[keep], off[keep], keys[keep]
        velocities = np.clip(np.round(rng.normal(88, 6, size=on.size)), 60, 115).astype(int)

        # Cents above each note's key, on the control grid: a per-note
        # intonation offset, a slow drift shared by the notes of the voice, and
        # vibrato that fades in after each onset.
        note_offsets = detune + np.clip(
            rng.normal(0, options.deviation_cents, size=on.size),
            -2.5 * options.deviation_cents,
            2.5 * options.deviation_cents,
        )
        drift_rates = rng.uniform(0.05, 0.3, size=3)
        drift_phases = rng.uniform(0, 2 * np.pi, size=3)
        drift = (
            options.deviation_cents
            / 2
            / math.sqrt(1.5)
            * np.sin(2 * np.pi * drift_rates[:, None] * control_times + drift_phases[:, None]).sum(axis=0)
        )
        vibrato_depths = options.vibrato_cents * rng.uniform(0.7, 1.3, size=on.size)
        vibrato_rates = options.vibrato_rate_hz * rng.uniform(0.9, 1.1, size=on.size)
        vibrato_phases = rng.uniform(0, 2 * np.pi, size=on.size)

        bend_times, bend_values = [], []
        for index in range(on.size):
            times = np.arange(on[index], off[index], CONTROL_PERIOD_S)
            since_onset = times - on[index]
            fade = np.clip((since_onset - VIBRATO_DELAY_S) / VIBRATO_RAMP_S, 0.0, 1.0)
            vibrato = (
                vibrato_depths[index]
                * fade
                * np.sin(2 * np.pi * vibrato_rates[index] * since_onset + vibrato_phases[index])
            )
            cents = note_offsets[index] + np.interp(times, control_times, drift) + vibrato
            values = np.clip(
                np.round(PITCH_BEND_CENTER + cents / (100 * BEND_RANGE_SEMITONES) * PITCH_BEND_CENTER),
                0,
                PITCH_BEND_MAX,
            )
            # Always send the onset's bend (it precedes the note-on), then only changes.
            changed = np.ones(values.size, dtype=bool)
            changed[1:] = values[1:] != values[:-1]
            bend_times.append(times[changed])
            bend_values.append(values[changed])
        voices.append(
            VoicePerformance(
                voice=voice,
                note_on_s=np.array([tick_to_seconds(seconds_to_tick(time)) for time in on]),
                note_off_s=np.array([tick_to_seconds(seconds_to_tick(time)) for time in off]),
                keys=keys.astype(int),
                velocities=velocities,
                tuning_cents=np.array([tuning.get(int(key), 0.0) for key in keys], dtype=np.float64),
                bend_s=np.array([tick_to_seconds(seconds_to_tick(time)) for time in np.concatenate(bend_times)]),
                bend_values=np.concatenate(bend_values).astype(int),
            )
        )
    return ChoralePerformance(chorale=chorale, voices=tuple(voices), tempo_bpm=float(tempo), transpose=transpose)


def _voice_channel(program: int) -> MidiTrack:
    """An empty MIDI track set up for one voice with 1-based GM ``program``."""
    track = MidiTrack(channel=0)
    track.add_program(0, program - 1)
    track.add_pitch_bend_range(0, BEND_RANGE_SEMITONES)
    # Centre pan (the stereo render is averaged to mono), full volume, no
    # modulation wheel, no reverb or chorus sends.
    for controller, value in ((7, 100), (10, 64), (11, 127), (1, 0), (91, 0), (93, 0)):
        track.add_setup_control(0, controller, value)
    track.add_generator_offset(0, SF2_GENERATOR_RELEASE, RELEASE_OFFSET_NRPN)
    return track


def voice_track(voice: VoicePerformance, program: int) -> MidiTrack:
    """A one-channel MIDI track playing ``voice`` with 1-based GM ``program``."""
    track = _voice_channel(program)
    for time, value in zip(voice.bend_s, voice.bend_values, strict=True):
        track.add_pitch_bend(seconds_to_tick(time), int(value))
    for on, off, key, velocity in zip(voice.note_on_s, voice.note_off_s, voice.keys, voice.velocities, strict=True):
        track.add_note(seconds_to_tick(on), seconds_to_tick(off), int(key), int(velocity))
    return track


def render_midi(track: MidiTrack, end_s: float, soundfont: Path, fluidsynth: str) -> np.ndarray:
    """Render a MIDI track with fluidsynth at 16 kHz; returns mono float32 ``(n_samples,)``.

    The stereo float render (reverb and chorus off) is averaged to mono.
    Rendering at 16 kHz directly is fine for these patches: band energies match
    a 48 kHz render resampled to 16 kHz to within 2 dB down to -40 dB.
    """
    with tempfile.TemporaryDirectory(prefix="sfgraph-bach-") as workdir:
        midi_path = Path(workdir) / "voice.mid"
        wav_path = Path(workdir) / "voice.wav"
        track.write(midi_path, seconds_to_tick(end_s))
        command = [
            fluidsynth, "-ni", "-q", "-F", str(wav_path), "-T", "wav", "-O", "float",
            "-r", str(SAMPLE_RATE), "-R", "0", "-C", "0", "-g", str(FLUIDSYNTH_GAIN),
            "-o", "synth.cpu-cores=1", str(soundfont), str(midi_path),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wav_path.is_file():
            raise GeneratorError(
                f"fluidsynth failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
            )
        audio, rate = read_wav(wav_path)
    if rate != SAMPLE_RATE:
        raise GeneratorError(f"fluidsynth rendered at {rate} Hz instead of {SAMPLE_RATE} Hz")
    return audio.mean(axis=0)


def measure_tuning(program: int, soundfont: Path, fluidsynth: str) -> dict[int, float]:
    """Cents by which each MIDI key of a patch actually sounds above its nominal pitch.

    GM voice patches are not tuned exactly: the samples behind "Choir Aahs"
    sound up to about 50 cents off, differently per key. Every key of
    ``TUNING_KEYS`` is rendered once as a steady note, and its offset is the
    shift, within +-``TUNING_SEARCH_CENTS``, of the harmonic comb (partials 1-8)
    that collects the most spectral magnitude. Keys that stay silent get 0.
    """
    track = _voice_channel(program)
    period = TUNING_NOTE_S + TUNING_GAP_S
    for index, key in enumerate(TUNING_KEYS):
        track.add_note(seconds_to_tick(index * period), seconds_to_tick(index * period + TUNING_NOTE_S), key, 90)
    audio = render_midi(track, len(TUNING_KEYS) * period + RELEASE_TAIL_S, soundfont, fluidsynth)
    n_fft = 1 << 17
    frequencies = np.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
    cents = np.arange(-TUNING_SEARCH_CENTS, TUNING_SEARCH_CENTS + 0.25, 0.5)  # candidate offsets
    shifts = np.exp2(cents / 1200)
    tuning = {}
    for index, key in enumerate(TUNING_KEYS):
        # Skip the attack: the steady part of the note shows the sample's pitch.
        start = int((index * period + 0.3) * SAMPLE_RATE)
        stop = int((index * period + TUNING_NOTE_S) * SAMPLE_RATE)
        segment = audio[start:stop]
        if not np.any(segment):
            tuning[key] = 0.0
            continue
        magnitude = np.abs(np.fft.rfft(segment * np.hanning(segment.size), n_fft))
        nominal = midi_to_hz(key)
        partials = nominal * np.arange(1, 9)
        partials = partials[partials * shifts[-1] < SAMPLE_RATE / 2]
        comb = np.interp(np.outer(shifts, partials), frequencies, magnitude).sum(axis=1)
        tuning[key] = float(cents[np.argmax(comb)])
    return tuning


Patch = tuple[Path, int]  # (soundfont, 1-based GM program); (FESTIVAL, 0) for Festival's voice
FESTIVAL = Path("festival")  # the "soundfont" that stands for Festival's singing voice
FESTIVAL_RMS = 0.05  # Festival's voice is scaled to about a soundfont voice's level at FLUIDSYNTH_GAIN


def render_performance(
    performance: ChoralePerformance, patches: Sequence[Patch], fluidsynth: str, text2wave: str | None, workers: int,
    seed: Sequence[int]
) -> np.ndarray:
    """Render every voice with its patch; returns ``(n_voices, n_samples)`` float32, zero-padded
    to a common length. ``text2wave`` sings the ``FESTIVAL`` patches; ``seed`` draws the words
    it sings (voice i: ``[*seed, i]``)."""
    end_s = performance.end_s + RELEASE_TAIL_S

    def render(index: int) -> np.ndarray:
        voice, (soundfont, program) = performance.voices[index], patches[index]
        if soundfont != FESTIVAL:
            return render_midi(voice_track(voice, program), end_s, soundfont, fluidsynth)
        try:
            sung = render_festival(voice.note_on_s, voice.note_off_s, voice.keys,
                                   np.random.default_rng([*seed, index]), text2wave, SAMPLE_RATE)
        except FestivalError as exc:
            raise GeneratorError(str(exc)) from None
        level = np.sqrt(np.mean(sung.astype(np.float64) ** 2))
        return sung * np.float32(FESTIVAL_RMS / level) if level > 0 else sung

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        renders = list(pool.map(render, range(len(performance.voices))))
    length = max(int(round(end_s * SAMPLE_RATE)), max(render.size for render in renders))
    stems = np.zeros((len(renders), length), dtype=np.float32)
    for index, render in enumerate(renders):
        stems[index, : render.size] = render
    return stems


def add_room_and_breath(stems: np.ndarray, reverb: float, breath_db: float | None,
                        rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Put rendered stems ``(n_voices, n_samples)`` at 16 kHz in one room and give each
    voice breath noise; returns the new stems and what was drawn.

    Room: pedalboard's ``Reverb`` (a linear, time-invariant Freeverb, so the mixture of
    reverberant stems is the reverberant mixture) with a room size in [0.1, 0.5] and a
    wet level in [0, ``reverb``], the same for every voice. Breath: noise band-limited to
    1.5-6 kHz that follows each voice's 20-ms envelope, ``breath_db`` - U(0, 12) dB below
    it. The F0s are unchanged: neither adds a pitch.
    """
    from pedalboard import HighpassFilter, LowpassFilter, Pedalboard, Reverb

    drawn: dict = {}
    stems = stems.astype(np.float32)
    if breath_db is not None:
        band = Pedalboard([HighpassFilter(1500.0), LowpassFilter(6000.0)])
        window = np.hanning(int(0.02 * SAMPLE_RATE))
        window /= window.sum()
        levels = breath_db - rng.uniform(0.0, 12.0, size=stems.shape[0])
        for index, level in enumerate(levels):
            noise = band(rng.standard_normal(stems.shape[1]).astype(np.float32), SAMPLE_RATE)
            noise /= np.sqrt(np.mean(noise**2)) + 1e-12
            envelope = np.sqrt(np.convolve(stems[index].astype(np.float64) ** 2, window, mode="same"))
            stems[index] += (10.0 ** (level / 20.0) * envelope * noise).astype(np.float32)
        drawn["breath_db"] = [round(float(level), 2) for level in levels]
    if reverb > 0:
        room = {"room_size": float(rng.uniform(0.1, 0.5)), "wet_level": float(rng.uniform(0.0, reverb))}
        board = Pedalboard([Reverb(room_size=room["room_size"], damping=0.5, wet_level=room["wet_level"],
                                   dry_level=1.0, width=0.0)])
        stems = np.stack([board(stem, SAMPLE_RATE, reset=True) for stem in stems]).astype(np.float32)
        drawn["reverb"] = {key: round(value, 3) for key, value in room.items()}
    return stems, drawn


def make_item_audio(stems: np.ndarray, gains_db: np.ndarray, bit_depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply per-voice gains, normalise, and build the mixture as the exact sum of the stems.

    ``stems``: ``(n_voices, n_samples)``; ``gains_db``: ``(n_voices,)``.
    Returns ``(mix (n_samples,), stems (n_voices, n_samples))``: float32 for
    ``bit_depth`` 32; for 16, int16 PCM samples (stems rounded first, the mix
    summed in integers), so the stored files sum exactly too.
    """
    scaled = stems.astype(np.float64) * 10.0 ** (gains_db[:, None] / 20.0)
    peak = np.abs(scaled.sum(axis=0)).max()
    scaled *= MIX_PEAK / peak if peak > 0 else 1.0
    if bit_depth == 16:
        # MIX_PEAK leaves room for the rounding of four stems: the sum fits int16.
        stems_pcm = np.round(scaled * PCM16_SCALE).astype(np.int16)
        return stems_pcm.sum(axis=0, dtype=np.int32).astype(np.int16), stems_pcm
    stems_out = scaled.astype(np.float32)
    return stems_out.sum(axis=0, dtype=np.float32), stems_out


def sum_sections(renders: Sequence[np.ndarray]) -> np.ndarray:
    """Each part's stem as the sum of its singers: ``renders`` holds one ``(n_voices,
    n_samples_i)`` array per singer; returns ``(n_voices, max n_samples_i)`` float32, each
    zero-padded. One singer comes back unchanged."""
    if len(renders) == 1:
        return renders[0]
    summed = np.zeros((renders[0].shape[0], max(render.shape[1] for render in renders)), dtype=np.float32)
    for render in renders:
        summed[:, : render.shape[1]] += render
    return summed


SECTION_F0 = ("mean", "first")  # what a section's F0 is: BachOptions.section_f0


def section_f0(singers_f0: np.ndarray) -> np.ndarray:
    """A part's F0 from its singers': ``(n_singers, n_voices, n_frames)`` Hz (0 = silent) ->
    ``(n_voices, n_frames)`` Hz, the mean in cents (geometric mean) of the singers who
    sing in each frame, 0 where none does. One singer's F0 comes back unchanged."""
    if singers_f0.shape[0] == 1:
        return singers_f0[0]
    singing = singers_f0 > 0
    count = singing.sum(axis=0)
    log_sum = np.where(singing, np.log2(np.where(singing, singers_f0, 1.0)), 0.0).sum(axis=0)
    return np.where(count > 0, np.exp2(log_sum / np.maximum(count, 1)), 0.0)


F0Tracker = Callable[[np.ndarray], np.ndarray]  # mono 16 kHz (n,) -> F0 Hz on frame_times(n), 0 = unvoiced


def generate_bach(outdir: Path, options: BachOptions, force: bool = False, progress: bool = True,
                  track_f0: F0Tracker | None = None) -> list[str]:
    """Generate ``options.count`` items of ``options.seconds`` s into ``outdir``; returns the item names.

    ``track_f0`` measures the F0 of Festival's voices (needed when ``FESTIVAL`` is among
    the soundfonts; kept where it agrees with the score, see ``sfgraph.data.festival``).
    Raises ``GeneratorError`` if fluidsynth or a soundfont is missing, if
    ``outdir`` is not empty (unless ``force``) or if the corpus runs out.
    """
    from tqdm import tqdm

    if options.count < 1 or options.seconds <= 0:
        raise GeneratorError("--count must be at least 1 and --seconds positive")
    if options.section_size < 1:
        raise GeneratorError("--section-size must be at least 1")
    if options.section_f0 not in SECTION_F0:
        raise GeneratorError(f"--section-f0 {options.section_f0!r}: use one of {', '.join(SECTION_F0)}")
    if options.bit_depth not in (16, 32):
        raise GeneratorError(f"bit depth {options.bit_depth}: use 16 or 32")
    fluidsynth = find_fluidsynth()
    patches = list(dict.fromkeys(
        (FESTIVAL, 0) if soundfont == FESTIVAL else (find_soundfont(soundfont), resolve_program(program))
        for soundfont in (options.soundfonts or (None,)) for program in options.programs))
    if (FESTIVAL, 0) in patches and track_f0 is None:
        raise GeneratorError("Festival's voice needs an F0 tracker to measure what it sang")
    if (FESTIVAL, 0) in patches and options.section_size > 1:
        raise GeneratorError("Festival's voice sings solo parts only (its F0 is measured, not known per singer)")
    text2wave = find_text2wave_or_fail() if (FESTIVAL, 0) in patches else None
    outdir = Path(outdir)
    if outdir.exists() and any(outdir.iterdir()) and not force:
        raise GeneratorError(f"{outdir}: folder is not empty (use --force to write into it)")

    # Festival sings at the written pitch (its F0 is measured anyway)
    tunings = {patch: {} if patch[0] == FESTIVAL else measure_tuning(patch[1], patch[0], fluidsynth)
               for patch in patches}
    chorales = list_chorales()
    order = np.random.default_rng(options.seed).permutation(len(chorales))
    item_length = int(round(options.seconds * SAMPLE_RATE))
    names: list[str] = []
    skipped: list[str] = []
    with tqdm(total=options.count, desc="bach items", unit="item", disable=not progress) as bar:
        for chorale_index in order:
            if len(names) == options.count:
                break
            path = chorales[chorale_index]
            chorale = path.stem
            notes = read_chorale(path)
            if notes is None:
                skipped.append(chorale)
                continue
            crc = zlib.crc32(chorale.encode())
            # one draw per voice even with a single patch, so that adding patches changes nothing else
            singer_patches = [[patches[i] for i in np.random.default_rng(
                [options.seed, crc, 2] + ([singer] if singer else [])).integers(len(patches), size=len(DEFAULT_VOICES))]
                for singer in range(options.section_size)]
            singers = [perform(chorale, notes, options, [tunings[patch] for patch in voice_patches], singer)
                       for singer, voice_patches in enumerate(singer_patches)]
            end_s = max(performance.end_s for performance in singers)
            n_chunks = int((end_s + CHUNK_END_ALLOWANCE_S) // options.seconds)
            if options.per_chorale > 0:
                n_chunks = min(n_chunks, options.per_chorale)
            n_chunks = min(n_chunks, options.count - len(names))
            if n_chunks == 0:
                skipped.append(chorale)
                continue
            rendered = sum_sections([render_performance(performance, voice_patches, fluidsynth, text2wave,
                                                        options.workers,
                                                        (options.seed, crc, 4) + ((singer,) if singer else ()))
                                     for singer, (performance, voice_patches)
                                     in enumerate(zip(singers, singer_patches, strict=True))])
            rendered, room = add_room_and_breath(rendered, options.reverb, options.breath_db,
                                                 np.random.default_rng([options.seed, crc, 3]))
            rng = np.random.default_rng([options.seed, crc, 1])
            for chunk in range(n_chunks):
                start = chunk * item_length
                segment = np.zeros((len(DEFAULT_VOICES), item_length), dtype=np.float32)
                available = rendered[:, start : start + item_length]
                segment[:, : available.shape[1]] = available
                gains_db = rng.uniform(-options.level_db, options.level_db, size=len(DEFAULT_VOICES))
                mix, stems = make_item_audio(segment, gains_db, options.bit_depth)
                times = frame_times(item_length, SAMPLE_RATE, HOP_LENGTH)
                singers_f0 = np.stack([[voice.f0_at(start / SAMPLE_RATE + times) for voice in performance.voices]
                                       for performance in singers])
                f0 = section_f0(singers_f0) if options.section_f0 == "mean" else singers_f0[0]
                performance, voice_patches = singers[0], singer_patches[0]
                for index, patch in enumerate(voice_patches):
                    if patch[0] == FESTIVAL:  # sung lower where the line is too high for Festival
                        score = f0[index] / 2.0 ** octaves_down(performance.voices[index].keys)
                        f0[index] = keep_f0_near_score(track_f0(segment[index]), score)
                name = f"{len(names):04d}_{chorale}_{chunk}"
                meta = {
                    "source": "music21 Bach corpus, rendered by sfgraph data bach",
                    "chorale": chorale,
                    "chunk": chunk,
                    "start_s": start / SAMPLE_RATE,
                    "voices": list(DEFAULT_VOICES),
                    "tempo_bpm": round(performance.tempo_bpm, 3),
                    "transpose_semitones": performance.transpose,
                    "gains_db": {
                        voice: round(float(gain), 3) for voice, gain in zip(DEFAULT_VOICES, gains_db, strict=True)
                    },
                    "patches": {voice: {"soundfont": patch[0].name, "program": patch[1]}
                                for voice, patch in zip(DEFAULT_VOICES, voice_patches, strict=True)},
                    **({} if options.section_size == 1 else {"section_patches": {
                        voice: [{"soundfont": patches[index][0].name, "program": patches[index][1]}
                                for patches in singer_patches] for index, voice in enumerate(DEFAULT_VOICES)}}),
                    **room,
                    "seed": options.seed,
                }
                write_item(
                    outdir / name,
                    mix=mix,
                    sample_rate=SAMPLE_RATE,
                    voices=DEFAULT_VOICES,
                    f0_times=times,
                    f0_hz=f0,
                    stems=stems,
                    meta=meta,
                    bit_depth=options.bit_depth,
                )
                names.append(name)
                bar.update(1)
    if len(names) < options.count:
        raise GeneratorError(
            f"the corpus gave only {len(names)} items of {options.seconds} s (asked for {options.count}); "
            "lower --count or --seconds"
        )
    # The worker count changes nothing in the output, so it is left out of the record.
    # Solo parts (section size 1) are recorded as before sections existed.
    section_keys = (("section_size", "section_detune_cents", "section_jitter_s", "section_f0")
                    if options.section_size == 1 else ())
    settings = {key: value for key, value in asdict(options).items() if key not in ("workers", *section_keys)}
    settings["soundfonts"] = [str(soundfont) for soundfont in options.soundfonts]
    record = {
        "generator": "sfgraph data bach",
        "options": settings,
        "patches": [{"soundfont": str(soundfont),
                     "soundfont_bytes": None if soundfont == FESTIVAL else soundfont.stat().st_size, "program": program,
                     "tuning_cents": {str(key): cents for key, cents in tunings[soundfont, program].items()}}
                    for soundfont, program in patches],
        "items": names,
        "skipped_chorales": skipped,
    }
    write_text(outdir / "generation.json", json.dumps(record, indent=2) + "\n")
    return names
