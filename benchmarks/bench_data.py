"""Time the data pipeline end to end and print the baseline comparison.

    python benchmarks/bench_data.py [WORKDIR] [--program choir|solo] [--count N] [--seconds S]

Generates N Bach items of S seconds (default 10 x 20 s, the issue's target of
under 5 minutes), runs the oracle (magnitude and power masks), NMF and mixture
baselines, and scores them with ``eval``; prints the wall time of every step
and the comparison table. WORKDIR (default: a temporary folder) keeps the data,
estimates and reports. Needs fluidsynth and a GM soundfont.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sfgraph.cli import main as run


def timed(label: str, argv: list[str]) -> float:
    started = time.perf_counter()
    status = run(argv)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{label} failed with exit status {status}")
    print(f"[time] {label}: {elapsed:.1f} s", flush=True)
    return elapsed


def bench(workdir: Path, program: str, count: int, seconds: float) -> None:
    dataset = workdir / "bach"
    estimates = workdir / "estimates"
    timed(
        f"data bach {count} x {seconds:g} s ({program})",
        [
            "data",
            "bach",
            str(dataset),
            "--count",
            str(count),
            "--seconds",
            str(seconds),
            "--program",
            program,
            "--force",
            "--quiet",
        ],
    )
    timed(
        "baseline oracle (magnitude)", ["baseline", "oracle", str(dataset), "-o", str(estimates / "oracle"), "--quiet"]
    )
    timed(
        "baseline oracle (power)",
        ["baseline", "oracle", str(dataset), "-o", str(estimates / "oracle-power"), "--mask", "power", "--quiet"],
    )
    timed("baseline nmf", ["baseline", "nmf", str(dataset), "-o", str(estimates / "nmf"), "--quiet"])
    timed("baseline mixture", ["baseline", "mixture", str(dataset), "-o", str(estimates / "mixture"), "--quiet"])
    methods = [f"--estimates={name}={estimates / name}" for name in ("oracle", "oracle-power", "nmf", "mixture")]
    timed("eval (whole items)", ["eval", str(dataset), *methods, "-o", str(workdir / "report"), "--quiet"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir", nargs="?", type=Path, default=None)
    parser.add_argument("--program", default="choir", choices=("choir", "solo"))
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    options = parser.parse_args()
    if options.workdir is None:
        with tempfile.TemporaryDirectory(prefix="sfgraph-bench-data-") as temporary:
            bench(Path(temporary), options.program, options.count, options.seconds)
    else:
        bench(options.workdir, options.program, options.count, options.seconds)
