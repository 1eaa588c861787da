"""Aligning a score to a recording of it.

The score is rendered with a plain harmonic synthesis (every voice a sum of
``HARMONICS`` partials of amplitude 1/k at its F0), both signals become chroma
features (12 pitch classes plus a 13th "silence" dimension, so that rests match
silence), and dynamic time warping on the cosine distance finds the cheapest
monotonic path from the score's first note to its last, through the recording
from its first sounding frame to its last (silence around the performance is
skipped; frames more than ``-SILENCE_DB`` dB below the loudest are silence). The
path becomes a piecewise-linear clock from score seconds to recording seconds,
which retimes every note and bend.

The recording is taken to perform the whole score once, and nothing else. The resolution is one
feature frame, ``FEATURE_HOP_S`` (20 ms), coarsened for long pieces so that the
DTW cost matrix stays under ``MAX_CELLS`` cells.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sfgraph.dsp.resample import resample
from sfgraph.f0.score import Score

ALIGN_RATE = 8000  # Hz: features need pitch classes up to about 4 kHz
HARMONICS = 6
FEATURE_HOP_S = 0.02
WINDOW = 1024  # samples at ALIGN_RATE: 128 ms, 7.8 Hz per bin
CHROMA_FMIN_HZ, CHROMA_FMAX_HZ = 55.0, 4000.0
SILENCE_DB = -40.0  # a frame this far below the loudest frame counts as silence
SPAN_FRAME_S = 0.005  # resolution of where the recording starts and stops sounding
COMPRESSION = 100.0  # log(1 + COMPRESSION * magnitude) evens out loud and soft partials
MAX_CELLS = 20_000_000  # DTW cells (float32): about 80 MB


@dataclass(frozen=True)
class Clock:
    """A piecewise-linear map from score seconds to recording seconds (``np.interp`` breakpoints)."""

    score_s: np.ndarray
    recording_s: np.ndarray

    def __call__(self, times: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(times, dtype=np.float64), self.score_s, self.recording_s)


def synthesize(score: Score, seconds: float, sample_rate: int = ALIGN_RATE) -> np.ndarray:
    """(round(seconds * sample_rate),) harmonic rendering of every voice of ``score``, summed."""
    times = np.arange(int(round(seconds * sample_rate))) / sample_rate
    f0 = score.f0_at(times)  # (V, samples) Hz
    phase = 2 * np.pi * np.cumsum(f0 / sample_rate, axis=1)
    audio = np.zeros(times.size)
    for k in range(1, HARMONICS + 1):
        partial = np.where((f0 > 0) & (k * f0 < sample_rate / 2), np.sin(k * phase) / k, 0.0)
        audio += partial.sum(axis=0)
    return audio


def chroma_features(audio: np.ndarray, hop: int) -> np.ndarray:
    """(13, frames) unit-norm features of (samples,) audio at ``ALIGN_RATE``, frame ``i`` centred
    on sample ``i * hop``: 12 pitch classes (C first), or dimension 13 alone for silence."""
    audio = np.asarray(audio, dtype=np.float64)
    padded = np.pad(audio - audio.mean(), WINDOW // 2)  # a DC offset would click at the edges
    n_frames = 1 + (padded.size - WINDOW) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::hop][:n_frames]
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(WINDOW), axis=1))
    frequencies = np.fft.rfftfreq(WINDOW, 1 / ALIGN_RATE)
    band = (frequencies >= CHROMA_FMIN_HZ) & (frequencies <= CHROMA_FMAX_HZ)
    pitch_class = np.round(12 * np.log2(frequencies[band] / 440.0) + 69).astype(int) % 12
    compressed = np.log1p(COMPRESSION * magnitude[:, band])
    chroma = np.zeros((n_frames, 12))
    np.add.at(chroma.T, pitch_class, compressed.T)
    energy = np.sum(np.square(magnitude[:, band]), axis=1)
    silent = energy <= energy.max() * 10 ** (SILENCE_DB / 10) if energy.max() > 0 else np.ones(n_frames, bool)
    norm = np.linalg.norm(chroma, axis=1, keepdims=True)
    chroma = np.where(silent[:, None], 0.0, chroma / np.where(norm > 0, norm, 1.0))
    return np.concatenate([chroma, silent[:, None].astype(np.float64)], axis=1).T


def sounding_span(audio: np.ndarray) -> tuple[float, float]:
    """Seconds where (samples,) audio at ``ALIGN_RATE`` starts and stops sounding: the first and
    last ``SPAN_FRAME_S`` frame within ``-SILENCE_DB`` dB of the loudest."""
    size = int(SPAN_FRAME_S * ALIGN_RATE)
    audio = np.asarray(audio, dtype=np.float64)
    frames = (audio[:audio.size // size * size] - audio.mean()).reshape(-1, size)
    energy = np.mean(np.square(frames), axis=1)
    sounding = np.flatnonzero(energy > energy.max() * 10 ** (SILENCE_DB / 10)) if energy.size else []
    if len(sounding) == 0:
        raise ValueError("the recording is silent: there is nothing to align the score to")
    return sounding[0] * SPAN_FRAME_S, (sounding[-1] + 1) * SPAN_FRAME_S


@numba.njit(cache=True)
def _accumulate(cost):
    """Accumulated cost of DTW with steps (1,1), (1,0), (0,1), each adding the cell's cost."""
    n, m = cost.shape
    total = np.empty((n, m), dtype=np.float32)
    total[0, 0] = cost[0, 0]
    for j in range(1, m):
        total[0, j] = total[0, j - 1] + cost[0, j]
    for i in range(1, n):
        total[i, 0] = total[i - 1, 0] + cost[i, 0]
        for j in range(1, m):
            total[i, j] = min(total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]) + cost[i, j]
    return total


