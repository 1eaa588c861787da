"""Graph files: parsing YAML into declarations, with every problem located.

A graph file::

    name: effects_chain
    sample_rate: 48000        # Hz, the rate sources are read at (at most 768000)
    block_size: 256           # samples per scheduler block (at most 2**20)
    imports: [my_nodes.py]    # optional: modules defining more node types
    nodes:
      - {id: in,  type: file_in,  params: {path: song.wav}}
      - {id: out, type: file_out, params: {path: out.wav}}
    connections:
      - in.audio -> out.audio
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sfgraph.graph.errors import GraphError, Problem
from sfgraph.graph.yaml_lines import LineDict, LineList, load_yaml, plain

TOP_LEVEL_KEYS = ("name", "description", "sample_rate", "block_size", "imports", "nodes",
                  "connections", "midi")
NODE_KEYS = ("id", "type", "params")
# Buffers hold a few blocks per connection: 2**20 samples (22 s at 48 kHz) keeps a
# block of a many-channel graph within memory; offline graphs gain little past 4096.
MAX_BLOCK_SIZE = 2 ** 20
MAX_SAMPLE_RATE = 768_000
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONNECTION = re.compile(r"^\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*->\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*$")


@dataclass
class NodeDecl:
    id: str
    type: str
    params: dict[str, Any]
    line: int
    param_lines: dict[str, int] = field(default_factory=dict)
    overridden: set[str] = field(default_factory=set)  # params set on the command line

    def set_param(self, name: str, value: Any) -> None:
        """Set a param from outside the graph file (command line, program)."""
        self.params[name] = value
        self.param_lines.setdefault(name, self.line)
        self.overridden.add(name)


@dataclass(frozen=True)
class Connection:
    src: str
    src_port: str
    dst: str
    dst_port: str
    line: int

    def __str__(self) -> str:
        return f"{self.src}.{self.src_port} -> {self.dst}.{self.dst_port}"


@dataclass
class GraphDecl:
    """A parsed graph file, before node types are resolved."""

    name: str
    file: str
    base_dir: Path
    sample_rate: int
    block_size: int
    nodes: list[NodeDecl]
    connections: list[Connection]
    imports: list[tuple[str, int]]
    midi: Any = None
    midi_line: int = 0

    def node(self, node_id: str) -> NodeDecl | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def problem(self, message: str, line: int | None = None, node=None, port=None) -> Problem:
        return Problem(message, self.file, line, node, port)


def shipped_graphs() -> dict[str, Path]:
    """Graphs that ship with sfgraph, by name."""
    folder = resources.files("sfgraph.graphs")
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def find_graph(name_or_path: str) -> Path:
    """A graph file path, or the name of a shipped graph (``separate``)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = shipped_graphs()
    if name_or_path in shipped:
        return shipped[name_or_path]
    hint = difflib.get_close_matches(name_or_path, list(shipped), n=3)
    raise GraphError(f"no graph file '{name_or_path}' and no shipped graph of that name"
                     + (f"; did you mean {', '.join(hint)}?" if hint else
                        f"; shipped graphs: {', '.join(sorted(shipped))}"))


