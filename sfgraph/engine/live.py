"""The live driver: a graph between a sound device's inputs and outputs, in real time.

Three threads share the work:

- the **audio callback** (PortAudio's thread) only moves frames between the device
  buffers and lock-free rings (``sfgraph.buffers.FrameRing``), one per device
  endpoint node (``DeviceInputEndpoint`` / ``DeviceOutputEndpoint`` of
  ``sfgraph.graph.node``: ``device_in`` / ``device_out``), advances the frame clock ``frames_played`` and wakes the
  worker through a non-blocking pipe. It never waits, never takes a lock and
  never allocates a buffer, so the GIL is held only for a few copies;
- the **worker** runs the graph's blocks (``Scheduler`` with
  ``on_error="silence"``): block ``t`` runs as soon as the callback has taken in
  ``t`` blocks of input. Param changes (MIDI, terminal) are applied between blocks;
- the **main thread** opens the device, waits for the end (duration, end of the
  input files, Ctrl-C, a lost device), prints what went wrong and writes the report.

Timing: every output ring is primed with silence so that the worker's output for a
block reaches the ring ``ahead_blocks`` blocks before the callback plays it. The
priming is measured, not guessed: before the stream opens, a rehearsal runs a
second copy of the graph on silence (which also compiles and warms up its code)
and records how many frames each device output receives after every block;
nodes that consume in steps (a model's hop, an STFT hop), resample or look ahead
deliver in bursts, and the priming covers the largest shortfall. The latency from
a sound entering the device to its processed version leaving it is then fixed:

    device input + device output buffers (as PortAudio reports them)
    + one block (a duplex callback cannot answer its own input)
    + ahead_blocks blocks (the worker's head start: its margin for slow blocks)
    + scheduling (nodes that deliver in bursts, measured by the rehearsal)
    + look-ahead (nodes that hold output back until more input is in: F0 trackers'
      windows and Viterbi lag, the synthesizer's next frame; ``Node.lookahead``)
    + node latency (the graph's content delay: STFT windows, plugin latency)

(``live_report.Latency`` holds these parts; ``terminal_view`` shows a run.)

A late worker costs a glitch, not a shift: the rings are addressed by absolute
frame position, so output that comes too late is dropped and the latency stays
what it was (see ``FrameRing``).

Xruns are reported by cause: the worker late (its output came after the callback
needed it: raise ``ahead_blocks``, or lighten the graph) or the device (PortAudio's
flags: the audio thread itself ran late; with JACK, run the server with real-time
scheduling, ``jackd -R``, which these small periods need on a busy machine). On a
virtual machine the hypervisor may stop the whole machine for longer than a block,
whatever runs in it: the report's ``cpu_stolen`` says how much of the CPU time it took.
On the 2-core development VM (about 10 % stolen) a thread at the highest real-time
priority, sleeping 1 ms at a time, woke more than 3 ms late 77 times in 15 s, once
12 ms late, and a PortAudio client doing nothing counted 0-2 device xruns in 20 s at
48 kHz / 256.

The worker asks for real-time scheduling at the lowest priority where the system allows
it (``sfgraph.threads.realtime_priority``; the report's ``worker_realtime``): otherwise an
offline job beside it preempts the worker while it holds the GIL, and the callback, which
needs the GIL too, runs late. ``choir_fx`` at block 256 beside ``sfgraph separate`` on 10
minutes on the busy 2-core machine: 126 and 1816 xruns in 20 s without, 2 and 0 with.
"""
from __future__ import annotations

import atexit
import gc
import math
import os
import select
import sys
import threading
import time
from collections import deque
from fractions import Fraction
from pathlib import Path

import numpy as np

