"""What a live run reports: the parts of its latency, its xruns, and the whole report.

``sfgraph live`` prints the latency breakdown when the stream opens and writes the
report with ``--report``; the terminal view shows parts of both while running.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sfgraph.atomic import write_text

# Sources of xruns, by the kind number the engine's event log keeps: (under or over, reason).
XRUN_KINDS = {
    0: ("under", "output underrun: the worker was late, silence played"),
    1: ("under", "device output underflow"),
    2: ("under", "device input underflow"),
    3: ("over", "device input overflow"),
    4: ("over", "device output overflow"),
    5: ("over", "input overrun: the worker fell behind, input lost"),
}


@dataclass
class Latency:
    """The parts of the live latency, in frames at the device rate, from a sound
    entering the device to its processed version leaving it: the device's input and
    output buffers, one block (a duplex callback cannot answer its own input), the
    worker's head start (``block_queue``), scheduling (bursts, measured by the
    engine's rehearsal), the nodes' look-ahead (output held back until more input
    is in) and the nodes' latency (the graph's content delay).
    ``sfgraph.engine.live`` explains how each is found.
    """

    device_input: int
    device_output: int
    block: int
    block_queue: int
    scheduling: int
    lookahead: int
    nodes: int

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    def milliseconds(self, sample_rate: int) -> dict[str, float]:
        parts = {name: 1000 * frames / sample_rate for name, frames in asdict(self).items()}
        return {"total": 1000 * self.total / sample_rate, **parts}

    def describe(self, sample_rate: int) -> str:
        ms = self.milliseconds(sample_rate)
        return (f"latency {ms['total']:.1f} ms = device {ms['device_input'] + ms['device_output']:.1f}"
                f" + block {ms['block']:.1f} + queue {ms['block_queue']:.1f}"
                f" + scheduling {ms['scheduling']:.1f} + look-ahead {ms['lookahead']:.1f}"
                f" + nodes {ms['nodes']:.1f} ms")


@dataclass
class LiveReport:
    """What a live run did; ``to_json`` is what ``--report`` writes."""

    graph: str
    sample_rate: int
    block_size: int
    ahead_blocks: int
    worker_realtime: bool  # the worker ran under real-time scheduling (sfgraph.threads.realtime_priority)
    input_device: str | None
    output_device: str | None
    ended: str
    seconds: float
    blocks: int
    callbacks: int
    xruns: int
    underruns: int
    overruns: int
    xrun_reasons: dict[str, int]
    xrun_events: list[dict]
    latency_ms: float
    latency_parts_ms: dict[str, float]
    cpu_load: float
    cpu_load_peak: float
    cpu_load_p99: float
    # share of the machine's CPU time a hypervisor gave to other guests meanwhile (None: unknown);
    # while a virtual CPU does not run, every callback on it is late (sfgraph.threads.StolenTime)
    cpu_stolen: float | None
    node_errors: int
    errors: list[dict]
    callback_errors: int
    control_changes: int
    # peak and RMS level (dBFS) of every metered channel over the run, by "node.channel":
    # the device inputs and outputs and any meter node
    levels_dbfs: dict[str, dict[str, float]]
    control_errors: list[str] = field(default_factory=list)

    @property
    def device_xruns(self) -> int:
        """The xruns PortAudio flagged (the audio thread itself late), not the worker's."""
        return sum(count for reason, count in self.xrun_reasons.items() if reason.startswith("device"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self, path: Path) -> None:
        """Write the report so that a reader sees the whole file or none."""
        write_text(Path(path), self.to_json())