def load_graph_decl(name_or_path: str, overrides: list[str] = ()) -> GraphDecl:
    """Read and parse a graph file, then apply ``NODE.PARAM=VALUE`` overrides."""
    path = find_graph(name_or_path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise GraphError(f"{path}: cannot read graph file: {exc.strerror}") from None
    decl = parse_graph(text, str(path), path.resolve().parent)
    apply_overrides(decl, overrides)
    return decl


def parse_graph(text: str, file: str = "<graph>", base_dir: Path | None = None) -> GraphDecl:
    """Parse graph YAML; raises GraphError listing every structural problem."""
    problems: list[Problem] = []
    try:
        data = load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise GraphError(Problem(f"invalid YAML: {exc.problem or exc.context}", file, line)) from None
    except yaml.YAMLError as exc:
        raise GraphError(Problem(f"invalid YAML: {exc}", file)) from None
    if not isinstance(data, LineDict):
        raise GraphError(Problem("a graph file must be a mapping with 'nodes' and 'connections'", file, 1))

    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.append(Problem(f"unknown key '{key}'" + _did_you_mean(key, TOP_LEVEL_KEYS),
                                    file, data.line_of(key)))

    def positive_int(key, default, largest, unit):
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= largest:
            problems.append(Problem(f"'{key}' must be a whole number from 1 to {largest} {unit}, got {value!r}",
                                    file, data.line_of(key)))
            return default
        return value

    sample_rate = positive_int("sample_rate", 48000, MAX_SAMPLE_RATE, "Hz")
    block_size = positive_int("block_size", 256, MAX_BLOCK_SIZE, "samples")

    imports = []
    raw_imports = data.get("imports", [])
    if not isinstance(raw_imports, list) or not all(isinstance(i, str) for i in raw_imports):
        problems.append(Problem("'imports' must be a list of module names or .py files", file,
                                data.line_of("imports")))
    else:
        imports = [(name, raw_imports.line_of(i)) for i, name in enumerate(raw_imports)]

    nodes = _parse_nodes(data, file, problems)
    connections = _parse_connections(data, file, problems)
    if problems:
        raise GraphError(problems)
    name = data.get("name") or Path(file).stem
    return GraphDecl(str(name), file, base_dir or Path.cwd(), sample_rate, block_size, nodes,
                     connections, imports, plain(data.get("midi")), data.line_of("midi"))


def _parse_nodes(data: LineDict, file: str, problems: list[Problem]) -> list[NodeDecl]:
    raw = data.get("nodes")
    if not isinstance(raw, LineList) or not raw:
        problems.append(Problem("'nodes' must be a non-empty list", file, data.line_of("nodes")))
        return []
    nodes, seen = [], {}
    for i, item in enumerate(raw):
        line = raw.line_of(i)
        if not isinstance(item, LineDict):
            problems.append(Problem("each node must be a mapping with 'id' and 'type'", file, line))
            continue
        for key in item:
            if key not in NODE_KEYS:
                problems.append(Problem(f"unknown key '{key}' in node" + _did_you_mean(key, NODE_KEYS),
                                        file, item.line_of(key), item.get("id")))
        node_id, node_type = item.get("id"), item.get("type")
        if not isinstance(node_id, str) or not _ID.match(node_id):
            problems.append(Problem(f"node id must be a name of letters, digits and _, got {node_id!r}",
                                    file, item.line_of("id")))
            continue
        if node_id in seen:
            problems.append(Problem(f"duplicate node id (first defined on line {seen[node_id]})",
                                    file, line, node_id))
            continue
        seen[node_id] = line
        if not isinstance(node_type, str):
            problems.append(Problem("node needs a 'type'", file, line, node_id))
            continue
        params = item.get("params") or LineDict()
        if not isinstance(params, LineDict):
            problems.append(Problem("'params' must be a mapping", file, item.line_of("params"), node_id))
            continue
        nodes.append(NodeDecl(node_id, node_type, plain(params), line,
                              {k: params.line_of(k) for k in params}))
    return nodes


def _parse_connections(data: LineDict, file: str, problems: list[Problem]) -> list[Connection]:
    raw = data.get("connections", [])
    if not isinstance(raw, list):
        problems.append(Problem("'connections' must be a list of 'node.port -> node.port'", file,
                                data.line_of("connections")))
        return []
    connections = []
    for i, item in enumerate(raw):
        line = raw.line_of(i)
        match = _CONNECTION.match(item) if isinstance(item, str) else None
        if not match:
            problems.append(Problem(f"connection must read 'node.port -> node.port', got {item!r}",
                                    file, line))
            continue
        connections.append(Connection(*match.groups(), line=line))
    return connections


def apply_overrides(decl: GraphDecl, overrides: list[str]) -> None:
    """Apply ``NODE.PARAM=VALUE`` strings (VALUE read as YAML: ``-6``, ``[0, 1]``, ``true``)."""
    problems = []
    for text in overrides:
        match = re.match(r"^([A-Za-z_]\w*)\.([A-Za-z_]\w*)=(.*)$", text)
        if not match:
            problems.append(Problem(f"override must read NODE.PARAM=VALUE, got {text!r}"))
            continue
        node_id, param, raw_value = match.groups()
        node = decl.node(node_id)
        if node is None:
            problems.append(Problem(f"override {text!r}: no node '{node_id}' in {decl.file}"
                                    + _did_you_mean(node_id, [n.id for n in decl.nodes])))
            continue
        try:
            value = yaml.safe_load(raw_value) if raw_value.strip() else ""
        except yaml.YAMLError:
            value = raw_value
        node.set_param(param, value)
    if problems:
        raise GraphError(problems)


def _did_you_mean(word: str, candidates) -> str:
    close = difflib.get_close_matches(str(word), list(candidates), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
