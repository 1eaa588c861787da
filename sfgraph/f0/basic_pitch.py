"""basic-pitch's pitch contours, a second salience for the offline multi-F0 tracker.

Spotify's basic-pitch (Bittner et al., ICASSP 2022) ships a small polyphonic pitch
network trained on real recordings (sung ones among them) as an ONNX file in its
wheel. Our salience network learned from soundfont chorales: on real voices it is
confident on peaks that no voice sings there (a resting voice takes the bass's octave
or a neighbour's note), and basic-pitch is not confident there in the same way. Mixed
in with weight 0.4 (``sfgraph.f0.multif0``), a voice resting 2 s on ``real_dev`` reads
silent far more often; see the README, "A resting voice".

The network takes 2-s windows of 22.05 kHz audio (43844 samples) and gives, per frame
of 256 samples (11.6 ms), a contour probability on 264 bins, a third of a semitone apart
(bin 1 at 27.5 Hz): bins 37 to 198 are sfgraph's 162 (55 Hz up). Its first and last 15
frames see the window's edges and are dropped, as basic-pitch's own inference does;
windows step by the 141 frames kept (basic-pitch steps by 141.3, which drifts).

``BasicPitchSalience`` streams: the same frames whatever blocks the audio comes in.
Frame ``t`` (sample ``t * 256`` at 16 kHz) is the contour interpolated linearly between
the two basic-pitch frames around its time; it needs ``lookahead_samples`` past it
(1.8 s: a window must be complete), so it is for offline mode only.

basic-pitch's package requires tensorflow, which sfgraph does not need: it is installed
with ``pip install --no-deps basic-pitch==0.4.0`` (the Makefile does), and only its
model file is read, by onnxruntime; the package is never imported.
"""
from __future__ import annotations

import importlib.util
from math import ceil
from pathlib import Path

import numpy as np
from sfgraph.dsp.resample import stream_resampler
from sfgraph.grid import HOP_LENGTH, SAMPLE_RATE

MODEL_FILE = "saved_models/icassp_2022/nmp.onnx"  # inside the basic_pitch package
RATE = 22050  # Hz, the network's
HOP = 256  # samples at RATE per contour frame
WINDOW = 43844  # samples at RATE per network input
EDGE_FRAMES = 15  # frames dropped at each end of a window's output
KEPT_FRAMES = 141  # frames kept per window, which is also the windows' step
# The contour bin at 55 Hz, sfgraph's multi-F0 bin 0. basic-pitch's own bin formula would
# give 36 (bin 0 at 27.5 Hz), but its contours peak one bin higher: measured on tones and
# real_dev's true F0 (a test holds a 220-Hz tone on its bin).
FIRST_BIN = 37
CONTOUR_OUTPUT = "StatefulPartitionedCall:0"  # (windows, 172, 264) contour probabilities
CONTOUR_STEPS, FRAME_STEPS = 441, 320  # RATE / SAMPLE_RATE in lowest terms: contour frames per our frame


class BasicPitchMissing(ValueError):
    """basic-pitch's model (or onnxruntime) is not installed: a setting's problem, reported
    where the graph or the command names it, like a missing model folder."""


def model_path() -> Path:
    """The ONNX model file in the installed basic_pitch package, found without importing
    the package (its ``__init__`` looks for tensorflow and logs about each runtime it lacks)."""
    spec = importlib.util.find_spec("basic_pitch")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE if spec and spec.submodule_search_locations \
        else None
    if path is None or not path.is_file():
        raise BasicPitchMissing("basic-pitch's model is not installed (the offline multi-F0 tracker mixes its "
                                "salience in): pip install --no-deps basic-pitch==0.4.0, or set f0_multi's "
                                "basic_pitch (--basic-pitch) to 0")
    return path


