"""From a parsed graph to a runnable one: node types resolved, params validated,
connections and stream types checked, cycles found, latencies computed.

Every problem found is collected so that ``sfgraph validate`` reports them all at once.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from sfgraph.graph.errors import GraphError, PortError, Problem
from sfgraph.graph.declaration import Connection, GraphDecl, _did_you_mean
from sfgraph.graph.node import GraphContext, Node
from sfgraph.graph.params import ParamError
from sfgraph.graph.ports import StreamSpec
from sfgraph.graph.registry import get_node_type, import_node_module, suggest


@dataclass
class Edge:
    """A connection in a built graph, with what the scheduler must do on it."""

    connection: Connection
    spec: StreamSpec              # the stream as it leaves the source port
    resample_to: Fraction | None  # audio rate the destination port needs, if different
    pad: int = 0                  # zeros to prepend for delay compensation, at the arrival rate


@dataclass
class BuiltGraph:
    decl: GraphDecl
    context: GraphContext
    nodes: dict[str, Node]
    order: list[str]                          # topological order
    connections: list[Connection]
    edges: list[Edge] = field(default_factory=list)
    # Seconds at each node's input, each the most over the paths that lead there: ``arrival``,
    # the content delay (``Node.latency``; delay compensation pads branches to it);
    # ``lookahead``, the time output is held back waiting for input (``Node.lookahead``;
    # content stays on the timeline, so it needs no padding, but it delays the output).
    arrival: dict[str, Fraction] = field(default_factory=dict)
    lookahead: dict[str, Fraction] = field(default_factory=dict)

    def incoming(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.connection.dst == node_id]

    def sources(self) -> list[str]:
        return [n for n in self.order if not self.nodes[n].input_ports]

    def sinks(self) -> list[str]:
        return [n for n in self.order if not self.nodes[n].output_ports]

    def output_latency(self, node_id: str) -> Fraction:
        """Seconds of content delay from a source sample to the corresponding sample
        leaving this node (look-ahead apart: ``output_lookahead``)."""
        node = self.nodes[node_id]
        rate = next(iter(node.output_specs.values())).rate if node.output_specs else None
        own = Fraction(node.latency) / rate if node.latency and rate else Fraction(0)
        return self.arrival[node_id] + own

    def own_lookahead(self, node_id: str) -> Fraction:
        """Seconds of this node's own look-ahead (``Node.lookahead`` counts input items)."""
        node = self.nodes[node_id]
        rate = next(iter(node.input_specs.values())).rate if node.input_specs else None
        return Fraction(node.lookahead) / rate if node.lookahead and rate else Fraction(0)

    def output_lookahead(self, node_id: str) -> Fraction:
        """Seconds this node's output is held back: the look-ahead at its input plus its own."""
        return self.lookahead[node_id] + self.own_lookahead(node_id)

    def latency_at(self, node_id: str) -> Fraction:
        """Seconds from a source sample to its processed version reaching this node's
        input: content delay plus look-ahead."""
        return self.arrival[node_id] + self.lookahead[node_id]

    def total_latency(self) -> Fraction:
        """Seconds of latency at the slowest sink, look-ahead included (what a listener
        hears live, and what an offline render removes from its outputs)."""
        return max((self.latency_at(s) for s in self.sinks()), default=Fraction(0))


def build_graph(decl: GraphDecl, output_dir: Path | None = None, mode: str = "offline") -> BuiltGraph:
    """Instantiate, check and configure every node; raise GraphError with all problems."""
    problems: list[Problem] = []
    context = GraphContext(decl.sample_rate, decl.block_size, decl.base_dir,
                           Path(output_dir) if output_dir else Path.cwd(), mode)

    for module, line in decl.imports:
        try:
            import_node_module(module, decl.base_dir)
        except Exception as exc:  # a user's module may fail in any way: report, don't crash
            problems.append(decl.problem(f"cannot import '{module}': {type(exc).__name__}: {exc}", line))

    nodes: dict[str, Node] = {}
    for nd in decl.nodes:
        try:
            cls = get_node_type(nd.type)
        except KeyError:
            hint = suggest(nd.type)
            problems.append(decl.problem(
                f"unknown node type '{nd.type}'" + (f"; did you mean {', '.join(hint)}?" if hint
                                                   else "; see 'sfgraph list-nodes'"), nd.line, nd.id))
            continue
        node_problems = _check_params(decl, nd, cls)
        if node_problems:
            problems.extend(node_problems)
            continue
        try:
            nodes[nd.id] = cls(nd.id, _command_line_paths(nd, cls))
        except ParamError as exc:
            problems.append(decl.problem(str(exc), nd.line, nd.id))

    connections = _check_connections(decl, nodes, problems)
    order = _topological_order(decl, connections, problems)
    if problems:
        _configure_sources(decl, context, nodes, problems)
        raise GraphError(problems)

    graph = BuiltGraph(decl, context, nodes, order, connections)
    _configure(graph, problems)
    if problems:
        raise GraphError(problems)
    _compensate_delays(graph)
    return graph


