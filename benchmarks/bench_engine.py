"""Engine overhead: 20 gain nodes in series on 48 kHz stereo, against plain numpy.

    python benchmarks/bench_engine.py [--minutes 10] [--block-sizes 256 1024]

Prints the real-time factor (audio seconds per wall second) of the scheduler
running the graph, of a numpy loop doing the same multiplications block by block,
and their ratio (how many times slower the engine is than the bare operations).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sfgraph.engine.offline import render
from sfgraph.graph.build import build_graph
from sfgraph.graph.model import load_graph_decl

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[256, 1024, 4096])
    args = parser.parse_args()
    seconds = args.minutes * 60
    print(f"{args.nodes} gain nodes, {seconds:.0f} s of 48 kHz stereo")
    print(f"{'block':>6} {'engine RTF':>11} {'numpy RTF':>10} {'engine/numpy time':>18}")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "bench_nodes.py").write_text(NODES)
        for block_size in args.block_sizes:
            path = Path(folder) / f"bench_{block_size}.yaml"
            path.write_text(graph_yaml(seconds, block_size, args.nodes))
            graph = build_graph(load_graph_decl(str(path)))
            start = time.perf_counter()
            render(graph, progress=False)
            engine = time.perf_counter() - start
            baseline = numpy_baseline(seconds, block_size, args.nodes)
            print(f"{block_size:>6} {seconds / engine:>10.1f}x {seconds / baseline:>9.1f}x {engine / baseline:>17.1f}x")


if __name__ == "__main__":
    main()
