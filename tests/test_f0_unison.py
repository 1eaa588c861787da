"""Leaps into a unison read as a lost voice; sung unisons (by step, or together) stand."""
import numpy as np
import pytest

from sfgraph.f0.refine import RefineOptions, refine_f0
from sfgraph.f0.unison import UnisonLeapFilter, silence_unison_leaps


def semitones(hz: float, steps: float) -> float:
    return hz * 2 ** (steps / 12)


def tracks(*voices) -> np.ndarray:
    """Voices given as [(hz, frames), ...] runs → (V, frames) Hz."""
    return np.stack([np.concatenate([np.full(n, hz) for hz, n in runs]) for runs in voices])


def test_a_voice_leaping_onto_a_held_pitch_reads_silent_until_the_unison_ends():
    alto = 330.0
    f0 = tracks([(semitones(alto, 4), 10), (alto, 8), (semitones(alto, 4), 10)],  # soprano: a third down, back
                [(alto, 28)])
    out = silence_unison_leaps(f0)
    assert np.array_equal(out[1], f0[1])
    assert np.all(out[0, 10:18] == 0) and np.array_equal(out[0, :10], f0[0, :10])
    assert np.array_equal(out[0, 18:], f0[0, 18:])


def test_nan_is_no_unison():
    f0 = tracks([(semitones(330, 4), 5), (330.0, 5)], [(330.0, 10)])
    f0[0, 5] = np.nan
    out = silence_unison_leaps(f0)
    assert np.isnan(out[0, 5]) and np.all(out[0, 6:] == 0) and np.array_equal(out[1], f0[1])


@pytest.mark.parametrize("steps", [1, 2])
def test_a_voice_stepping_into_a_unison_keeps_it(steps):
    alto = 330.0
    f0 = tracks([(semitones(alto, steps), 10), (alto * 1.002, 8)], [(alto, 18)])  # 3.5 cents apart: one pitch
    assert np.array_equal(silence_unison_leaps(f0), f0)


def test_an_onset_onto_a_held_pitch_reads_silent_and_two_onsets_together_stand():
    held = tracks([(0.0, 6), (220.0, 6)], [(220.0, 12)])
    assert np.all(silence_unison_leaps(held)[0, 6:] == 0)
    together = tracks([(0.0, 6), (220.0, 6)], [(0.0, 6), (220.0, 6)])
    assert np.array_equal(silence_unison_leaps(together), together)


def test_both_voices_leaping_into_a_unison_keep_it():
    f0 = tracks([(semitones(300, 5), 8), (300.0, 8)], [(semitones(300, -5), 8), (300.0, 8)])
    assert np.array_equal(silence_unison_leaps(f0), f0)


def test_off_passes_tracks_through_and_streams_as_whole():
    rng = np.random.default_rng(3)
    # four voices hopping among few pitches: many unisons, leaps and onsets
    f0 = rng.choice([0.0, 196.0, 220.0, 247.0, 330.0], size=(4, 400)).repeat(3, axis=1)
    assert np.array_equal(silence_unison_leaps(f0, leap_cents=0), f0)
    whole = silence_unison_leaps(f0)
    assert not np.array_equal(whole, f0)
    stream = UnisonLeapFilter(4)
    cuts = [0, 1, 2, 50, 51, 700, 1200]
    parts = [stream.push(f0[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    assert np.array_equal(np.concatenate(parts, axis=1), whole)


def test_refinement_applies_it_to_the_refined_pitch():
    """Two separated voices sounding one 330-Hz note: the F0 that leapt onto it is silenced."""
    t = np.arange(16000) / 16000
    note = sum(np.sin(2 * np.pi * 330 * h * t) / h for h in range(1, 6))
    f0 = tracks([(semitones(330, 5), 20), (330.0, 43)], [(330.0, 63)])
    refined = refine_f0(np.stack([note, note]), f0)
    assert np.all(refined[0, 20:] == 0) and np.all(refined[1] > 0)
    kept = refine_f0(np.stack([note, note]), f0, RefineOptions(unison_leap_cents=0))
    assert np.all(kept[0, 20:] > 0)


def test_wrong_voice_count_and_a_leap_shorter_than_a_semitone_are_refused():
    with pytest.raises(ValueError, match="expected 4 voices, got 3"):
        UnisonLeapFilter(4).push(np.zeros((3, 5)))
    for leap in (-5, 50):
        with pytest.raises(ValueError, match=f"0 \\(off\\) or at least 100 cents .* got {leap}"):
            UnisonLeapFilter(4, leap)
        with pytest.raises(ValueError, match="at least 100 cents"):
            RefineOptions(unison_leap_cents=leap).check()


def test_the_f0_command_names_its_flag_for_a_short_leap(tmp_path, capsys):
    from sfgraph.cli import main

    assert main(["f0", str(tmp_path / "not_read.wav"), "-o", str(tmp_path / "f0"), "--method", "multif0",
                 "--unison-leap-cents", "50"]) == 2
    assert "--unison-leap-cents must be 0 (off) or at least 100 cents" in capsys.readouterr().err
