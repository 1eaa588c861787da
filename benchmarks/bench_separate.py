"""Whole-process speed of ``sfgraph separate``, ``render``, ``train`` and ``separate --adapt``,
alone and beside CPU hogs.

    python benchmarks/bench_separate.py [--lengths 1 60 600] [--hogs 1 2] [--train-steps 4]
                                        [--adapt-steps 4] [--python PYTHON] [--json results.json]
                                        [--baseline-options "--low-n-fft 0"]

Mixtures are the bundled demo quartet (10 s, with its F0 files) tiled to each length.
Each ``sfgraph separate`` runs as its own process (start-up, model load and Numba's
cached kernels included) after one warm-up run; the table gives wall seconds, the
real-time factor (audio seconds per wall second), CPU seconds (what a busy machine
changes least) and the process's peak memory; with ``--baseline-options``, each length
runs again with those options right after, and the table gives the ratios (e.g. the
two-resolution masks against one STFT: ``--baseline-options "--low-n-fft 0"``).

Then four jobs run alone and beside each count of ``--hogs`` busy processes (each in a
session of its own, as another user's job; default 1 and 2, i.e. one per core here), and
the table gives each loaded time as a ratio to the time alone: ``separate`` on 60 s and
``render choir_fx`` on 60 s (whole process, wall seconds), training steps of the bundled
recipe (width 192, batches of 8 four-second segments, on three 20-s items tiled from the
demo clip; seconds per step by the training log's clock) and ``separate --adapt`` on a
20-s item (seconds per adaptation step, validations included, as its model.json records).

``--python`` runs another interpreter or checkout (e.g. ``"env PYTHONPATH=OLD_CHECKOUT
python"``, from outside this folder) for before/after numbers. Other processes shift
every number, the ratios least: the cores they kept busy are printed before the run and
beside each loaded job (the hogs' own share left out).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sfgraph.data.audio import read_mono, write_wav
from sfgraph.data.layout import read_f0_csv, write_f0_csv
from sfgraph.resources import resolve_resource
from sfgraph.threads import CpuShare

DEMO = "sfgraph:assets/demo/quartet"


def tiled_item(seconds: float, folder: Path, offset: float = 0.0) -> Path:
    """The demo clip from ``offset`` s, repeated to ``seconds``: ``folder/mix.wav`` and ``folder/f0/``."""
    demo = resolve_resource(DEMO)
    mix, rate = read_mono(demo / "mix.wav")
    period = mix.size / rate
    start = int(offset * rate) % mix.size
    mix = np.roll(mix, -start)
    repeats = int(np.ceil(seconds / period))
    (folder / "f0").mkdir(parents=True, exist_ok=True)
    write_wav(folder / "mix.wav", np.tile(mix, repeats)[:int(round(seconds * rate))], rate)
    for path in sorted((demo / "f0").glob("*.csv")):
        times, f0 = read_f0_csv(path)
        inside = times < period
        times, f0 = times[inside], f0[inside]
        times = (times - start / rate) % period
        order = np.argsort(times)
        times, f0 = times[order], f0[order]
        all_times = np.concatenate([times + k * period for k in range(repeats)])
        keep = all_times < seconds
        write_f0_csv(folder / "f0" / path.name, all_times[keep], np.tile(f0, repeats)[keep])
    return folder


def demo_dataset(folder: Path) -> Path:
    """A training set of three 20-s items tiled from the demo clip, each from its own offset."""
    for index in range(3):
        tiled_item(20.0, folder / f"item{index}", offset=3.0 * index)
    return folder


def timed(command: list[str]) -> tuple[float, float, float]:
    """Run ``command``; (wall seconds, CPU seconds, peak resident memory in MB) of that process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")
    process.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def separate(python: list[str], item: Path, output: Path, options: tuple[str, ...] = ()) -> tuple[float, float, float]:
    return timed([*python, "-m", "sfgraph", "separate", str(item / "mix.wav"), "--f0", str(item / "f0"),
                  "-o", str(output), "-q", *options])


def render_choir_fx(python: list[str], item: Path, output: Path) -> float:
    """Wall seconds of ``sfgraph render choir_fx`` on ``item`` (the mixture read at the graph's 48 kHz)."""
    return timed([*python, "-m", "sfgraph", "render", "choir_fx", "-q", "-o", str(output),
                  "-p", f"mic.file={item / 'mix.wav'}", "-p", f"f0.dir={item / 'f0'}"])[0]


def train_seconds_per_step(python: list[str], dataset: Path, output: Path, steps: int) -> float:
    """Seconds per step of the bundled recipe's training (the log's clock, loading excluded)."""
    timed([*python, "-m", "sfgraph", "train", str(dataset), "-o", str(output), "--force", "--steps", str(steps),
           "--eval-every", str(steps), "--hidden", "192", "--batch-size", "8", "-q"])
    last = (output / "log.csv").read_text().splitlines()[-1].split(",")
    return float(last[4]) / steps


def adapt_seconds_per_step(python: list[str], item: Path, output: Path, steps: int) -> float:
    """Seconds per step of ``separate --adapt`` (its validations included), as model.json records them."""
    timed([*python, "-m", "sfgraph", "separate", str(item / "mix.wav"), "--f0", str(item / "f0"), "-o", str(output),
           "-q", "--adapt", "10", "--adapt-steps", str(steps)])
    adapted = json.loads((output / "model" / "model.json").read_text())["training"]["adapted"]
    return adapted["seconds"] / adapted["steps"]


