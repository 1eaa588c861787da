"""The live engine's status view in a terminal."""
from __future__ import annotations

import sys
import time

from sfgraph.engine.live import LiveEngine


class TerminalView:
    """A status block redrawn in place: time, latency, worker CPU, xruns, errors and a
    level meter per channel. Plain ANSI (cursor up, clear line), so it works over SSH.

    ``typed_lines()`` (optional) counts lines typed at the terminal, so the view
    moves up past them and clears them.
    """

    METER_WIDTH = 40

    def __init__(self, stream=sys.stdout, interval: float = 0.1, typed_lines=None):
        self.stream = stream
        self.interval = interval
        self.typed_lines = typed_lines or (lambda: 0)
        self._drawn_lines = 0
        self._typed_seen = 0
        self._last_draw = 0.0
        self._last_cpu = (0.0, 0)
        self.message = ""

    def __call__(self, engine: LiveEngine) -> None:
        now = time.monotonic()
        if now - self._last_draw < self.interval:
            return
        self._last_draw = now
        lines = self.render(engine)
        typed = self.typed_lines()
        up = self._drawn_lines + typed - self._typed_seen
        self._typed_seen = typed
        text = (f"\x1b[{up}F" if up else "") + "".join(f"\x1b[2K{line}\n" for line in lines) + "\x1b[J"
        self.stream.write(text)
        self.stream.flush()
        self._drawn_lines = len(lines)

    def render(self, engine: LiveEngine) -> list[str]:
        rate = engine.sample_rate
        cpu_seconds, blocks = engine.cpu_seconds, engine.scheduler.ticks
        previous_cpu, previous_blocks = self._last_cpu
        self._last_cpu = (cpu_seconds, blocks)
        recent = ((cpu_seconds - previous_cpu) / ((blocks - previous_blocks) * engine.block_seconds)
                  if blocks > previous_blocks else 0.0)
        under, over, _ = engine.xrun_totals()
        lines = [f"{engine.graph.decl.name}  {engine.frames_played / rate:7.1f} s  "
                 f"{engine.latency.milliseconds(rate)['total']:.1f} ms latency  "
                 f"CPU {100 * recent:3.0f}% (avg {100 * engine.cpu_load():.0f}%)  "
                 f"xruns {under + over} (under {under}, over {over})  errors {engine.node_error_count}"]
        for node_id, meter in engine.meters:
            for label, db in zip(meter.labels, meter.take_db()):
                filled = int(round(self.METER_WIDTH * (db + 60) / 60)) if db > -60 else 0
                bar = "#" * max(0, min(filled, self.METER_WIDTH))
                lines.append(f"  {node_id + '.' + label:24s} [{bar:{self.METER_WIDTH}s}] {db:6.1f} dB")
        if self.message:
            lines.append(self.message)
        return lines