from sfgraph.buffers import FrameRing
from sfgraph.engine.live_report import XRUN_KINDS, Latency, LiveReport
from sfgraph.engine.param_control import ParamControl
from sfgraph.engine.scheduler import Scheduler
from sfgraph.graph.build import BuiltGraph, build_graph
from sfgraph.graph.errors import GraphError
from sfgraph.graph.node import DeviceInputEndpoint, DeviceOutputEndpoint
from sfgraph.threads import StolenTime, realtime_priority

# Blocks the rehearsal runs beyond the graph's settling time and rate pattern,
# and at most in all.
_REHEARSAL_EXTRA_BLOCKS = 32
_REHEARSAL_MAX_BLOCKS = 4000
# Seconds of audio each ring holds: far more than the worker may lag before
# output is dropped anyway, so that input is never overwritten before it is read.
_RING_SECONDS = 4.0
# How many xrun events the callback logs in detail (it counts all of them).
_EVENT_LOG_SIZE = 4096
# Node errors kept in detail for the report.
_ERRORS_KEPT = 100


class DeviceError(RuntimeError):
    """A sound device cannot be opened, or stopped working while running."""


def build_live_graph(decl, output_dir: Path | None = None) -> BuiltGraph:
    """Build a graph for live use (device nodes talk to the driver)."""
    return build_graph(decl, output_dir=output_dir, mode="live")


