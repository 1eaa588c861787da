"""Live engine under load: worker CPU, latency and xruns per block size, on a JACK
server with a dummy clock (no sound card needed; Debian packages jackd2, libportaudio2).

    python benchmarks/bench_live.py [--graphs separate_live choir_fx] [--block-sizes 128 256 512]
                                    [--seconds 20] [--ahead 2] [--model DIR] [--json results.json]

For each block size a private JACK server runs at 48 kHz with that period (with
real-time scheduling, as on a music machine, unless --no-realtime), and each
graph runs live for ``--seconds`` (microphone = the server's silent dummy input; F0
from the bach_tiny fixture, looped), after a baseline: a pass-through graph (microphone
to output, no work), whose xruns are the machine's own, and the share of CPU time a
hypervisor took meanwhile (``stolen``; 0 on real hardware). The model is ``--model``, else the bundled one,
else a random model of the default size (the CPU cost does not depend on the weights).
Prints one row per run: worker CPU load (mean, 99th percentile and peak per block, as a
fraction of one core), total latency split into its algorithmic part (what the graph's
processing needs: STFT windows, the model's hops and look-ahead, resampling, measured
by the engine's rehearsal) and buffering (the device's buffers, the callback's block
and the worker's head start, which depend on the block size), and xruns
(under/overruns).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from jack import JackServer, jack_missing_reason  # noqa: E402  (tests/jack.py)

from sfgraph.data.layout import read_f0_csv, write_f0_csv  # noqa: E402
from sfgraph.engine.live import LiveEngine, build_live_graph  # noqa: E402
from sfgraph.graph.declaration import load_graph_decl  # noqa: E402
from sfgraph.graph.registry import get_node_type  # noqa: E402

F0_ITEM = ROOT / "tests" / "fixtures" / "bach_tiny" / "0000_bwv159.5_0" / "f0"


def looped_f0(folder: Path, seconds: float) -> Path:
    """The fixture's F0 tracks repeated to last ``seconds``: the synthesizer keeps singing."""
    for csv in sorted(F0_ITEM.glob("*.csv")):
        times, f0 = read_f0_csv(csv)
        step = times[1] - times[0]
        repeats = int(np.ceil(seconds / (times[-1] + step))) + 1
        looped = np.tile(f0, repeats)
        write_f0_csv(folder / csv.name, np.arange(looped.size) * step, looped)
    return folder


def model_folder(given: str | None, scratch: Path) -> tuple[str, str]:
    """(model path, description)."""
    if given:
        return given, given
    from sfgraph.resources import resolve_resource

    try:
        return str(resolve_resource("sfgraph:models/default")), "bundled model"
    except FileNotFoundError:
        import torch

        from sfgraph.model.checkpoint import save_model
        from sfgraph.model.network import NetworkConfig, ParamNet

        torch.manual_seed(0)
        config = NetworkConfig()
        save_model(scratch / "model", ParamNet(config))
        return str(scratch / "model"), f"random model of the default size (hidden {config.hidden})"


# The baseline: the engine and the device with nothing to compute.
PASSTHROUGH = """\
name: passthrough
sample_rate: 48000
nodes:
  - {id: mic, type: device_in,  params: {channels: 1}}
  - {id: out, type: device_out, params: {first_channel: 1}}
connections:
  - mic.audio -> out.audio
"""


def applicable(overrides: list[str], graph: str) -> list[str]:
    """The NODE.PARAM=VALUE overrides whose node is in ``graph`` and declares PARAM."""
    nodes = {node.id: get_node_type(node.type) for node in load_graph_decl(graph).nodes}
    chosen = []
    for override in overrides:
        node, _, param = override.partition("=")[0].partition(".")
        if node in nodes and param in nodes[node].params:
            chosen.append(override)
    return chosen