def _command_line_paths(nd, cls: type[Node]) -> dict:
    """Params with relative paths given on the command line are relative to the
    current folder (those written in the graph file, to the file's folder)."""
    params = dict(nd.params)
    for name in nd.overridden:
        value = params[name]
        if cls.params[name].type == "path" and isinstance(value, str) and not value.startswith("sfgraph:"):
            params[name] = str(Path(value).expanduser().absolute())
    return params


def _check_params(decl: GraphDecl, nd, cls: type[Node]) -> list[Problem]:
    problems = []
    for name, value in nd.params.items():
        line = nd.param_lines.get(name, nd.line)
        decl_param = cls.params.get(name)
        if decl_param is None:
            problems.append(decl.problem(f"unknown param '{name}' for {nd.type}"
                                         + _did_you_mean(name, cls.params), line, nd.id))
            continue
        try:
            decl_param.coerce(value)
        except ParamError as exc:
            problems.append(decl.problem(f"param '{name}': {exc}", line, nd.id))
    for name, decl_param in cls.params.items():
        if decl_param.required and name not in nd.params:
            problems.append(decl.problem(f"missing required param '{name}' ({decl_param.doc or decl_param.type})",
                                         nd.line, nd.id))
    return problems


def _check_connections(decl: GraphDecl, nodes: dict[str, Node], problems: list[Problem]) -> list[Connection]:
    connections: list[Connection] = []
    fed: dict[tuple[str, str], Connection] = {}
    declared = {nd.id for nd in decl.nodes}
    for c in decl.connections:
        src_ok = _endpoint_ok(decl, nodes, declared, c, c.src, c.src_port, "output", problems)
        dst_ok = _endpoint_ok(decl, nodes, declared, c, c.dst, c.dst_port, "input", problems)
        if not dst_ok:
            continue
        if (c.dst, c.dst_port) in fed:
            problems.append(decl.problem(f"input already connected on line {fed[(c.dst, c.dst_port)].line}; "
                                         "use a mixer to sum several streams", c.line, c.dst, c.dst_port))
            continue
        fed[(c.dst, c.dst_port)] = c
        if not src_ok:
            continue
        src_kind = nodes[c.src].output_ports[c.src_port].kind
        dst_kind = nodes[c.dst].input_ports[c.dst_port].kind
        if src_kind != dst_kind:
            problems.append(decl.problem(f"connection {c}: cannot connect a {src_kind} output to a "
                                         f"{dst_kind} input", c.line, c.dst, c.dst_port))
            continue
        connections.append(c)
    for node_id, node in nodes.items():
        nd = decl.node(node_id)
        for port_name, port in node.input_ports.items():
            if not port.optional and (node_id, port_name) not in fed:
                problems.append(decl.problem(f"required input '{port_name}' ({port.kind}) is not connected",
                                             nd.line, node_id, port_name))
    return connections


def _endpoint_ok(decl, nodes, declared, c, node_id, port, side, problems) -> bool:
    """Whether one end of a connection names an existing node and port; report if not.
    A node whose own declaration failed counts as not ok, silently (already reported)."""
    if node_id not in declared:
        problems.append(decl.problem(f"connection {c}: no node '{node_id}'" + _did_you_mean(node_id, declared),
                                     c.line))
        return False
    node = nodes.get(node_id)
    if node is None:
        return False
    ports = node.output_ports if side == "output" else node.input_ports
    if port not in ports:
        problems.append(decl.problem(f"connection {c}: {node.type_name} has no {side} '{port}' "
                                     f"({side}s: {', '.join(ports) or 'none'})", c.line, node_id, port))
        return False
    return True


