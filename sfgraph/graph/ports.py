"""Ports and the streams that flow between them.

Every stream is a numpy float32 array whose last axis is time and whose leading
axes are given by `StreamSpec.shape`:

- ``audio``: (channels, samples), ``rate`` = sample rate in Hz.
- ``f0``: (voices, frames), Hz per frame (0 = unvoiced or silent), ``rate`` = frames per second.
- ``control``: (channels, frames), unitless control values at ``rate`` frames per second.
- ``tensor``: (voices, features, frames), model features or synthesizer parameters.

What stays the same for a whole stream (a tensor stream's settings, say) travels once, in
its spec's ``constants``, rather than in every frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

KINDS = ("audio", "f0", "control", "tensor")


@dataclass(frozen=True)
class StreamSpec:
    """What one output port emits: kind, leading shape, rate and channel labels, and the
    ``constants`` its consumers need to read it, an object that its producer and they
    agree on (``sfgraph.dsp.voice_controls.VoiceControlStream`` for voice controls); None
    when there are none."""

    kind: str
    shape: tuple[int, ...]
    rate: Fraction
    labels: tuple[str, ...] | None = None
    constants: Any = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown stream kind {self.kind!r}; expected one of {KINDS}")
        object.__setattr__(self, "rate", Fraction(self.rate))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
            if len(self.labels) != self.shape[0]:
                raise ValueError(f"{len(self.labels)} labels for {self.shape[0]} channels")

    @property
    def channels(self) -> int:
        return self.shape[0]

    def channel_labels(self) -> tuple[str, ...]:
        """Labels if set, else ``ch0, ch1, ...``."""
        return self.labels or tuple(f"ch{i}" for i in range(self.channels))

    def with_rate(self, rate) -> "StreamSpec":
        return replace(self, rate=Fraction(rate))

    def describe(self) -> str:
        rate = float(self.rate)
        unit = "Hz" if self.kind == "audio" else "frames/s"
        return f"{self.kind} {'x'.join(map(str, self.shape))} @ {rate:g} {unit}"


def audio_spec(channels: int, sample_rate, labels=None) -> StreamSpec:
    return StreamSpec("audio", (channels,), Fraction(sample_rate), labels)


@dataclass(frozen=True)
class Port:
    """A declared input or output of a node type.

    ``rate``: for an input, the rate the node needs; an ``audio`` stream at another
    rate is resampled on the way in, any other kind is an error. ``quantum``: the
    node consumes its inputs in steps, ``quantum`` items of this port per step
    (e.g. ``hop`` samples of audio per frame of F0), so that inputs at different
    rates stay aligned.
    """

    kind: str
    doc: str = ""
    unit: str = ""
    optional: bool = False
    rate: int | Fraction | None = None
    quantum: int = 1
    channels: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown port kind {self.kind!r}; expected one of {KINDS}")


@dataclass
class PortMap:
    """The input and output ports of one configured node, in declaration order."""

    inputs: dict[str, Port] = field(default_factory=dict)
    outputs: dict[str, Port] = field(default_factory=dict)