class LiveEngine:
    """Runs a graph built with ``build_live_graph`` on a sound device.

    ``input_device`` / ``output_device``: a device index or a part of its name
    (None: PortAudio's default). ``ahead_blocks``: the worker's head start over the
    callback, in blocks. ``watchdog_seconds``: a device that calls back no more for
    this long counts as lost.
    """

    def __init__(self, graph: BuiltGraph, input_device=None, output_device=None, ahead_blocks: int = 2,
                 watchdog_seconds: float = 2.0, smoothing_ms: float | None = None):
        if graph.context.mode != "live":
            raise ValueError("build the graph with build_live_graph() to run it live")
        if ahead_blocks < 0:
            raise ValueError("ahead_blocks must be >= 0")
        self.graph = graph
        self.sample_rate = graph.context.sample_rate
        self.block_size = graph.context.block_size
        self.block_seconds = self.block_size / self.sample_rate
        self.input_device, self.output_device = input_device, output_device
        self.ahead_blocks = ahead_blocks
        self.watchdog_seconds = watchdog_seconds
        self.inputs = [n for n in graph.nodes.values() if isinstance(n, DeviceInputEndpoint)]
        self.outputs = [n for n in graph.nodes.values() if isinstance(n, DeviceOutputEndpoint)]
        if not self.inputs and not self.outputs:
            raise GraphError(f"{graph.decl.file}: a live graph needs a device_in or device_out node "
                             "(a graph of files runs with 'sfgraph render')")
        self._check_channels()
        self.scheduler = Scheduler(graph, align_outputs=False, on_error="silence")
        control_options = {} if smoothing_ms is None else {"smoothing_ms": smoothing_ms}
        self.control = ParamControl(self.block_seconds, lambda: self.scheduler.ticks, **control_options)
        self.meters = [(node_id, node.level_meter) for node_id, node in graph.nodes.items()
                       if node.level_meter is not None]
        self.latency: Latency | None = None
        self.cpu_stolen: float | None = None  # the hypervisor's share while the stream ran (StolenTime)
        self._stream = None
        self._init_counters()

    def _check_channels(self) -> None:
        for kind, nodes in (("input", self.inputs), ("output", self.outputs)):
            used: dict[int, str] = {}
            for node in nodes:
                for channel in node.device_channels:
                    if channel in used:
                        raise GraphError(f"{self.graph.decl.file}: device {kind} {channel + 1} is used by both "
                                         f"'{used[channel]}' and '{node.id}'")
                    used[channel] = node.id

    def _init_counters(self) -> None:
        # written by the callback only
        self.frames_played = 0
        self.callbacks = 0
        self.callback_errors = 0
        self.xrun_counts = [0] * len(XRUN_KINDS)
        self._events = np.zeros((_EVENT_LOG_SIZE, 3), dtype=np.int64)  # frame position, kind, frames
        self._event_count = 0
        # written by the worker only
        self.cpu_seconds = 0.0
        self.worker_realtime = False
        self.block_loads: deque[float] = deque(maxlen=100_000)  # CPU time / block duration, per block
        self.node_error_count = 0
        self.node_errors: list[dict] = []
        self.new_node_errors: deque[str] = deque(maxlen=1000)  # for the main thread to print
        self.input_end_frame: int | None = None  # set once input files have ended and played out
        self.failure: BaseException | None = None
        self._overruns_seen = 0
        self._worker_events: list[tuple[int, int]] = []  # (frame position, xrun kind) of input overruns

    # -- preparation ----------------------------------------------------------------
    def rehearse(self) -> dict[str, list[int]]:
        """Run a second copy of the graph on silence; frames each device output node has
        received after every block (block 0: none), by node id."""
        copy = build_live_graph(self.graph.decl, self.graph.context.output_dir)
        scheduler = Scheduler(copy, on_error="raise")
        outputs = {n.id: n for n in copy.nodes.values() if isinstance(n, DeviceOutputEndpoint)}
        received = {node_id: [0] for node_id in outputs}
        try:
            scheduler.prepare()
            for _ in range(self._rehearsal_blocks()):
                scheduler.run_block()
                for node_id, node in outputs.items():
                    received[node_id].append(node.frames_out)
        finally:
            scheduler.close(ok=False)
        for node_id, frames in received.items():
            if frames[-1] == 0:
                raise GraphError(f"{self.graph.decl.file}: node '{node_id}' received no audio in "
                                 f"{len(frames) - 1} blocks: nothing would be heard")
        return received

    def _rehearsal_blocks(self) -> int:
        """Enough blocks to see the graph settle and its bursts repeat."""
        period = 1
        for edge in self.graph.edges:
            rate = edge.resample_to or edge.spec.rate
            quantum = self.graph.nodes[edge.connection.dst].input_ports[edge.connection.dst_port].quantum
            period = math.lcm(period, (Fraction(self.block_size) * rate / (self.sample_rate * quantum)).denominator)
        settle = math.ceil(self.graph.total_latency() * self.sample_rate / self.block_size)
        return min(_REHEARSAL_MAX_BLOCKS, _REHEARSAL_EXTRA_BLOCKS + 2 * settle + 2 * period)

    def prepare(self) -> None:
        """Rehearse, then prime each output ring so that every device output has the
        same latency, ``ahead_blocks`` blocks of margin included."""
        received = self.rehearse()
        # node latency and look-ahead of each output, in device frames
        node_latency = {n.id: round(self.graph.arrival[n.id] * self.sample_rate) for n in self.outputs}
        lookahead = {n.id: round(self.graph.lookahead[n.id] * self.sample_rate) for n in self.outputs}
        # frames of priming each output needs with a worker that takes no time
        needed = {node_id: max((k + 1) * self.block_size - frames[k] for k in range(len(frames)))
                  for node_id, frames in received.items()}
        content_delay = max((needed[i] + node_latency[i] for i in needed), default=self.block_size)
        self.target_delay = content_delay + self.ahead_blocks * self.block_size
        capacity = max(round(_RING_SECONDS * self.sample_rate), 4 * self.target_delay)
        for node in self.inputs:
            node.attach(FrameRing(len(node.device_channels), capacity))
        for node in self.outputs:
            ring = FrameRing(len(node.device_channels), capacity)
            ring.write_zeros(self.target_delay - node_latency[node.id])
            node.attach(ring)
        largest_node_latency = max(node_latency.values(), default=0)
        largest_lookahead = max(lookahead.values(), default=0)
        # the rehearsal's delay holds the look-ahead; what it measured beyond that is bursts
        self._latency_parts = dict(block=self.block_size, block_queue=self.ahead_blocks * self.block_size,
                                   scheduling=content_delay - self.block_size - largest_node_latency
                                   - largest_lookahead,
                                   lookahead=largest_lookahead, nodes=largest_node_latency)
        self.scheduler.prepare()

    # -- the audio callback ---------------------------------------------------------
    def _callback(self, indata, outdata, frames, status) -> None:
        """PortAudio's thread: frames in, frames out, nothing else."""
        try:
            if status:
                self._log_flags(status)
            if indata is not None:
                for ring, lo, hi in self._in_routes:
                    ring.write(indata[:, lo:hi])
            if outdata is not None:
                position = self.frames_played
                short = 0
                for ring, lo, hi in self._out_routes:
                    missing, _ = ring.read_into(outdata[:, lo:hi], position)
                    short = max(short, missing)
                for lo, hi in self._out_gaps:
                    outdata[:, lo:hi] = 0.0
                if short:
                    self._log_event(0, short)
        except Exception:  # never let an exception stop the stream; count it, play silence
            self.callback_errors += 1
            if outdata is not None:
                outdata.fill(0.0)
        self.frames_played += frames
        self.callbacks += 1
        try:
            os.write(self._wake_write, b"\0")
        except OSError:  # the pipe is full: the worker is awake anyway
            pass

    def _log_flags(self, status) -> None:
        for kind, flag in ((1, status.output_underflow), (2, status.input_underflow),
                           (3, status.input_overflow), (4, status.output_overflow)):
            if flag:
                self._log_event(kind, 0)

    def _log_event(self, kind: int, frames: int) -> None:
        self.xrun_counts[kind] += 1
        if self._event_count < _EVENT_LOG_SIZE:
            row = self._events[self._event_count]
            row[0], row[1], row[2] = self.frames_played, kind, frames
        self._event_count += 1

    # -- the worker -----------------------------------------------------------------
    def _work(self) -> None:
        self.worker_realtime = realtime_priority()
        try:
            while not self._stopping.is_set():
                self._sleep_until_woken()
                while (not self._stopping.is_set()
                       and self.frames_played >= (self.scheduler.ticks + 1) * self.block_size):
                    self._run_block()
        except BaseException as exc:  # reported by the main thread
            self.failure = exc
        finally:
            self._worker_done.set()

    def _sleep_until_woken(self) -> None:
        ready, _, _ = select.select([self._wake_read], [], [], 4 * self.block_seconds)
        if ready:
            os.read(self._wake_read, 4096)

    def _run_block(self) -> None:
        self.control.apply_pending()
        started = time.thread_time()
        self.scheduler.run_block()
        cpu = time.thread_time() - started
        self.cpu_seconds += cpu
        self.block_loads.append(cpu / self.block_seconds)
        for tick, error in self.scheduler.errors:
            self.node_error_count += 1
            if len(self.node_errors) < _ERRORS_KEPT:
                self.node_errors.append({"block": tick, "time_s": round(tick * self.block_seconds, 3),
                                         "node": error.node_id, "message": str(error)})
            self.new_node_errors.append(f"{tick * self.block_seconds:8.3f} s: {error}; silence for that block")
        self.scheduler.errors.clear()
        lost_blocks = sum(node.overruns for node in self.inputs)
        if lost_blocks > self._overruns_seen:
            self._overruns_seen = lost_blocks
            self._worker_events.append((self.scheduler.ticks * self.block_size, 5))
        if self.input_end_frame is None and not self.inputs and self.scheduler.sources_done:
            # the input files have ended: play on until their last sound has left
            input_end = math.ceil(self.scheduler.duration() * self.sample_rate)
            self.input_end_frame = input_end + self.target_delay

    # -- running --------------------------------------------------------------------
    def run(self, duration: float | None = None, on_open=None, on_status=None) -> LiveReport:
        """Run until ``duration`` seconds have played (None: until the input files end,
        or Ctrl-C) and return the report.

        ``on_open(stream)`` is called once the stream is open, before it starts (e.g.
        to connect JACK ports); ``on_status(engine)`` every 50 ms while running (the
        terminal view). Raises DeviceError when the device cannot be opened.
        """
        import sounddevice as sd

        if self.latency is not None:
            raise RuntimeError("a LiveEngine runs once; build a new one")
        self._stopping = threading.Event()
        self._worker_done = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        stream = self._open_stream(sd)
        self._stream = stream
        latency = stream.latency if isinstance(stream.latency, tuple) else (
            (stream.latency, 0.0) if not self.outputs else (0.0, stream.latency))
        self.latency = Latency(device_input=round(latency[0] * self.sample_rate) if self.inputs else 0,
                               device_output=round(latency[1] * self.sample_rate) if self.outputs else 0,
                               **self._latency_parts)
        self.duration_frame = None if duration is None else round(duration * self.sample_rate)
        ended, ok, device_lost = "stopped", True, False
        worker = threading.Thread(target=self._work, name="sfgraph-worker", daemon=True)
        previous_switch = sys.getswitchinterval()
        # the callback waits for the GIL at most this long while the worker holds it
        sys.setswitchinterval(min(previous_switch, self.block_seconds / 10))
        torch = sys.modules.get("torch")
        previous_threads = torch.get_num_threads() if torch else None
        if torch:  # torch's worker threads spin after each op, starving the audio thread of CPU
            torch.set_num_threads(1)
        # A full garbage collection walks every tracked object (torch, numba and the graph
        # leave about 260 000) holding the GIL, which the callback needs: 104-154 ms here, a
        # burst of xruns. Everything alive now is moved where collections never look (unless
        # the caller froze its own objects already: theirs to undo).
        freeze = gc.get_freeze_count() == 0
        stolen = None
        try:
            if freeze:
                gc.collect()
                gc.freeze()
            if on_open is not None:
                on_open(stream)
            worker.start()
            stolen = StolenTime()
            stream.start()
            ended, ok, device_lost = self._wait(on_status)
        except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM/SIGHUP under sfgraph.interrupt
            ended = f"interrupted ({interrupt or 'Ctrl-C'})"
        finally:
            if stolen is not None:
                self.cpu_stolen = stolen.share()
            self._stopping.set()
            os.write(self._wake_write, b"\0")
            if worker.ident is not None:  # not started when on_open raised
                worker.join(timeout=10)
            if freeze:
                gc.unfreeze()
            sys.setswitchinterval(previous_switch)
            if torch:
                torch.set_num_threads(previous_threads)
            if device_lost:
                # PortAudio asserts (aborting the process) when it closes a stream
                # whose device vanished: leave it to the operating system, and keep
                # sounddevice from closing it at exit
                atexit.unregister(sd._exit_handler)
            else:
                stream.stop()
                stream.close()
            os.close(self._wake_read)
            os.close(self._wake_write)
            self.scheduler.close(ok and self.failure is None)
        if self.failure is not None:
            raise self.failure
        return self._report(ended)

    def _open_stream(self, sd):
        n_in = max((n.device_channels.stop for n in self.inputs), default=0)
        n_out = max((n.device_channels.stop for n in self.outputs), default=0)
        self._in_routes = [(node.ring, node.device_channels.start, node.device_channels.stop) for node in self.inputs]
        self._out_routes = [(node.ring, node.device_channels.start, node.device_channels.stop)
                            for node in self.outputs]
        covered = np.zeros(n_out, dtype=bool)
        for _, lo, hi in self._out_routes:
            covered[lo:hi] = True
        self._out_gaps = [(i, i + 1) for i in np.flatnonzero(~covered)]
        options = dict(samplerate=self.sample_rate, blocksize=self.block_size, dtype="float32", latency="low")
        callback = self._callback
        try:
            if self.inputs and self.outputs:
                return sd.Stream(device=(self.input_device, self.output_device), channels=(n_in, n_out),
                                 callback=lambda i, o, f, t, s: callback(i, o, f, s), **options)
            if self.outputs:
                return sd.OutputStream(device=self.output_device, channels=n_out,
                                       callback=lambda o, f, t, s: callback(None, o, f, s), **options)
            return sd.InputStream(device=self.input_device, channels=n_in,
                                  callback=lambda i, f, t, s: callback(i, None, f, s), **options)
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceError(self._explain_open_failure(sd, exc, n_in, n_out)) from None

    def _explain_open_failure(self, sd, exc, n_in: int, n_out: int) -> str:
        try:
            devices = sd.query_devices()
        except sd.PortAudioError:
            devices = []
        if not len(devices):
            return ("no audio devices found (no sound card? start a JACK server, e.g. "
                    "'jackd -d dummy -r 48000 -p 256'); see 'sfgraph devices'")
        wanted = []
        if n_in:
            wanted.append(f"{n_in} input channel(s) from {self.input_device or 'the default input'}")
        if n_out:
            wanted.append(f"{n_out} output channel(s) on {self.output_device or 'the default output'}")
        short = [self._too_few_channels(sd, kind, needed, nodes) for kind, needed, nodes in
                 (("input", n_in, self.inputs), ("output", n_out, self.outputs)) if needed]
        return (f"cannot open {' and '.join(wanted)} at {self.sample_rate} Hz, blocks of {self.block_size}: "
                f"{exc}. {''.join(s for s in short if s)}See 'sfgraph devices' for the devices, their channels "
                "and rates (--samplerate sets the rate).")

    def _too_few_channels(self, sd, kind: str, needed: int, nodes) -> str:
        """Why a device cannot open, where it has fewer ``kind`` channels than the graph's
        device nodes use: the nodes and the channels each takes ("" where it has enough)."""
        device = self.input_device if kind == "input" else self.output_device
        try:
            info = sd.query_devices(device, kind)
        except (sd.PortAudioError, ValueError):
            return ""
        has = int(info[f"max_{kind}_channels"])
        if has >= needed:
            return ""
        uses = ", ".join(f"node '{n.id}' channels {n.device_channels.start + 1}-{n.device_channels.stop}"
                         for n in nodes)
        return (f"The graph uses {kind} channels up to {needed} ({uses}) but {info['name']} has {has}: "
                f"choose a device with {needed} (--{kind}-device) or change those nodes' channels. ")

    def _wait(self, on_status) -> tuple[str, bool, bool]:
        """Main thread: until the run ends; returns (how it ended, outputs ok, device lost)."""
        last_frames, last_progress = -1, time.monotonic()
        while True:
            if self._worker_done.wait(0.05):
                return ("failed: " + str(self.failure)) if self.failure else "stopped", False, False
            if on_status is not None:
                on_status(self)
            if self.duration_frame is not None and self.frames_played >= self.duration_frame:
                return "duration reached", True, False
            if self.input_end_frame is not None and self.frames_played >= self.input_end_frame:
                return "input ended", True, False
            now = time.monotonic()
            if self.frames_played != last_frames:
                last_frames, last_progress = self.frames_played, now
            lost_for = now - last_progress
            if not self._stream.active or lost_for > self.watchdog_seconds:
                why = ("the audio device stopped" if not self._stream.active else
                       f"no audio from the device for {lost_for:.1f} s")
                return f"device lost: {why}", False, True

    # -- status and report ----------------------------------------------------------
    def xrun_events(self) -> list[dict]:
        """Every xrun logged so far, in time order: time (s), kind, reason, frames."""
        rows = [tuple(int(v) for v in self._events[i]) for i in range(min(self._event_count, _EVENT_LOG_SIZE))]
        rows += [(position, kind, 0) for position, kind in self._worker_events]
        return [{"time_s": round(position / self.sample_rate, 4), "kind": XRUN_KINDS[kind][0],
                 "reason": XRUN_KINDS[kind][1], "frames": frames} for position, kind, frames in sorted(rows)]

    def xrun_totals(self) -> tuple[int, int, dict[str, int]]:
        """(underruns, overruns, count by reason)."""
        counts = list(self.xrun_counts)
        counts[5] = self._overruns_seen
        reasons = {XRUN_KINDS[k][1]: c for k, c in enumerate(counts) if c}
        under = sum(c for k, c in enumerate(counts) if XRUN_KINDS[k][0] == "under")
        return under, sum(counts) - under, reasons

    def cpu_load(self) -> float:
        """Worker CPU time per second of audio processed, as a fraction of one core."""
        blocks = self.scheduler.ticks
        return self.cpu_seconds / (blocks * self.block_seconds) if blocks else 0.0

    def _report(self, ended: str) -> LiveReport:
        under, over, reasons = self.xrun_totals()
        loads = np.asarray(self.block_loads) if self.block_loads else np.zeros(1)
        return LiveReport(
            graph=self.graph.decl.name, sample_rate=self.sample_rate, block_size=self.block_size,
            ahead_blocks=self.ahead_blocks, worker_realtime=self.worker_realtime,
            input_device=self._device_name(0), output_device=self._device_name(1),
            ended=ended, seconds=round(self.frames_played / self.sample_rate, 3), blocks=self.scheduler.ticks,
            callbacks=self.callbacks, xruns=under + over, underruns=under, overruns=over, xrun_reasons=reasons,
            xrun_events=self.xrun_events()[:_ERRORS_KEPT],
            latency_ms=round(self.latency.milliseconds(self.sample_rate)["total"], 3),
            latency_parts_ms={k: round(v, 3) for k, v in self.latency.milliseconds(self.sample_rate).items()
                              if k != "total"},
            cpu_load=round(self.cpu_load(), 4), cpu_load_peak=round(float(loads.max()), 4),
            cpu_load_p99=round(float(np.percentile(loads, 99)), 4),
            cpu_stolen=None if self.cpu_stolen is None else round(self.cpu_stolen, 4),
            node_errors=self.node_error_count, errors=self.node_errors, callback_errors=self.callback_errors,
            control_changes=self.control.applied_count,
            levels_dbfs={f"{node_id}.{label}": levels for node_id, meter in self.meters
                         for label, levels in meter.run_levels_db().items()},
            control_errors=list(self.control.errors))

    def _device_name(self, side: int) -> str | None:
        import sounddevice as sd

        if (side == 0 and not self.inputs) or (side == 1 and not self.outputs):
            return None
        device = self._stream.device
        index = device[side] if isinstance(device, (tuple, list)) else device
        try:
            return sd.query_devices(index)["name"]
        except (sd.PortAudioError, ValueError):
            return str(index)


def list_devices() -> str:
    """The sound devices PortAudio sees, one per line, defaults marked."""
    import sounddevice as sd

    devices = sd.query_devices()
    if not len(devices):
        return ("no audio devices found. Without a sound card, start a JACK server with a dummy clock:\n"
                "  jackd --no-realtime -d dummy -r 48000 -p 256 &")
    apis = sd.query_hostapis()
    default_in, default_out = sd.default.device
    lines = [f"{'#':>3}  {'name':32s} {'host API':28s} {'in':>3} {'out':>4} {'rate':>7}"]
    for device in devices:
        marks = [m for m, d in (("default input", default_in), ("default output", default_out))
                 if d == device["index"]]
        lines.append(f"{device['index']:>3}  {device['name'][:32]:32s} {apis[device['hostapi']]['name'][:28]:28s} "
                     f"{device['max_input_channels']:>3} {device['max_output_channels']:>4} "
                     f"{device['default_samplerate']:>7.0f}" + (f"  ({', '.join(marks)})" if marks else ""))
    return "\n".join(lines)
