"""A dataset as another room would hear it: quieter, with noise, or reverberant.

    python examples/room_variants.py DATASET OUT (--gain-db DB | --snr-db DB | --reverb ROOM)

Every item of DATASET (``mix.wav``, ``stems/<voice>.wav``, ``f0/<voice>.csv``) is written to
OUT (32-bit float, each file atomically) with the same F0 files (the dry singers' F0) and

- ``--gain-db DB``: every stem and the mixture scaled by DB (negative: a quieter recording;
  a positive gain can take a peak-normalised mixture past full scale);
- ``--snr-db DB``: white noise added to the mixture, DB below the mixture's RMS (seed 7); the
  stems stay clean, so a separation is scored against the voices alone;
- ``--reverb ROOM``: each stem through pedalboard's ``Reverb`` (room size ROOM, 0-1; wet 0.3,
  dry 0.8), the mixture their sum: the references hold the room too, as a voice heard in a
  hall does, and the F0 files stay the dry voices' (a reverberant tail reads unvoiced).

The README's "The same voices in another room" figures use ``../shared/real_dev``, which the project
does not ship: the output stays outside the repository like its source.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from pedalboard import Reverb

from sfgraph.data.audio import read_mono, write_wav


def reverberant(x: np.ndarray, rate: int, room_size: float) -> np.ndarray:
    reverb = Reverb(room_size=room_size, wet_level=0.3, dry_level=0.8)
    return reverb(x[None].astype(np.float32), rate)[0].astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    change = parser.add_mutually_exclusive_group(required=True)
    change.add_argument("--gain-db", type=float, help="scale the stems and the mixture, dB")
    change.add_argument("--snr-db", type=float, help="white noise this far below the mixture's RMS, dB")
    change.add_argument("--reverb", type=float, metavar="ROOM", help="reverberate each stem (room size 0-1)")
    args = parser.parse_args()
    if args.reverb is not None and not 0 <= args.reverb <= 1:
        parser.error(f"--reverb: a room size from 0 to 1, not {args.reverb}")
    rng = np.random.default_rng(7)
    items = sorted(p for p in args.dataset.iterdir() if (p / "stems").is_dir())
    if not items:
        parser.error(f"{args.dataset}: no items with stems/")
    for item in items:
        out = args.out / item.name
        (out / "stems").mkdir(parents=True, exist_ok=True)
        shutil.copytree(item / "f0", out / "f0", dirs_exist_ok=True)
        mix = None
        for path in sorted((item / "stems").glob("*.wav")):
            stem, rate = read_mono(path)
            stem = stem.astype(np.float64)
            if args.gain_db is not None:
                stem = stem * 10 ** (args.gain_db / 20)
            if args.reverb is not None:
                stem = reverberant(stem, rate, args.reverb)
            write_wav(out / "stems" / path.name, stem, rate)
            mix = stem if mix is None else mix + stem
        if args.snr_db is not None:
            noise = rng.standard_normal(mix.size)
            mix = mix + noise * np.sqrt(np.mean(mix ** 2) / np.mean(noise ** 2)) * 10 ** (-args.snr_db / 20)
        write_wav(out / "mix.wav", mix, rate)
        print(out)


if __name__ == "__main__":
    main()
