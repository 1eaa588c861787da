"""The garbage collector's pause in a live run: how long a full collection holds the GIL
(which the audio callback needs) with a live graph built and rehearsed, without and with
the freeze that ``LiveEngine.run`` applies while it streams (``gc.freeze``: objects alive
at the start are out of the collector's reach; measured here on ``gc.freeze`` itself,
without a sound device).

    python benchmarks/bench_gc_pause.py [--graph separate_live_mic] [--repeats 5]

Prints the median full-collection time before and after the freeze, and their ratio.
"""
from __future__ import annotations

import argparse
import gc
import time

import numpy as np

from sfgraph.engine.live import LiveEngine, build_live_graph
from sfgraph.graph.declaration import load_graph_decl
from sfgraph.resources import resolve_path


def full_collection_ms(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        gc.collect()
        times.append(1000 * (time.perf_counter() - started))
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", default="separate_live_mic")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    decl = load_graph_decl(args.graph, [])
    mic = decl.node("mic")  # the bundled clip in place of the microphone: no sound card needed
    if mic is None:
        parser.error(f"{args.graph} has no 'mic' node to stand the bundled clip in for (the live graphs have one)")
    mic.type, mic.params = "file_in", {"path": str(resolve_path("sfgraph:assets/demo/quartet/mix.wav"))}
    engine = LiveEngine(build_live_graph(decl))
    engine.prepare()  # models loaded, every node rehearsed: what a live run holds when it starts
    gc.collect()
    before = full_collection_ms(args.repeats)
    tracked = len(gc.get_objects())
    gc.freeze()
    after = full_collection_ms(args.repeats)
    gc.unfreeze()
    print(f"{args.graph}: {tracked} objects tracked; full collection {before:.1f} ms without the freeze, "
          f"{after:.2f} ms with it (ratio {before / max(after, 0.01):.0f}, the second floored at 0.01 ms)")


if __name__ == "__main__":
    main()
