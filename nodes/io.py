"""Audio files in and out, through ``pedalboard.io`` (wav, flac, ogg, mp3 where it reads them)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from sfgraph.graph.node import Node
from sfgraph.graph.output_files import destination_problem, discard, partial_path, remove_stale_partials
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port, audio_spec


class FileIn(Node):
    """Streams an audio file, resampled to the graph's sample rate.

    Output ``audio``: (channels, samples) float32 in [-1, 1] at the graph rate (Hz).
    Reads block by block: a file is never held in memory whole.
    """

    type_name = "file_in"
    outputs = {"audio": Port("audio", "the file's channels at the graph sample rate")}
    params = {
        "path": Param("path", doc="audio file; relative to the graph file's folder, or sfgraph:REL for bundled files"),
        "channels": Param("int", None, "keep only the first N channels (None: all)", range=(1, 64)),
    }

    def configure(self, inputs, context):
        self.path = context.input_path(self.p.path)
        try:
            with AudioFile(str(self.path)) as f:
                self.file_channels, file_rate, frames = f.num_channels, f.samplerate, f.frames
        except (OSError, ValueError, RuntimeError) as exc:
            raise ValueError(f"cannot read audio file {self.path}: {exc}") from None
        self.channels = min(self.p.channels or self.file_channels, self.file_channels)
        self.duration_seconds = frames / file_rate
        return {"audio": audio_spec(self.channels, context.sample_rate)}

    def prepare(self):
        self.reset()

    def reset(self):
        self.close()
        self.file = AudioFile(str(self.path)).resampled_to(float(self.context.sample_rate))
        self.done = False

    def process(self, n):
        block = self.file.read(n)[: self.channels]
        if block.shape[-1] < n:
            self.done = True
        return {"audio": np.ascontiguousarray(block, dtype=np.float32)}

    def close(self, ok=True):
        file = getattr(self, "file", None)
        if file is not None:
            file.close()
            self.file = None


class FileOut(Node):
    """Writes its input to an audio file, atomically.

    Input ``audio``: (channels, samples) at any rate; written at that rate. With
    ``{label}`` in ``path`` (e.g. ``voices/{label}.wav``), each channel goes to its
    own mono file named by the channel's label (voice names for separated voices).
    Output is written to a hidden temporary file beside the final one; the engine
    moves every output of a render into place together, only when the whole render
    succeeded: never a half-written file under a final name, never new files beside
    old ones of an earlier render (``sfgraph.graph.output_files``). A relative
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
        problems = [p for p in (destination_problem(final) for final, _ in self.targets) if p]
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
