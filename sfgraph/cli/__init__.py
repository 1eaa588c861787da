"""The ``sfgraph`` command line: thin commands over the engine, data and model.

One module per family of commands, each with ``add_commands(commands)``; every
command is ``run_NAME(args) -> int`` and fails by raising, under the one policy of
``sfgraph.cli.errors`` (messages and exit statuses). Building the parser imports
nothing heavy: commands import what they run when they run.
"""
from __future__ import annotations

from sfgraph.cli import data, evaluation, f0, graph, live, separate, train
from sfgraph.cli.arguments import CommandParser
from sfgraph.cli.errors import run_command
from sfgraph.memory import keep_freed_memory

FAMILIES = (graph, separate, train, data, evaluation, f0, live)


def build_parser() -> CommandParser:
    parser = CommandParser(prog="sfgraph", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in FAMILIES:
        family.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    return run_command(args)

