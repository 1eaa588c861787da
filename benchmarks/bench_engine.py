"""Offline rendering speed: the shipped graphs on a minute of mixture, and the
engine's own overhead (20 gain nodes in series on 48 kHz stereo) against plain numpy.

    python benchmarks/bench_engine.py [--seconds 60] [--graphs separate choir_fx effects_chain]
                                      [--block-sizes 0 256] [--runs 3] [--mix-rate 48000]
                                      [--minutes 10] [--overhead-block-sizes 256 4096]

Shipped graphs: the bundled 10-s demo quartet and its F0s, looped to ``--seconds``
(``--mix-rate``: the mixture resampled first, e.g. to 48 kHz as a microphone records
it; the demo is 16 kHz), rendered by ``sfgraph render`` in a fresh process (block
size 0: the offline default), timed whole (start-up included, the real-time factor a
user sees; the fastest of ``--runs``, wall and CPU seconds apart: on a shared machine
other processes lengthen the wall time, the CPU time less) and,
again in this process, per node: the separation nodes (param_net, sf_synth, mask)
apart from everything else (file and device I/O, resampling edges, effects,
mixing, the scheduler itself).

Overhead: the real-time factor (audio seconds per wall second) of the scheduler
running the gain graph, of a numpy loop doing the same multiplications block by
block, and their ratio (how many times slower the engine is than the bare operations).
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_separate import timed
from pedalboard.io import AudioFile

from sfgraph.data.layout import read_f0_csv, write_f0_csv
from sfgraph.engine.offline import render
from sfgraph.graph.build import build_graph
from sfgraph.graph.declaration import load_graph_decl
from sfgraph.resources import resolve_resource

# Each shipped graph's overrides that point it at the looped mixture and F0s.
SHIPPED = {
    "separate": ["mix.path={mix}", "f0.dir={f0}", "net.device=cpu"],
    "choir_fx": ["mic.file={mix}", "f0.dir={f0}"],
    "effects_chain": ["in.path={mix}"],
}
SEPARATION_TYPES = {"param_net", "sf_synth", "mask"}

NODES = '''
import numpy as np
from sfgraph.graph.node import Node
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port, audio_spec

class BenchNoise(Node):
    type_name = "bench_noise"
    outputs = {"audio": Port("audio")}
    params = {"seconds": Param("float", 60.0)}

    def configure(self, inputs, context):
        self.total = int(self.p.seconds * context.sample_rate)
        self.block = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 65536)).astype(np.float32)
        return {"audio": audio_spec(2, context.sample_rate)}

    def prepare(self):
        self.position = 0

    def process(self, n):
        n = min(n, self.total - self.position)
        self.position += n
        self.done = self.position >= self.total
        return {"audio": self.block[:, :n]}

class BenchNull(Node):
    type_name = "bench_null"
    inputs = {"audio": Port("audio")}

    def configure(self, inputs, context):
        return {}

    def process(self, audio):
        return {}
'''


def graph_yaml(seconds: float, block_size: int, n_nodes: int) -> str:
    lines = ["imports: [bench_nodes.py]", "sample_rate: 48000", f"block_size: {block_size}", "nodes:",
             f"  - {{id: src, type: bench_noise, params: {{seconds: {seconds}}}}}"]
    lines += [f"  - {{id: g{i}, type: gain}}" for i in range(n_nodes)]
    lines += ["  - {id: sink, type: bench_null}", "connections:"]
    chain = ["src"] + [f"g{i}" for i in range(n_nodes)] + ["sink"]
    lines += [f"  - {a}.audio -> {b}.audio" for a, b in zip(chain, chain[1:])]
    return "\n".join(lines) + "\n"


def numpy_baseline(seconds: float, block_size: int, n_nodes: int) -> float:
    block = np.random.default_rng(0).uniform(-0.5, 0.5, (2, block_size)).astype(np.float32)
    gain = np.float32(1.0)
    start = time.perf_counter()
    for _ in range(int(seconds * 48000) // block_size):
        x = block
        for _ in range(n_nodes):
            x = x * gain
    return time.perf_counter() - start


def looped_demo(folder: Path, seconds: float, mix_rate: float | None = None) -> Path:
    """The demo quartet's mixture and F0s repeated to ``seconds``, in ``folder``; the
    mixture at ``mix_rate`` (None: the demo's own rate)."""
    demo = resolve_resource("sfgraph:assets/demo/quartet")
    with AudioFile(str(demo / "mix.wav")) as f:
        clip = f.resampled_to(mix_rate or f.samplerate)
        rate, mix = clip.samplerate, clip.read(clip.frames)
    repeats = int(np.ceil(seconds * rate / mix.shape[-1]))
    with AudioFile(str(folder / "mix.wav"), "w", rate, 1, bit_depth=32) as f:
        f.write(np.tile(mix, repeats)[:, :round(seconds * rate)])
    (folder / "f0").mkdir()
    for csv in sorted((demo / "f0").glob("*.csv")):
        times, f0 = read_f0_csv(csv)
        step = times[1] - times[0]
        one_loop = f0[:round(mix.shape[-1] / rate / step)]
        looped = np.tile(one_loop, repeats)
        write_f0_csv(folder / "f0" / csv.name, np.arange(looped.size) * step, looped)
    return folder


def bench_shipped(args) -> None:
    print(f"shipped graphs, {args.seconds:.0f} s of the demo quartet looped; real-time factor = audio s / wall s; "
          f"whole process: the fastest of {args.runs} runs")
    print(f"{'graph':>14} {'block':>6} {'whole process':>14} {'RTF':>6} {'CPU':>7} {'in-process render':>18} "
          f"{'separation nodes':>17} {'other nodes + engine':>21}  largest other nodes (s)")
    with tempfile.TemporaryDirectory() as scratch:
        item = looped_demo(Path(scratch), args.seconds, args.mix_rate)
        for name in args.graphs:
            overrides = [o.format(mix=item / "mix.wav", f0=item / "f0") for o in SHIPPED[name]]
            for block_size in args.block_sizes:
                command = [sys.executable, "-m", "sfgraph", "render", name, "-q", "-o", f"{scratch}/out"]
                command += [arg for o in overrides for arg in ("-p", o)]
                command += ["--block-size", str(block_size)] if block_size else []
                whole, cpu, _ = (min(values) for values in zip(*(timed(command) for _ in range(args.runs))))
                graph = build_graph(load_graph_decl(name, overrides), output_dir=f"{scratch}/out")
                per_node = time_nodes(graph)
                start = time.perf_counter()
                result = render(graph, progress=False, block_size=block_size or None)
                rendering = time.perf_counter() - start
                separation = sum(t for n, t in per_node.items() if graph.nodes[n].type_name in SEPARATION_TYPES)
                others = [f"{n} {t:.2f}" for n, t in per_node.most_common()
                          if graph.nodes[n].type_name not in SEPARATION_TYPES][:3]
                print(f"{name:>14} {result.block_size:>6} {whole:>13.2f}s {args.seconds / whole:>5.1f}x {cpu:>6.2f}s "
                      f"{rendering:>17.2f}s {separation:>16.2f}s {rendering - separation:>20.2f}s  "
                      + ", ".join(others))


def time_nodes(graph) -> collections.Counter:
    """Wrap every node's ``process`` to add its wall time to the returned counter."""
    seconds = collections.Counter()
    for node_id, node in graph.nodes.items():
        def timed(*args, _process=node.process, _id=node_id, **kwargs):
            start = time.perf_counter()
            try:
                return _process(*args, **kwargs)
            finally:
                seconds[_id] += time.perf_counter() - start
        node.process = timed
    return seconds


def bench_overhead(args) -> None:
    seconds = args.minutes * 60
    print(f"engine overhead: {args.nodes} gain nodes, {seconds:.0f} s of 48 kHz stereo")
    print(f"{'block':>6} {'engine RTF':>11} {'numpy RTF':>10} {'engine/numpy time':>18}")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "bench_nodes.py").write_text(NODES)
        for block_size in args.overhead_block_sizes:
            path = Path(folder) / f"bench_{block_size}.yaml"
            path.write_text(graph_yaml(seconds, block_size, args.nodes))
            graph = build_graph(load_graph_decl(str(path)))
            start = time.perf_counter()
            render(graph, progress=False, block_size=block_size)
            engine = time.perf_counter() - start
            baseline = numpy_baseline(seconds, block_size, args.nodes)
            print(f"{block_size:>6} {seconds / engine:>10.1f}x {seconds / baseline:>9.1f}x {engine / baseline:>17.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="mixture length for the shipped graphs")
    parser.add_argument("--graphs", nargs="*", default=list(SHIPPED), choices=list(SHIPPED))
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[0],
                        help="shipped graphs' block sizes (0: the offline default)")
    parser.add_argument("--runs", type=int, default=3, help="whole-process runs of each graph (the fastest counts)")
    parser.add_argument("--mix-rate", type=float, default=None,
                        help="sample rate of the looped mixture (default: the demo's 16 kHz)")
    parser.add_argument("--minutes", type=float, default=10.0, help="audio for the overhead graph")
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--overhead-block-sizes", type=int, nargs="*", default=[256, 4096, 16384])
    args = parser.parse_args()
    bench_shipped(args)
    bench_overhead(args)


if __name__ == "__main__":
    main()
