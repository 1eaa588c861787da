"""A private JACK server with a dummy clock, so live tests run without a sound card.

Each server is named (``jackd -n NAME``), so parallel test runs and a user's own
JACK server are left alone. PortAudio only sees the server named by
``JACK_DEFAULT_SERVER`` when it initialises, and it aborts the process if its
server dies under it: ``use_in_this_process`` re-initialises PortAudio on the
server, and ``stop`` shuts PortAudio down before it stops the server.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

RATE = 48000
PERIOD = 256
CHANNELS = 8


class JackServer:
    """``jackd -d dummy`` at ``rate`` Hz, ``period`` frames, ``channels`` in and out.

    ``realtime``: run the server (and so its clients' audio threads) with real-time
    scheduling, as on a music machine; in these VMs a server without it misses some
    cycles (device xruns) at periods of 256 frames and below, whatever the clients do.
    """

    def __init__(self, name: str, log_dir: Path, rate: int = RATE, period: int = PERIOD, channels: int = CHANNELS,
                 realtime: bool = False):
        self.name, self.rate, self.period, self.channels = name, rate, period, channels
        self.realtime = realtime
        self.log = log_dir / f"jackd-{name}.log"
        self.process: subprocess.Popen | None = None
        self.in_this_process = False

    @property
    def env(self) -> dict[str, str]:
        """Environment of a process that should use this server (and start no other)."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1",
                "JACK_NO_AUDIO_RESERVATION": "1"}

    def start(self) -> "JackServer":
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                ["jackd", "-n", self.name, *(["-R", "-P", "70"] if self.realtime else ["--no-realtime"]),
                 "-d", "dummy", "-r", str(self.rate),
                 "-p", str(self.period), "-C", str(self.channels), "-P", str(self.channels)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        ready = subprocess.run(["jack_wait", "-w", "-t", "10", "-s", self.name], env=self.env,
                               capture_output=True, text=True)
        if ready.returncode != 0 or self.process.poll() is not None:
            self.kill()
            raise RuntimeError(f"jackd -n {self.name} did not start: {self.log.read_text()[-2000:]}")
        return self

    def use_in_this_process(self) -> None:
        """Point this process's PortAudio (and JACK MIDI) at this server."""
        import sounddevice

        os.environ.update({k: v for k, v in self.env.items() if k.startswith("JACK_")})
        if sounddevice._initialized:
            sounddevice._terminate()
        sounddevice._initialize()
        self.in_this_process = True

    def ports(self) -> list[str]:
        listing = subprocess.run(["jack_lsp", "-s", self.name], env=self.env, capture_output=True, text=True)
        return listing.stdout.split("\n")

    def connect(self, source: str, destination: str) -> None:
        subprocess.run(["jack_connect", "-s", self.name, source, destination], env=self.env, check=True,
                       capture_output=True)

    def kill(self) -> None:
        """Stop the server (without caring about PortAudio: for servers this process does not use)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # JACK leaves the semaphores of clients that were connected when it stopped
        for semaphore in Path("/dev/shm").glob(f"jack_sem.*_{self.name}_*"):
            semaphore.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.in_this_process:
            import sounddevice

            sounddevice._terminate()
            self.in_this_process = False
        self.kill()


def jack_missing_reason() -> str | None:
    """Why live tests cannot run here, or None."""
    for tool in ("jackd", "jack_wait", "jack_lsp", "jack_connect"):
        if shutil.which(tool) is None:
            return f"'{tool}' not found: install the Debian packages jackd2 and libportaudio2 (see the Makefile)"
    try:
        import sounddevice  # noqa: F401  (fails without libportaudio2)
    except OSError as exc:
        return f"PortAudio is not installed ({exc}): install the Debian package libportaudio2"
    return None


def start_or_skip(name: str, log_dir: Path, **options) -> JackServer:
    reason = jack_missing_reason()
    if reason:
        pytest.skip(reason)
    # jack_lsp (1.9.21) crashes on server names of 24 characters or more: keep them short
    unique = f"{name}-{os.getpid() % 100000}-{time.monotonic_ns() % 1000}"
    if len(unique) > 20:
        raise ValueError(f"JACK server name {unique!r} is too long; use a shorter prefix than {name!r}")
    return JackServer(unique, log_dir, **options).start()
