"""Live commands: ``live``, ``devices`` and ``midi-learn`` (a sound device or MIDI port
that cannot be opened or is lost while running exits with ``EXIT_DEVICE``)."""
from __future__ import annotations

import argparse
import sys
import threading
from collections import deque
from pathlib import Path

from sfgraph.cli.arguments import add_command, add_graph_arguments, written_files
from sfgraph.cli.errors import EXIT_DEVICE, CliError

# A hypervisor taking this share of the CPU time or more is worth naming beside device xruns
# (a few per cent is common on shared cloud machines; real hardware reports 0).
_STOLEN_NOTABLE = 0.02

LIVE_DESCRIPTION = """\
Run a graph in real time: device_in nodes read the sound device's inputs, device_out
nodes play on its outputs (file_in nodes may stand in for microphones). The graph's
sample_rate is the device's rate; nodes that need another rate get resampled audio.

While running, a status view shows levels, the worker's CPU load, the latency and the
xruns (when the output is a terminal), and lines typed as TARGET=VALUE change live
params between blocks: mix.gain_db[0]=-6, mix.mute[2]=true, verb.params.wet_level=0.3.
A graph's 'midi:' section maps controllers to the same targets (see 'sfgraph midi-learn').
Ctrl-C stops. Files the graph writes are kept only when the run ends normally.
"""


def _device(text: str | None):
    """A device index (digits) or a part of a device name, as sounddevice takes them."""
    if text is None:
        return None
    return int(text) if text.strip().isdigit() else text


class _TerminalInput:
    """Reads TARGET=VALUE lines from a terminal and queues them as param changes."""

    def __init__(self, graph, control, show):
        self.graph, self.control, self.show = graph, control, show
        self.lines = 0
        threading.Thread(target=self._read, name="sfgraph-terminal", daemon=True).start()

    def _read(self) -> None:
        from sfgraph.engine.param_control import ControlError, parse_assignment

        for line in sys.stdin:
            self.lines += 1
            if not line.strip():
                continue
            try:
                target, value = parse_assignment(self.graph, line.strip())
            except ControlError as exc:
                self.show(f"  {exc}")
                continue
            self.control.submit(target, value)
            self.show(f"  {target.name} -> {value!r}")


class _PlainStatus:
    """Without a terminal view: print node errors and xruns as they happen, to stderr."""

    def __init__(self):
        self.events_seen = 0

    def __call__(self, engine) -> None:
        while engine.new_node_errors:
            print(f"sfgraph live: {engine.new_node_errors.popleft()}", file=sys.stderr)
        events = engine.xrun_events()
        for event in events[self.events_seen:]:
            frames = f" ({event['frames']} frames)" if event["frames"] else ""
            print(f"sfgraph live: {event['time_s']:8.3f} s: xrun: {event['reason']}{frames}", file=sys.stderr)
        self.events_seen = len(events)


def run_live(args) -> int:
    from sfgraph.engine.live import LiveEngine, build_live_graph
    from sfgraph.engine.midi_map import midi_receiver, parse_midi_map
    from sfgraph.engine.terminal_view import TerminalView
    from sfgraph.graph.declaration import load_graph_decl
    from sfgraph.midi_io import MidiError, open_midi_input

    decl = load_graph_decl(args.graph, args.param)
    if args.samplerate:
        decl.sample_rate = args.samplerate
    if args.blocksize:
        decl.block_size = args.blocksize
    graph = build_live_graph(decl, Path(args.output))
    midi_map = parse_midi_map(graph)
    engine = LiveEngine(graph, _device(args.input_device), _device(args.output_device), ahead_blocks=args.ahead,
                        smoothing_ms=midi_map.smoothing_ms)
    engine.prepare()
    view = TerminalView() if sys.stdout.isatty() and not args.quiet else None
    show = (lambda text: setattr(view, "message", text)) if view else (lambda text: print(text, file=sys.stderr))
    midi = None
    if (midi_map.rules or args.midi_port) and not args.no_midi:
        try:
            midi = open_midi_input(midi_receiver(midi_map, engine.control), args.midi_api, args.midi_port)
        except MidiError as exc:
            print(f"warning: no MIDI control: {exc}", file=sys.stderr)
    terminal = _TerminalInput(graph, engine.control, show) if sys.stdin.isatty() else None
    if view and terminal:
        view.typed_lines = lambda: terminal.lines

    def on_open(stream):
        print(f"{graph.decl.name}: {engine.sample_rate} Hz, blocks of {engine.block_size} "
              f"({1000 * engine.block_seconds:.2f} ms), worker {engine.ahead_blocks} blocks ahead; "
              f"{engine.latency.describe(engine.sample_rate)}")
        if midi is not None:
            print(f"MIDI: {len(midi_map.rules)} mapping(s) on {midi.port}")
        sys.stdout.flush()

    try:
        report = engine.run(args.duration, on_open=on_open, on_status=view or _PlainStatus())
    finally:
        if midi is not None:
            midi.close()
    if args.report:
        report.write(Path(args.report))
    print(f"{report.ended} after {report.seconds:.1f} s: {report.blocks} blocks, {report.xruns} xruns "
          f"({report.underruns} under, {report.overruns} over), worker CPU {100 * report.cpu_load:.0f}% "
          f"(peak {100 * report.cpu_load_peak:.0f}%{'' if report.worker_realtime else ', no real-time scheduling'}), "
          f"latency {report.latency_ms:.1f} ms, "
          f"{report.node_errors} node errors")
    if report.device_xruns and report.cpu_stolen and report.cpu_stolen >= _STOLEN_NOTABLE:
        print(f"  the machine's hypervisor took {100 * report.cpu_stolen:.0f}% of its CPU time meanwhile: "
              f"device xruns on a virtual machine are often its doing", file=sys.stderr)
    if report.ended.startswith("device lost"):
        raise CliError(f"{report.ended}; the graph's output files were discarded", EXIT_DEVICE)
    for path in written_files(graph):
        print(f"  wrote {path}")
    return 0


