"""Errors that point at the place in a graph file where the problem is."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem in a graph: where it is (file, line, node, port) and what it is."""

    message: str
    file: str | None = None
    line: int | None = None
    node: str | None = None
    port: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        subject = ""
        if self.node:
            subject = f"node '{self.node}'" + (f" port '{self.port}'" if self.port else "") + ": "
        return f"{where}{subject}{self.message}"


class GraphError(Exception):
    """A graph cannot be loaded, validated or run; carries every problem found."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class PortError(Exception):
    """Raised by a node's `configure` when an input stream does not suit a port.

    The scheduler turns it into a `Problem` naming the file, line, node and port.
    """

    def __init__(self, port: str, message: str):
        self.port = port
        super().__init__(message)


class NodeError(Exception):
    """A node failed while running; names the node so the user knows where to look."""

    def __init__(self, node_id: str, node_type: str, message: str):
        self.node_id = node_id
        self.node_type = node_type
        super().__init__(f"node '{node_id}' ({node_type}): {message}")


class InputWarning(UserWarning):
    """Input that runs but probably gives a wrong result (F0 that stops before the audio,
    a stereo mixture averaged to mono ...); the command line prints it as one line."""