def _spin() -> None:
    os.setsid()  # a session of its own, as another user's job: Linux shares the CPU between sessions first
    while True:
        pass


class Hogs:
    """``count`` processes spinning on the CPU while inside the block."""

    def __init__(self, count: int):
        self.count = count

    def __enter__(self):
        self.processes = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(self.count)]
        for process in self.processes:
            process.start()
        time.sleep(0.5)
        return self

    def cpu_seconds(self) -> float:
        """CPU seconds the hogs have used so far (from /proc)."""
        ticks = 0
        for process in self.processes:
            with open(f"/proc/{process.pid}/stat") as stat:
                ticks += sum(int(v) for v in stat.read().rsplit(")", 1)[1].split()[11:13])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join()


def with_others_busy(job, hogs: Hogs | None = None) -> tuple[float, float]:
    """(the job's result, cores that processes other than the job and the hogs kept busy meanwhile)."""
    hogs_before = hogs.cpu_seconds() if hogs else 0.0
    share, started, before = CpuShare(), time.monotonic(), os.times()
    result = job()
    after, wall = os.times(), time.monotonic() - started
    job_seconds = after.children_user + after.children_system - before.children_user - before.children_system
    hog_seconds = hogs.cpu_seconds() - hogs_before if hogs else 0.0
    return result, max(0.0, (share.others_busy() or 0.0) - (job_seconds + hog_seconds) / wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[1, 60, 600], help="mixture seconds")
    parser.add_argument("--hogs", type=int, nargs="*", default=[1, 2], help="counts of busy processes beside the "
                                                                            "loaded runs (none: no loaded runs)")
    parser.add_argument("--train-steps", type=int, default=4, help="training steps per measurement (0: none)")
    parser.add_argument("--adapt-steps", type=int, default=4, help="adaptation steps per measurement (0: none)")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs sfgraph (split on spaces)")
    parser.add_argument("--baseline-options", help="also run each separate with these options (split on spaces, "
                                                   "e.g. '--low-n-fft 0'), right after it, and give the ratios")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    python = args.python.split()
    share = CpuShare()
    time.sleep(1.0)
    results: dict = {"others_busy_cores": share.others_busy(), "cores": os.cpu_count(),
                     "load_average": os.getloadavg()}
    print(f"machine: {results['cores']} cores, {results['others_busy_cores']:.2f} kept busy by other processes "
          "over 1 s before the run, "
          f"load average {results['load_average'][0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        items = {seconds: tiled_item(seconds, tmp / f"mix_{seconds:g}s") for seconds in args.lengths}
        separate(python, items[min(args.lengths)], tmp / "warm-up")
        baseline = tuple(args.baseline_options.split()) if args.baseline_options else None
        print(f"{'separate':>12} {'wall s':>8} {'x real time':>12} {'CPU s':>8} {'peak MB':>8}"
              + ("" if baseline is None else f"  against {' '.join(baseline)}: wall, CPU, peak memory ratios"))
        results["separate"] = {}
        for seconds, item in items.items():
            wall, cpu, peak = separate(python, item, tmp / "out")
            results["separate"][seconds] = {"wall_s": wall, "real_time_factor": seconds / wall, "cpu_s": cpu,
                                            "peak_mb": peak}
            line = f"{seconds:>11g}s {wall:8.2f} {seconds / wall:12.1f} {cpu:8.2f} {peak:8.0f}"
            if baseline is not None:
                base_wall, base_cpu, base_peak = separate(python, item, tmp / "out", baseline)
                results["separate"][seconds]["baseline"] = {"options": list(baseline), "wall_s": base_wall,
                                                            "cpu_s": base_cpu, "peak_mb": base_peak}
                line += f"  {wall / base_wall:5.2f}x {cpu / base_cpu:5.2f}x {peak / base_peak:5.2f}x"
            print(line)
        if args.hogs:  # the loaded runs
            minute = items[60.0] if 60.0 in items else tiled_item(60.0, tmp / "mix_60s")
            jobs = {"separate 60 s, s": lambda: separate(python, minute, tmp / "out")[0],
                    "render choir_fx 60 s, s": lambda: render_choir_fx(python, minute, tmp / "out")}
            if args.train_steps:
                dataset = demo_dataset(tmp / "train")
                jobs["train, s/step"] = lambda: train_seconds_per_step(python, dataset, tmp / "model", args.train_steps)
            if args.adapt_steps:
                recording = tiled_item(20.0, tmp / "recording")
                jobs["--adapt, s/step"] = lambda: adapt_seconds_per_step(python, recording, tmp / "adapted",
                                                                         args.adapt_steps)
            header = "".join(f" {f'{n} hog(s)':>10} {'ratio':>6} {'others':>6}" for n in args.hogs)
            print(f"\n{'job':>24} {'alone':>8} {'others':>6}{header}   (others: cores other processes kept busy)")
            results["under_load"] = {}
            for name, job in jobs.items():
                alone, others_alone = with_others_busy(job)
                row = {"alone": alone, "others_busy_alone": others_alone}
                line = f"{name:>24} {alone:8.2f} {others_alone:6.2f}"
                for hogs in args.hogs:
                    with Hogs(hogs) as running:
                        loaded, others_loaded = with_others_busy(job, running)
                    row[f"hogs_{hogs}"] = {"time": loaded, "ratio": loaded / alone, "others_busy": others_loaded}
                    line += f" {loaded:10.2f} {loaded / alone:6.2f} {others_loaded:6.2f}"
                results["under_load"][name] = row
                print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
