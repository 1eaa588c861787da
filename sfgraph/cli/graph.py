"""Commands on graphs: ``render``, ``validate``, ``draw``, ``describe``, ``list-nodes``, ``graphs``."""
from __future__ import annotations

import argparse
from pathlib import Path

from sfgraph.cli.arguments import add_command, add_graph_arguments, output_folder, positive_int, written_files
from sfgraph.cli.errors import CliError


def run_render(args) -> int:
    from sfgraph.engine.offline import render
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.declaration import load_graph_decl

    output = output_folder(args.output)
    graph = build_graph(load_graph_decl(args.graph, args.param), output_dir=output)
    result = render(graph, progress=not args.quiet, block_size=args.block_size)
    print(f"rendered {result.seconds:.2f} s of audio in {result.blocks} blocks of {result.block_size} "
          f"(graph latency {float(result.latency) * 1000:.1f} ms, removed from outputs)")
    for path in written_files(graph):
        print(f"  wrote {path}")
    return 0


def run_validate(args) -> int:
    from sfgraph.engine.midi_map import parse_midi_map
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.declaration import load_graph_decl

    graph = build_graph(load_graph_decl(args.graph, args.param))
    midi = parse_midi_map(graph)  # the midi: section too, against the built graph
    print(f"{graph.decl.file}: ok, {len(graph.nodes)} nodes, {len(graph.edges)} connections, "
          f"latency {float(graph.total_latency()) * 1000:.2f} ms"
          + (f", {len(midi.rules)} MIDI mapping(s)" if graph.decl.midi else ""))
    for node_id in graph.order:
        node = graph.nodes[node_id]
        outs = ", ".join(f"{p}: {s.describe()}" for p, s in node.output_specs.items()) or "sink"
        lat = (f", latency {node.latency} samples" if node.latency else "") + (
            f", look-ahead {float(graph.own_lookahead(node_id)) * 1000:.1f} ms" if node.lookahead else "")
        print(f"  {node_id} ({node.type_name}) -> {outs}{lat}")
    return 0


def run_describe(args) -> int:
    from sfgraph.graph.node import Node
    from sfgraph.graph.registry import get_node_type, suggest

    try:
        cls = get_node_type(args.node_type)
    except KeyError:
        hint = suggest(args.node_type)
        raise CliError(f"unknown node type '{args.node_type}'"
                       + (f"; did you mean {', '.join(hint)}?" if hint else "")) from None
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


def run_list_nodes(args) -> int:
    from sfgraph.graph.registry import node_types

    for name, cls in node_types().items():
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:16s} {summary}")
    return 0


def run_graphs(args) -> int:
    from sfgraph.graph.declaration import shipped_graphs

    for name, path in sorted(shipped_graphs().items()):
        print(f"{name:20s} {path}")
    return 0


def run_draw(args) -> int:
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.draw import draw_graph
    from sfgraph.graph.declaration import load_graph_decl

    output = Path(args.output)
    if output.suffix not in (".png", ".svg"):
        raise CliError(f"draw writes .png or .svg, not '{output.suffix}'")
    draw_graph(build_graph(load_graph_decl(args.graph, args.param)), output)
    print(f"wrote {output}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "render", run_render, help="render a graph offline, faster than real time")
    add_graph_arguments(p)
    p.add_argument("-o", "--output", default=".", help="folder for relative output paths (default: current folder)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--block-size", type=positive_int, metavar="N",
                   help="samples per block at the graph rate (default: 16384, or the graph's block_size if larger; "
                        "the result does not depend on it)")

    p = add_command(commands, "validate", run_validate, help="check a graph and print every problem at once")
    add_graph_arguments(p)

    p = add_command(commands, "describe", run_describe, help="show a node type's ports, params and units")
    p.add_argument("node_type")

    add_command(commands, "list-nodes", run_list_nodes, help="list the node types available")
    add_command(commands, "graphs", run_graphs, help="list the graphs shipped with sfgraph")

    p = add_command(commands, "draw", run_draw, help="draw a picture of a graph (PNG or SVG)")
    add_graph_arguments(p)
    p.add_argument("-o", "--output", required=True, help="graph.png or graph.svg")
