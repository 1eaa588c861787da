"""How fast each F0 method runs on this machine, as real-time factors (audio seconds per wall second).

    python benchmarks/bench_f0.py [--seconds S] [--full-seconds S] [--threads N]

- CREPE ``tiny`` and ``full``, per voice, offline (whole signal) and streaming (one
  256-sample hop per call for four voices, as a live graph with small blocks calls it);
- multi-F0 from the mixture (salience network + voice tracker, the bundled model),
  four voices at once, offline (with basic-pitch's salience, the default, and without,
  as a ratio) and streaming (one 256-sample hop per call) in both
  modes, with the CPU share of one core the live budget counts and the network's part;
- score alignment (harmonic rendering, chroma, DTW) of a four-voice Bach chorale to a
  recording of it, excluding the one-off Numba compile (timed apart).

The signals are generated (harmonic voices with vibrato), so nothing is downloaded.
Figures above 1 are faster than real time.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

RATE = 16000


def voices_audio(seconds: float, keys=(72, 65, 57, 48)) -> np.ndarray:
    """(len(keys), samples) harmonic voices with vibrato at 16 kHz."""
    t = np.arange(int(seconds * RATE)) / RATE
    rows = []
    for key in keys:
        f0 = 440 * 2 ** ((key - 69) / 12 + 0.25 / 12 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        rows.append(sum(0.3 / k * np.sin(k * phase) for k in range(1, 8)))
    return np.array(rows, dtype=np.float32)


def factor(audio_seconds: float, wall_seconds: float) -> str:
    return f"{audio_seconds / wall_seconds:7.2f}x real time"


def bench_crepe(capacity: str, seconds: float, stream_seconds: float, threads: int) -> None:
    from sfgraph.f0.crepe import CrepeTracker, TrackerOptions, track_f0

    options = TrackerOptions(capacity=capacity, threads=threads)
    one_voice = voices_audio(seconds, keys=(60,))
    track_f0(one_voice[:, :RATE // 4], options)  # loads the weights and warms the network up
    started = time.perf_counter()
    track_f0(one_voice, options)
    wall = time.perf_counter() - started
    print(f"crepe {capacity:4s} offline, 1 voice, {seconds:g} s: {wall:6.2f} s  {factor(seconds, wall)} per voice")

    four = voices_audio(stream_seconds)
    tracker = CrepeTracker(4, options)
    tracker.warm_up()
    hops = four.shape[1] // 256
    started = time.perf_counter()
    for hop in range(hops):
        tracker.push(four[:, hop * 256:(hop + 1) * 256])
    wall = time.perf_counter() - started
    block_ms = wall / hops * 1000
    print(f"crepe {capacity:4s} streaming, 4 voices, one hop (16 ms) per call: {block_ms:6.2f} ms per call  "
          f"{factor(hops * 256 / RATE, wall)} for all four")


def bench_multif0(seconds: float, threads: int) -> None:
    from sfgraph.f0 import MULTIF0_MODEL
    from sfgraph.f0.multif0 import MultiF0Options, estimate_f0
    from sfgraph.resources import resolve_resource

    options = MultiF0Options(model=resolve_resource(MULTIF0_MODEL), threads=threads)
    mixture = voices_audio(seconds).sum(axis=0)
    walls = []
    for name, weight in (("network alone (basic_pitch 0)", 0.0), ("with basic-pitch (the default)", None)):
        weighted = replace(options, basic_pitch=weight)
        estimate_f0(mixture[:RATE], weighted)  # compiles (or loads) the Numba tracker step, loads the models
        started = time.perf_counter()
        estimate_f0(mixture, weighted)
        walls.append(time.perf_counter() - started)
        print(f"multi-F0 offline, {name}, 4 voices, {seconds:g} s: {walls[-1]:6.2f} s  "
              f"{factor(seconds, walls[-1])} for all four")
    print(f"multi-F0 offline: basic-pitch costs {walls[1] / walls[0]:.2f}x the network alone")

    for mode in ("offline", "live"):
        bench_multif0_streaming(MultiF0Options(model=options.model, mode=mode, threads=threads), mixture)


def bench_multif0_streaming(options, mixture: np.ndarray) -> None:
    """One 256-sample hop per call, as a live graph calls the tracker: wall time per call,
    the CPU time of this thread as a share of one core in real time (the live budget),
    and the network's share of it."""
    from sfgraph.f0.multif0 import MultiF0Tracker

    tracker = MultiF0Tracker(options)
    tracker.push(mixture[:RATE])  # warm-up: first calls allocate
    tracker.reset()
    hops = mixture.size // 256
    # The network's own forward passes (not the numpy/tensor conversions around them).
    network_seconds, network_started = 0.0, 0.0

    def network_starts(module, inputs):
        nonlocal network_started
        network_started = time.thread_time()

    def network_ends(module, inputs, output):
        nonlocal network_seconds
        network_seconds += time.thread_time() - network_started

    tracker.network.register_forward_pre_hook(network_starts)
    tracker.network.register_forward_hook(network_ends)
    started, cpu_started = time.perf_counter(), time.thread_time()
    for hop in range(hops):
        tracker.push(mixture[hop * 256:(hop + 1) * 256])
    wall, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
    print(f"multi-F0 {options.mode} mode streaming, one hop (16 ms) per call: {wall / hops * 1000:6.2f} ms per "
          f"call  {factor(hops * 256 / RATE, wall)}  CPU {cpu / (hops * 256 / RATE):.1%} of one core "
          f"(network {network_seconds / cpu:.0%} of it), look-ahead {tracker.lookahead_samples / 16:.0f} ms")


def bench_alignment() -> None:
    from music21 import corpus

    from sfgraph.f0.align import align_score, synthesize
    from sfgraph.f0.score import read_score

    score = read_score(corpus.getWork("bach/bwv159.5"))
    performed = score.placed(0.8, 0.85)
    # The "recording": the score played slower and later, rendered with a brighter timbre.
    t = np.arange(int((performed.end_s + 1.0) * RATE)) / RATE
    f0 = performed.f0_at(t)
    phase = 2 * np.pi * np.cumsum(f0 / RATE, axis=1)
    recording = sum(np.where((f0 > 0) & (k * f0 < RATE / 2), 0.7 ** k * np.sin(k * phase), 0.0).sum(axis=0)
                    for k in range(1, 12))
    started = time.perf_counter()
    align_score(score.placed(0, 1), recording[:RATE], RATE)  # compiles (or loads) the Numba DTW
    print(f"alignment first call (Numba compile or cache load): {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    aligned = align_score(score, recording, RATE)
    wall = time.perf_counter() - started
    errors = np.concatenate([a.note_on_s - p.note_on_s for a, p in zip(aligned.parts, performed.parts)])
    seconds = recording.size / RATE
    print(f"score alignment, 4 voices, {seconds:.1f} s recording: {wall:6.2f} s  {factor(seconds, wall)}  "
          f"(onset error median {np.median(np.abs(errors)) * 1000:.0f} ms, max {np.max(np.abs(errors)) * 1000:.0f} ms)")
    started = time.perf_counter()
    synthesize(score, score.end_s)
    print(f"  of which the harmonic rendering of the score: {time.perf_counter() - started:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per CREPE tiny run (default 10)")
    parser.add_argument("--full-seconds", type=float, default=3.0, help="audio per CREPE full run (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the CREPE network")
    args = parser.parse_args()
    bench_crepe("tiny", args.seconds, 2.0, args.threads)
    bench_crepe("full", args.full_seconds, 0.5, args.threads)
    bench_multif0(args.seconds, args.threads)
    bench_alignment()


if __name__ == "__main__":
    main()
