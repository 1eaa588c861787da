"""The ``sfgraph`` command line: thin commands over the engine, data and model."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .data.layout import DatasetError
from .graph.errors import GraphError, InputWarning, NodeError
from .interrupt import exit_status, stop_like_interrupt
from .model.errors import ModelError


def _add_graph_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("graph", help="graph YAML file, or the name of a shipped graph (see 'sfgraph graphs')")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="override a node param (VALUE is read as YAML); repeatable")


def _output_folder(value: str) -> Path:
    """``-o FOLDER``, checked before anything slow runs."""
    from .graph.output_files import folder_problem

    problem = folder_problem(Path(value))
    if problem:
        raise GraphError(f"-o {value}: {problem}")
    return Path(value)


def _written_files(graph) -> list[str]:
    return [str(p) for n in graph.nodes.values() for p in n.written]


def cmd_render(args) -> int:
    from .engine.offline import render
    from .graph.build import build_graph
    from .graph.model import load_graph_decl

    output = _output_folder(args.output)
    graph = build_graph(load_graph_decl(args.graph, args.param), output_dir=output)
    result = render(graph, progress=not args.quiet, block_size=args.block_size)
    written = _written_files(graph)
    print(f"rendered {result.seconds:.2f} s of audio in {result.blocks} blocks of {result.block_size} "
          f"(graph latency {float(result.latency) * 1000:.1f} ms, removed from outputs)")
    for path in written:
        print(f"  wrote {path}")
    return 0


def cmd_validate(args) -> int:
    from .graph.build import build_graph
    from .graph.model import load_graph_decl

    graph = build_graph(load_graph_decl(args.graph, args.param))
    from .engine.midi_map import parse_midi_map

    midi = parse_midi_map(graph)  # the midi: section too, against the built graph
    print(f"{graph.decl.file}: ok, {len(graph.nodes)} nodes, {len(graph.edges)} connections, "
          f"latency {float(graph.total_latency()) * 1000:.2f} ms"
          + (f", {len(midi.rules)} MIDI mapping(s)" if graph.decl.midi else ""))
    for node_id in graph.order:
        node = graph.nodes[node_id]
        outs = ", ".join(f"{p}: {s.describe()}" for p, s in node.output_specs.items()) or "sink"
        lat = f", latency {node.latency} samples" if node.latency else ""
        print(f"  {node_id} ({node.type_name}) -> {outs}{lat}")
    return 0


def cmd_describe(args) -> int:
    from .graph.node import Node
    from .graph.registry import get_node_type, suggest

    try:
        cls = get_node_type(args.node_type)
    except KeyError:
        hint = suggest(args.node_type)
        raise GraphError(f"unknown node type '{args.node_type}'" + (f"; did you mean {', '.join(hint)}?" if hint else ""))
    print(f"{cls.type_name}: {(cls.__doc__ or '').strip()}\n")
    if cls.declare_ports.__func__ is not Node.declare_ports.__func__:
        print("ports: named by params (see above)")
    for title, ports in (("inputs", cls.inputs), ("outputs", cls.outputs)):
        if ports:
            print(f"{title}:")
        for name, port in ports.items():
            rate = f" @ {float(port.rate):g}" if port.rate else ""
            print(f"  {name}: {port.kind}{rate}{' (optional)' if port.optional else ''}  {port.doc}")
    print("params:")
    for name, param in cls.params.items():
        print(f"  {name}: {param.describe()}  {param.doc}")
    extra = cls.describe_extra()
    if extra:
        print(extra)
    return 0


def cmd_list_nodes(args) -> int:
    from .graph.registry import node_types

    for name, cls in node_types().items():
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:16s} {summary}")
    return 0


def cmd_graphs(args) -> int:
    from .graph.model import shipped_graphs

    for name, path in sorted(shipped_graphs().items()):
        print(f"{name:20s} {path}")
    return 0


def cmd_draw(args) -> int:
    from .graph.build import build_graph
    from .graph.draw import draw_graph
    from .graph.model import load_graph_decl

    output = Path(args.output)
    if output.suffix not in (".png", ".svg"):
        raise GraphError(f"draw writes .png or .svg, not '{output.suffix}'")
    draw_graph(build_graph(load_graph_decl(args.graph, args.param)), output)
    print(f"wrote {output}")
    return 0


SCORE_SUFFIXES = (".mid", ".midi", ".musicxml", ".xml", ".mxl")


def cmd_separate(args) -> int:
    from .engine.offline import render
    from .graph.build import build_graph
    from .graph.model import Connection, NodeDecl, load_graph_decl

    if args.adapt is not None and not args.adapt > 0:
        raise ModelError(f"--adapt {args.adapt:g}: give the minutes to adapt for, a positive number (e.g. --adapt 3)")
    if args.adapt_steps is not None and (args.adapt is None or args.adapt_steps < 1):
        raise ModelError(f"--adapt-steps {args.adapt_steps}: give a positive number of steps, with --adapt MINUTES")
    output = _output_folder(args.output)
    decl = load_graph_decl("separate")
    decl.node("mix").set_param("path", args.mix)
    f0 = decl.node("f0")
    if args.f0 == "auto":  # every voice's F0 from the mixture itself, for the model's voices
        from .model.checkpoint import read_model_config
        from .resources import resolve_path

        voices = read_model_config(resolve_path(args.model or decl.node("net").params["model"]))[0].voices
        f0.type, f0.params = "f0_multi", {}
        f0.set_param("voices", list(voices))
        if args.ranges:
            f0.set_param("ranges", [r.strip() for r in args.ranges.split(",")])
        decl.connections.append(Connection("mix", "audio", "f0", "mix", f0.line))
    elif Path(args.f0).suffix.lower() in SCORE_SUFFIXES:  # a score, aligned to the recording
        f0.type, f0.params = "f0_score", {}
        f0.set_param("path", args.f0)
        f0.set_param("align_to", args.mix)
    else:
        decl.node("f0").set_param("dir", args.f0)
    decl.node("net").set_param("device", args.device)
    if args.model:
        decl.node("net").set_param("model", args.model)
    decl.node("mask").set_param("power", args.power)
    decl.node("mask").set_param("n_fft", args.n_fft)
    decl.node("mask").set_param("fit_seconds", args.mask_fit)
    if args.synth:
        line = decl.node("out").line
        decl.nodes.append(NodeDecl("synth_out", "file_out", {"path": "synth/{label}.wav"}, line))
        decl.connections.append(Connection("synth", "voices", "synth_out", "audio", line))
    graph = build_graph(decl, output_dir=output)
    if args.adapt is not None:
        adapt_to_recording(graph, args)
    result = render(graph, progress=not args.quiet)
    written = _written_files(graph)
    print(f"separated {result.seconds:.1f} s into {', '.join(graph.nodes['mask'].output_specs['voices'].labels)}:")
    for path in written:
        print(f"  {path}")
    return 0


def adapt_to_recording(graph, args) -> None:
    """Fine-tune the separate graph's model on its own mixture and F0 (``--adapt``), write
    it to OUTPUT/model/ and give its weights to the graph's ``param_net``, which then
    separates with them (the graph is built once: model, score alignment and F0 files
    are read once)."""
    from .model.adapt import AdaptOptions, adapt, save_adapted_model

    mix = graph.nodes["mix"].read_whole().mean(axis=0)
    f0 = graph.nodes["f0"].whole_track(mix)
    network = graph.nodes["net"].network
    options = AdaptOptions(minutes=args.adapt, max_steps=args.adapt_steps, seed=args.seed)
    try:
        model, result = adapt(network, mix, f0, options, progress=not args.quiet)
    except ValueError as exc:
        raise ModelError(f"--adapt: {args.mix}: {exc}") from None
    folder = Path(args.output) / "model"
    save_adapted_model(folder, model, result, options, recording=str(Path(args.mix).resolve()),
                       start_model=graph.nodes["net"].p.model)
    change = (f"held-back loss {result.initial_loss:.3f} -> {result.best_loss:.3f} (step {result.best_step})"
              if result.best_step else
              f"no step beat the starting model on the held-back part (loss {result.initial_loss:.3f}): kept it")
    network.load_state_dict(model.state_dict())
    print(f"adapted on {result.training_seconds:.1f} s of the recording ({result.validation_seconds:.1f} s held back), "
          f"{result.steps} steps in {result.seconds / 60:.1f} min: {change}; model in {folder}")


def cmd_train(args) -> int:
    from .model.train import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sfgraph", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from .data.cli import _positive_int

    p = commands.add_parser("render", help="render a graph offline, faster than real time")
    _add_graph_argument(p)
    p.add_argument("-o", "--output", default=".", help="folder for relative output paths (default: current folder)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--block-size", type=_positive_int, metavar="N",
                   help="samples per block at the graph rate (default: 16384, or the graph's block_size if larger; "
                        "the result does not depend on it)")
    p.set_defaults(func=cmd_render)

    p = commands.add_parser("validate", help="check a graph and print every problem at once")
    _add_graph_argument(p)
    p.set_defaults(func=cmd_validate)

    p = commands.add_parser("describe", help="show a node type's ports, params and units")
    p.add_argument("node_type")
    p.set_defaults(func=cmd_describe)

    p = commands.add_parser("list-nodes", help="list the node types available")
    p.set_defaults(func=cmd_list_nodes)

    p = commands.add_parser("graphs", help="list the graphs shipped with sfgraph")
    p.set_defaults(func=cmd_graphs)

    p = commands.add_parser("draw", help="draw a picture of a graph (PNG or SVG)")
    _add_graph_argument(p)
    p.add_argument("-o", "--output", required=True, help="graph.png or graph.svg")
    p.set_defaults(func=cmd_draw)

    p = commands.add_parser("separate", help="separate a mixture into its voices (runs graphs/separate.yaml)")
    p.add_argument("mix", help="the mixture (any rate; resampled to the model's 16 kHz)")
    p.add_argument("--f0", required=True,
                   help="folder of <voice>.csv F0 files (time_s,f0_hz), a score (.mid, .musicxml) with one part "
                        "per voice (aligned to the recording), or 'auto': estimated from the mixture (multi-F0)")
    p.add_argument("--ranges", help="with --f0 auto: LOW-HIGH note range per voice, comma-separated (e.g. "
                                    "C4-A5,F3-D5,C3-A4,E2-E4; default from the names soprano, alto, tenor, bass)")
    p.add_argument("--model", help="model folder from 'sfgraph train' (default: the bundled model)")
    p.add_argument("-o", "--output", required=True, help="folder for <voice>.wav")
    p.add_argument("--synth", action="store_true", help="also write the synthesized voices to synth/<voice>.wav")
    p.add_argument("--power", type=float, default=1.0, help="mask exponent: 1 magnitude ratio (default), 2 power")
    p.add_argument("--n-fft", type=int, default=2048, help="mask STFT size in samples (hop 256)")
    p.add_argument("--mask-fit", type=float, default=2.0, metavar="SECONDS",
                   help="fit the voices to the mixture before masking, with this memory in seconds "
                        "(default 2; 0: masks straight from the synthesized voices)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    p.add_argument("--adapt", type=float, metavar="MINUTES",
                   help="first fine-tune the model on this recording itself (its mixture and F0s, no stems) for at "
                        "most MINUTES, keep it in OUTPUT/model/ (reuse it with --model), then separate with it")
    p.add_argument("--adapt-steps", type=int, metavar="N", help="with --adapt: stop after N steps at the latest "
                                                                 "(the same seed and steps give the same model)")
    p.add_argument("--seed", type=int, default=0, help="with --adapt: seed of the segments and synthesizer noise")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_separate)

    from .model.config import add_arguments as add_train_arguments

    p = commands.add_parser("train", help="train a separation model on mixtures and F0s (no stems needed)")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    from .data.cli import add_commands as add_data_commands

    add_data_commands(commands)

    from .f0.cli import add_commands as add_f0_commands

    add_f0_commands(commands)

    from .engine.live_cli import add_commands as add_live_commands

    add_live_commands(commands)
    return parser


def _show_input_warnings(show):
    """A ``warnings.showwarning`` that prints ``InputWarning`` as ``warning: MESSAGE``."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, InputWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with stop_like_interrupt(), warnings.catch_warnings():
            warnings.simplefilter("always", InputWarning)
            warnings.showwarning = _show_input_warnings(warnings.showwarning)
            return args.func(args)
    except GraphError as exc:
        print(f"error: {exc}" if len(exc.problems) == 1 else
              f"{len(exc.problems)} problems:\n" + "\n".join(f"  {p}" for p in exc.problems), file=sys.stderr)
        return 2
    except NodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ModelError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # outputs that cannot be written, inputs that cannot be read
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"interrupted{f' by {exc}' if str(exc) else ''}; no partial outputs were kept", file=sys.stderr)
        return exit_status(exc)


if __name__ == "__main__":
    sys.exit(main())