def _session(threads: int):
    try:
        import onnxruntime
    except ImportError:
        raise BasicPitchMissing("onnxruntime is not installed (it runs basic-pitch's model): pip install "
                                "onnxruntime, or set f0_multi's basic_pitch (--basic-pitch) to 0") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # idle workers sleep instead of spinning: the rest of the graph needs the cores between windows
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])


class BasicPitchSalience:
    """basic-pitch's contour probabilities on sfgraph's multi-F0 grid, block by block.

    ``push(audio (n,))``, mono 16 kHz → (k, bins) probabilities 0..1 of the frames now
    complete, frame ``t`` at sample ``t * 256``, bin ``b`` at MIDI ``33 + b / 3``
    (``bins`` = 162, the multi-F0 network's). Frame ``t`` comes once
    ``lookahead_samples`` past sample ``t * 256`` are in; before the start is silence.
    """

    def __init__(self, bins: int, threads: int = 1):
        self.bins = bins
        self.session = _session(threads)
        self.input_name = self.session.get_inputs()[0].name
        self.resampler = stream_resampler(SAMPLE_RATE, RATE, 1)
        # the last contour frame that frame t reads, and when its window is complete
        last_frame_end = WINDOW - EDGE_FRAMES * HOP + HOP  # samples at RATE past a window's first kept frame
        self.lookahead_samples = ceil(last_frame_end * SAMPLE_RATE / RATE) + int(self.resampler.input_latency) + 1
        self.reset()

    def reset(self) -> None:
        self.resampler.reset()
        self.pending = np.zeros(EDGE_FRAMES * HOP, dtype=np.float32)  # 22.05-kHz audio from the next window's start
        self.contour = np.zeros((0, self.bins), dtype=np.float32)  # contour frames from first_contour on
        self.first_contour = 0
        self.next_frame = 0

    def push(self, audio: np.ndarray) -> np.ndarray:
        resampled = self.resampler.process(np.asarray(audio, dtype=np.float32).reshape(1, -1))[0]
        self.pending = np.concatenate([self.pending, resampled])
        windows = []
        while self.pending.size >= WINDOW:
            windows.append(self._window_contour(self.pending[:WINDOW]))
            self.pending = self.pending[KEPT_FRAMES * HOP:]
        if windows:
            self.contour = np.concatenate([self.contour, *windows])
        return self._frames()

    def _window_contour(self, window: np.ndarray) -> np.ndarray:
        """One window's kept frames, our bins: (KEPT_FRAMES, bins). One window per call:
        batching would let the result depend on how many windows a block completes."""
        contour = self.session.run([CONTOUR_OUTPUT], {self.input_name: window[None, :, None]})[0][0]
        return contour[EDGE_FRAMES:EDGE_FRAMES + KEPT_FRAMES, FIRST_BIN:FIRST_BIN + self.bins]

    def _frames(self) -> np.ndarray:
        """Our frames whose two neighbouring contour frames are both in. Frame t lies at
        contour frame t · 441 / 320 (22050 / 16000, both hops 256 samples): integers, exact."""
        available = self.first_contour + self.contour.shape[0]  # contour frames 0 .. available-1
        # frames t with floor(t · 441 / 320) + 1 < available, i.e. t · 441 < (available - 1) · 320
        end = max(-(-(available - 1) * FRAME_STEPS // CONTOUR_STEPS), 0)
        frames = np.arange(self.next_frame, end)
        if frames.size == 0:
            return np.zeros((0, self.bins), dtype=np.float32)
        below = frames * CONTOUR_STEPS // FRAME_STEPS
        weight = ((frames * CONTOUR_STEPS % FRAME_STEPS) / FRAME_STEPS)[:, None].astype(np.float32)
        below = below - self.first_contour
        out = (1.0 - weight) * self.contour[below] + weight * self.contour[below + 1]
        self.next_frame = end
        drop = self.next_frame * CONTOUR_STEPS // FRAME_STEPS - self.first_contour
        self.contour, self.first_contour = self.contour[drop:], self.first_contour + drop
        return out.astype(np.float32)
