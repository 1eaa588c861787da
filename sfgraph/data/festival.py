"""Sung syllables for the Bach generator: Festival's diphone voice singing a voice line.

Soundfont voices sing one vowel for ever; real singers articulate words, so formants
move and consonants interrupt the voicing. Festival (``text2wave -mode singing`` with
the ``kal_diphone`` voice, Debian packages ``festival`` and ``festvox-kallpc16k``)
sings an XML score (its SINGING DTD: notes with beats, one syllable each) with real
diphones at 16 kHz. Each note of a voice gets a one-syllable word drawn from
``WORDS``; rests fill the gaps.

Festival's rendering is not the score's: it sings an octave below the written note
(the score is written an octave up), its time runs at ``TIME_SCALE`` of the written
beats (measured here: 8 beats at 60 bpm last 6.66 s, 4 beats 3.33 s, 3 beats at
120 bpm 1.25 s), it glides between notes, and it sings nothing above about 500 Hz
(higher notes come out at that pitch). So the note lengths are written divided by
``TIME_SCALE``, a line reaching above ``MAX_HZ`` is sung whole octaves lower
(``octaves_down``: Bach's soprano lines usually an octave), and the F0 of a Festival voice is measured on its
rendering (by the tracker the caller passes, e.g. CREPE) and kept only where it lies
within ``SCORE_TOLERANCE_CENTS`` of the note the score has there: a glide, a
consonant or an octave error of the tracker reads unvoiced.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from sfgraph.data.audio import read_mono

TIME_SCALE = 0.8325  # Festival's seconds per written second (the slope of the measurements above)
MAX_HZ = 480.0  # highest note Festival is given: it caps its F0 at about 500 Hz
SCORE_TOLERANCE_CENTS = 100.0
NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
WORDS = ("la", "lo", "loo", "me", "day", "night", "light", "sing", "song", "joy", "praise", "love", "peace",
         "grace", "glad", "all", "come", "hold", "dear", "bright", "sun", "soul", "rest", "home", "heart",
         "lord", "king", "high", "now", "thee", "good", "free", "way", "word", "life", "true")


class FestivalError(Exception):
    """Festival is missing or failed."""


def find_text2wave() -> str:
    """Path of Festival's ``text2wave``."""
    binary = shutil.which("text2wave")
    if binary is None:
        raise FestivalError("Festival's text2wave not found on PATH; install it with "
                            "'apt-get install festival festvox-kallpc16k'")
    return binary


def note_name(key: int) -> str:
    """Festival's name for MIDI ``key`` (60 = C4)."""
    return f"{NOTE_NAMES[key % 12]}{key // 12 - 1}"


def singing_xml(note_on_s: np.ndarray, note_off_s: np.ndarray, keys: np.ndarray, words: list[str]) -> str:
    """Festival's SINGING score for one voice: notes ``(n,)`` on/off in s, MIDI ``keys`` and one word
    each, written an octave up and at 1 beat per ``TIME_SCALE`` s so that it sounds as given."""
    lines = ['<?xml version="1.0"?>',
             '<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" "Singing.v0_1.dtd" []>',
             '<SINGING BPM="60">']
    time = 0.0
    for on, off, key, word in zip(note_on_s, note_off_s, keys, words, strict=True):
        if on > time:
            lines.append(f'<REST BEATS="{(on - time) / TIME_SCALE:.4f}"></REST>')
        lines.append(f'<DURATION BEATS="{(off - on) / TIME_SCALE:.4f}"><PITCH NOTE="{note_name(int(key) + 12)}">'
                     f'{word}</PITCH></DURATION>')
        time = off
    lines.append("</SINGING>")
    return "\n".join(lines) + "\n"


def octaves_down(keys: np.ndarray) -> int:
    """Whole octaves a line of MIDI ``keys`` is sung lower so that its top stays at or below ``MAX_HZ``."""
    top_hz = 440.0 * 2.0 ** ((float(np.max(keys)) - 69) / 12)
    return max(0, int(np.ceil(np.log2(top_hz / MAX_HZ))))


def render_festival(note_on_s: np.ndarray, note_off_s: np.ndarray, keys: np.ndarray, rng: np.random.Generator,
                    text2wave: str, sample_rate: int) -> np.ndarray:
    """Festival sings the notes, ``octaves_down(keys)`` octaves lower, with words drawn by ``rng``;
    returns mono float32 ``(n_samples,)`` at ``sample_rate`` (Festival's voice is 16 kHz; another
    rate is refused)."""
    words = [WORDS[i] for i in rng.integers(len(WORDS), size=len(keys))]
    keys = np.asarray(keys) - 12 * octaves_down(keys)
    with tempfile.TemporaryDirectory(prefix="sfgraph-festival-") as workdir:
        score = Path(workdir) / "voice.xml"
        wav = Path(workdir) / "voice.wav"
        score.write_text(singing_xml(note_on_s, note_off_s, keys, words))
        result = subprocess.run([text2wave, "-mode", "singing", str(score), "-o", str(wav)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wav.is_file():
            raise FestivalError(f"text2wave failed (exit {result.returncode}): "
                                f"{result.stderr.strip() or result.stdout.strip()}")
        audio, rate = read_mono(wav)
    if rate != sample_rate:
        raise FestivalError(f"Festival sang at {rate} Hz, not {sample_rate} Hz: install festvox-kallpc16k")
    return audio.astype(np.float32)


def keep_f0_near_score(measured_hz: np.ndarray, score_hz: np.ndarray,
                       tolerance_cents: float = SCORE_TOLERANCE_CENTS) -> np.ndarray:
    """``measured_hz`` where it is within ``tolerance_cents`` of ``score_hz`` (same shape, Hz,
    0 = unvoiced), else 0."""
    both = (measured_hz > 0) & (score_hz > 0)
    cents = 1200 * np.abs(np.log2(np.where(both, measured_hz, 1.0) / np.where(both, score_hz, 1.0)))
    return np.where(both & (cents <= tolerance_cents), measured_hz, 0.0)
