"""Multi-F0 from the mixture alone: a pitch-salience network and a voice tracker.

For a single microphone on a whole choir. Three stages, all streaming (block by
block gives the same frames as a whole-file run):

1. **Harmonic log-frequency spectrum** (``HarmonicSpectrum``): a 2048-sample Hann
   STFT centred on frame ``t`` (sample ``t * 256``, 16 kHz), its power summed by
   triangular filters onto ``BINS`` log-frequency bins (``BINS_PER_SEMITONE`` per
   semitone from ``FMIN_HZ``) at each of the ``HARMONICS`` multiples of the bin's
   frequency, in dB (full-scale sine ≈ −6 dB). A pitch then shows as the same
   pattern across harmonic channels at one bin, which a small 2-D CNN can see.
2. **Salience network** (``SalienceNet``): convolutions over (log-frequency,
   time) giving, per frame and bin, the probability that some voice sings that
   pitch. Trained supervised on generated Bach data with the true F0s
   (``sfgraph train-f0``, ``sfgraph.f0.multif0_train``); the separator itself
   stays unsupervised. Time convolutions are unpadded so a block needs only the
   frames before it, and frame ``t`` comes out ``context // 2`` frames (4 with the
   bundled network) after it goes in. Offline, basic-pitch's contour probabilities
   (``sfgraph.f0.basic_pitch``, a network trained on real recordings) are mixed in,
   ``BASIC_PITCH_WEIGHT`` of the salience: a voice resting in a real recording then reads
   silent more often. They look 1.8 s ahead, so live mode goes without.
3. **Voice tracker** (``VoiceTracker``): salience peaks (at most ``CANDIDATES`` per
   frame, refined to a fraction of a bin) are assigned to the voices by a
   fixed-lag Viterbi over joint assignments: voices stay ordered high to low (no
   crossing; two voices may share a pitch, a unison), each voice prefers its range,
   pitch jumps and voicing changes cost, and a strong peak left unexplained costs.

Offline, on a whole recording, the voices' ranges can come from the recording itself
(``sung_range_options``, ``estimate_f0_in_sung_ranges``): a first track with the default
ranges, whose frames with every voice sounding apart show the range each voice sings; on
a long recording, a track of a salience that weighs basic-pitch's more, which seldom
hears a resting voice (``RecordingPeaks.range_fit``).

``MultiF0Tracker`` chains the three (the third as ``VoiceDecider``: the tracker, then the unison
rule); ``estimate_f0`` runs it on a whole signal;
the ``f0_multi`` node runs it in a graph. Its live mode looks 32 ms (or 16 ms) ahead
instead of 2.15 s (0.45 s without basic-pitch), at some cost in accuracy (see ``MultiF0Tracker``).
"""
from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numba
import numpy as np
import scipy.sparse
import scipy.special
import torch
from torch import nn

from sfgraph.f0 import UNISON_LEAP_CENTS
from sfgraph.f0.unison import UNISON_CENTS, UnisonLeapFilter
from sfgraph.grid import DEFAULT_VOICES, HOP_LENGTH, SAMPLE_RATE
from sfgraph.music import midi_to_hz
from sfgraph.threads import torch_threads

N_FFT = 2048  # samples (128 ms at 16 kHz): resolves the bass's low harmonics
FMIN_HZ = 55.0  # A1, bin 0
BINS_PER_SEMITONE = 3
BINS = 162  # 54 semitones: A1 (55 Hz) .. D#6 (1245 Hz)
HARMONICS = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
FLOOR_DB = -100.0  # features are dB above this, scaled to about 0..1
CANDIDATES = 5  # salience peaks kept per frame
# The network learned from mixtures peaking at -1.9 dBFS with ±12 dB level changes: on
# real_dev 20 dB quieter, 'separate --f0 auto' gave 0.98 dB instead of 5.97 (10 dB
# quieter: 5.75). So audio quieter than the bottom of that range is lifted to it
# (HarmonicSpectrum): 5.56 dB 20 dB down.
LIFT_TARGET_DBFS = -12.0
LIFT_MAX_DB = 30.0
LIFT_RELEASE_PER_FRAME = 10.0 ** (-6.0 * HOP_LENGTH / SAMPLE_RATE / 20.0)  # the held peak falls 6 dB/s
FORMAT_VERSION = 1

# Singing ranges (MIDI notes, lowest .. highest comfortable) of the usual voice names;
# other names need ``ranges``.
VOICE_RANGES = {"soprano": (59, 81), "alto": (52, 74), "tenor": (46, 69), "bass": (36, 64)}
MAX_VOICES = 6  # the tracker's joint states grow steeply: 321 for 4 voices, 2972 for 6
# A recording's own ranges (``sung_ranges``): each voice's 2nd to 98th percentile of pitch
# where every voice sounds apart, widened by this many semitones, from 0.5 s of such frames
# at least (4-s excerpts where a voice rests for 2 s gained from 48 frames).
SUNG_RANGE_MARGIN = 1.0
SUNG_RANGE_MIN_FRAMES = 32
# On a long recording the ranges come from a track whose salience weighs basic-pitch's
# more (``RecordingPeaks.range_fit``): it seldom hears a resting voice, so fewer frames
# where the voices under a resting one each move up a voice (and the top voice takes an
# octave above its note) widen the ranges. It keeps fewer frames with every voice sounding
# apart, and on a 4-s excerpt too few to show a voice's rarer notes (a soprano's lowest
# three were cut), so it is used where it keeps 4 s of them; else the tracked salience's
# track gives them. 0.7 is the middle of the weights tried: 0.6 and 0.8 separated about
# as well, each better on one recording (README: Long recordings).
RANGE_FIT_BASIC_PITCH = 0.7
RANGE_FIT_MIN_FRAMES = 250


def bin_midi(bins: np.ndarray | float) -> np.ndarray:
    """MIDI note number (float) of fractional bin positions."""
    return 33.0 + np.asarray(bins, dtype=np.float64) / BINS_PER_SEMITONE  # 55 Hz is MIDI 33


