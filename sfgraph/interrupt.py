"""SIGTERM and SIGHUP stop a command the way Ctrl-C (SIGINT) does.

Python's default for SIGTERM and SIGHUP ends the process at once, skipping the
``finally`` blocks that delete temporary files and roll back half-committed outputs.
Inside ``stop_like_interrupt()`` they raise ``Stopped``, a ``KeyboardInterrupt``, so
every clean-up written for Ctrl-C runs for them too.
"""
from __future__ import annotations

import contextlib
import signal
import threading

_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A SIGTERM or SIGHUP, raised where the main thread was."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum, frame):
    raise Stopped(signum)


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """The shell's convention: 128 + the signal's number (130 for Ctrl-C)."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


@contextlib.contextmanager
def stop_like_interrupt():
    """Within the block, SIGTERM and SIGHUP raise ``Stopped`` (main thread only;
    elsewhere, where signals cannot be handled, nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_stopped) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
