"""Sound-device inputs and outputs for live graphs, and fixed-rate conversion.

``device_in`` and ``device_out`` are the graph's device endpoints
(``sfgraph.graph.node``): live (``sfgraph live``) they exchange audio with the
engine through lock-free rings that it attaches; the graph's ``sample_rate`` is
the device's rate. Offline
(``sfgraph render``) they stand in for the device with files, so the same graph
renders offline: ``device_in`` reads its ``file``, ``device_out`` writes its ``file``.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from sfgraph.dsp.resample import stream_resampler
from sfgraph.graph.node import DeviceInputEndpoint, DeviceOutputEndpoint, Node
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port, PortMap, audio_spec
from sfgraph.nodes.io import FileIn, FileOut
from sfgraph.nodes.meters import LevelMeter


class DeviceIn(DeviceInputEndpoint):
    """Audio from a sound device's inputs, one channel per microphone.

    Output ``audio``: (channels, samples) at the graph's sample rate, channel i =
    device input ``first_channel + i``. Live, blocks come from the driver's input
    ring; offline, from ``file`` (resampled to the graph rate, like ``file_in``). Live,
    its levels are shown in the terminal view and written to the report (a silent
    input reads -90 dBFS there).
    """

    type_name = "device_in"
    outputs = {"audio": Port("audio", "the device's input channels at the graph (device) rate")}
    params = {
        "channels": Param("int", 1, "number of device inputs used", range=(1, 64)),
        "first_channel": Param("int", 1, "first device input used (1 = the device's first)", range=(1, 256)),
        "file": Param("path", None, "recording that 'sfgraph render' reads in place of the device (its first "
                                     "'channels' channels)"),
    }

    def configure(self, inputs, context):
        self.ring = None
        self.stand_in = None
        self.level_meter = LevelMeter(audio_spec(self.p.channels, context.sample_rate).channel_labels())
        if context.mode == "live":
            return {"audio": audio_spec(self.p.channels, context.sample_rate)}
        if self.p.file is None:
            raise ValueError(f"device_in reads a sound device, live only ('sfgraph live'); to render offline "
                             f"give it a recording: -p {self.id}.file=recording.wav")
        self.stand_in = FileIn(self.id, {"path": self.p.file})
        spec = self.stand_in.configure({}, context)["audio"]
        if spec.channels < self.p.channels:
            raise ValueError(f"{self.stand_in.path} has {spec.channels} channel(s); device_in uses {self.p.channels}")
        self.duration_seconds = self.stand_in.duration_seconds
        return {"audio": audio_spec(self.p.channels, context.sample_rate)}

    @property
    def device_channels(self) -> range:
        return range(self.p.first_channel - 1, self.p.first_channel - 1 + self.p.channels)

    def prepare(self):
        self.reset()

    def reset(self):
        self.position = 0   # frames read so far = ring position of the next frame
        self.overruns = 0   # blocks in which the callback overwrote frames before they were read
        if self.stand_in is not None:
            self.stand_in.context = self.context
            self.stand_in.reset()
        self.done = False

    def process(self, n):
        if self.stand_in is not None:
            block = self.stand_in.process(n)["audio"][: self.p.channels]
            self.done = self.stand_in.done
            return {"audio": block}
        frames = np.zeros((n, self.p.channels), dtype=np.float32)
        if self.ring is not None:  # unattached (the driver's rehearsal): silence
            _, lost = self.ring.read_into(frames, self.position)
            if lost:
                self.overruns += 1
        self.position += n
        audio = np.ascontiguousarray(frames.T)
        self.level_meter.update(audio)
        return {"audio": audio}

    def close(self, ok=True):
        if self.stand_in is not None:
            self.stand_in.close(ok)


class DeviceOut(DeviceOutputEndpoint):
    """Plays audio on a sound device's outputs.

    Input ``audio``: (channels, samples) at any rate; channel i goes to device
    output ``first_channel + i``. Input at another rate than the device's (the
    graph's ``sample_rate``) is resampled to it, as the engine resamples edges
    (``sfgraph.dsp.resample``: pedalboard's StreamResampler's filter, timeline kept).
    Live, blocks go to the driver's output ring; offline, to ``file`` (default
    ``<node id>.wav`` in the output folder; ``{label}`` in it writes one file per
    channel, like ``file_out``). The levels of the input are shown in the live terminal view.
    """

    type_name = "device_out"
    inputs = {"audio": Port("audio", "what to play")}
    params = {
        "first_channel": Param("int", 1, "first device output used (1 = the device's first)", range=(1, 256)),
        "file": Param("str", None, "file that 'sfgraph render' writes in place of the device"),
    }

    def configure(self, inputs, context):
        spec = inputs["audio"]
        self.channels = spec.channels
        self.input_rate = spec.rate
        self.level_meter = LevelMeter(spec.channel_labels())
        self.ring = None
        self.stand_in = None
        if context.mode != "live":
            self.stand_in = FileOut(self.id, {"path": self.p.file or f"{self.id}.wav"})
            self.stand_in.configure({"audio": spec.with_rate(context.sample_rate)}, context)
        return {}

    @property
    def device_channels(self) -> range:
        return range(self.p.first_channel - 1, self.p.first_channel - 1 + self.channels)

    @property
    def written(self):
        """Files written offline."""
        return self.stand_in.written if self.stand_in is not None else []

    def prepare(self):
        if self.stand_in is not None:
            self.stand_in.prepare()
        self.reset()

    def reset(self):
        self.resampler = None
        if self.input_rate != self.context.sample_rate:
            self.resampler = stream_resampler(float(self.input_rate), float(self.context.sample_rate), self.channels)
        self.frames_in = 0   # input samples received
        self.frames_out = 0  # frames played (or written), at the device rate

    def process(self, audio):
        self.level_meter.update(audio)
        self.frames_in += audio.shape[-1]
        if self.resampler is not None:
            audio = self.resampler.process(np.ascontiguousarray(audio))
        self._emit(audio)
        return {}

    def _emit(self, audio: np.ndarray) -> None:
        self.frames_out += audio.shape[-1]
        if self.stand_in is not None:
            self.stand_in.process(audio)
        elif self.ring is not None:  # unattached (the driver's rehearsal): counted only
            self.ring.write(audio.T)

    def close(self, ok=True):
        if self.stand_in is None:
            return
        if ok and self.resampler is not None:
            # the resampler holds back its last samples: flush them, up to the input's duration
            due = round(Fraction(self.frames_in) * self.context.sample_rate / self.input_rate) - self.frames_out
            tail = self.resampler.process()[:, :max(due, 0)]
            self._emit(np.pad(tail, ((0, 0), (0, max(due, 0) - tail.shape[-1]))))
        self.stand_in.close(ok)

    def staged_outputs(self):
        return self.stand_in.staged_outputs() if self.stand_in is not None else []


class Resample(Node):
    """Converts audio to ``rate`` Hz, e.g. a device's input to a model's 16 kHz.

    In/out ``audio``: (channels, samples). The engine resamples on the way in
    (``sfgraph.dsp.resample``: the timeline is kept, no latency); the node
    passes the result on.
    """

    type_name = "resample"
    params = {"rate": Param("int", doc="output sample rate", unit="Hz", range=(1000, 384000))}

    @classmethod
    def declare_ports(cls, params):
        return PortMap({"audio": Port("audio", "audio at any rate", rate=params["rate"])},
                       {"audio": Port("audio", f"the audio at {params['rate']} Hz")})

    def process(self, audio):
        return {"audio": audio}