def run_one(graph: str, block_size: int, seconds: float, ahead: int, overrides: list[str]) -> dict:
    decl = load_graph_decl(graph, overrides)
    decl.block_size = block_size
    engine = LiveEngine(build_live_graph(decl, Path(tempfile.mkdtemp())), ahead_blocks=ahead)
    engine.prepare()
    report = engine.run(duration=seconds)
    parts = report.latency_parts_ms
    return {"graph": graph, "block_size": block_size, "seconds": report.seconds,
            "cpu_load": report.cpu_load, "cpu_load_p99": report.cpu_load_p99, "cpu_load_peak": report.cpu_load_peak,
            "latency_ms": report.latency_ms,
            "algorithmic_latency_ms": round(parts["scheduling"] + parts["lookahead"] + parts["nodes"], 3),
            "buffering_latency_ms": round(parts["device_input"] + parts["device_output"] + parts["block"]
                                          + parts["block_queue"], 3),
            "latency_parts_ms": report.latency_parts_ms, "xruns": report.xruns, "underruns": report.underruns,
            "overruns": report.overruns, "xrun_reasons": report.xrun_reasons, "node_errors": report.node_errors,
            "device_xruns": report.device_xruns, "worker_late": report.xruns - report.device_xruns,
            "cpu_stolen": report.cpu_stolen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graphs", nargs="+", default=["separate_live", "choir_fx"])
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ahead", type=int, default=2, help="blocks the worker runs ahead (default 2)")
    parser.add_argument("--model", help="model folder (default: the bundled model, else a random one)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="more param overrides for every graph, e.g. mask.n_fft=512")
    parser.add_argument("--no-realtime", action="store_true",
                        help="run the JACK server without real-time scheduling (as the tests do)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    reason = jack_missing_reason()
    if reason:
        sys.exit(f"bench_live: {reason}")
    unused = [o for o in args.param if not any(applicable([o], graph) for graph in args.graphs)]
    if unused:
        sys.exit(f"bench_live: -p {', '.join(unused)}: no such node and param in {', '.join(args.graphs)}")
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model, model_text = model_folder(args.model, scratch)
        f0 = looped_f0(scratch, args.seconds + 5)
        baseline = scratch / "passthrough.yaml"
        baseline.write_text(PASSTHROUGH)
        overrides = [f"net.model={model}", f"f0.dir={f0}"] + args.param
        print(f"{model_text}; {args.seconds:g} s per run, 48 kHz, worker {args.ahead} blocks ahead, "
              f"JACK {'without' if args.no_realtime else 'with'} real-time scheduling")
        print(f"{'graph':18s} {'block':>5} {'CPU mean':>8} {'p99':>6} {'peak':>6} {'latency':>8} "
              f"{'algor.':>7} {'buffers':>7} {'xruns':>5}  {'(worker late / device)':<22} {'stolen':>6}")
        for block_size in args.block_sizes:
            server = JackServer(f"sfgbench{block_size}", scratch, period=block_size,
                                realtime=not args.no_realtime).start()
            try:
                server.use_in_this_process()
                for graph in [str(baseline)] + args.graphs:
                    row = run_one(graph, block_size, args.seconds, args.ahead, applicable(overrides, graph))
                    results.append(row)
                    stolen = "?" if row["cpu_stolen"] is None else f"{100 * row['cpu_stolen']:.1f}%"
                    print(f"{Path(graph).stem:18s} {block_size:>5} {100 * row['cpu_load']:>7.1f}% "
                          f"{100 * row['cpu_load_p99']:>5.0f}% {100 * row['cpu_load_peak']:>5.0f}% "
                          f"{row['latency_ms']:>6.1f}ms {row['algorithmic_latency_ms']:>5.1f}ms "
                          f"{row['buffering_latency_ms']:>5.1f}ms {row['xruns']:>5}  "
                          f"{'(%d / %d)' % (row['worker_late'], row['device_xruns']):<22} {stolen:>6}",
                          flush=True)
            finally:
                server.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
