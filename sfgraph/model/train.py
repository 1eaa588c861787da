"""Unsupervised training: the network learns to explain mixtures as sums of voices.

Only mixtures and F0 tracks are read: never ``stems/``. One process, or several
with ``torchrun --nproc_per_node N -m sfgraph.train DATASET -o MODEL_DIR``
(DistributedDataParallel: gloo on CPU, nccl on CUDA).

Randomness (segment choice, synthesizer noise) is drawn from generators seeded by
the step number, so a run resumed from its last checkpoint continues exactly as
the uninterrupted run would have.
"""
from __future__ import annotations

import contextlib
import csv
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import distributed as dist
from tqdm import tqdm

from sfgraph.atomic import write_bytes, write_torch
from sfgraph.data.layout import load_training_dataset
from sfgraph.dsp.voice_config import VoiceConfig
from sfgraph.dsp.voice_torch import synthesize_voices, unit_harmonic_sines
from sfgraph.model.checkpoint import load_model, read_model_config, save_model
from sfgraph.model.config import TrainConfig
from sfgraph.model.errors import ModelError
from sfgraph.model.folder_lock import FolderLock, prepare_output_folder
from sfgraph.model.loss import spectral_loss
from sfgraph.model.network import NetworkConfig, ParamNet, split_parameters
from sfgraph.resources import resolve_path
from sfgraph.threads import CpuShare, use_threads


# steps between checks of how many cores other processes leave idle (when --threads is not given)
THREAD_CHECK_STEPS = 10