def _topological_order(decl: GraphDecl, connections: list[Connection], problems: list[Problem]) -> list[str]:
    successors = defaultdict(set)
    indegree = {nd.id: 0 for nd in decl.nodes}
    for c in connections:
        if c.dst not in successors[c.src]:
            successors[c.src].add(c.dst)
            indegree[c.dst] += 1
    ready = [n for n in indegree if indegree[n] == 0]  # declaration order breaks ties
    order = []
    while ready:
        node_id = ready.pop(0)
        order.append(node_id)
        for nxt in sorted(successors[node_id], key=list(indegree).index):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(order) < len(indegree):
        # Nodes left over lie on a cycle or downstream of one: name only those on it.
        left = [n for n in indegree if n not in order]
        stuck = [n for n in left if _reaches(n, n, successors)]
        cycle_lines = sorted(c.line for c in connections if c.src in stuck and c.dst in stuck)
        problems.append(decl.problem(f"cycle between nodes {', '.join(stuck)} "
                                     f"(connections on lines {', '.join(map(str, cycle_lines))}); "
                                     "graphs must not feed back", cycle_lines[0] if cycle_lines else None))
    return order


def _reaches(start: str, goal: str, successors) -> bool:
    """Whether a path of one or more connections leads from ``start`` to ``goal``."""
    seen, todo = set(), list(successors[start])
    while todo:
        node_id = todo.pop()
        if node_id == goal:
            return True
        if node_id not in seen:
            seen.add(node_id)
            todo.extend(successors[node_id])
    return False


def _configure_sources(decl: GraphDecl, context: GraphContext, nodes: dict[str, Node],
                       problems: list[Problem]) -> None:
    """Configure the nodes that take no input, so that what they find (a missing file) is
    reported beside the declaration's problems instead of after they are fixed."""
    for node_id, node in nodes.items():
        if node.input_ports:
            continue
        try:
            node.configure({}, context)
        except (ValueError, OSError) as exc:
            problems.append(decl.problem(str(exc), decl.node(node_id).line, node_id))


def _configure(graph: BuiltGraph, problems: list[Problem]) -> None:
    decl, failed = graph.decl, set()
    for node_id in graph.order:
        node = graph.nodes[node_id]
        nd = decl.node(node_id)
        incoming = [c for c in graph.connections if c.dst == node_id]
        if any(c.src in failed for c in incoming):
            failed.add(node_id)
            continue
        inputs: dict[str, StreamSpec] = {}
        bad = False
        for c in incoming:
            spec = graph.nodes[c.src].output_specs[c.src_port]
            port = node.input_ports[c.dst_port]
            resample_to = None
            if port.rate is not None and Fraction(port.rate) != spec.rate:
                if spec.kind != "audio":
                    problems.append(decl.problem(
                        f"connection {c}: {spec.kind} stream at {float(spec.rate):g} frames/s, but this input "
                        f"needs {float(port.rate):g} frames/s", c.line, node_id, c.dst_port))
                    bad = True
                    continue
                resample_to = Fraction(port.rate)
            arriving = spec.with_rate(resample_to) if resample_to else spec
            if port.channels is not None and arriving.channels != port.channels:
                problems.append(decl.problem(f"connection {c}: expects {port.channels} channel(s), "
                                             f"got {arriving.channels}", c.line, node_id, c.dst_port))
                bad = True
                continue
            inputs[c.dst_port] = arriving
            graph.edges.append(Edge(c, spec, resample_to))
        if bad:
            failed.add(node_id)
            continue
        inputs = {name: inputs[name] for name in node.input_ports if name in inputs}
        try:
            outputs = node.configure(inputs, graph.context)
        except PortError as exc:
            line = next((c.line for c in incoming if c.dst_port == exc.port), nd.line)
            problems.append(decl.problem(str(exc), line, node_id, exc.port))
            failed.add(node_id)
            continue
        except (ValueError, OSError) as exc:
            problems.append(decl.problem(str(exc), nd.line, node_id))
            failed.add(node_id)
            continue
        missing = set(node.output_ports) - set(outputs)
        if missing:
            raise RuntimeError(f"{type(node).__name__}.configure() did not describe outputs {sorted(missing)}")
        node.context = graph.context
        node.input_specs = inputs
        node.output_specs = outputs


def _compensate_delays(graph: BuiltGraph) -> None:
    """Delay the faster branches where branches of different latency meet, as a DAW does;
    add up the look-ahead along the paths (no padding: it keeps content on the timeline)."""
    for node_id in graph.order:
        incoming = graph.incoming(node_id)
        arrivals = [graph.output_latency(e.connection.src) for e in incoming]
        graph.arrival[node_id] = max(arrivals, default=Fraction(0))
        graph.lookahead[node_id] = max((graph.output_lookahead(e.connection.src) for e in incoming),
                                       default=Fraction(0))
        for edge, arrival in zip(incoming, arrivals):
            rate = edge.resample_to or edge.spec.rate
            edge.pad = round((graph.arrival[node_id] - arrival) * rate)
