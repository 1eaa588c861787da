"""Training and ``--adapt`` steps per minute of the bundled recipe, this tree against another
revision, in one run.

    python benchmarks/bench_train.py [--before REV] [--steps 8] [--repeats 3] [--dataset DIR]

The bundled recipe: width 192, causal frames, batches of 8 four-second segments, Adam, on one
torch thread. A training step is ``training_step`` (mixture → network → synthesizer → loss,
backward, optimiser step); an ``--adapt`` step is the same function starting from the bundled
model on one recording's training part (``split_recording``), as ``separate --adapt`` runs it.
The data: three 20-s items tiled from the bundled demo clip, or ``--dataset`` (a training
dataset: its items for training, its first item as the recording).

Each measurement is a process of its own, started in a tree: this one, or ``REV``'s files (``git
archive``) first on the path; it takes two warm-up steps (Numba's cache, the allocator), then
times ``--steps``. The two trees alternate, ``--repeats`` times each, so that other jobs on a
shared CPU weigh on both alike; the table gives each tree's median steps per minute and the
ratio of the medians, and every repeat's numbers.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, sys, time
from pathlib import Path
import torch
from sfgraph.threads import use_threads
from sfgraph.data.layout import load_training_dataset
from sfgraph.dsp.voice_config import VoiceConfig
from sfgraph.model.adapt import split_recording
from sfgraph.model.checkpoint import load_model
from sfgraph.model.config import TrainConfig
from sfgraph.model.network import NetworkConfig, ParamNet
from sfgraph.resources import resolve_path
from sfgraph.model.train import load_segments, training_step

dataset_dir, kind, steps = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
use_threads(1)
torch.manual_seed(0)
dataset = load_training_dataset(dataset_dir)
if kind == "train":
    segments, _, voices = load_segments(dataset, TrainConfig(hidden=192), VoiceConfig())
    network = ParamNet(NetworkConfig(voices=voices, hidden=192, causal_frames=True))
else:
    network = load_model(resolve_path("sfgraph:models/default"))
    item = next(iter(dataset))
    segments, _ = split_recording(item.load_mix(), item.f0_on_frames(network.config.voice.hop),
                                  network.config.voice, 4.0)
optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
times = []
for step in range(2 + steps):
    started = time.perf_counter()
    training_step(network, network.config, optimizer, segments, 8, torch.Generator().manual_seed(step), "cpu")
    times.append(time.perf_counter() - started)
print(json.dumps({"seconds_per_step": sum(times[2:]) / steps}))
"""


def export_tree(revision: str, folder: Path) -> Path:
    """``revision``'s files (``git archive``) under ``folder``."""
    archive = subprocess.run(["git", "-C", str(REPOSITORY), "archive", revision], check=True,
                             capture_output=True).stdout
    folder.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def seconds_per_step(tree: Path, dataset: Path, kind: str, steps: int) -> float:
    """One measurement: a worker process with ``tree`` first on the path."""
    result = subprocess.run([sys.executable, "-c", WORKER, str(dataset), kind, str(steps)], check=True,
                            capture_output=True, text=True, cwd=tree,
                            env={**os.environ, "PYTHONPATH": str(tree)})
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds_per_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="main", help="the revision to compare with (default main)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per tree and kind of step")
    parser.add_argument("--dataset", type=Path, help="a training dataset (default: tiled from the demo clip)")
    parser.add_argument("--kinds", nargs="+", default=["train", "adapt"], choices=["train", "adapt"])
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "--short", args.before], check=True,
                            capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = {f"before ({args.before} {commit})": export_tree(args.before, tmp / "before"), "now": REPOSITORY}
        from bench_separate import demo_dataset  # the demo items bench_separate's training runs on

        dataset = args.dataset.resolve() if args.dataset else demo_dataset(tmp / "data")
        print(f"{'step':>6} {'tree':>28} {'steps/min':>10}   each repeat (steps/min)")
        for kind in args.kinds:
            rates = {name: [] for name in trees}
            for _ in range(args.repeats):
                for name, tree in trees.items():
                    rates[name].append(60.0 / seconds_per_step(tree, dataset, kind, args.steps))
            for name in trees:
                print(f"{kind:>6} {name:>28} {statistics.median(rates[name]):10.1f}   "
                      + " ".join(f"{rate:.1f}" for rate in rates[name]))
            before, now = (statistics.median(values) for values in rates.values())
            print(f"{kind:>6} {'ratio now / before':>28} {now / before:10.2f}", flush=True)


if __name__ == "__main__":
    main()
