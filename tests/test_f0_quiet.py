"""Frames where a voice is quiet within its own note read silent (sfgraph.f0.quiet), and
the f0_refine node's gate on its first separation's audio."""
import numpy as np
import pytest

from sfgraph.f0.quiet import QuietFrameGate, silence_quiet_frames
from sfgraph.f0.refine import RefineOptions, refine_f0
from sfgraph.grid import HOP_LENGTH, SAMPLE_RATE


def test_a_breath_inside_a_held_f0_reads_silent_and_the_notes_stay():
    f0 = np.stack([np.full(60, 220.0), np.full(60, 330.0)])
    level = np.full((2, 60), -20.0)
    level[0, 28:32] = -40.0   # 20 dB down: a breath between two notes
    level[1, 28:32] = -26.0   # 6 dB down: a softer passage
    gated = silence_quiet_frames(f0, level, quiet_db=12.0, reach=8)
    assert np.all(gated[0, 28:32] == 0.0)
    assert np.all(np.delete(gated[0], np.arange(28, 32)) == 220.0)
    np.testing.assert_array_equal(gated[1], f0[1])


def test_a_frame_is_compared_with_its_own_voiced_run_only():
    # a short quiet note right after a loud one, separated by one unvoiced frame: its
    # level is compared with its own frames, not the loud note's
    f0 = np.zeros((1, 40))
    f0[0, 0:20], f0[0, 21:30] = 300.0, 250.0
    level = np.full((1, 40), -100.0)
    level[0, 0:20], level[0, 21:30] = -10.0, -35.0
    gated = silence_quiet_frames(f0, level, quiet_db=12.0, reach=16)
    np.testing.assert_array_equal(gated, f0)


def test_streaming_equals_whole_however_the_tracks_are_split():
    rng = np.random.default_rng(5)
    f0 = np.where(rng.random((3, 400)) < 0.9, 200.0 + rng.random((3, 400)), 0.0)
    level = -20.0 + 15.0 * rng.standard_normal((3, 400))
    whole = silence_quiet_frames(f0, level, quiet_db=10.0, reach=6)
    assert 0 < np.sum((whole == 0) & (f0 > 0)) < 0.5 * np.sum(f0 > 0)
    gate, pieces, frame = QuietFrameGate(3, 10.0, 6), [], 0
    while frame < f0.shape[1]:
        k = int(rng.integers(0, 15))
        pieces.append(gate.push(f0[:, frame:frame + k], level[:, frame:frame + k]))
        frame += k
    pieces.append(gate.push(np.zeros((3, 6)), np.zeros((3, 6))))
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole)


def test_quiet_db_0_passes_the_f0_through():
    f0 = np.full((1, 10), 220.0)
    level = np.linspace(0.0, -90.0, 10)[None]
    np.testing.assert_array_equal(silence_quiet_frames(f0, level, quiet_db=0.0, reach=4), f0)


@pytest.mark.parametrize("quiet_db, reach, message", [(-1.0, 4, "quiet_db"), (12.0, 0, "reach")])
def test_bad_gate_settings_are_refused(quiet_db, reach, message):
    with pytest.raises(ValueError, match=message):
        QuietFrameGate(1, quiet_db, reach)


def test_refining_silences_the_frames_where_the_voices_audio_stops():
    """A voice's F0 held through 0.15 s where its audio is silent (a breath the tracker
    bridged): the refined F0 reads silent there and keeps the sung frames."""
    t = np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE
    audio = 0.3 * np.sin(2 * np.pi * 220.0 * t)
    audio[int(0.8 * SAMPLE_RATE):int(0.95 * SAMPLE_RATE)] = 0.0
    audio += 1e-4 * np.random.default_rng(0).standard_normal(audio.size)
    frames = 1 + audio.size // HOP_LENGTH
    f0 = np.full((1, frames), 220.0)
    refined = refine_f0(audio[None], f0)
    frame_times = np.arange(frames) * HOP_LENGTH / SAMPLE_RATE
    breath = (frame_times > 0.83) & (frame_times < 0.92)
    sung = ((frame_times > 0.1) & (frame_times < 0.75)) | ((frame_times > 1.0) & (frame_times < 1.9))
    assert np.all(refined[0, breath] == 0.0)
    assert np.all(refined[0, sung] > 0.0)
    np.testing.assert_array_equal(refine_f0(audio[None], f0, RefineOptions(quiet_db=0.0))[0, breath] > 0, True)


def test_a_voice_in_unison_is_not_judged_by_its_level():
    # two voices on one pitch: a first separation splits its partials between them at
    # will, so the one left quiet may well be singing
    f0 = np.full((2, 40), 262.0)
    level = np.full((2, 40), -15.0)
    level[1, 10:30] = -45.0
    np.testing.assert_array_equal(silence_quiet_frames(f0, level, quiet_db=12.0, reach=8), f0)
