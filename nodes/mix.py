"""Gain, mixing and channel routing.

Gains that change while running (from MIDI or the terminal) ramp linearly across
one block, so a fader move never clicks.
"""
from __future__ import annotations

import numpy as np

from sfgraph.graph.errors import PortError
from sfgraph.graph.node import Node
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port, PortMap, StreamSpec, audio_spec


def db_to_linear(db):
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 20.0)


def crossfade(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Blend two renderings of one block linearly from ``before`` to ``after`` (…, n)."""
    n = before.shape[-1]
    t = np.arange(1, n + 1, dtype=np.float32) / n
    return before * (1 - t) + after * t


class Gain(Node):
    """Scales audio by ``db`` decibels. In/out: audio (channels, samples), any rate."""

    type_name = "gain"
    inputs = {"audio": Port("audio")}
    outputs = {"audio": Port("audio")}
    params = {"db": Param("float", 0.0, "gain", unit="dB", range=(-120.0, 24.0), live=True)}

    def set_param(self, name, value):
        super().set_param(name, value)
        self.target = np.float32(db_to_linear(self.p.db))  # once per change, not per block

    def prepare(self):
        self.reset()

    def reset(self):
        self.current = None
        self.target = np.float32(db_to_linear(self.p.db))

    def process(self, audio):
        target = self.target
        previous = target if self.current is None else self.current
        self.current = target
        if previous == target:
            return {"audio": audio * target}
        return {"audio": crossfade(audio * previous, audio * target)}


class Mixer(Node):
    """Sums ``inputs`` streams into ``channels`` output channels with per-input gain,
    pan, mute and solo.

    Inputs ``in0`` … ``in{N-1}``: audio (channels, samples), all at one rate. A mono
    input is panned with a constant-power law; a stereo input is balanced; wider
    inputs are folded to mono first. Output ``audio``: (channels, samples). Any
    soloed input silences every input that is not soloed.
    """

    type_name = "mixer"
    params = {
        "inputs": Param("int", 2, "number of input ports", range=(1, 64)),
        "channels": Param("int", 2, "output channels (1 or 2)", range=(1, 2)),
        "gain_db": Param("list[float]", None, "per-input gain", unit="dB", range=(-120.0, 24.0), live=True),
        "pan": Param("list[float]", None, "per-input pan, -1 left … 1 right", range=(-1.0, 1.0), live=True),
        "mute": Param("list[bool]", None, "per-input mute", live=True),
        "solo": Param("list[bool]", None, "per-input solo", live=True),
    }

    @classmethod
    def declare_ports(cls, params):
        inputs = {f"in{i}": Port("audio", f"input {i}") for i in range(params["inputs"])}
        return PortMap(inputs, {"audio": Port("audio", "the mix")})

    def configure(self, inputs, context):
        rates = {spec.rate for spec in inputs.values()}
        if len(rates) > 1:
            port = next(p for p, s in inputs.items() if s.rate != next(iter(inputs.values())).rate)
            raise PortError(port, f"all mixer inputs must share one sample rate, got {sorted(map(float, rates))}")
        n = self.p.inputs
        for name in ("gain_db", "pan", "mute", "solo"):
            value = self.param_values[name]
            if value is not None and len(value) != n:
                raise ValueError(f"param '{name}' has {len(value)} values for {n} inputs")
        self.in_channels = [inputs[f"in{i}"].channels for i in range(n)]
        return {"audio": audio_spec(self.p.channels, next(iter(rates)))}

    def set_param(self, name, value):
        super().set_param(name, value)
        self.target = self._matrix()  # once per change, not per block

    def prepare(self):
        self.reset()

    def reset(self):
        self.current = None
        self.target = self._matrix()

    def _matrix(self) -> np.ndarray:
        """(out_channels, total_input_channels) gains for the current params."""
        n = self.p.inputs
        gains = db_to_linear(self.p.gain_db or [0.0] * n)
        pans = np.asarray(self.p.pan or [0.0] * n)
        mutes = self.p.mute or [False] * n
        solos = self.p.solo or [False] * n
        any_solo = any(solos)
        columns = []
        for i, channels in enumerate(self.in_channels):
            audible = not mutes[i] and (solos[i] or not any_solo)
            g = gains[i] if audible else 0.0
            columns.append(g * self._routing(channels, pans[i]))
        return np.concatenate(columns, axis=1)

    def _routing(self, channels: int, pan: float) -> np.ndarray:
        out = self.p.channels
        if out == 1:
            return np.full((1, channels), 1.0 / channels)
        angle = (pan + 1.0) * np.pi / 4  # constant power: equal level at centre is -3 dB
        left, right = np.cos(angle), np.sin(angle)
        if channels == 2:
            # balance: centre keeps both sides at unity, turning attenuates one side
            return np.array([[min(1.0, 1.0 - pan), 0.0], [0.0, min(1.0, 1.0 + pan)]])
        return np.array([[left] * channels, [right] * channels]) / channels

    def process(self, **streams):
        stacked = np.concatenate([streams[f"in{i}"] for i in range(self.p.inputs)], axis=0)
        target = self.target
        previous = target if self.current is None else self.current
        self.current = target
        target_mix = (target @ stacked).astype(np.float32)
        if previous is target or np.array_equal(previous, target):
            return {"audio": target_mix}
        return {"audio": crossfade((previous @ stacked).astype(np.float32), target_mix)}


class Split(Node):
    """Splits a multichannel stream into one mono output per channel.

    Input ``audio``: (channels, samples). Outputs: one port per name in ``names``
    (e.g. ``[soprano, alto, tenor, bass]``), each (1, samples), labelled by its name.
    """

    type_name = "split"
    inputs = {"audio": Port("audio")}
    params = {"names": Param("list[str]", doc="output port names, one per input channel")}

    @classmethod
    def declare_ports(cls, params):
        return PortMap(dict(cls.inputs), {name: Port("audio", f"channel '{name}'") for name in params["names"]})

    def configure(self, inputs, context):
        spec = self.require(inputs, "audio", channels=len(self.p.names))
        return {name: StreamSpec(spec.kind, (1,), spec.rate, (name,)) for name in self.p.names}

    def process(self, audio):
        return {name: audio[i:i + 1] for i, name in enumerate(self.p.names)}


class Merge(Node):
    """Stacks several streams into one multichannel stream.

    Inputs: one port per name in ``names``, each (c_i, samples) at one rate.
    Output ``audio``: (sum c_i, samples); a mono input's channel is labelled by its port name.
    """

    type_name = "merge"
    params = {"names": Param("list[str]", doc="input port names, in output channel order")}

    @classmethod
    def declare_ports(cls, params):
        return PortMap({name: Port("audio", f"input '{name}'") for name in params["names"]},
                       {"audio": Port("audio", "all inputs' channels, in order")})

    def configure(self, inputs, context):
        rate = inputs[self.p.names[0]].rate
        labels = []
        for name in self.p.names:
            spec = inputs[name]
            if spec.rate != rate:
                raise PortError(name, f"all inputs must share one sample rate: {float(spec.rate):g} vs {float(rate):g}")
            labels += [name] if spec.channels == 1 else [f"{name}{i}" for i in range(spec.channels)]
        return {"audio": audio_spec(len(labels), rate, labels)}

    def process(self, **streams):
        return {"audio": np.concatenate([streams[name] for name in self.p.names], axis=0)}
