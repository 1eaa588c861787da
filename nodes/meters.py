"""Level meters: what the live terminal view shows for each channel."""
from __future__ import annotations

import numpy as np

from sfgraph.graph.node import Node
from sfgraph.graph.ports import Port

# Floor of the meters: quieter than this shows as silence.
FLOOR_DB = -90.0


class LevelMeter:
    """Peak level per channel since the display last looked, and the run's peak and RMS.

    The worker calls ``update`` every block; the display thread calls ``take_db``.
    They share one small array without a lock: a reading that races with an update
    misses at most one block's peak, which a meter can afford. ``run_levels_db`` is
    read once the run has ended (the live report).
    """

    def __init__(self, labels: tuple[str, ...]):
        self.labels = tuple(labels)
        self._peak = np.zeros(len(self.labels), dtype=np.float32)
        self._run_peak = np.zeros(len(self.labels), dtype=np.float32)
        self._run_energy = np.zeros(len(self.labels), dtype=np.float64)  # sum of squares
        self._run_samples = 0

    def update(self, audio: np.ndarray) -> None:
        """Take in one block, (channels, samples)."""
        if audio.shape[-1]:
            peak = np.abs(audio).max(axis=-1)
            np.maximum(self._peak, peak, out=self._peak)
            np.maximum(self._run_peak, peak, out=self._run_peak)
            self._run_energy += np.einsum("ij,ij->i", audio, audio, dtype=np.float64)
            self._run_samples += audio.shape[-1]

    def take_db(self) -> np.ndarray:
        """Peak per channel in dBFS since the last call (at least ``FLOOR_DB``), and start afresh."""
        peak = self._peak.copy()
        self._peak[:] = 0.0
        return _db(peak)

    def run_levels_db(self) -> dict[str, dict[str, float]]:
        """Per channel label, the peak and RMS level of every block so far, dBFS (at least
        ``FLOOR_DB``: a dead input reads ``FLOOR_DB``)."""
        rms = np.sqrt(self._run_energy / max(self._run_samples, 1))
        return {label: {"peak_dbfs": round(float(peak), 2), "rms_dbfs": round(float(mean), 2)}
                for label, peak, mean in zip(self.labels, _db(self._run_peak), _db(rms), strict=True)}


def _db(amplitude: np.ndarray) -> np.ndarray:
    return np.maximum(20 * np.log10(np.maximum(amplitude, 1e-12)), FLOOR_DB)


class Meter(Node):
    """Shows the level of each channel of its input in the live terminal view.

    Input ``audio``: (channels, samples) at any rate, channels labelled by the
    stream (voice names after a separation). A sink: offline it measures and
    nothing more.
    """

    type_name = "meter"
    inputs = {"audio": Port("audio", "what to measure")}

    def configure(self, inputs, context):
        self.level_meter = LevelMeter(inputs["audio"].channel_labels())
        return {}

    def process(self, audio):
        self.level_meter.update(audio)
        return {}