class Segments:
    """Mixtures and F0 tracks in memory, cut into training segments (mixture, F0 and the
    voices' unit harmonic sines: see ``synthesize``)."""

    def __init__(self, mixes: list[np.ndarray], f0s: list[np.ndarray], segment: int, voice_config: VoiceConfig):
        self.mixes = [torch.from_numpy(m) for m in mixes]
        self.f0s = [torch.from_numpy(f.astype(np.float32)) for f in f0s]
        self.segment, self.hop = segment, voice_config.hop
        # F0 alone fixes the harmonic sines: made once per item (64 kB per voice and second of
        # audio), not at every step, where they took a third of a CPU step (issue 16); a cut's
        # phase so continues from the item's start instead of restarting at 0
        self.sines = [unit_harmonic_sines(f[None], voice_config)[0] for f in self.f0s]
        lengths = torch.tensor([max(1, m.shape[-1] - segment) for m in mixes], dtype=torch.float64)
        self.weights = lengths / lengths.sum()

    def cut(self, index: int, start_frame: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames = self.segment // self.hop
        mix = self.mixes[index][start_frame * self.hop:start_frame * self.hop + self.segment]
        f0 = self.f0s[index][:, start_frame:start_frame + frames]
        sines = self.sines[index][:, start_frame:start_frame + frames]
        mix = torch.nn.functional.pad(mix, (0, self.segment - mix.shape[-1]))
        f0 = torch.nn.functional.pad(f0, (0, frames - f0.shape[-1]))
        sines = torch.nn.functional.pad(sines, (0, 0, 0, frames - sines.shape[-2]))
        return mix, f0, sines

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        items = torch.multinomial(self.weights, size, replacement=True, generator=generator)
        cuts = []
        for index in items.tolist():
            last_start = max(0, (self.mixes[index].shape[-1] - self.segment) // self.hop)
            start = int(torch.randint(0, last_start + 1, (1,), generator=generator))
            cuts.append(self.cut(index, start))
        return tuple(torch.stack(parts) for parts in zip(*cuts))

    def fixed_batches(self, size: int):
        """Every whole segment of every item, in order (for validation)."""
        frames = self.segment // self.hop
        cuts = [self.cut(i, start) for i, m in enumerate(self.mixes)
                for start in range(0, max(1, (m.shape[-1] - self.segment) // self.hop + 1), frames)]
        for i in range(0, len(cuts), size):
            yield tuple(torch.stack(parts) for parts in zip(*cuts[i:i + size]))


def load_segments(dataset_dir: Path, config: TrainConfig, voice_config) -> tuple[Segments, Segments, tuple[str, ...]]:
    """Training and validation segments from a dataset folder (mixtures and F0 only)."""
    dataset = load_training_dataset(dataset_dir, config.validation_items)
    voices = dataset.voices
    segment = int(round(config.segment_seconds * voice_config.sample_rate / voice_config.hop)) * voice_config.hop
    mixes = [item.load_mix() for item in dataset]
    f0s = [item.f0_on_frames(voice_config.hop) for item in dataset]
    split = len(dataset) - config.validation_items
    return (Segments(mixes[:split], f0s[:split], segment, voice_config),
            Segments(mixes[split:], f0s[split:], segment, voice_config), voices)


def synthesize(network, config: NetworkConfig, mix: torch.Tensor, f0: torch.Tensor, sines: torch.Tensor,
               generator: torch.Generator) -> torch.Tensor:
    """Voices (B, V, samples) that the network's parameters make for this mixture; ``sines``
    (B, V, frames, hop): the F0s' ``unit_harmonic_sines`` (``network`` may be wrapped in
    DistributedDataParallel, hence the explicit config)."""
    params = network(mix, f0)
    amplitude, noise_gain, increments, bands = split_parameters(params, config)
    return synthesize_voices(f0, amplitude, noise_gain, increments, bands[:, :, 0], generator=generator,
                             config=config.voice, harmonic_sines=sines)


def training_step(trained, config: NetworkConfig, optimizer, segments: Segments, batch_size: int,
                  generator: torch.Generator, device) -> float:
    """One optimisation step on a batch drawn from ``segments``: the loss of the sum of the
    voices against the mixture, gradients clipped to norm 1; returns the loss. ``trained``
    may be wrapped in DistributedDataParallel, hence the explicit config."""
    mix, f0, sines = (part.to(device) for part in segments.batch(batch_size, generator))
    trained.train()
    loss = spectral_loss(synthesize(trained, config, mix, f0, sines, generator).sum(dim=1), mix)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trained.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def learning_rate_factor(config: TrainConfig):
    floor = config.final_learning_rate / config.learning_rate

    def factor(step: int) -> float:
        progress = min(1.0, step / max(1, config.steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def setting_differences(saved: NetworkConfig, wanted: NetworkConfig) -> list[str]:
    """Every network setting where a saved model differs from this run's, as text."""
    saved_values, wanted_values = saved.to_dict(), wanted.to_dict()
    return [f"{name} {saved_values[name]} (now {wanted_values[name]})"
            for name in saved_values if saved_values[name] != wanted_values[name]]


def load_initial_model(model: str, model_dir: Path) -> tuple[ParamNet, str]:
    """The trained model that ``--init MODEL`` starts from, and how to record it (``sfgraph:REL``
    as given, other folders as absolute paths); ModelError prefixed with ``--init MODEL``."""
    try:
        folder = resolve_path(model)
        if folder.resolve() == model_dir.resolve():
            raise ModelError("it is also the output folder, which training overwrites; write to another folder")
        start = load_model(folder)
    except (FileNotFoundError, ModelError) as exc:
        raise ModelError(f"--init {model}: {exc}") from None
    return start, model if model.startswith("sfgraph:") else str(folder.resolve())


def check_initial_model(model: str, start: ParamNet, network: ParamNet) -> None:
    """Refuse to start from a model whose settings differ from the network about to train,
    naming the differences and the flags that match it."""
    changed = setting_differences(start.config, network.config)
    if not changed:
        return
    saved, wanted = start.config, network.config
    hints = []
    if saved.voices != wanted.voices:
        hints.append(f"use a dataset with the voices {', '.join(saved.voices)}")
    if saved.hidden != wanted.hidden:
        hints.append(f"pass --hidden {saved.hidden}")
    if saved.causal_frames != wanted.causal_frames:
        hints.append("drop --no-causal-frames" if saved.causal_frames else "pass --no-causal-frames")
    if len(hints) < len(changed):
        unsettable = "the others" if hints else "these"
        hints.append(f"no training flag sets {unsettable} (a model from another sfgraph version?)")
    raise ModelError(f"--init {model}: that model has {'; '.join(changed)}: {', '.join(hints)}")


def train(dataset_dir: Path, model_dir: Path, config: TrainConfig, resume: bool = False,
          device: str = "auto", progress: bool = True, keep_rank_weights: bool = False,
          init: str | None = None, force: bool = False, threads: int | None = None) -> dict:
    """Train (or resume) and return a summary; writes the model folder as it goes.

    ``init``: a trained model folder to start a new run from (fine-tuning) instead of
    random weights; a resumed run continues from its checkpoint, so it takes no ``init``.
    The model folder is locked while training (a second run into it fails at once) and
    must be empty unless ``resume`` or ``force`` (which removes the earlier run's files).
    ``threads``: torch's CPU threads; None: the cores other processes leave idle, checked
    again every ``THREAD_CHECK_STEPS`` steps (see ``sfgraph.threads``)."""
    config.check()
    main_process = int(os.environ.get("RANK", "0")) == 0
    with FolderLock(model_dir) if main_process else contextlib.nullcontext():
        if main_process:
            prepare_output_folder(model_dir, resume, force)
        return _train(dataset_dir, model_dir, config, resume, device, progress, keep_rank_weights, init, threads)


def _train(dataset_dir: Path, model_dir: Path, config: TrainConfig, resume: bool, device: str, progress: bool,
           keep_rank_weights: bool, init: str | None, threads: int | None) -> dict:
    use_threads(threads)
    cpu_share = CpuShare() if threads is None else None
    if init is not None and resume:
        raise ModelError("--init starts a new run and --resume continues one from its checkpoint: give one of them")
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                          "cpu" if device == "auto" else device)
    rank, world = 0, 1
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    main_process = rank == 0
    model_dir = Path(model_dir)
    torch.manual_seed(config.seed)
    start, init_record = load_initial_model(init, model_dir) if init is not None else (None, None)

    train_set, validation_set, voices = load_segments(Path(dataset_dir), config, VoiceConfig())
    network = ParamNet(NetworkConfig(voices=voices, hidden=config.hidden, causal_frames=config.causal_frames))
    if start is not None:
        check_initial_model(init, start, network)
        network.load_state_dict(start.state_dict())
    network = network.to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor(config))
    state = {"step": 0, "best": math.inf, "evals_since_best": 0, "seconds": 0.0, "init": init_record}
    checkpoint_path = model_dir / "checkpoint.pt"
    if resume:
        if not checkpoint_path.exists():
            raise ModelError(f"--resume: no checkpoint at {checkpoint_path}")
        if (model_dir / "model.json").exists():
            changed = setting_differences(read_model_config(model_dir)[0], network.config)
            if changed:
                raise ModelError(f"--resume: {model_dir} was trained with {', '.join(changed)}; resume with "
                                 "the same settings")
        saved = torch.load(checkpoint_path, map_location=device, weights_only=False)
        network.load_state_dict(saved["network"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        state = saved["state"]
        state.setdefault("init", None)  # checkpoints written before --init existed
    elif main_process:
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / "log.csv").write_text("step,train_loss,validation_loss,learning_rate,seconds\n")
    trained = torch.nn.parallel.DistributedDataParallel(network) if distributed else network

    bar = tqdm(total=config.steps, initial=state["step"], desc="training", disable=not (progress and main_process),
               file=sys.stderr)
    started = time.perf_counter() - state["seconds"]
    running, running_count = 0.0, 0
    stop_reason = "steps"
    while state["step"] < config.steps:
        step = state["step"]
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step * world + rank)
        loss_value = training_step(trained, network.config, optimizer, train_set, config.batch_size, generator, device)
        schedule.step()
        state["step"] += 1
        if cpu_share is not None and state["step"] % THREAD_CHECK_STEPS == 0:
            torch.set_num_threads(cpu_share.threads())
        running += loss_value
        running_count += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.3f}")
        state["seconds"] = time.perf_counter() - started
        over_budget = config.max_minutes is not None and state["seconds"] > 60 * config.max_minutes
        if distributed and config.max_minutes is not None:  # rank 0's clock decides, so all ranks evaluate together
            flag = torch.tensor([float(over_budget)])
            dist.broadcast(flag, 0)
            over_budget = bool(flag[0])
        if state["step"] % config.eval_every and state["step"] < config.steps and not over_budget:
            continue
        stop = torch.zeros(1)
        if main_process:
            validation = evaluate(network, validation_set, config.batch_size, device)
            improved = validation < state["best"]
            state["best"] = min(state["best"], validation)
            state["evals_since_best"] = 0 if improved else state["evals_since_best"] + 1
            with open(model_dir / "log.csv", "a") as log:
                log.write(f"{state['step']},{running / running_count:.5f},{validation:.5f},"
                          f"{schedule.get_last_lr()[0]:.6g},{state['seconds']:.1f}\n")
            if improved:
                training = {**asdict(config), "dataset": str(dataset_dir), "init": state["init"]}
                save_model(model_dir, network, training)
            write_torch(checkpoint_path, {"network": network.state_dict(), "optimizer": optimizer.state_dict(),
                                          "schedule": schedule.state_dict(), "state": state})
            plot_loss_curve(model_dir)
            if state["evals_since_best"] >= config.patience:
                stop[0], stop_reason = 1, "early stopping"
            elif over_budget:
                stop[0], stop_reason = 1, "time budget"
        running, running_count = 0.0, 0
        if distributed:
            dist.broadcast(stop, 0)
        if stop[0]:
            break
    bar.close()
    if keep_rank_weights:
        write_torch(model_dir / f"final_weights_rank{rank}.pt", network.state_dict())
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return {"steps": state["step"], "best_validation_loss": state["best"], "seconds": state["seconds"],
            "stopped_by": stop_reason}


@torch.no_grad()
def evaluate(network: ParamNet, segments: Segments, batch_size: int, device) -> float:
    """Mean validation loss over fixed segments, with fixed synthesizer noise."""
    network.eval()
    generator = torch.Generator().manual_seed(12345)
    losses = []
    for batch in segments.fixed_batches(batch_size):
        mix, f0, sines = (part.to(device) for part in batch)
        losses.append(float(spectral_loss(synthesize(network, network.config, mix, f0, sines, generator).sum(dim=1),
                                          mix)))
    return float(np.mean(losses))


def plot_loss_curve(model_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(model_dir / "log.csv") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [float(r["train_loss"]) for r in rows], label="training")
    ax.plot(steps, [float(r["validation_loss"]) for r in rows], label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("multi-resolution spectral loss")
    ax.legend()
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_bytes(model_dir / "loss_curve.png", buffer.getvalue())
