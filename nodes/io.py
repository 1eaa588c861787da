"""Audio files in and out, through ``pedalboard.io`` (wav, flac, ogg, mp3 where it reads them)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from sfgraph.atomic import destination_problems, discard, partial_path, remove_stale_partials
from sfgraph.data.audio import mp3_padding
from sfgraph.dsp.resample import IntegerUpsampler, upsampling_factor
from sfgraph.graph.errors import InputWarning
from sfgraph.graph.node import Node
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port, audio_spec


class FileIn(Node):
    """Streams an audio file, resampled to the graph's sample rate.

    Output ``audio``: (channels, samples) float32 in [-1, 1] at the graph rate (Hz);
    with ``mono``, one channel: the average of the file's channels. Reads block by
    block: a file is never held in memory whole. An MP3's encoder and decoder delay
    (read from its LAME tag) is removed, so it lines up with F0 tracks and other files;
    an MP3 without that tag gets a warning, since it plays some 25-70 ms late.
    """

    type_name = "file_in"
    outputs = {"audio": Port("audio", "the file's channels at the graph sample rate")}
    params = {
        "path": Param("path", doc="audio file; relative to the graph file's folder, or sfgraph:REL for bundled files"),
        "channels": Param("int", None, "keep only the first N channels (None: all)", range=(1, 64)),
        "mono": Param("bool", False, "average all channels into one (a warning says so when there are several)"),
    }

    def configure(self, inputs, context):
        self.path = context.input_path(self.p.path)
        try:
            with AudioFile(str(self.path)) as f:
                self.file_channels, file_rate, frames = f.num_channels, f.samplerate, f.frames
        except (OSError, ValueError, RuntimeError) as exc:
            raise ValueError(f"cannot read audio file {self.path}: {exc}") from None
        self.skip, tail = 0, 0
        if self.path.suffix.lower() == ".mp3":
            padding = mp3_padding(self.path)
            if padding is None:
                warnings.warn(f"{self.path}: an MP3 without a LAME tag, so its encoder delay is unknown and "
                              "stays in: the audio may play some 25-70 ms late against its F0s (decode it to "
                              "WAV with the delay removed to be sure)", InputWarning, stacklevel=2)
            else:
                self.skip, tail = padding
        if frames - self.skip - tail <= 0:
            raise ValueError(f"audio file {self.path} is empty (0 samples)")
        self.channels = min(self.p.channels or self.file_channels, self.file_channels)
        if self.p.mono and self.channels > 1:
            warnings.warn(f"{self.path} has {self.channels} channels; using their average (mono)", InputWarning,
                          stacklevel=2)
        self.duration_seconds = (frames - self.skip - tail) / file_rate
        # an MP3's trailing padding is cut by count (samples at the graph rate); other files end by themselves
        self.length = round(self.duration_seconds * context.sample_rate) if tail else None
        return {"audio": audio_spec(1 if self.p.mono else self.channels, context.sample_rate)}

    def prepare(self):
        self.reset()

    def reset(self):
        self.close()
        file = AudioFile(str(self.path))
        file.seek(self.skip)
        factor = upsampling_factor(file.samplerate, float(self.context.sample_rate))
        # up by a whole factor: the same samples as resampled_to, several times faster
        self.file = (UpsampledReader(file, IntegerUpsampler(file.samplerate, factor, file.num_channels)) if factor
                     else file.resampled_to(float(self.context.sample_rate)))
        self.position = 0
        self.done = False

    def read_whole(self) -> np.ndarray:
        """The whole file exactly as ``process`` streams it: (channels, samples) float32 at
        the graph rate (for adapting a model to the recording)."""
        self.reset()
        blocks = [self.process(1 << 16)["audio"]]
        while not self.done:
            blocks.append(self.process(1 << 16)["audio"])
        self.close()
        return np.concatenate(blocks, axis=1)

    def process(self, n):
        if self.length is not None:
            n = min(n, self.length - self.position)
        block = self.file.read(n)[: self.channels]
        self.position += block.shape[-1]
        if block.shape[-1] < n or self.position == self.length:
            self.done = True
        if self.p.mono:
            block = block.mean(axis=0, keepdims=True)
        return {"audio": np.ascontiguousarray(block, dtype=np.float32)}

    def close(self, ok=True):
        file = getattr(self, "file", None)
        if file is not None:
            file.close()
            self.file = None


class UpsampledReader:
    """An audio file read through an ``IntegerUpsampler``: ``read(n)`` gives what
    ``AudioFile.resampled_to`` gives (pedalboard's StreamResampler, flushed at the end of
    the file), ``close()`` closes the file."""

    def __init__(self, file, upsampler: IntegerUpsampler):
        self.file, self.upsampler = file, upsampler
        self.ready = np.zeros((upsampler.channels, 0), dtype=np.float32)
        self.flushed = False

    def read(self, n: int) -> np.ndarray:
        while self.ready.shape[1] < n and not self.flushed:
            block = self.file.read(-(-(n - self.ready.shape[1]) // self.upsampler.factor))
            self.flushed = block.shape[1] == 0
            more = self.upsampler.process() if self.flushed else self.upsampler.process(block)
            self.ready = np.concatenate([self.ready, more], axis=1)
        block, self.ready = self.ready[:, :n], self.ready[:, n:]
        return block

    def close(self) -> None:
        self.file.close()


class FileOut(Node):
    """Writes its input to an audio file, atomically.

    Input ``audio``: (channels, samples) at any rate; written at that rate. With
    ``{label}`` in ``path`` (e.g. ``voices/{label}.wav``), each channel goes to its
    own mono file named by the channel's label (voice names for separated voices).
    Output is written to a hidden temporary file beside the final one; the engine
    moves every output of a render into place together, only when the whole render
    succeeded: never a half-written file under a final name, never new files beside
    old ones of an earlier render (``sfgraph.atomic``). A relative
    ``path`` must stay inside the output folder; an absolute one is used as it is.
    """

    type_name = "file_out"
    inputs = {"audio": Port("audio", "what to write")}
    params = {
        "path": Param("str", doc="output file, relative to the output folder; '{label}' makes one file per channel"),
        "bit_depth": Param("int", 32, "32 writes float samples; 16 or 24 write integers",
                           range=(16, 32)),
    }

    def configure(self, inputs, context):
        if self.p.bit_depth not in (16, 24, 32):
            raise ValueError("bit_depth must be 16, 24 or 32")
        spec = inputs["audio"]
        template = self.p.path
        if "{label}" in template:
            self.targets = [(context.output_path(template.format(label=label)), [i])
                            for i, label in enumerate(spec.channel_labels())]
        else:
            self.targets = [(context.output_path(template), list(range(spec.channels)))]
        problems = destination_problems(final for final, _ in self.targets)
        if problems:
            raise ValueError("; ".join(problems))
        self.sample_rate = float(spec.rate)
        return {}

    def prepare(self):
        self.files = []
        for final, channels in self.targets:
            temporary = partial_path(final)
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                remove_stale_partials(final.parent)
                handle = AudioFile(str(temporary), "w", self.sample_rate, len(channels), bit_depth=self.p.bit_depth)
            except OSError as exc:
                raise OSError(f"cannot write {final}: {exc.strerror or exc}") from None
            self.files.append((handle, temporary, final, channels))

    def process(self, audio):
        for handle, _, _, channels in self.files:
            handle.write(audio[channels])
        return {}

    def close(self, ok=True):
        for handle, _, _, _ in getattr(self, "files", []):
            handle.close()
        self.files = []
        if not ok:
            discard(self.staged_outputs())

    def staged_outputs(self):
        # by target, not by open handle: a temporary whose opening was interrupted counts too
        return [(partial_path(final), final) for final, _ in self.targets]

    @property
    def written(self) -> list[Path]:
        return [final for final, _ in self.targets]
