"""Level meters: what the live terminal view shows for each channel."""
from __future__ import annotations

import numpy as np

from sfgraph.graph.node import Node
from sfgraph.graph.ports import Port

# Floor of the meters: quieter than this shows as silence.
FLOOR_DB = -90.0


class LevelMeter:
    """Peak level per channel since the display last looked.

    The worker calls ``update`` every block; the display thread calls ``take_db``.
    They share one small array without a lock: a reading that races with an update
    misses at most one block's peak, which a meter can afford.
    """

    def __init__(self, labels: tuple[str, ...]):
        self.labels = tuple(labels)
        self._peak = np.zeros(len(self.labels), dtype=np.float32)

    def update(self, audio: np.ndarray) -> None:
        """Take in one block, (channels, samples)."""
        if audio.shape[-1]:
            np.maximum(self._peak, np.abs(audio).max(axis=-1), out=self._peak)

    def take_db(self) -> np.ndarray:
        """Peak per channel in dBFS since the last call (at least ``FLOOR_DB``), and start afresh."""
        peak = self._peak.copy()
        self._peak[:] = 0.0
        return np.maximum(20 * np.log10(np.maximum(peak, 1e-12)), FLOOR_DB)


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
