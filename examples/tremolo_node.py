"""A node type of your own: a tremolo, used by examples/tremolo.yaml through ``imports:``.

Run it:  sfgraph render examples/tremolo.yaml -o out/
"""
from __future__ import annotations

import numpy as np

from sfgraph.graph.node import Node
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port


class Tremolo(Node):
    """Amplitude modulation by a sine LFO.

    In/out ``audio``: (channels, samples) at any rate. ``rate_hz`` in Hz, ``depth`` 0…1.
    The LFO phase is carried between blocks, so block-by-block equals whole-signal.
    """

    type_name = "tremolo"
    inputs = {"audio": Port("audio")}
    outputs = {"audio": Port("audio")}
    params = {
        "rate_hz": Param("float", 5.0, "LFO rate", unit="Hz", range=(0.01, 50.0), live=True),
        "depth": Param("float", 0.5, "modulation depth", range=(0.0, 1.0), live=True),
    }

    def configure(self, inputs, context):
        self.sample_rate = float(inputs["audio"].rate)
        return {"audio": inputs["audio"]}

    def prepare(self):
        self.reset()

    def reset(self):
        self.phase = 0.0

    def process(self, audio):
        n = audio.shape[-1]
        step = 2 * np.pi * self.p.rate_hz / self.sample_rate
        phases = self.phase + step * np.arange(n)
        self.phase = float((self.phase + step * n) % (2 * np.pi))
        lfo = 1.0 - self.p.depth * 0.5 * (1.0 - np.cos(phases))
        return {"audio": (audio * lfo).astype(np.float32)}
