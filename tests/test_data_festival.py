"""Festival's singing voice in the Bach generator: words, timing, octave and measured F0."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_data_layout import spectral_f0_errors_cents

from sfgraph.data import bach, festival
from sfgraph.cli import main
from sfgraph.data.layout import load_dataset

needs_festival = pytest.mark.skipif(
    shutil.which("text2wave") is None or shutil.which("fluidsynth") is None,
    reason="needs Festival and fluidsynth (apt-get install festival festvox-kallpc16k fluidsynth)")


def test_the_score_is_written_an_octave_up_and_stretched_to_festivals_time():
    xml = festival.singing_xml(np.array([0.5, 1.5]), np.array([1.5, 2.0]), np.array([57, 60]), ["la", "sing"])
    assert '<REST BEATS="0.6006">' in xml  # 0.5 s / TIME_SCALE
    assert '<PITCH NOTE="A4">la</PITCH>' in xml and '<PITCH NOTE="C5">sing</PITCH>' in xml  # keys 57, 60 + 12
    assert festival.octaves_down(np.array([60, 67])) == 0 and festival.octaves_down(np.array([67, 74])) == 1


def test_f0_that_leaves_the_score_reads_unvoiced():
    measured = np.array([220.0, 110.0, 0.0, 230.0, 440.0])
    score = np.array([220.0, 220.0, 220.0, 220.0, 0.0])
    np.testing.assert_array_equal(festival.keep_f0_near_score(measured, score), [220.0, 0.0, 0.0, 230.0, 0.0])


def test_festival_needs_an_f0_tracker(tmp_path):
    with pytest.raises(bach.GeneratorError, match="F0 tracker"):
        bach.generate_bach(tmp_path, bach.BachOptions(count=1, seconds=2.0, soundfonts=(bach.FESTIVAL,)),
                           progress=False)


@needs_festival
def test_festival_sings_each_voice_at_the_measured_f0(tmp_path):
    """Festival sings real words; its F0 is measured (CREPE) and kept where it agrees with
    the score: most of what the score sings keeps an F0, and that F0 is what is heard."""
    arguments = ["--count", "1", "--seconds", "4", "--soundfont", "festival", "--per-chorale", "1", "--seed", "3",
                 "--quiet"]
    assert main(["data", "bach", str(tmp_path / "sung"), *arguments]) == 0
    record = json.loads((tmp_path / "sung" / "generation.json").read_text())
    assert record["patches"] == [{"soundfont": "festival", "soundfont_bytes": None, "program": 0,
                                  "tuning_cents": {}}]
    item = load_dataset(tmp_path / "sung", require_stems=True, sample_rate=16000)[0]
    assert {patch["soundfont"] for patch in item.meta["patches"].values()} == {"festival"}
    stems = item.load_stems()
    np.testing.assert_allclose(stems.sum(axis=0), item.load_mix(), atol=1e-6, rtol=0)
    for voice_index, voice in enumerate(item.voices):
        f0 = item.f0_hz[voice_index]
        assert np.mean(f0 > 0) > 0.6, voice
        errors = spectral_f0_errors_cents(stems[voice_index], f0)
        assert np.median(np.abs(errors)) < 20, voice
