"""Argument types and arguments that several commands share."""
from __future__ import annotations

import argparse
from pathlib import Path

from sfgraph.cli.errors import CliError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative None and False."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: must be positive")
    return value


def cents_width(text: str) -> float:
    """A width in cents: 0 to 1200 (an octave)."""
    value = float(text)
    if not 0 <= value <= 1200:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 to 1200 cents")
    return value


def add_graph_arguments(parser: argparse.ArgumentParser) -> None:
    """The graph to run and ``-p NODE.PARAM=VALUE`` overrides."""
    parser.add_argument("graph", help="graph YAML file, or the name of a shipped graph (see 'sfgraph graphs')")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="override a node param (VALUE is read as YAML); repeatable")


def output_folder(value: str) -> Path:
    """``-o FOLDER``, checked before anything slow runs."""
    from sfgraph.atomic import folder_problem

    problem = folder_problem(Path(value))
    if problem:
        raise CliError(f"-o {value}: {problem}")
    return Path(value)


def written_files(graph) -> list[str]:
    """The files a graph's nodes wrote, in node order."""
    return [str(p) for n in graph.nodes.values() for p in n.written]



class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that adds its arguments when it first parses (``arguments(parser)``):
    a command's defaults come from modules that are slow to import (numpy, torch), and only
    the command being run pays for them, so ``sfgraph --help`` stays quick."""

    def __init__(self, *args, arguments=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._pending_arguments = arguments

    def parse_known_args(self, args=None, namespace=None):
        if self._pending_arguments is not None:
            add, self._pending_arguments = self._pending_arguments, None
            add(self)
        return super().parse_known_args(args, namespace)


def add_command(commands: argparse._SubParsersAction, name: str, run, arguments=None,
                **kwargs) -> argparse.ArgumentParser:
    """A command's parser (a ``CommandParser`` with ``arguments(parser)`` pending);
    ``run(args) -> int`` runs it, and ``args.prog`` (``sfgraph NAME``) names it in errors."""
    parser = commands.add_parser(name, arguments=arguments, **kwargs)
    parser.set_defaults(func=run, prog=parser.prog)
    return parser