def run_devices(args) -> int:
    from sfgraph.engine.live import list_devices

    print(list_devices())
    return 0


def run_midi_learn(args) -> int:
    from sfgraph.engine.live import build_live_graph
    from sfgraph.engine.midi_map import learn_rule, midi_section_yaml, parse_midi_map
    from sfgraph.engine.param_control import bind_target
    from sfgraph.graph.declaration import load_graph_decl
    from sfgraph.midi_io import open_midi_input

    decl = load_graph_decl(args.graph, args.param)
    graph = build_live_graph(decl)
    existing = parse_midi_map(graph)
    for target in args.targets:  # every target checked before the user is asked to move anything
        bind_target(graph, target.partition("=")[0])
    messages: deque = deque()
    midi = open_midi_input(messages.append, args.midi_api, args.midi_port)
    print(f"listening on {midi.port}" + ("" if args.midi_port else " (connect your controller to it)"))
    rules = list(existing.rules)
    try:
        for target in args.targets:
            print(f"move a control (or press a key) for {target.partition('=')[0]} ...", flush=True)
            messages.clear()
            rule = learn_rule(graph, target, lambda: messages.popleft() if messages else None, args.timeout)
            rules = [r for r in rules if (r.kind, r.number, r.channel) != (rule.kind, rule.number, rule.channel)]
            rules.append(rule)
            print(f"  {rule.kind} {rule.number} on channel {rule.channel} -> {rule.target.name}")
    finally:
        midi.close()
    section = midi_section_yaml(rules, existing.smoothing_ms)
    if args.output:
        _write_graph_with_midi(Path(decl.file), section, Path(args.output))
        print(f"wrote {args.output}")
    else:
        print(section, end="")
    return 0


def _write_graph_with_midi(source: Path, section: str, output: Path) -> None:
    """``source``'s text with its top-level ``midi:`` block replaced by ``section``."""
    kept, inside = [], False
    for line in source.read_text().splitlines(keepends=True):
        top_level = bool(line[:1].strip()) and not line.startswith("#")
        if top_level:
            inside = line.startswith("midi:")
        if not inside:
            kept.append(line)
    text = "".join(kept)
    output.write_text(text + ("" if text.endswith("\n") else "\n") + section)


def add_commands(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "live", run_live, help="run a graph in real time on a sound device",
                    description=LIVE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_graph_arguments(p)
    p.add_argument("--input-device", metavar="D", help="input device: index or part of its name "
                                                       "(see 'sfgraph devices'; default: the system's)")
    p.add_argument("--output-device", metavar="D", help="output device, likewise")
    p.add_argument("--samplerate", type=int, metavar="HZ", help="device rate (default: the graph's sample_rate)")
    p.add_argument("--blocksize", type=int, metavar="N",
                   help="frames per block and per device callback (default: the graph's block_size)")
    p.add_argument("--ahead", type=int, default=2, metavar="N",
                   help="blocks the worker runs ahead of the device: its margin for slow blocks, "
                        "part of the latency (default 2)")
    p.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds (default: when the input files end, or Ctrl-C)")
    p.add_argument("--report", metavar="FILE",
                   help="write a JSON summary at the end: xruns (under/overruns, with reasons), latency_ms "
                        "(and its parts), cpu_load (worker, fraction of one core), blocks, node errors")
    p.add_argument("-o", "--output", default=".", help="folder for files the graph writes (default: current)")
    p.add_argument("--midi-port", metavar="NAME",
                   help="take MIDI from the port whose name contains NAME (default: open a virtual input "
                        "port 'sfgraph:midi_in' when the graph has a midi section)")
    p.add_argument("--midi-api", choices=("auto", "jack", "alsa"), default="auto",
                   help="MIDI system (auto: JACK when a JACK server runs, else ALSA)")
    p.add_argument("--no-midi", action="store_true", help="ignore the graph's midi section")
    p.add_argument("-q", "--quiet", action="store_true", help="no status view")

    add_command(commands, "devices", run_devices,
                help="list the sound devices (for --input-device/--output-device)")

    p = add_command(
        commands, "midi-learn", run_midi_learn, help="map MIDI controls to a graph's live params by moving them",
        description="For each TARGET in turn, wait for a MIDI control change, note or program change and map it "
                    "to TARGET; print the graph's resulting 'midi:' section (or write the graph with it). "
                    "TARGET is NODE.PARAM, NODE.PARAM[i] or NODE.PARAM.KEY, optionally =LOW:HIGH for the range "
                    "a controller spans (default: -60:6 for dB params, else the param's declared range).")
    add_graph_arguments(p)
    p.add_argument("targets", nargs="+", metavar="TARGET[=LOW:HIGH]", help="e.g. mix.gain_db[0]=-48:6 mix.mute[0]")
    p.add_argument("--midi-port", metavar="NAME",
                   help="listen to the port whose name contains NAME (default: a virtual port 'sfgraph:midi_in')")
    p.add_argument("--midi-api", choices=("auto", "jack", "alsa"), default="auto",
                   help="MIDI system (auto: JACK when a JACK server runs, else ALSA)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds to wait for each control")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the graph with the learned midi section to FILE (keep it beside the original: "
                        "relative paths in a graph are relative to its folder)")
