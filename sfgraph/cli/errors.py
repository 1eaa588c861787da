"""The command line's one error policy: exit statuses and how a failure is printed.

Every command returns 0 when done, or raises. ``run_command`` (the only caller of the
commands) turns what was raised into one message on stderr, ``PROG: error: MESSAGE``
(PROG as argparse names the command, ``sfgraph data bach``, so a command's own errors
read like argparse's), and an exit status:

- ``EXIT_USAGE`` (2): the command cannot run with what it was given (arguments, graph,
  dataset, model folder, score, F0): fix them and run again. ``CliError`` by default,
  and the input errors of the layers below (``USAGE_ERRORS``); argparse uses 2 too.
- ``EXIT_FAILURE`` (1): it ran and failed: a node failed (``NodeError``), a file
  could not be read or written (``OSError``).
- ``EXIT_DEVICE`` (3): a sound device or MIDI port could not be opened or was lost
  (``DeviceError``, ``MidiError``).
- 128 + N: stopped by signal N (130 for Ctrl-C; SIGTERM and SIGHUP act as Ctrl-C).

Any other exception is a bug and keeps its traceback. A reader that stops early
(``sfgraph eval … | head``) is not a failure: what is printed after it has gone is
dropped, and the command finishes, writes its files and exits as it would have.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DEVICE = 3


class CliError(Exception):
    """A command that cannot do what was asked; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE):
        super().__init__(message)
        self.status = status


def _expected_errors() -> tuple[tuple[tuple[type[BaseException], ...], int], ...]:
    """``(error types, exit status)`` of the failures reported in one message, besides
    ``CliError``. Imported only when something was raised, so the parser stays light."""
    from sfgraph.data.bach import GeneratorError
    from sfgraph.data.layout import DatasetError
    from sfgraph.engine.live import DeviceError
    from sfgraph.engine.param_control import ControlError
    from sfgraph.f0.score import ScoreError
    from sfgraph.graph.errors import GraphError, NodeError
    from sfgraph.midi_io import MidiError
    from sfgraph.model.errors import ModelError

    return (((GraphError, ModelError, DatasetError, GeneratorError, ScoreError, ControlError), EXIT_USAGE),
            ((NodeError, OSError), EXIT_FAILURE),
            ((DeviceError, MidiError), EXIT_DEVICE))


def _message(error: BaseException) -> str:
    from sfgraph.graph.errors import GraphError

    if isinstance(error, GraphError) and len(error.problems) > 1:
        return f"{len(error.problems)} problems:\n" + "\n".join(f"  {p}" for p in error.problems)
    return str(error)


def _show_input_warnings(show):
    """A ``warnings.showwarning`` that prints ``InputWarning`` as ``warning: MESSAGE``."""
    from sfgraph.graph.errors import InputWarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, InputWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


class _StdoutToAClosedPipe:
    """``sys.stdout`` that drops what is printed once its reader has gone (``sfgraph eval
    … | head``): the command still finishes and writes its files, and exits as it would."""

    def __init__(self, stream):
        self._stream, self._gone = stream, False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self._gone = True
        # what is still buffered goes nowhere, so the interpreter's last flush is quiet too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def run_command(args: argparse.Namespace) -> int:
    """Run the command argparse chose (``args.func``, named ``args.prog``) under this policy."""
    stdout = sys.stdout
    sys.stdout = _StdoutToAClosedPipe(stdout)
    try:
        return _run_command(args)
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


def _run_command(args: argparse.Namespace) -> int:
    from sfgraph.graph.errors import InputWarning
    from sfgraph.interrupt import exit_status, stop_like_interrupt

    try:
        with stop_like_interrupt(), warnings.catch_warnings():
            warnings.simplefilter("always", InputWarning)
            warnings.showwarning = _show_input_warnings(warnings.showwarning)
            return args.func(args)
    except KeyboardInterrupt as interrupt:
        print(f"{args.prog}: interrupted{f' by {interrupt}' if str(interrupt) else ''}; "
              "no partial outputs were kept", file=sys.stderr)
        return exit_status(interrupt)
    except Exception as error:
        status = error.status if isinstance(error, CliError) else next(
            (status for types, status in _expected_errors() if isinstance(error, types)), None)
        if status is None:
            raise
        print(f"{args.prog}: error: {_message(error)}", file=sys.stderr)
        return status