def hz_to_bin(hz: np.ndarray) -> np.ndarray:
    """Fractional bin position of frequencies (Hz > 0)."""
    return BINS_PER_SEMITONE * 12.0 * np.log2(np.asarray(hz, dtype=np.float64) / FMIN_HZ)


@functools.lru_cache(maxsize=1)
def harmonic_filterbank() -> np.ndarray:
    """(N_FFT // 2 + 1, len(HARMONICS) * BINS) triangular filters, each summing to 1.

    Filter (h, k) is centred on ``HARMONICS[h] * f_k`` and spans the neighbouring
    bins' centres, or at least ±1.5 STFT bins so that a narrow filter still catches
    a harmonic's main lobe. Filters above Nyquist are all zero.
    """
    bin_hz = SAMPLE_RATE / N_FFT
    stft_hz = np.arange(N_FFT // 2 + 1) * bin_hz
    centres = FMIN_HZ * np.exp2(np.arange(BINS) / (12.0 * BINS_PER_SEMITONE))
    step = 2.0 ** (1.0 / (12.0 * BINS_PER_SEMITONE)) - 1.0
    bank = np.zeros((stft_hz.size, len(HARMONICS), BINS))
    for h, harmonic in enumerate(HARMONICS):
        centre = harmonic * centres
        half_width = np.maximum(centre * step, 1.5 * bin_hz)
        weights = np.clip(1.0 - np.abs(stft_hz[:, None] - centre[None, :]) / half_width[None, :], 0.0, None)
        weights[:, centre + half_width > SAMPLE_RATE / 2] = 0.0
        total = weights.sum(axis=0)
        bank[:, h] = weights / np.where(total > 0, total, 1.0)
    return bank.reshape(stft_hz.size, -1).astype(np.float32)


def level_lift_db(held_peak: np.ndarray) -> np.ndarray:
    """dB by which ``HarmonicSpectrum`` lifts frames whose audio's held peak is ``held_peak``
    (linear, full scale 1): up to ``LIFT_TARGET_DBFS`` from below, by at most ``LIFT_MAX_DB``;
    0 from the target up."""
    peak = np.maximum(np.asarray(held_peak, dtype=np.float64), 1e-30)
    return np.clip(LIFT_TARGET_DBFS - 20.0 * np.log10(peak), 0.0, LIFT_MAX_DB)


class HarmonicSpectrum:
    """Streaming harmonic log-frequency spectrum of a mono 16 kHz signal.

    ``push(audio (n,))`` → features (k, len(HARMONICS), BINS) in dB for the frames
    now complete: frame ``t``'s window ends ``reach`` samples past sample ``t * 256``
    (zeros before the start), so it is complete once those are in: ``N_FFT // 2``
    (the default) centres it on its frame, less makes it look less ahead and
    describe earlier sound (0: a causal window). The window is normalised to sum 1,
    so a sine of amplitude A has a power of A²/4 in its filter (−6 dB for a
    full-scale sine).

    ``lift`` (the default): quiet audio is lifted to the quietest level the salience network
    was trained at, frame by frame (``level_lift_db``) from the held peak of the audio up to
    the frame's window end: it starts at ``LIFT_TARGET_DBFS``, rises at once with louder
    audio and falls 6 dB/s. A recording peaking at P dBFS is left as it is while its peaks
    come at least every (P + 12) / 6 s (1.7 s at the training data's −1.9 dBFS); longer
    rests and pianissimo passages are lifted too, and a recording that stays quiet is
    lifted within about 3 s. Causal, so block by block gives the same frames; applied to the
    power before the dB, so digital silence stays at the floor.
    """

    def __init__(self, reach: int = N_FFT // 2, lift: bool = True):
        self.reach, self.lift = reach, lift
        self.window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
        self.window /= self.window.sum()
        # (filters, STFT bins), sparse: each filter spans a few bins, and a dense product
        # costs a live hop 4 ms of CPU where this costs 0.01 ms
        self.bank = scipy.sparse.csr_matrix(harmonic_filterbank().T)
        self.reset()

    def reset(self) -> None:
        self.pending = np.zeros(N_FFT - self.reach, dtype=np.float32)
        self.peak = 10.0 ** (LIFT_TARGET_DBFS / 20.0)  # held |sample| peak; at first, as a recording at the target

    def push(self, audio: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, np.asarray(audio, dtype=np.float32)])
        ready = max(0, (self.pending.size - N_FFT) // HOP_LENGTH + 1)
        if ready == 0:
            return np.zeros((0, len(HARMONICS), BINS), dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(self.pending, N_FFT)[::HOP_LENGTH][:ready]
        self.pending = self.pending[ready * HOP_LENGTH:]
        power = (self.bank @ np.square(np.abs(np.fft.rfft(windows * self.window, axis=1))).T).T
        if self.lift:
            peaks = np.empty(ready)
            loudest_of = np.abs(windows).max(axis=1)
            for frame, loudest in enumerate(np.where(np.isfinite(loudest_of), loudest_of, 0.0)):  # a bad sample: no peak
                self.peak = max(float(loudest), self.peak * LIFT_RELEASE_PER_FRAME)
                peaks[frame] = self.peak
            power = power * (10.0 ** (level_lift_db(peaks) / 10.0)).astype(power.dtype)[:, None]
        decibels = 10.0 * np.log10(power + 1e-12)
        return decibels.reshape(ready, len(HARMONICS), BINS).astype(np.float32)


def scale_features(decibels: torch.Tensor) -> torch.Tensor:
    """dB → the network's input scale: 0 at ``FLOOR_DB`` and below, 1 at 0 dB."""
    return torch.clamp((decibels - FLOOR_DB) / -FLOOR_DB, min=0.0)


@dataclass(frozen=True)
class SalienceConfig:
    """Layer sizes of ``SalienceNet``: ``channels`` per convolution, ``kernels`` as
    (bins, frames); the widest frequency kernel spans an octave and more so a
    layer sees a pitch's octave neighbours."""

    channels: tuple[int, ...] = (16, 24, 24, 16)
    kernels: tuple[tuple[int, int], ...] = ((5, 5), (5, 3), (37, 1), (3, 3))

    def __post_init__(self):
        # odd kernels keep bins and frames aligned: 'same' padding in frequency, a centred time context
        if len(self.channels) != len(self.kernels) or any(b % 2 == 0 or f % 2 == 0 for b, f in self.kernels):
            raise ValueError(f"salience network layers: one odd (bins, frames) kernel per layer, got "
                             f"{len(self.channels)} channel counts and kernels {self.kernels}")

    @property
    def context(self) -> int:
        """Frames of input beyond those it outputs (the unpadded time convolutions)."""
        return sum(frames - 1 for _, frames in self.kernels)

    def to_dict(self) -> dict:
        return {"channels": list(self.channels), "kernels": [list(k) for k in self.kernels]}

    @classmethod
    def from_dict(cls, values: dict) -> SalienceConfig:
        return cls(tuple(values["channels"]), tuple(tuple(k) for k in values["kernels"]))


class SalienceNet(nn.Module):
    """(batch, len(HARMONICS), BINS, frames) dB → (batch, BINS, frames − context) logits.

    Output frame ``i`` is input frame ``i + context // 2``'s salience: the network
    sees ``context // 2`` frames either side.
    """

    def __init__(self, config: SalienceConfig = SalienceConfig()):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        channels_in = len(HARMONICS)
        for channels, (bins, frames) in zip(config.channels, config.kernels):
            layers += [nn.Conv2d(channels_in, channels, (bins, frames), padding=(bins // 2, 0)), nn.ReLU()]
            channels_in = channels
        layers.append(nn.Conv2d(channels_in, 1, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, decibels: torch.Tensor) -> torch.Tensor:
        return self.layers(scale_features(decibels))[:, 0]


def _state_table(voices: int, candidates: int) -> np.ndarray:
    """(states, voices) int64: each voice's candidate (1-based, by falling pitch) or 0 (silent).

    Voiced voices take candidates in non-decreasing order, so a higher voice never
    sings below a lower one; equal indices are a unison.
    """
    rows = [state for state in itertools.product(range(candidates + 1), repeat=voices)
            if all(a <= b for a, b in itertools.pairwise([c for c in state if c > 0]))]
    return np.array(rows, dtype=np.int64)


@dataclass(frozen=True)
class TrackerCosts:
    """Costs (negative log-probabilities, roughly) of the voice tracker.

    ``silent``: a voice not singing, per frame; ``jump``: per semitone of pitch
    change between frames (up to ``jump_cap`` semitones); ``onset``: a voice
    starting or stopping; ``unison``: two voices sharing one peak; ``range``: per
    squared semitone outside the voice's range.
    """

    silent: float = 1.2
    jump: float = 0.6
    jump_cap: float = 12.0
    onset: float = 3.0
    unison: float = 0.7
    range: float = 0.15


@numba.njit(cache=True, nogil=True)
def _viterbi_step(log_delta, states, valid_before, valid_now, transition, emission):
    """One forward step: best predecessor (the lowest state on a tie) and cost of every valid state.

    Transitions cost nothing or more, so predecessors are tried from the cheapest on and
    the search stops at the first one that costs more on its own than the best found.
    """
    n_states, n_voices = states.shape
    new_delta = np.full(n_states, np.inf)
    pointer = np.zeros(n_states, dtype=np.int64)
    before = valid_before[np.argsort(log_delta[valid_before], kind="mergesort")]
    into = np.empty((n_voices, transition.shape[0]))  # each voice's cost from each candidate into state s
    for s in valid_now:
        for v in range(n_voices):
            into[v] = transition[:, states[s, v]]
        best, best_from = np.inf, 0
        for r in before:
            if log_delta[r] > best:
                break
            cost = log_delta[r]
            for v in range(n_voices):
                cost += into[v, states[r, v]]
            if cost < best or (cost == best and r < best_from):
                best, best_from = cost, r
        new_delta[s] = best + emission[s]
        pointer[s] = best_from
    return new_delta, pointer


@numba.njit(cache=True, nogil=True)
def _emission_kernel(states, present, pitch, voiced_cost, unused_cost, low, high, silent, range_cost, unison):
    """One frame's cost of every state (inf where it uses an absent peak) and the valid states.

    Candidate 0 is silence; ``pitch`` (MIDI), ``voiced_cost`` (−log salience) and
    ``unused_cost`` (−log(1 − salience)) are per candidate. A state pays, per voice, its
    peak's cost and the squared semitones outside the voice's range, or ``silent``; then
    each present peak no voice takes, and ``unison`` per voice sharing a peak."""
    n_states, n_voices = states.shape
    emission = np.full(n_states, np.inf)
    valid = np.empty(n_states, dtype=np.int64)
    used = np.zeros(present.size, dtype=np.bool_)
    n_valid = 0
    for state in range(n_states):
        usable = True
        for v in range(n_voices):
            usable = usable and present[states[state, v]]
        if not usable:
            continue
        used[:] = False
        cost, voiced = 0.0, 0
        for v in range(n_voices):
            c = states[state, v]
            if c > 0:
                outside = max(low[v] - pitch[c], 0.0) + max(pitch[c] - high[v], 0.0)
                cost += voiced_cost[c] + range_cost * (outside * outside)
                voiced += 1
                used[c] = True
            else:
                cost += silent
        unused, distinct = 0.0, 0
        for c in range(1, present.size):
            if used[c]:
                distinct += 1
            elif present[c]:
                unused += unused_cost[c]
        emission[state] = cost + unused + unison * (voiced - distinct)
        valid[n_valid] = state
        n_valid += 1
    return emission, valid[:n_valid]


class VoiceTracker:
    """Fixed-lag Viterbi assignment of salience peaks to ordered voices.

    ``push(pitch (k, CANDIDATES) MIDI or NaN, salience (k, CANDIDATES))`` → the
    frames now decided as ``(midi (V, k') with NaN = silent, confidence (V, k'))``.
    Candidates are sorted by falling pitch. Frame ``t`` is read off the best path
    ending ``lag`` frames later, so the result does not depend on how frames are
    split into pushes.
    """

    def __init__(self, ranges: list[tuple[float, float]], lag: int, costs: TrackerCosts = TrackerCosts()):
        self.ranges = np.array(ranges, dtype=np.float64)
        self.voices, self.lag, self.costs = len(ranges), lag, costs
        self.states = _state_table(self.voices, CANDIDATES)
        self.reset()

    def reset(self) -> None:
        self.log_delta: np.ndarray | None = None
        self.history: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (pointer, pitch, salience) per frame
        self.valid_before = np.zeros(0, dtype=np.int64)
        self.pitch_before = np.full(CANDIDATES, np.nan)

    def _emission(self, pitch: np.ndarray, salience: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Costs of every state for one frame, and the states that use only present peaks."""
        costs = self.costs
        present = np.concatenate([[True], ~np.isnan(pitch)])
        p = np.concatenate([[0.0], np.nan_to_num(pitch)])
        s = np.concatenate([[1.0], salience]).clip(1e-4, 1 - 1e-4)
        return _emission_kernel(self.states, present, p, -np.log(s), -np.log(1.0 - s), self.ranges[:, 0],
                                self.ranges[:, 1], costs.silent, costs.range, costs.unison)

    def _transition(self, pitch_before: np.ndarray, pitch_now: np.ndarray) -> np.ndarray:
        """(CANDIDATES + 1, CANDIDATES + 1) cost of one voice going from one peak (or silence) to another."""
        costs = self.costs
        before = np.concatenate([[np.nan], pitch_before])
        now = np.concatenate([[np.nan], pitch_now])
        jump = costs.jump * np.minimum(np.abs(before[:, None] - now[None, :]), costs.jump_cap)
        table = np.where(np.isnan(jump), costs.onset, jump)
        table[0, 0] = 0.0
        return table

    def push(self, pitch: np.ndarray, salience: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        decided_pitch, decided_confidence = [], []
        for frame in range(pitch.shape[0]):
            emission, valid = self._emission(pitch[frame], salience[frame])
            if self.log_delta is None:
                self.log_delta, pointer = emission, np.zeros(len(self.states), dtype=np.int64)
            else:
                transition = self._transition(self.pitch_before, pitch[frame])
                self.log_delta, pointer = _viterbi_step(self.log_delta, self.states, self.valid_before, valid,
                                                        transition, emission)
                self.log_delta -= self.log_delta[valid].min()
            self.valid_before, self.pitch_before = valid, pitch[frame]
            self.history.append((pointer, pitch[frame], salience[frame]))
            if len(self.history) > self.lag:
                decided = self._backtrack()
                decided_pitch.append(decided[0])
                decided_confidence.append(decided[1])
                self.history.pop(0)
        if not decided_pitch:
            return np.zeros((self.voices, 0)), np.zeros((self.voices, 0))
        return np.stack(decided_pitch, axis=1), np.stack(decided_confidence, axis=1)

    def _backtrack(self) -> tuple[np.ndarray, np.ndarray]:
        """The oldest held frame's assignment on the best path into the newest frame."""
        state = int(np.argmin(self.log_delta))
        for pointer, _, _ in reversed(self.history[1:]):
            state = int(pointer[state])
        _, pitch, salience = self.history[0]
        chosen = self.states[state]
        voiced = chosen > 0
        index = np.maximum(chosen - 1, 0)
        return np.where(voiced, pitch[index], np.nan), np.where(voiced, salience[index], 0.0)


@numba.njit(cache=True, nogil=True)
def _peaks_kernel(logits, saliences, threshold, candidates):
    """Per frame of (k, bins) float32 logits and their saliences: the fractional bins and
    saliences of the ``candidates`` strongest local maxima with salience ≥ ``threshold``
    (the lower bin on a tie), highest bin first, then NaN and 0 where fewer."""
    frames, bins = logits.shape
    position = np.full((frames, candidates), np.nan)
    strength = np.zeros((frames, candidates))
    half, two, floor = np.float32(0.5), np.float32(2.0), np.float32(-np.inf)  # float32 arithmetic, as the logits
    for t in range(frames):
        row = logits[t]
        found = 0
        for b in range(bins):
            left = row[b - 1] if b > 0 else floor
            right = row[b + 1] if b < bins - 1 else floor
            if not (row[b] >= left and row[b] > right):
                continue
            salience = saliences[t, b]
            if salience < threshold:
                continue
            # insert among the strongest so far (after those as strong: lower bins win ties)
            slot = found
            while slot > 0 and strength[t, slot - 1] < salience:
                slot -= 1
            if slot >= candidates:
                continue
            for i in range(min(found, candidates - 1), slot, -1):
                strength[t, i], position[t, i] = strength[t, i - 1], position[t, i - 1]
            offset = np.float32(0.0)
            if np.isfinite(left) and np.isfinite(right):  # a parabola through the peak's logits
                curvature = left - two * row[b] + right
                if curvature < 0:
                    offset = min(max(half * (left - right) / curvature, -half), half)
            strength[t, slot], position[t, slot] = salience, b + np.float64(offset)
            found = min(found + 1, candidates)
        for i in range(1, found):  # highest bin first (peaks are two bins apart or more: no ties)
            j = i
            while j > 0 and position[t, j - 1] < position[t, j]:
                strength[t, j], strength[t, j - 1] = strength[t, j - 1], strength[t, j]
                position[t, j], position[t, j - 1] = position[t, j - 1], position[t, j]
                j -= 1
    return position, strength


def pick_peaks(logits: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(k, BINS) salience logits → the strongest ``CANDIDATES`` local maxima per frame with
    salience ≥ ``threshold``: (pitch (k, CANDIDATES) MIDI, NaN where absent; salience), sorted
    by falling pitch. Pitch is refined by a parabola through the peak's logits, in float32
    (the network's precision: other logits are converted)."""
    # a kernel: the live worker runs this every frame, where numpy's calls on small arrays
    # took 0.24-0.29 ms a frame against 0.04, holding the GIL the audio callback needs
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    saliences = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    position, salience = _peaks_kernel(logits, saliences, float(threshold), CANDIDATES)
    return bin_midi(position), salience


MODES = ("offline", "live")
VITERBI_LAG = {"offline": 20, "live": 0}  # frames, by default
# Live mode's whole look-ahead, in frames of 16 ms, by default and at most (32 ms): the
# tracker's lag, and the analysis window reaches past its frame by the rest. Spending it all on the window
# measured best (the test fixture's chorales, multi-pitch accuracy: 0.84 at lag 0, 0.83 at
# 1, 0.80 at 2). One frame (16 ms) keeps a live graph within 80 ms in all, at a cost
# (README, "Live").
LIVE_LOOKAHEAD_FRAMES = 2
# Offline, basic-pitch's contour probabilities (``sfgraph.f0.basic_pitch``, trained on real
# recordings) take this share of the salience. Measured with `separate --f0 auto` (README,
# "A resting voice"): a voice resting 2 s in real_dev 4.18 → 5.20 dB, 1.3 s 4.12 → 4.84,
# real_dev as it is 6.07 → 6.07; 0.3 and 0.5 did no better on the real sets and worse on
# the Voice Oohs chorales.
BASIC_PITCH_WEIGHT = 0.4


@dataclass(frozen=True)
class MultiF0Options:
    """Settings of a ``MultiF0Tracker``: ``model`` folder, ``voices`` high to low,
    ``ranges`` (MIDI low, high) per voice (default from the voice names),
    ``threshold`` (least salience of a peak), ``mode`` (``offline``: windows centred on
    their frames and the network's context on both sides, the more accurate;
    ``live``: ``live_lookahead`` frames of 16 ms of look-ahead in all, 2 by default, see
    ``MultiF0Tracker``), ``viterbi_lag`` (frames the tracker waits before deciding; None:
    the mode's default, 20 offline, 0 live; live allows up to ``live_lookahead``),
    ``threads`` (torch and onnxruntime CPU threads while the networks run),
    ``unison_leap_cents`` (a voice that leaps this far onto another's pitch reads silent
    while they share it, ``sfgraph.f0.unison``; 0: never), ``basic_pitch`` (the weight
    of basic-pitch's contour probabilities in the salience, ``sfgraph.f0.basic_pitch``:
    (1 − w) · ours + w · basic-pitch's; offline mode only, as it looks 1.8 s ahead;
    None: the mode's default, ``BASIC_PITCH_WEIGHT`` offline, 0 live)."""

    model: Path
    voices: tuple[str, ...] = DEFAULT_VOICES
    ranges: tuple[tuple[float, float], ...] | None = None
    threshold: float = 0.2
    mode: str = "offline"
    viterbi_lag: int | None = None
    live_lookahead: int = LIVE_LOOKAHEAD_FRAMES
    threads: int = 1
    unison_leap_cents: float = UNISON_LEAP_CENTS
    basic_pitch: float | None = None
    costs: TrackerCosts = field(default_factory=TrackerCosts)

    def basic_pitch_weight(self) -> float:
        """The weight of basic-pitch's salience, checked against the mode."""
        if self.basic_pitch is None:
            return BASIC_PITCH_WEIGHT if self.mode == "offline" else 0.0
        if not 0.0 <= self.basic_pitch <= 1.0:
            raise ValueError(f"basic_pitch is a weight from 0 to 1, got {self.basic_pitch:g}")
        if self.mode == "live" and self.basic_pitch > 0:
            raise ValueError("basic_pitch looks 1.8 s ahead: it is for offline mode only (live mode: 0)")
        return float(self.basic_pitch)

    def lag(self) -> int:
        """The tracker's lag in frames, checked against the mode."""
        if self.mode not in MODES:
            raise ValueError(f"multi-F0 mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0 <= self.live_lookahead <= LIVE_LOOKAHEAD_FRAMES:
            raise ValueError(f"live multi-F0 looks 0 to {LIVE_LOOKAHEAD_FRAMES} frames ahead, "
                             f"got live_lookahead {self.live_lookahead}")
        if self.viterbi_lag is None:
            return VITERBI_LAG[self.mode]
        if self.mode == "live" and self.viterbi_lag > self.live_lookahead:
            raise ValueError(f"live multi-F0 looks {self.live_lookahead} frames ({16 * self.live_lookahead} ms) "
                             f"ahead in all: viterbi_lag {self.viterbi_lag} is for offline mode or a longer "
                             f"live_lookahead")
        return self.viterbi_lag

    def voice_ranges(self) -> list[tuple[float, float]]:
        """Each voice's (low, high) MIDI range, checked: at most ``MAX_VOICES`` voices, highest first."""
        if not 1 <= len(self.voices) <= MAX_VOICES:
            raise ValueError(f"the multi-F0 tracker follows 1 to {MAX_VOICES} voices, got {len(self.voices)}")
        if self.ranges is not None:
            if len(self.ranges) != len(self.voices):
                raise ValueError(f"{len(self.ranges)} ranges given for {len(self.voices)} voices")
            ranges = [tuple(r) for r in self.ranges]
        else:
            unknown = [v for v in self.voices if v not in VOICE_RANGES]
            if unknown:
                raise ValueError(f"no default range for voice(s) {', '.join(unknown)} (known: "
                                 f"{', '.join(VOICE_RANGES)}): give ranges, one 'LOW-HIGH' per voice, e.g. C4-A5")
            ranges = [VOICE_RANGES[v] for v in self.voices]
        middles = [(low + high) / 2 for low, high in ranges]
        if any(a <= b for a, b in itertools.pairwise(middles)):
            raise ValueError(f"voices must go from the highest to the lowest ({', '.join(self.voices)} have "
                             f"ranges centred on MIDI {', '.join(f'{m:g}' for m in middles)})")
        return ranges


class ModelFolderError(ValueError):
    """A multi-F0 model folder that cannot be loaded."""


def save_salience_model(folder: Path, network: SalienceNet, training: dict) -> None:
    from sfgraph.atomic import write_bytes, write_torch

    folder = Path(folder)
    write_torch(folder / "weights.pt", {k: v.half() for k, v in network.state_dict().items()})
    description = {"format_version": FORMAT_VERSION, "kind": "multif0-salience",
                   "network": network.config.to_dict(), "training": training}
    write_bytes(folder / "multif0.json", json.dumps(description, indent=2).encode())


def load_salience_model(folder: Path) -> SalienceNet:
    """The salience network in a model folder (``multif0.json`` + ``weights.pt``), float32 on the CPU."""
    folder = Path(folder)
    description_path = folder / "multif0.json"
    if not description_path.exists():
        raise ModelFolderError(f"{folder}: not a multi-F0 model folder (no multif0.json)")
    try:
        description = json.loads(description_path.read_text())
        if description.get("format_version") != FORMAT_VERSION:
            raise ModelFolderError(f"{description_path}: format version {description.get('format_version')}, "
                                   f"this sfgraph reads {FORMAT_VERSION}")
        network = SalienceNet(SalienceConfig.from_dict(description["network"]))
        weights = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
        network.load_state_dict({k: v.float() for k, v in weights.items()})
    except ModelFolderError:
        raise
    except Exception as exc:  # corrupt JSON, truncated or mismatched weights: one message naming the folder
        raise ModelFolderError(f"{folder}: cannot load the multi-F0 model: {exc}") from None
    return network.eval()


class VoiceDecider:
    """The voices' F0 from salience peaks, frame by frame: the voice tracker
    (``VoiceTracker``, in ``options``' ranges, ``options.lag()`` frames behind), then the
    unison rule (``options.unison_leap_cents``, ``sfgraph.f0.unison``).

    ``push(pitch, salience)`` (``MultiF0Tracker.peaks``' output) → ``(f0 (V, k) Hz, 0 =
    silent; confidence (V, k) 0..1, 0 where silent)`` of the frames now decided. No
    networks: a recording's peaks are tracked in other ranges with it (``track_peaks``).
    """

    def __init__(self, options: MultiF0Options):
        self.tracker = VoiceTracker(options.voice_ranges(), options.lag(), options.costs)
        self.unisons = UnisonLeapFilter(len(options.voices), options.unison_leap_cents)

    def reset(self) -> None:
        self.tracker.reset()
        self.unisons.reset()

    def push(self, pitch: np.ndarray, salience: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        midi, confidence = self.tracker.push(pitch, salience)
        f0 = self.unisons.push(np.where(np.isnan(midi), 0.0, midi_to_hz(np.nan_to_num(midi))))
        return f0.astype(np.float32), np.where(f0 > 0, confidence, 0.0).astype(np.float32)


class MultiF0Tracker:
    """F0 of every voice from a mono 16 kHz mixture, block by block.

    ``push(audio (n,))`` → ``(f0 (V, k) Hz, 0 = silent; confidence (V, k) 0..1)`` for
    the frames now decided, on the grid ``t * 256 / 16000`` s. Frame ``t`` is
    emitted once ``lookahead_samples`` past sample ``t * 256`` are in.

    Offline mode, frame ``t``'s window is centred on sample ``t * 256`` and the
    network sees its true context on both sides. Live mode trades accuracy for
    look-ahead, ``live_lookahead`` frames in all (32 ms by default): the tracker waits its
    lag (0 frames by default) and the window ends the rest past sample ``t * 256`` (512
    samples at lag 0 by default, so it describes the sound of 32 ms earlier on average;
    256 samples and 48 ms with one frame); the network's
    future context, not heard yet, is the newest frame repeated.
    """

    def __init__(self, options: MultiF0Options):
        self.options = options
        self.live = options.mode == "live"
        self.lag = options.lag()
        self.basic_pitch_weight = options.basic_pitch_weight()
        self.network = load_salience_model(options.model)
        if self.live:
            # Channels-last convolutions run a frame's input about twice as fast. Their
            # rounding varies with the input's shape, so live mode gives the network one
            # frame's input at a time, and offline mode (blocks of any length) keeps the
            # default layout: a frame must not depend on how the audio came in blocks.
            self.network.to(memory_format=torch.channels_last)
            context = self.network.config.context
            self._live_input = torch.zeros((1, len(HARMONICS), BINS, context + 1)).contiguous(
                memory_format=torch.channels_last)
            # (BINS, frames, harmonics): the same memory, in the order it lies
            self._live_input_view = self._live_input.permute(0, 2, 3, 1).numpy()[0]
        self.past = self.network.config.context // 2  # frames of context before the frame and after it
        self.future = self.network.config.context - self.past
        self.unseen = 0 if self.live else self.future  # future frames waited for (live repeats the newest)
        reach = (options.live_lookahead - self.lag) * HOP_LENGTH if self.live else N_FFT // 2
        self.spectrum = HarmonicSpectrum(reach)
        if self.basic_pitch_weight > 0:
            from sfgraph.f0.basic_pitch import BasicPitchSalience

            self.contours = BasicPitchSalience(BINS, options.threads)
        self.voices = VoiceDecider(options)
        self.given_peaks = None  # use_peaks'
        self.reset()

    @property
    def salience_lookahead_samples(self) -> int:
        """Samples past frame ``t``'s sample that ``peaks`` needs to give frame ``t``."""
        salience = self.spectrum.reach + self.unseen * HOP_LENGTH
        if self.basic_pitch_weight > 0:
            salience = max(salience, self.contours.lookahead_samples)
        return salience

    @property
    def lookahead_samples(self) -> int:
        return self.salience_lookahead_samples + self.lag * HOP_LENGTH

    def reset(self) -> None:
        self.spectrum.reset()
        if self.basic_pitch_weight > 0:
            self.contours.reset()
            # the network's logits and basic-pitch's probabilities (frames, BINS) waiting for the other's
            self.network_waiting = np.zeros((0, BINS), dtype=np.float32)
            self.contours_waiting = np.zeros((0, BINS), dtype=np.float32)
        self.voices.reset()
        self.pushed = self.released = 0  # with use_peaks: samples pushed, frames of peaks decided
        # Frames before the start are silence, as the zeros padding the first windows.
        silence = np.full((self.past, len(HARMONICS), BINS), -120.0, dtype=np.float32)
        self.features = silence

    def use_peaks(self, peaks: tuple[np.ndarray, np.ndarray]) -> None:
        """Offline: from now on ``push`` decides from ``peaks``, the salience peaks of the
        whole recording about to be pushed (``whole_peaks`` with these options; the ranges
        may differ), instead of computing them again from the audio: the same frames, each
        once the audio is ``salience_lookahead_samples`` past it; past the peaks' end (a
        graph may flush further than they reach), frames with no peak."""
        if self.live:
            raise ValueError("use_peaks is for offline mode: a live tracker cannot hear the whole recording first")
        self.given_peaks = peaks

    def push(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.given_peaks is None:
            return self.voices.push(*self.peaks(audio))
        self.pushed += np.asarray(audio).size
        due = max(0, (self.pushed - self.salience_lookahead_samples) // HOP_LENGTH + 1)
        pitch, salience = (peaks[self.released:due] for peaks in self.given_peaks)
        missing = due - self.released - pitch.shape[0]
        if missing > 0:
            pitch = np.concatenate([pitch, np.full((missing, CANDIDATES), np.nan)])
            salience = np.concatenate([salience, np.zeros((missing, CANDIDATES))])
        self.released = due
        return self.voices.push(pitch, salience)

    def peaks(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The salience peaks of the frames ``audio`` completes, before the voice tracker:
        (pitch (k, CANDIDATES) MIDI, NaN where absent; salience), as ``VoiceDecider.push`` takes them."""
        return self.peaks_of(*self.saliences(audio))

    def saliences(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The saliences of the frames ``audio`` completes, before they are mixed: the
        network's logits (k, BINS) and, with basic-pitch, its contour probabilities of the same
        frames (k, BINS), else None."""
        features = self.spectrum.push(audio)
        self.features = np.concatenate([self.features, features])
        ready = max(0, self.features.shape[0] - self.past - self.unseen)
        logits = self._logits(ready) if ready else np.zeros((0, BINS), dtype=np.float32)
        self.features = self.features[ready:]
        if self.basic_pitch_weight == 0:
            return logits, None
        # each source's frames wait for the other's
        self.network_waiting = np.concatenate([self.network_waiting, logits])
        self.contours_waiting = np.concatenate([self.contours_waiting, self.contours.push(audio)])
        ready = min(self.network_waiting.shape[0], self.contours_waiting.shape[0])
        both = self.network_waiting[:ready], self.contours_waiting[:ready]
        self.network_waiting, self.contours_waiting = self.network_waiting[ready:], self.contours_waiting[ready:]
        return both

    def peaks_of(self, logits: np.ndarray, contours: np.ndarray | None,
                 weight: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``peaks`` of ``saliences``' output: the network's probabilities mixed with
        basic-pitch's, ``weight`` of it (None: ``basic_pitch_weight``), back as logits for
        ``pick_peaks``, which places each peak by a parabola through the logits; without
        basic-pitch (``contours`` None), the network's own."""
        if contours is not None:
            weight = self.basic_pitch_weight if weight is None else weight
            mixed = (1.0 - weight) * scipy.special.expit(logits) + weight * contours
            mixed = np.clip(mixed, 1e-6, 1.0 - 1e-6)
            logits = np.log(mixed / (1.0 - mixed)).astype(np.float32)
        return pick_peaks(logits, self.options.threshold)

    def _logits(self, ready: int) -> np.ndarray:
        """(ready, BINS) salience logits of the next ``ready`` frames of ``features``
        (after the ``past`` frames of context)."""
        with torch_threads(self.options.threads), torch.no_grad():
            if not self.live:  # one input for all: consecutive frames share their context
                inputs = np.ascontiguousarray(self.features.transpose(1, 2, 0))[None]
                return self.network(torch.from_numpy(inputs))[0].numpy().T
            # one input per frame: its past, itself, and itself again as its future, written
            # straight into the channels-last input (frames, harmonics last in memory)
            logits = np.empty((ready, BINS), dtype=np.float32)
            for frame in range(ready):
                now = self.past + frame
                self._live_input_view[:, :self.past + 1] = self.features[frame:now + 1].transpose(2, 0, 1)
                self._live_input_view[:, self.past + 1:] = self.features[now].T[:, None]
                logits[frame] = self.network(self._live_input)[0, :, -1].numpy()
            return logits


@dataclass(frozen=True)
class RecordingPeaks:
    """A whole recording's salience peaks (``MultiF0Tracker.peaks``: pitch, salience), flushed
    so that a tracker deciding them decides every frame. ``tracked``: with the tracker's own
    basic-pitch weight, what it reads block by block; ``range_fit``: with
    ``RANGE_FIT_BASIC_PITCH`` of basic-pitch (or the tracker's weight, if more), for
    ``sung_range_options``, or None without basic-pitch or with the ranges given (nothing to
    fit); ``frames``: the recording's, 1 + n // 256 for n samples."""

    tracked: tuple[np.ndarray, np.ndarray]
    range_fit: tuple[np.ndarray, np.ndarray] | None
    frames: int


def whole_peaks(mixture: np.ndarray, options: MultiF0Options) -> RecordingPeaks:
    """The salience peaks of every frame of a whole mono 16 kHz mixture, computed once for
    every setting but the ranges (which only the voice tracker uses; the networks run once
    for both sets of peaks): the ``f0_multi`` node decides from their ``tracked``
    (``F0Multi.use_peaks``) instead of computing them again, and ``sung_range_options``
    fits the ranges on them."""
    tracker = MultiF0Tracker(options)
    mixture = np.asarray(mixture, dtype=np.float32).reshape(-1)
    flushed = np.concatenate([mixture, np.zeros(tracker.lookahead_samples + HOP_LENGTH, dtype=np.float32)])
    weight = tracker.basic_pitch_weight
    fit_ranges = weight > 0 and options.ranges is None
    chunk = 60 * SAMPLE_RATE  # a minute at a time keeps the STFT's memory small on long files
    tracked, range_fit = [], []
    for start in range(0, flushed.size, chunk):
        saliences = tracker.saliences(flushed[start:start + chunk])
        tracked.append(tracker.peaks_of(*saliences))
        if fit_ranges:
            range_fit.append(tracker.peaks_of(*saliences, max(weight, RANGE_FIT_BASIC_PITCH)))

    def joined(pieces):
        return tuple(np.concatenate([piece[i] for piece in pieces]) for i in range(2))

    return RecordingPeaks(joined(tracked), joined(range_fit) if range_fit else None, 1 + mixture.size // HOP_LENGTH)


def track_peaks(options: MultiF0Options, peaks: tuple[np.ndarray, np.ndarray], frames: int) -> np.ndarray:
    """F0 (V, frames) Hz that ``options``' voice tracker decides (``VoiceDecider``) from a
    whole recording's peaks (``RecordingPeaks.tracked`` or ``range_fit``, flushed)."""
    return VoiceDecider(options).push(*peaks)[0][:, :frames]


def estimate_f0(mixture: np.ndarray, options: MultiF0Options) -> np.ndarray:
    """F0 (V, 1 + n // 256) Hz of every voice in a mono 16 kHz mixture (n samples), whole."""
    peaks = whole_peaks(mixture, options)
    return track_peaks(options, peaks.tracked, peaks.frames)


def sung_ranges(f0: np.ndarray, margin: float = SUNG_RANGE_MARGIN,
                min_frames: int = SUNG_RANGE_MIN_FRAMES) -> tuple[tuple[float, float], ...] | None:
    """Each voice's (low, high) MIDI range as a recording sings it, from its F0 tracks (V, frames)
    Hz (0 = silent), highest voice first; None where fewer than ``min_frames`` frames have every
    voice sounding at a pitch of its own, or the ranges would not go from high to low.

    Only frames where every voice sounds, and no two share a pitch (``UNISON_CENTS``), count:
    there the tracker's voices are ordered by pitch, so each pitch is surely that voice's.
    Where a voice rests, the default ranges (two octaves, overlapping by more than an
    octave) cannot tell which voice the pitches left are: a resting soprano takes the alto's
    note and the alto the bass's octave. Nor do frames with the top voice an octave (within
    ``UNISON_CENTS``) above the second while the second is above its range from the other
    frames: where a lower voice rests, the voices above it move up one each, and the top
    voice takes her own 2nd harmonic, an octave above the note the second voice took from
    her; those frames look like every voice apart. (A sung octave leaves the second voice
    where she sings, and counts.) The range is the 2nd to 98th percentile, ``margin``
    semitones wider, to whole semitones."""
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = ((f0 > 0) & np.isfinite(f0)).all(axis=0)
    midi = np.where(voiced, bin_midi(hz_to_bin(np.where(voiced, f0, FMIN_HZ))), np.nan)
    together = voiced & (np.abs(np.diff(midi, axis=0)) >= UNISON_CENTS / 100).all(axis=0)

    def top(pitches):
        return np.ceil(np.percentile(pitches, 98, axis=-1) + margin)

    if f0.shape[0] > 1:  # the top voice on its own octave, the second voice above where it sings elsewhere
        octave = together & (np.abs(midi[0] - midi[1] - 12.0) < UNISON_CENTS / 100)
        if (together & ~octave).sum() >= min_frames:
            together &= ~(octave & (midi[1] > top(midi[1, together & ~octave])))
    if together.sum() < min_frames:
        return None
    midi = midi[:, together]
    low = np.floor(np.percentile(midi, 2, axis=1) - margin)
    high = top(midi)
    if np.any(np.diff(low + high) >= 0):
        return None
    return tuple(zip(low.tolist(), high.tolist()))


def sung_range_options(mixture: np.ndarray, options: MultiF0Options,
                       peaks: RecordingPeaks | None = None) -> MultiF0Options:
    """``options`` with the voices' ranges as the mono 16 kHz ``mixture`` sings them, or as
    they are where ranges were given or the recording has too little with every voice
    sounding apart. ``peaks``: the mixture's ``whole_peaks`` with ``options``, if already
    computed.

    The ranges are ``sung_ranges`` of the track of ``peaks.range_fit`` where it has
    ``RANGE_FIT_MIN_FRAMES`` with every voice sounding apart (and its ranges go from high to
    low), else of the track of ``peaks.tracked``, both in ``options``' ranges."""
    if options.ranges is not None:
        return options
    if peaks is None:
        peaks = whole_peaks(mixture, options)
    ranges = None
    if peaks.range_fit is not None:
        ranges = sung_ranges(track_peaks(options, peaks.range_fit, peaks.frames), min_frames=RANGE_FIT_MIN_FRAMES)
    if ranges is None:
        ranges = sung_ranges(track_peaks(options, peaks.tracked, peaks.frames))
    return options if ranges is None else replace(options, ranges=ranges)


def estimate_f0_in_sung_ranges(mixture: np.ndarray, options: MultiF0Options) -> tuple[MultiF0Options, np.ndarray]:
    """``sung_range_options``, and the F0 (as ``estimate_f0``) tracked in those ranges. The
    salience networks run once: every track reads the same saliences."""
    peaks = whole_peaks(mixture, options)
    fitted = sung_range_options(mixture, options, peaks)
    return fitted, track_peaks(fitted, peaks.tracked, peaks.frames)


def format_ranges(ranges: tuple[tuple[float, float], ...] | list[tuple[float, float]]) -> list[str]:
    """((60, 72), ...) → ["C4-C5", ...]: whole-semitone ranges in the form ``parse_ranges``,
    ``--ranges`` and the ``ranges`` param read."""
    import librosa

    return [f"{librosa.midi_to_note(low, unicode=False)}-{librosa.midi_to_note(high, unicode=False)}"
            for low, high in ranges]


def parse_ranges(text: str | list[str]) -> tuple[tuple[float, float], ...]:
    """``"C4-A5,F3-D5"`` or ``["C4-A5", "60-81"]`` → ((60, 81), (53, 74)): note names or MIDI numbers."""
    import librosa

    ranges = []
    for spec in text.split(",") if isinstance(text, str) else text:
        low, separator, high = spec.strip().partition("-")
        try:
            if not separator:
                raise ValueError
            notes = [float(n) if n.strip().isdigit() else float(librosa.note_to_midi(n.strip())) for n in (low, high)]
        except (ValueError, librosa.ParameterError):
            raise ValueError(f"range {spec.strip()!r}: expected LOW-HIGH, notes like C4 or MIDI numbers") from None
        if notes[0] >= notes[1]:
            raise ValueError(f"range {spec.strip()!r}: the low note must be below the high one")
        ranges.append((notes[0], notes[1]))
    return tuple(ranges)