@numba.njit(cache=True)
def _backtrack(total):
    """The cheapest path from (0, 0) to the last cell, as (i, j) arrays from the start."""
    i, j = total.shape[0] - 1, total.shape[1] - 1
    path_i, path_j = [i], [j]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diagonal, up, left = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
            if diagonal <= up and diagonal <= left:
                i, j = i - 1, j - 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        path_i.append(i)
        path_j.append(j)
    return np.array(path_i[::-1]), np.array(path_j[::-1])


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest monotonic path through ``cost`` (n, m) from (0, 0) to (n-1, m-1): (i, j) index arrays."""
    return _backtrack(_accumulate(np.ascontiguousarray(cost, dtype=np.float32)))


def align_clock(score: Score, recording: np.ndarray, sample_rate: int) -> Clock:
    """The clock that maps ``score``'s times onto ``recording`` (samples,) at ``sample_rate``."""
    audio = resample(np.asarray(recording, dtype=np.float64), sample_rate, ALIGN_RATE)
    rendering_start = score.start_s
    rendering = synthesize(score.retimed(lambda t: np.asarray(t) - rendering_start), score.end_s - rendering_start)
    cells = (rendering.size / ALIGN_RATE / FEATURE_HOP_S) * (audio.size / ALIGN_RATE / FEATURE_HOP_S)
    hop = int(round(FEATURE_HOP_S * ALIGN_RATE * max(1.0, np.sqrt(cells / MAX_CELLS))))
    score_features, recording_features = chroma_features(rendering, hop), chroma_features(audio, hop)
    # The score's first and last notes go to the frames nearest where the recording starts and stops sounding.
    frame_s = hop / ALIGN_RATE
    start_s, end_s = sounding_span(audio)
    first = int(round(start_s / frame_s))
    last = min(max(first, int(round(end_s / frame_s))), recording_features.shape[1] - 1)
    cost = 1.0 - score_features.T @ recording_features[:, first:last + 1]  # cosine distance of unit vectors
    path_score, path_recording = dtw_path(cost)
    # Each score frame goes to the mean of the recording frames the path pairs it with.
    counts = np.bincount(path_score)
    mean_recording = np.bincount(path_score, weights=path_recording) / counts + first
    return Clock(np.arange(counts.size) * frame_s + rendering_start, mean_recording * frame_s)


def align_score(score: Score, recording: np.ndarray, sample_rate: int) -> Score:
    """``score`` retimed to follow ``recording`` (samples,) at ``sample_rate`` Hz."""
    return score.retimed(align_clock(score, recording, sample_rate))
