"""F0 sources: per-voice F0 tracks as an ``f0`` stream (voices, frames) in Hz, 0 = unvoiced."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from sfgraph.data.layout import DEFAULT_VOICES, DatasetError, read_f0_csv, resample_f0, voice_order
from sfgraph.graph.node import Node
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port, StreamSpec


class F0Files(Node):
    """Reads ``<voice>.csv`` files (header ``time_s,f0_hz``, as in the dataset layout).

    Output ``f0``: (voices, frames) Hz at ``sample_rate / hop`` frames per second
    (frame t at t·hop/sample_rate s), labelled by voice name. Tracks on another
    time grid are resampled (log-frequency interpolation, voicing from the nearest
    frame). Frames after a track's end are 0.
    """

    type_name = "f0_files"
    outputs = {"f0": Port("f0", "F0 per voice", unit="Hz")}
    params = {
        "dir": Param("path", doc="folder holding <voice>.csv"),
        "voices": Param("list[str]", None, "voice names in order (default: every csv, soprano alto tenor bass first)"),
        "sample_rate": Param("int", 16000, "rate the frames refer to", unit="Hz", range=(1000, 192000)),
        "hop": Param("int", 256, "samples per frame", unit="samples", range=(1, 8192)),
    }

    def configure(self, inputs, context):
        folder = context.input_path(self.p.dir)
        if not folder.is_dir():
            raise ValueError(f"F0 folder not found: {folder}")
        voices = self.p.voices or voice_order([p.stem for p in folder.glob("*.csv")]) or DEFAULT_VOICES
        missing = [v for v in voices if not (folder / f"{v}.csv").exists()]
        if missing:
            raise ValueError(f"{folder}: no F0 file for voice(s) {', '.join(missing)} "
                             f"(expected {', '.join(f'{v}.csv' for v in missing)})")
        problems, tracks = [], []
        for voice in voices:
            try:
                tracks.append(read_f0_csv(folder / f"{voice}.csv"))
            except DatasetError as exc:
                problems += exc.problems
        if problems:
            raise ValueError("bad F0 file(s):\n  " + "\n  ".join(problems))
        frame_seconds = self.p.hop / self.p.sample_rate
        end = max(times[-1] for times, _ in tracks)
        grid = np.arange(int(round(end / frame_seconds)) + 1) * frame_seconds
        self.track = np.stack([resample_f0(times, f0, grid) for times, f0 in tracks]).astype(np.float32)
        self.duration_seconds = len(grid) * frame_seconds
        return {"f0": StreamSpec("f0", (len(voices),), Fraction(self.p.sample_rate, self.p.hop), tuple(voices))}

    def prepare(self):
        self.reset()

    def reset(self):
        self.position = 0
        self.done = False

    def process(self, n):
        block = self.track[:, self.position:self.position + n]
        self.position += block.shape[-1]
        self.done = self.position >= self.track.shape[-1]
        return {"f0": block}
