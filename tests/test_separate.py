"""`sfgraph separate` with the bundled model, on held-out fixture chorales."""
from __future__ import annotations

import numpy as np

from sfgraph.cli import main
from sfgraph.evaluation.scoring import si_sdr_db
from sfgraph.data.layout import load_item

from helpers import FIXTURES, read_wav


def test_bundled_model_separates_the_fixture_well_above_the_floor(tmp_path):
    scores, floors = [], []
    for folder in sorted((FIXTURES / "bach_tiny").iterdir()):
        if not folder.is_dir():
            continue
        item = load_item(folder, require_stems=True)
        out = tmp_path / item.name
        assert main(["separate", str(folder / "mix.wav"), "--f0", str(folder / "f0"), "-o", str(out), "-q"]) == 0
        estimates = np.stack([read_wav(out / f"{voice}.wav")[0][0] for voice in item.voices])
        stems, mix = item.load_stems(), item.load_mix()
        assert estimates.shape == stems.shape
        scores.append(si_sdr_db(stems, estimates))
        floors.append(si_sdr_db(stems, np.repeat(mix[None], len(item.voices), axis=0)))
    ours, floor = float(np.mean(scores)), float(np.mean(floors))
    assert ours > floor + 12.0, (ours, floor)
    assert min(np.mean(scores, axis=0)) > 3.0  # every voice, not just the easy ones
