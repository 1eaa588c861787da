"""F0 nodes: per-voice F0 tracks as an ``f0`` stream (voices, frames) in Hz, 0 = unvoiced.

Every node here emits the same ``f0`` port, labelled by voice, so they replace one
another in a graph: ``f0_files`` (CSV files), ``f0_score`` (a MIDI or MusicXML
score, optionally aligned to the recording), ``f0_crepe`` (tracking one voice per
audio channel), ``f0_multi`` (every voice from the mixture alone) and ``f0_midi``
(notes played live). ``f0_refine`` takes an ``f0`` stream and gives it back refined
against each voice's own audio (a first separation); ``f0_out`` writes one to files
that ``f0_files`` reads.
"""
from __future__ import annotations

import warnings
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from sfgraph.atomic import destination_problems, discard, partial_path
from sfgraph.data.layout import DatasetError, f0_csv_text, f0_doubts, read_f0_csv, resample_f0
from sfgraph.f0 import MULTIF0_MODEL, UNISON_LEAP_CENTS
from sfgraph.graph.errors import InputWarning, PortError
from sfgraph.graph.node import Node
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port, StreamSpec
from sfgraph.grid import DEFAULT_VOICES, HOP_LENGTH, SAMPLE_RATE, voice_order

if TYPE_CHECKING:  # torch loads with the tracker, when the node is set up
    from sfgraph.f0.multif0 import RecordingPeaks

# f0_multi and f0_refine: sfgraph.f0.unison's rule (0, or at least 100 cents: check_leap_cents)
UNISON_LEAP_PARAM = Param("float", UNISON_LEAP_CENTS, "a voice that leaps at least this far onto another's pitch "
                          "reads silent while they share it (a lost voice, not a sung unison; 0: off, else "
                          "at least 100)", unit="cents", range=(0.0, 2400.0))

_FRAME_PARAMS = {
    "sample_rate": Param("int", SAMPLE_RATE, "rate the frames refer to", unit="Hz", range=(1000, 192000)),
    "hop": Param("int", HOP_LENGTH, "samples per frame", unit="samples", range=(1, 8192)),
}


class _Track(Node):
    """A source that plays a track computed at configure time (``set_track``)."""

    def set_track(self, track: np.ndarray) -> None:
        """``track``: (voices, frames) Hz on ``frame_grid``."""
        self.track = track.astype(np.float32)
        self.duration_seconds = track.shape[-1] * self.p.hop / self.p.sample_rate  # for progress bars

    def frame_grid(self, seconds: float) -> np.ndarray:
        """Times (s) of the frames covering ``seconds``: frame t at t·hop/sample_rate."""
        frame_seconds = self.p.hop / self.p.sample_rate
        return np.arange(int(round(seconds / frame_seconds)) + 1) * frame_seconds

    def whole_track(self, mix: np.ndarray) -> np.ndarray:
        """F0 (voices, frames) Hz of a whole recording, on ``frame_grid`` (for adapting a
        model to it); a track's F0 does not depend on ``mix``."""
        return self.track

    def f0_spec(self, voices) -> StreamSpec:
        return StreamSpec("f0", (len(voices),), Fraction(self.p.sample_rate, self.p.hop), tuple(voices))

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


