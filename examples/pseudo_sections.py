"""Pseudo-sections of real voices: each part of a quartet dataset sung by a "section".

    python examples/pseudo_sections.py QUARTET_DATASET OUT [--steady]

Every part of every item becomes its singer plus copies of them (an item is written twice,
``<item>_h0`` and ``_h1``, with other draws), each copy read at its own time-varying rate:
a constant detune of ±3-20 cents, a slow random drift (±10 cents) and an own vibrato (4.5-6.5
Hz, 10-25 cents deep); delayed 10-60 ms, 0 to -6 dB (seed 1414, three copies per part).
``--steady``: constant detune only, delays of 10-40 ms, two or three copies per part
(seed 14; items ``_s0``, ``_s1``). The F0 files stay the original singer's, as with a real
choir whose F0 was tracked on one singer per part; the mixture is the sum of the parts,
scaled to peak at 0.9. The README's "Choir sections" results use ``../shared/real_dev``
(three 4-s real quartets, which the project does not ship): the output stays outside the
repository like its source.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d
from scipy.signal import resample

from sfgraph.grid import voice_order


def steady_copy(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    cents = rng.uniform(3, 20) * rng.choice([-1, 1])
    y = resample(x, int(round(x.size / 2 ** (cents / 1200))))  # played at the same rate: detuned
    delay = int(rng.uniform(0.010, 0.040) * rate)
    out = np.zeros(x.size)
    length = min(x.size - delay, y.size)
    out[delay:delay + length] = y[:length]
    return 10 ** (rng.uniform(-6, 0) / 20) * out


def moving_copy(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    n = x.size
    t = np.arange(n) / rate
    detune = rng.uniform(3, 20) * rng.choice([-1, 1])
    drift = gaussian_filter1d(rng.standard_normal(n // 160 + 1), 30)
    drift = np.interp(np.arange(n), np.arange(drift.size) * 160, 10 * drift / (np.abs(drift).max() + 1e-9))
    vibrato = rng.uniform(10, 25) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t + rng.uniform(0, 2 * np.pi))
    position = np.cumsum(2 ** ((detune + drift + vibrato) / 1200)) - 1
    read = np.where(position < n - 1, CubicSpline(np.arange(n), x)(np.minimum(position, n - 1)), 0.0)
    delay = int(rng.uniform(0.010, 0.060) * rate)
    out = np.zeros(n)
    out[delay:] = read[:n - delay]
    return 10 ** (rng.uniform(-6, 0) / 20) * out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steady", action="store_true", help="constant detune, no drift or own vibrato")
    args = parser.parse_args()
    rng = np.random.default_rng(14 if args.steady else 1414)
    suffix = "s" if args.steady else "h"
    for draw in range(2):
        for item in sorted(p for p in args.dataset.iterdir() if (p / "mix.wav").exists()):
            out = args.out / f"{item.name}_{suffix}{draw}"
            (out / "stems").mkdir(parents=True, exist_ok=True)
            shutil.copytree(item / "f0", out / "f0", dirs_exist_ok=True)
            voices = voice_order([p.stem for p in (item / "f0").glob("*.csv")])
            parts = []
            for voice in voices:
                x, rate = sf.read(item / "stems" / f"{voice}.wav", dtype="float64")
                copies = int(rng.integers(2, 4)) if args.steady else 3
                part = x.copy()
                for _ in range(copies):
                    part += (steady_copy if args.steady else moving_copy)(x, rate, rng)
                parts.append(part)
            parts = np.stack(parts)
            parts *= 0.9 / np.abs(parts.sum(axis=0)).max()
            for voice, part in zip(voices, parts, strict=True):
                sf.write(out / "stems" / f"{voice}.wav", part.astype(np.float32), rate, subtype="FLOAT")
            sf.write(out / "mix.wav", parts.astype(np.float32).sum(axis=0), rate, subtype="FLOAT")
    print(f"wrote {len(list(args.out.iterdir()))} items to {args.out}")


if __name__ == "__main__":
    main()
