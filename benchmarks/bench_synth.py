"""Voice synthesis speed: Numba streaming synth and torch training synth, against plain numpy.

    python benchmarks/bench_synth.py [--quick] [--seconds 30] [--batch 16] [--batch-seconds 4]

Prints one table:
* Numba, 4 SATB voices: real-time factor (audio seconds per wall second) of the
  offline call and of live-style streaming (push one frame, render one hop);
* torch, a training batch (default 16 x 4 s x 4 voices, float32, CPU): forward
  and forward+backward wall time;
* each against a straightforward numpy implementation of the same maths run
  in this process (per-harmonic ``np.sin``, ``scipy.signal.lfilter`` per frame):
  "x numpy" is how many times faster than that reference.
Times are the best of a few repeats; the first (compiling) call is not timed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.signal
import torch

from sfgraph.dsp.voice_config import VoiceConfig, noise_fir_basis, synthesis_window
from sfgraph.dsp.voice_controls import VoiceControls
from sfgraph.dsp.voice_numba import StreamingVoiceSynth, synthesize_voices_numba
from sfgraph.dsp.voice_torch import synthesize_voices

CONFIG = VoiceConfig()


def satb_tracks(n_frames: int, seed: int) -> dict[str, np.ndarray]:
    """Four voices (soprano to bass) with vibrato, swells, short gaps and moving formants."""
    rng = np.random.default_rng(seed)
    time_s = np.arange(n_frames) * CONFIG.hop / CONFIG.sample_rate
    base_hz = np.array([392.0, 262.0, 196.0, 98.0])[:, None]
    f0 = base_hz * 2.0 ** (0.5 / 12.0 * np.sin(2.0 * np.pi * 5.5 * time_s + rng.uniform(0, 6, (4, 1))))
    voiced = (np.sin(2.0 * np.pi * 0.4 * time_s + rng.uniform(0, 6, (4, 1))) > -0.9)
    increments = rng.uniform(0.4, 1.2, (4, 1, CONFIG.n_lsf_increments)) * (
        1.0 + 0.2 * np.sin(2.0 * np.pi * 1.3 * time_s)[None, :, None]
    )
    return {
        "f0_hz": np.where(voiced, f0, 0.0),
        "amplitude": (0.5 + 0.4 * np.sin(2.0 * np.pi * 0.7 * time_s)) * voiced,
        "noise_gain": np.full((4, n_frames), 0.02),
        "lsf_increments": increments,
        "noise_bands": np.linspace(1.0, 0.1, CONFIG.n_noise_bands)[None, :].repeat(4, axis=0),
        "white_noise": rng.uniform(-1.0, 1.0, (4, n_frames * CONFIG.hop)),
    }


def numpy_reference(tracks: dict[str, np.ndarray], config: VoiceConfig = CONFIG) -> np.ndarray:
    """The voice model written plainly in numpy/scipy, one voice at a time.

    Same maths as the torch and Numba synthesizers (see ``voice_torch``):
    per-sample F0/gain ramps, running-sum phase, a ``np.sin`` per harmonic,
    FIR-shaped noise and per-frame zero-state ``lfilter`` with Hann overlap-add.
    Returns ``(V, T*hop)`` float64.
    """
    hop = config.hop
    n_voices, n_frames = tracks["f0_hz"].shape
    ramp = np.arange(hop) / hop
    window = synthesis_window(config)
    out = np.zeros((n_voices, n_frames * hop))
    for voice in range(n_voices):
        f0 = np.maximum(tracks["f0_hz"][voice], 0.0)
        voiced = f0 > 0
        f0_next = np.append(f0[1:], f0[-1])
        f0_start = np.where(voiced, f0, f0_next)
        f0_end = np.where(np.append(voiced[1:], voiced[-1]), f0_next, f0)
        f0_track = (f0_start[:, None] + (f0_end - f0_start)[:, None] * ramp).ravel()
        phase = np.concatenate(([0.0], np.cumsum(f0_track[:-1]) / config.sample_rate))

        counts = np.array([np.sum(np.arange(1, config.n_harmonics + 1) < config.nyquist / f) if f > 0 else 0 for f in f0])
        gain = np.where(counts > 0, tracks["amplitude"][voice] / np.maximum(counts, 1), 0.0)
        gain_track = (gain[:, None] + (np.append(gain[1:], gain[-1]) - gain)[:, None] * ramp).ravel()
        harmonic = np.zeros_like(f0_track)
        safe_f0 = np.where(f0_track > 0, f0_track, 1.0)
        for k in range(1, config.n_harmonics + 1):
            weight = np.where(
                (f0_track > 0) & (k < config.nyquist / safe_f0),
                np.minimum(1.0, config.tilt_corner_hz / (k * safe_f0)),
                0.0,
            )
            harmonic += weight * np.sin(2.0 * np.pi * k * phase)

        taps = tracks["noise_bands"][voice] @ noise_fir_basis(config)
        shaped = scipy.signal.lfilter(taps, [1.0], tracks["white_noise"][voice])
        noise_gain = tracks["noise_gain"][voice]
        noise_track = (noise_gain[:, None] + (np.append(noise_gain[1:], noise_gain[-1]) - noise_gain)[:, None] * ramp).ravel()
        excitation = gain_track * harmonic + noise_track * shaped

        padded = np.concatenate((np.zeros(hop), excitation, np.zeros(hop)))
        increments = tracks["lsf_increments"][voice]
        for frame in range(n_frames + 1):
            lpc = _lpc_from_increments(increments[min(frame, n_frames - 1)], config)
            filtered = scipy.signal.lfilter([1.0], lpc, padded[frame * hop : frame * hop + config.frame_size])
            start = (frame - 1) * hop
            lo, hi = max(start, 0), min(start + config.frame_size, n_frames * hop)
            out[voice, lo:hi] += (filtered * window)[lo - start : hi - start]
    return out


def _lpc_from_increments(increments: np.ndarray, config: VoiceConfig) -> np.ndarray:
    spread = np.pi - increments.size * config.min_lsf_gap
    lsf = np.cumsum(config.min_lsf_gap + increments * spread / increments.sum())[:-1]
    p_poly, q_poly = np.array([1.0, 1.0]), np.array([1.0, -1.0])
    for i, w in enumerate(lsf):
        section = np.array([1.0, -2.0 * np.cos(w), 1.0])
        if i % 2 == 0:
            p_poly = np.convolve(p_poly, section)
        else:
            q_poly = np.convolve(q_poly, section)
    return 0.5 * (p_poly + q_poly)[: config.lpc_order + 1]


def synthesize_offline(tracks: dict[str, np.ndarray]) -> np.ndarray:
    """The tracks through the Numba synthesizer in one push, ``(V, T*hop)``."""
    controls = VoiceControls(*(tracks[name] for name in VoiceControls._fields))
    return synthesize_voices_numba(tracks["f0_hz"], controls, tracks.get("white_noise"))


def best_time(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def stream_hop_by_hop(tracks: dict[str, np.ndarray]) -> None:
    synth = StreamingVoiceSynth(4, tracks["noise_bands"])
    hop = CONFIG.hop
    for frame in range(tracks["f0_hz"].shape[1]):
        one = slice(frame, frame + 1)
        synth.push(
            tracks["f0_hz"][:, one], tracks["amplitude"][:, one], tracks["noise_gain"][:, one],
            tracks["lsf_increments"][:, one], tracks["white_noise"][:, frame * hop : (frame + 1) * hop],
        )
        synth.render()
    synth.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short signals, small batch, fewer repeats")
    parser.add_argument("--seconds", type=float, default=30.0, help="audio length of the Numba runs")
    parser.add_argument("--batch", type=int, default=16, help="torch batch size")
    parser.add_argument("--batch-seconds", type=float, default=4.0, help="torch clip length in seconds")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.batch, args.batch_seconds = 5.0, 2, 2.0
    repeats = 2 if args.quick else 3
    frames_per_second = CONFIG.sample_rate / CONFIG.hop

    tracks = satb_tracks(int(args.seconds * frames_per_second), seed=0)
    synthesize_offline(satb_tracks(20, seed=1))  # compile or load the kernels
    numpy_seconds = min(args.seconds, 10.0)
    numpy_tracks = satb_tracks(int(numpy_seconds * frames_per_second), seed=0)
    numpy_audio = numpy_reference(numpy_tracks)
    numpy_rtf = numpy_seconds / best_time(lambda: numpy_reference(numpy_tracks), 1)
    numba_audio = synthesize_offline(numpy_tracks)
    reference_error = np.max(
        np.sqrt(np.mean((numpy_audio - numba_audio) ** 2, axis=1) / np.mean(numba_audio**2, axis=1))
    )

    rows = []
    for label, run in (
        ("offline (push all, render all)", lambda: synthesize_offline(tracks)),
        ("streaming, 1 frame / 256 samples", lambda: stream_hop_by_hop(tracks)),
    ):
        rtf = args.seconds / best_time(run, repeats)
        rows.append((f"numba 4 voices, {label}", f"{args.seconds:g} s", f"{rtf:,.0f}x real time", f"{rtf / numpy_rtf:,.0f}x"))
    rows.append(("numpy reference, 4 voices", f"{numpy_seconds:g} s", f"{numpy_rtf:,.1f}x real time", "1x"))

    n_frames = int(args.batch_seconds * frames_per_second)
    batch_tracks = [satb_tracks(n_frames, seed=10 + item) for item in range(args.batch)]

    def batch_tensor(name):
        return torch.tensor(np.stack([t[name] for t in batch_tracks]), dtype=torch.float32)

    f0 = batch_tensor("f0_hz")
    controls = VoiceControls(*(batch_tensor(name).requires_grad_() for name in VoiceControls._fields[:3]),
                             torch.tensor(batch_tracks[0]["noise_bands"], dtype=torch.float32, requires_grad=True))
    white = batch_tensor("white_noise")

    def forward():
        with torch.no_grad():
            synthesize_voices(f0, controls, white_noise=white)

    def forward_backward():
        synthesize_voices(f0, controls, white_noise=white).square().mean().backward()

    numpy_batch_time = best_time(lambda: [numpy_reference(t) for t in batch_tracks], 1)
    shape = f"{args.batch} x {args.batch_seconds:g} s x 4 voices"
    forward_backward()  # first call allocates; not timed
    for label, run in (("forward", forward), ("forward + backward", forward_backward)):
        seconds = best_time(run, repeats)
        rows.append((f"torch {label} (float32, {torch.get_num_threads()} threads)", shape, f"{seconds:.2f} s", f"{numpy_batch_time / seconds:,.1f}x"))
    rows.append(("numpy reference, forward", shape, f"{numpy_batch_time:.2f} s", "1x"))

    widths = [max(len(row[i]) for row in rows + [HEADER]) for i in range(4)]
    for row in [HEADER, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    print(f"\nnumpy reference vs numba output: max relative RMS difference {reference_error:.1e}")


HEADER = ("what", "signal", "speed", "x numpy")

if __name__ == "__main__":
    main()
