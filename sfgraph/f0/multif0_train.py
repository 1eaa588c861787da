"""Supervised training of the multi-F0 salience network (``sfgraph train-f0``).

Trained on generated data with true F0s (``sfgraph data bach``), which is
legitimate: only the pitch estimator sees the truth, the separator never does.
Targets are the true pitches of all voices on the log-frequency bins, blurred by a
Gaussian of ``TARGET_SIGMA_BINS``; the loss is binary cross-entropy per bin and
frame. Features are computed once per item; each step takes random crops, with a
random level change (a shift of the dB features) so that the network does not
learn the data's loudness. The best weights on the validation items are kept and
written atomically (float16, about 0.1 MB).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


from sfgraph.f0.multif0 import (BINS, HOP_LENGTH, N_FFT, HarmonicSpectrum, ModelFolderError, SalienceConfig,
                                SalienceNet, hz_to_bin, load_salience_model, save_salience_model)
from sfgraph.resources import path_record, resolve_path
from sfgraph.threads import StepThreads

TARGET_SIGMA_BINS = 0.6


@dataclass(frozen=True)
class SalienceTrainConfig:
    crop_frames: int = 64
    batch_size: int = 16
    learning_rate: float = 2e-3
    max_steps: int = 2400
    max_minutes: float = 30.0
    eval_every: int = 200
    level_db: float = 12.0
    validation_items: int = 2
    seed: int = 0
    threads: int | None = None  # None: the cores other processes leave idle (sfgraph.threads.StepThreads)


def salience_target(f0_hz: np.ndarray) -> np.ndarray:
    """(V, T) Hz (0 = silent) → (BINS, T) in 0..1: a Gaussian bump at every sung pitch."""
    bins = np.arange(BINS)[:, None, None]
    voiced = f0_hz > 0
    position = np.where(voiced, hz_to_bin(np.where(voiced, f0_hz, 1.0)), -1e3)
    bumps = np.exp(-0.5 * ((bins - position[None]) / TARGET_SIGMA_BINS) ** 2)
    return bumps.max(axis=1).astype(np.float32)


def item_features(mix: np.ndarray) -> np.ndarray:
    """(len(HARMONICS), BINS, 1 + n // 256) dB features of a whole mixture."""
    spectrum = HarmonicSpectrum()
    frames = 1 + mix.size // HOP_LENGTH
    features = np.concatenate([spectrum.push(mix), spectrum.push(np.zeros(N_FFT, np.float32))])
    return np.ascontiguousarray(features[:frames].transpose(1, 2, 0))


def load_examples(datasets, min_frames: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, features, target) of every item of the datasets (``sfgraph.data.layout``'s; mixtures
    and F0 files only); items shorter than ``min_frames`` are an error naming them."""
    examples, short = [], []
    for dataset in datasets:
        root = dataset.root
        for item in dataset:
            features = item_features(item.load_mix())
            target = salience_target(item.f0_on_frames())
            frames = min(features.shape[-1], target.shape[-1])
            if frames < min_frames:
                short.append(f"{item.path} ({frames} frames)")
            examples.append((f"{root.name}/{item.name}", features[..., :frames], target[:, :frames]))
    if short:
        raise ValueError(f"items shorter than a training crop ({min_frames} frames of 16 ms): {', '.join(short)}")
    return examples


def batch_of(examples, rng: np.random.Generator, config: SalienceTrainConfig, context: int):
    inputs, targets = [], []
    for _ in range(config.batch_size):
        _, features, target = examples[rng.integers(len(examples))]
        start = rng.integers(0, features.shape[-1] - config.crop_frames - context + 1)
        shift = rng.uniform(-config.level_db, config.level_db)
        inputs.append(features[..., start:start + config.crop_frames + context] + shift)
        targets.append(target[:, start + context // 2:start + context // 2 + config.crop_frames])
    return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets))


def validation_loss(network: SalienceNet, examples, context: int) -> float:
    with torch.no_grad():
        losses = []
        for _, features, target in examples:
            logits = network(torch.from_numpy(features)[None])[0]
            reference = torch.from_numpy(target[:, context // 2:context // 2 + logits.shape[-1]])
            losses.append(F.binary_cross_entropy_with_logits(logits, reference).item())
    return float(np.mean(losses))


def train(datasets, output: Path, config: SalienceTrainConfig, progress: bool = True,
          init: str | None = None) -> dict:
    """Train the salience network on ``datasets`` (``sfgraph.data.layout``'s, with true F0s)
    and write the best weights on the validation items to ``output``; ``init``: a multi-F0
    model folder (``sfgraph:REL`` or a path) to start from (fine-tuning; its network
    settings are kept) instead of random weights. Returns a summary."""
    start = None
    if init is not None:
        folder = resolve_path(init)
        if folder.resolve() == Path(output).resolve():
            raise ValueError(f"--init {init} is also the output folder, which training overwrites; write to another")
        try:
            start = load_salience_model(folder).train()
        except ModelFolderError as exc:
            raise ModelFolderError(f"--init: {exc}") from None
    init_record = None if init is None else path_record(init)
    torch.manual_seed(config.seed)
    step_threads = StepThreads(config.threads)
    rng = np.random.default_rng(config.seed)
    context = (SalienceConfig() if start is None else start.config).context
    examples = load_examples(datasets, config.crop_frames + context)
    order = rng.permutation(len(examples))
    if len(examples) <= config.validation_items:
        raise ValueError(f"{len(examples)} item(s) found: need more than the {config.validation_items} "
                         "held out for validation")
    validation = [examples[i] for i in order[:config.validation_items]]
    training = [examples[i] for i in order[config.validation_items:]]
    network = SalienceNet(SalienceConfig()) if start is None else start
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.max_steps, eta_min=config.learning_rate / 20)
    started = time.perf_counter()
    best, best_step, running = np.inf, 0, []
    step = 0
    for step in range(1, config.max_steps + 1):
        inputs, targets = batch_of(training, rng, config, context)
        loss = F.binary_cross_entropy_with_logits(network(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        step_threads.step_done(step)
        running.append(loss.item())
        out_of_time = time.perf_counter() - started > config.max_minutes * 60
        if step % config.eval_every == 0 or step == config.max_steps or out_of_time:
            network.eval()
            score = validation_loss(network, validation, context)
            network.train()
            if score < best:
                best, best_step = score, step
                save_salience_model(output, network, {
                    "datasets": [str(d.root) for d in datasets], "init": init_record,
                    "items": len(training), "step": step,
                    "validation_bce": round(score, 5), "config": config.__dict__})
            if progress:
                print(f"step {step:5d}  train {np.mean(running):.4f}  validation {score:.4f}"
                      f"{'  *' if best_step == step else ''}  {(time.perf_counter() - started) / 60:.1f} min",
                      flush=True)
            running = []
        if out_of_time:
            break
    if best_step == 0:
        raise ValueError(f"no model written to {output}: no validation ran (steps {config.max_steps}) or its "
                         "loss was not finite")
    return {"steps": step, "best_step": best_step, "validation_bce": best,
            "minutes": (time.perf_counter() - started) / 60}