class F0Files(_Track):
    """Reads ``<voice>.csv`` files (header ``time_s,f0_hz``, as in the dataset layout).

    Output ``f0``: (voices, frames) Hz at ``sample_rate / hop`` frames per second
    (frame t at t·hop/sample_rate s), labelled by voice name. Tracks on another
    time grid are resampled (log-frequency interpolation, voicing from the nearest
    frame). Frames after a track's end are 0. Warns (``InputWarning``) about a voice
    with no voiced frame or with F0s outside the range of singing; an offline render
    warns about a file that ends clearly before the audio.
    """

    type_name = "f0_files"
    outputs = {"f0": Port("f0", "F0 per voice", unit="Hz")}
    params = {
        "dir": Param("path", doc="folder holding <voice>.csv"),
        "voices": Param("list[str]", None, "voice names in order (default: every csv, soprano alto tenor bass first)"),
        **_FRAME_PARAMS,
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
        self.ends = [(str(folder / f"{voice}.csv"), float(times[-1])) for voice, (times, _) in zip(voices, tracks)]
        for voice, (times, f0) in zip(voices, tracks):
            for doubt in f0_doubts(folder / f"{voice}.csv", times, f0):
                warnings.warn(doubt, InputWarning, stacklevel=2)
        grid = self.frame_grid(max(times[-1] for times, _ in tracks))
        self.set_track(np.stack([resample_f0(times, f0, grid) for times, f0 in tracks]))
        return {"f0": self.f0_spec(voices)}

    def coverage(self):
        return self.ends


class F0Score(_Track):
    """F0 from a score: a MIDI file or a MusicXML (any format music21 reads), one part or
    track per voice (see ``sfgraph.f0.score`` for how voices are found and named).

    Output ``f0``: (voices, frames) Hz at ``sample_rate / hop`` frames per second.
    Score time t sounds at ``offset_s + t / tempo_scale`` s. With ``align_to`` (a
    recording of the score, usually the mixture being separated) the score is then
    aligned to it by DTW on chroma (``sfgraph.f0.align``) at configure time, and the
    track lasts as long as the recording; otherwise it ends one frame after the last note.
    """

    type_name = "f0_score"
    outputs = {"f0": Port("f0", "F0 per voice", unit="Hz")}
    params = {
        "path": Param("path", doc="MIDI file (.mid) or score (.musicxml, .mxl, ...)"),
        "voices": Param("list[str]", None, "part names to keep, or one name per part in order "
                                           "(default: every part, named after it)"),
        "offset_s": Param("float", 0.0, "when the score's time 0 sounds", unit="s"),
        "tempo_scale": Param("float", 1.0, "played this many times as fast as written", range=(0.05, 20.0)),
        "align_to": Param("path", None, "recording to align the score to (e.g. the mixture)"),
        **_FRAME_PARAMS,
    }

    def configure(self, inputs, context):
        from sfgraph.data.audio import read_wav
        from sfgraph.f0.align import align_score
        from sfgraph.f0.score import read_score

        score = read_score(context.input_path(self.p.path), self.p.voices).placed(self.p.offset_s,
                                                                                  self.p.tempo_scale)
        if self.p.align_to is not None:
            recording, rate = read_wav(context.input_path(self.p.align_to))
            score = align_score(score, recording.mean(axis=0), rate)
            seconds = recording.shape[1] / rate
        else:
            seconds = score.end_s + self.p.hop / self.p.sample_rate
        self.set_track(score.f0_at(self.frame_grid(seconds)))
        return {"f0": self.f0_spec(score.voices)}


class F0Crepe(Node):
    """Tracks each voice's F0 with CREPE, one voice per input channel (close microphones,
    separate recordings), block by block.

    Input ``audio``: (voices, samples) at 16 kHz (other rates are resampled),
    consumed 256 samples (one frame) at a time. Outputs at 62.5 frames/s, frame t
    at sample t·256, labelled by voice: ``f0`` (voices, frames) Hz, 0 where the
    confidence is below ``threshold``; ``confidence`` (voices, frames) in 0..1.
    Frame t needs the input up to 512 samples past it (half CREPE's window), plus
    ``viterbi_lag`` frames for the Viterbi decoder and half the median filter: its
    output stays on the timeline but runs that far behind its input (``lookahead``).
    Offline and live give the same frames (see ``sfgraph.f0.crepe``).
    """

    type_name = "f0_crepe"
    inputs = {"audio": Port("audio", "one voice per channel", rate=SAMPLE_RATE, quantum=HOP_LENGTH)}
    outputs = {"f0": Port("f0", "F0 per voice", unit="Hz"),
               "confidence": Port("control", "CREPE's confidence per voice and frame, 0..1")}
    params = {
        "model": Param("str", "tiny", "CREPE capacity: tiny (fast) or full (accurate, slow)", choices=("tiny", "full")),
        "decoder": Param("str", "viterbi", "viterbi (fixed-lag, smooth), weighted_argmax or argmax",
                         choices=("viterbi", "weighted_argmax", "argmax")),
        "threshold": Param("float", 0.3, "confidence below which a frame is unvoiced", range=(0.0, 1.0), live=True),
        "median": Param("int", 3, "median filter width on pitch and confidence (odd; 1 = none)",
                        unit="frames", range=(1, 31)),
        "viterbi_lag": Param("int", 8, "frames the Viterbi decoder waits before deciding a frame",
                             unit="frames", range=(0, 64)),
        "silence_db": Param("float", -60.0, "windows quieter than this are silent (confidence 0)", unit="dBFS",
                            range=(-160.0, 0.0)),
        "voices": Param("list[str]", None, "voice names, one per channel (default: the channel labels, "
                                           "or soprano alto tenor bass for 4 unlabelled channels)"),
        "device": Param("str", "auto", "auto (CUDA when available), cpu, cuda, cuda:N"),
        "threads": Param("int", 1, "CPU threads for the network (1 keeps small live blocks cheap)", range=(1, 64)),
    }

    def configure(self, inputs, context):
        from sfgraph.f0.crepe import TrackerOptions

        spec = inputs["audio"]
        if self.p.voices is not None:
            if len(self.p.voices) != spec.channels:
                raise PortError("audio", f"has {spec.channels} channel(s) but {len(self.p.voices)} voices are named "
                                         f"({', '.join(self.p.voices)}): CREPE tracks one voice per channel")
            voices = tuple(self.p.voices)
        elif spec.labels is not None:
            voices = spec.labels
        else:
            voices = DEFAULT_VOICES if spec.channels == len(DEFAULT_VOICES) else spec.channel_labels()
        self.options = TrackerOptions(capacity=self.p.model, decoder=self.p.decoder, threshold=self.p.threshold,
                                      median_frames=self.p.median, viterbi_lag=self.p.viterbi_lag,
                                      silence_db=self.p.silence_db, device=self.p.device, threads=self.p.threads)
        self.options.check()
        self.lookahead = self.options.lookahead_samples
        rate = Fraction(SAMPLE_RATE, HOP_LENGTH)
        return {"f0": StreamSpec("f0", (len(voices),), rate, voices),
                "confidence": StreamSpec("control", (len(voices),), rate, voices)}

    def prepare(self):
        from sfgraph.f0.crepe import CrepeTracker

        self.tracker = CrepeTracker(self.output_specs["f0"].channels, self.options)
        self.tracker.warm_up()

    def reset(self):
        self.tracker.reset()

    def process(self, audio):
        self.tracker.threshold = self.p.threshold
        f0, confidence = self.tracker.push(audio)
        return {"f0": f0, "confidence": confidence}


class F0Multi(Node):
    """Every voice's F0 from the mixture alone (one microphone on the whole choir), block by
    block: a salience network finds the pitches sung in each frame and a fixed-lag
    Viterbi tracker assigns them to the voices, high to low, by range and continuity
    (see ``sfgraph.f0.multif0``).

    Input ``mix``: (1, samples) at 16 kHz (other rates are resampled; several
    channels are averaged first), consumed 256 samples (one frame) at a time.
    Outputs at 62.5 frames/s, frame t at sample t·256, labelled by voice: ``f0``
    (voices, frames) Hz, 0 when the voice is silent or leapt onto another voice's pitch
    (``unison_leap_cents``, ``sfgraph.f0.unison``; no added look-ahead); ``confidence``
    (voices, frames) 0..1, the salience of the voice's pitch. ``mode: offline`` (the more
    accurate): the salience mixes basic-pitch's contours in (``basic_pitch``, weight 0.4,
    ``sfgraph.f0.basic_pitch``), whose 2-s windows make frame t need the input up to
    29279 samples (1.83 s) past it, then the tracker's ``viterbi_lag`` frames (``lookahead``:
    2.15 s by default); with ``basic_pitch: 0``, 1024 samples (half the 2048-sample
    window) plus the network's 4 frames and the lag (0.45 s, 0.19 s with a lag of 4).
    ``mode: live``: ``live_lookahead`` frames of 16 ms in all, 2 by default (the window ends 512 samples
    past frame t, the tracker decides at once; a lag of 1 or 2 frames takes its share
    from the window), for live graphs; on the test fixture's chorales it finds about
    0.84 of the pitches where offline finds 0.95. ``live_lookahead: 1`` (the window
    ends 256 samples past frame t) saves 16 ms at a further cost (README, "Live").
    Either mode gives the same frames offline and live.
    """

    type_name = "f0_multi"
    inputs = {"mix": Port("audio", "the mixture", rate=SAMPLE_RATE, quantum=HOP_LENGTH)}
    outputs = {"f0": Port("f0", "F0 per voice", unit="Hz"),
               "confidence": Port("control", "salience of each voice's pitch, 0..1")}
    params = {
        "model": Param("path", MULTIF0_MODEL, "salience model folder (from 'sfgraph train-f0')"),
        "voices": Param("list[str]", list(DEFAULT_VOICES), "voice names, highest voice first"),
        "ranges": Param("list[str]", None, "LOW-HIGH note range per voice, e.g. [C4-A5, F3-D5, C3-A4, E2-E4] "
                                           "(default: from the voice names soprano, alto, tenor, bass)"),
        "threshold": Param("float", 0.2, "least salience of a pitch candidate", range=(0.01, 0.99)),
        "mode": Param("str", "offline", "offline (accurate, 2.15 s look-ahead, 0.45 s with basic_pitch 0) or live "
                                        "(live_lookahead × 16 ms)",
                      choices=("offline", "live")),
        "viterbi_lag": Param("int", None, "frames the tracker waits before deciding a frame (default 20 offline, "
                                          "0 live; live allows up to live_lookahead)", unit="frames", range=(0, 200)),
        "live_lookahead": Param("int", 2, "live mode: frames of 16 ms the tracker looks ahead in all "
                                          "(its analysis window and its lag)", unit="frames", range=(0, 2)),
        "threads": Param("int", 1, "CPU threads for the networks", range=(1, 64)),
        "unison_leap_cents": UNISON_LEAP_PARAM,
        "basic_pitch": Param("float", None, "weight of basic-pitch's salience beside the network's (offline mode "
                                            "only: it looks 1.8 s ahead; default 0.4 offline, 0 live)",
                             range=(0.0, 1.0)),
    }

    def configure(self, inputs, context):
        from sfgraph.f0.multif0 import MultiF0Options, MultiF0Tracker, parse_ranges

        self.options = MultiF0Options(model=context.input_path(self.p.model), voices=tuple(self.p.voices),
                                      ranges=parse_ranges(self.p.ranges) if self.p.ranges else None,
                                      threshold=self.p.threshold, mode=self.p.mode,
                                      viterbi_lag=self.p.viterbi_lag, live_lookahead=self.p.live_lookahead,
                                      threads=self.p.threads, unison_leap_cents=self.p.unison_leap_cents,
                                      basic_pitch=self.p.basic_pitch)
        self.tracker = MultiF0Tracker(self.options)
        self.lookahead = self.tracker.lookahead_samples
        rate = Fraction(SAMPLE_RATE, HOP_LENGTH)
        voices = tuple(self.p.voices)
        return {"f0": StreamSpec("f0", (len(voices),), rate, voices),
                "confidence": StreamSpec("control", (len(voices),), rate, voices)}

    def use_peaks(self, peaks: RecordingPeaks) -> None:
        """Offline: decide the voices from ``peaks``, the salience peaks of the whole
        recording this node is about to be given (``sfgraph.f0.multif0.whole_peaks`` with this
        node's settings; its ranges may differ), instead of computing them again from the
        audio (``MultiF0Tracker.use_peaks`` of their ``tracked``): ``sfgraph separate --f0
        auto`` computes them once to fit the ranges. The outputs are the same frames, each
        when the input is ``lookahead`` past it."""
        try:
            self.tracker.use_peaks(peaks.tracked)
        except ValueError as exc:  # a live node
            raise ValueError(f"node '{self.id}': {exc}") from None

    def prepare(self):
        self.reset()

    def reset(self):
        self.tracker.reset()

    def process(self, mix):
        f0, confidence = self.tracker.push(mix.mean(axis=0))
        return {"f0": f0, "confidence": confidence}

    def whole_track(self, mix: np.ndarray) -> np.ndarray:
        """F0 (voices, frames) Hz of a whole mono 16 kHz recording ``mix`` (samples,), the
        frames ``process`` gives block by block (for adapting a model to it)."""
        from sfgraph.f0.multif0 import estimate_f0

        return estimate_f0(mix, self.options)


class F0Refine(Node):
    """Refines F0 tracks against each voice's own audio, e.g. a first separation from an
    F0 estimated on the mixture, for a second, better separation (``graphs/separate_auto.yaml``):
    each voice's pitch moves to where its partials' peaks are, within ``reach_cents``
    (see ``sfgraph.f0.refine``).

    Inputs: ``voices`` (voices, samples) at 16 kHz, one voice per channel, consumed 256
    samples (one frame) at a time; ``f0`` (voices, frames) Hz at 62.5 frames/s, frame t
    at sample t·256, the same voices in the same order. Output ``f0``: the refined F0,
    same shape, labels and units, 0 where the input F0 is 0, where the voice is
    ``quiet_db`` below its level in the ``quiet_reach`` frames either side (``sfgraph.f0.quiet``)
    and where a voice leapt onto another's pitch (``unison_leap_cents``, ``sfgraph.f0.unison``).
    Frame t needs the voices' audio up to ``n_fft / 2 + quiet_reach · 256`` samples past it
    (320 ms by default; ``n_fft / 2`` with ``quiet_db`` 0): its output stays on the
    timeline but runs that far behind its input (``lookahead``). Offline and live give
    the same frames.
    """

    type_name = "f0_refine"
    inputs = {"voices": Port("audio", "one voice per channel (e.g. a first separation)", rate=SAMPLE_RATE,
                             quantum=HOP_LENGTH),
              "f0": Port("f0", "F0 per voice, to refine", unit="Hz", rate=Fraction(SAMPLE_RATE, HOP_LENGTH))}
    outputs = {"f0": Port("f0", "refined F0 per voice", unit="Hz")}
    params = {
        "n_fft": Param("int", 2048, "analysis window (power of two; half of it is look-ahead)", unit="samples",
                       range=(512, 8192)),
        "reach_cents": Param("float", 100.0, "how far from the given F0 a partial is looked for", unit="cents",
                             range=(1.0, 600.0)),
        "harmonics": Param("int", 12, "partials used, lowest first", range=(1, 64)),
        "quiet_db": Param("float", 12.0, "a frame where the voice is this far below its level around it reads "
                          "silent (0: off)", unit="dB", range=(0.0, 120.0)),
        "quiet_reach": Param("int", 16, "frames either side whose level a frame is compared with (look-ahead)",
                             unit="frames", range=(1, 256)),
        "unison_leap_cents": UNISON_LEAP_PARAM,
    }

    def configure(self, inputs, context):
        from sfgraph.f0.refine import RefineOptions

        voices, f0 = inputs["voices"], inputs["f0"]
        if voices.channels != f0.channels:
            raise PortError("voices", f"has {voices.channels} channel(s) but the F0 input has {f0.channels} voice(s)")
        if voices.labels is not None and f0.labels is not None and tuple(voices.labels) != tuple(f0.labels):
            raise PortError("voices", f"carries {', '.join(voices.labels)} but the F0 input has "
                                      f"{', '.join(f0.labels)}: connect the same voices in the same order")
        self.options = RefineOptions(n_fft=self.p.n_fft, reach_cents=self.p.reach_cents, harmonics=self.p.harmonics,
                                     quiet_db=self.p.quiet_db, quiet_reach=self.p.quiet_reach,
                                     unison_leap_cents=self.p.unison_leap_cents)
        self.options.check()
        self.lookahead = self.options.lookahead_samples
        return {"f0": f0}

    def prepare(self):
        from sfgraph.f0.refine import F0Refiner

        self.refiner = F0Refiner(self.output_specs["f0"].channels, self.options)

    def reset(self):
        self.refiner.reset()

    def process(self, voices, f0):
        return {"f0": self.refiner.push(voices, f0)}


class F0Out(Node):
    """Writes each voice's F0 to ``<voice>.csv`` in a folder, the files ``f0_files`` and
    ``sfgraph separate --f0`` read (header ``time_s,f0_hz``, 0 = unvoiced).

    Input ``f0``: (voices, frames) Hz at any frame rate (62.5 frames/s from the F0 nodes),
    one file per voice, named by its label; frame t is written at t / rate seconds.
    Offline the graph's latency is removed first, so the times are the recording's. The
    files are written when the render ends and moved into place with its other outputs,
    all together, only if it succeeded (``sfgraph.atomic``).
    """

    type_name = "f0_out"
    inputs = {"f0": Port("f0", "F0 per voice", unit="Hz")}
    params = {"dir": Param("str", "f0", "folder for <voice>.csv, relative to the output folder")}

    def configure(self, inputs, context):
        spec = inputs["f0"]
        self.targets = [context.output_path(f"{self.p.dir}/{label}.csv") for label in spec.channel_labels()]
        problems = destination_problems(self.targets)
        if problems:
            raise ValueError("; ".join(problems))
        self.rate = float(spec.rate)
        return {}

    def prepare(self):
        self.blocks = []

    def process(self, f0):
        self.blocks.append(np.array(f0, dtype=np.float64))
        return {}

    def close(self, ok=True):
        if not ok:
            discard(self.staged_outputs())
            return
        track = np.concatenate(self.blocks, axis=1) if self.blocks else np.zeros((len(self.targets), 0))
        times = np.arange(track.shape[1]) / self.rate
        for final, values in zip(self.targets, track):
            final.parent.mkdir(parents=True, exist_ok=True)
            partial_path(final).write_text(f0_csv_text(times, values))

    def staged_outputs(self):
        return [(partial_path(final), final) for final in self.targets]

    @property
    def written(self) -> list:
        return list(self.targets)


class F0Midi(Node):
    """F0 from notes played live: one MIDI channel per voice (python-rtmidi, JACK by default).

    Output ``f0``: (voices, frames) Hz at ``sample_rate / hop`` frames per second;
    each voice follows the latest key held on its channel, bent by the pitch wheel
    (``bend_range`` semitones at full throw), 0 Hz when no key is held. Messages are
    applied at the start of the block after they arrive. The MIDI input is a
    virtual port named after the node (``sfgraph-f0:<id>``) unless ``port`` names
    an output port to connect to. Live graphs only: an offline render runs faster
    than real time, so nobody could play along; there, configuring it is an error
    (use ``f0_score`` for a MIDI file).
    """

    type_name = "f0_midi"
    outputs = {"f0": Port("f0", "F0 per voice", unit="Hz")}
    params = {
        "voices": Param("list[str]", list(DEFAULT_VOICES), "voice names"),
        "channels": Param("list[float]", None, "MIDI channel (1-16) of each voice (default 1, 2, 3 ...)",
                          range=(1, 16)),
        "bend_range": Param("float", 2.0, "pitch-wheel range", unit="semitones", range=(0.0, 48.0)),
        "port": Param("str", None, "connect to the first MIDI output port whose name contains this "
                                   "(default: open a virtual input port)"),
        "api": Param("str", "jack", "MIDI system", choices=("jack", "alsa")),
        **_FRAME_PARAMS,
    }

    def configure(self, inputs, context):
        if context.mode != "live":
            raise ValueError("f0_midi turns notes played now into F0, so it runs in live graphs only "
                             "('sfgraph live'); to render from a MIDI file use f0_score")
        channels = self.p.channels or list(range(1, len(self.p.voices) + 1))
        if len(channels) != len(self.p.voices) or any(c != int(c) for c in channels):
            raise ValueError(f"channels must give one whole MIDI channel (1-16) per voice "
                             f"({len(self.p.voices)} voices), got {channels}")
        self.channels = [int(c) - 1 for c in channels]
        return {"f0": StreamSpec("f0", (len(self.p.voices),), Fraction(self.p.sample_rate, self.p.hop),
                                 tuple(self.p.voices))}

    def prepare(self):
        from sfgraph.f0.midi_live import NotesToF0
        from sfgraph.midi_io import MidiError, MidiInput

        self.notes = NotesToF0(self.channels, self.p.bend_range)
        try:
            self.midi = MidiInput(self.notes.receive, api=self.p.api, client_name="sfgraph-f0",
                                  port_name=self.id, connect=self.p.port)
        except MidiError as exc:
            hint = " (is a JACK server running?)" if self.p.api == "jack" else ""
            raise ValueError(f"{exc}{hint}") from None

    def reset(self):
        self.notes.reset()

    def process(self, n):
        return {"f0": np.repeat(self.notes.current()[:, None], n, axis=1).astype(np.float32)}

    def close(self, ok=True):
        midi = getattr(self, "midi", None)
        if midi is not None:
            midi.close()
            self.midi = None
