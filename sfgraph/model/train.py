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
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import distributed as dist
from tqdm import tqdm

from sfgraph.atomic import write_bytes, write_torch
from sfgraph.dsp.voice_config import VoiceConfig
from sfgraph.dsp.voice_torch import synthesize_voices, unit_harmonic_sines
from sfgraph.model.checkpoint import (load_model, read_model_config, save_model, separation_settings,
                                      spread_prior_setting)
from sfgraph.model.config import TrainConfig
from sfgraph.model.errors import ModelError
from sfgraph.model.folder_lock import FolderLock, prepare_output_folder
from sfgraph.model.loss import spectral_loss
from sfgraph.model.network import NetworkConfig, ParamNet
from sfgraph.devices import resolve_device
from sfgraph.resources import path_record, resolve_path
from sfgraph.threads import StepThreads



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
        sines = self.sines[index][..., start_frame:start_frame + frames, :]  # a section's have a copy axis
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


def load_segments(dataset, config: TrainConfig, voice_config) -> tuple[Segments, Segments, tuple[str, ...]]:
    """Training and validation segments (the last ``config.validation_items`` items) from a
    dataset as ``sfgraph.data.layout.load_training_dataset`` gives it: mixtures and F0 only."""
    voices = dataset.voices
    segment = int(round(config.segment_seconds * voice_config.sample_rate / voice_config.hop)) * voice_config.hop
    mixes = [item.load_mix() for item in dataset]
    f0s = [item.f0_on_frames(voice_config.hop) for item in dataset]
    split = len(dataset) - config.validation_items
    return (Segments(mixes[:split], f0s[:split], segment, voice_config),
            Segments(mixes[split:], f0s[split:], segment, voice_config), voices)


def synthesize(controls, config: NetworkConfig, f0: torch.Tensor, sines: torch.Tensor,
               generator: torch.Generator) -> torch.Tensor:
    """Voices (B, V, samples) that the network's ``controls`` for a mixture make; ``sines``
    (B, V, frames, hop): the F0s' ``unit_harmonic_sines`` (the network may be wrapped in
    DistributedDataParallel, hence the explicit config)."""
    return synthesize_voices(f0, controls, generator=generator, config=config.voice, harmonic_sines=sines)


def spread_prior(spread: torch.Tensor, f0: torch.Tensor, cents: float) -> torch.Tensor:
    """Mean over voiced frames (``f0`` > 0) of ``relu(spread - cents)``: how far a section's
    spread (B, V, frames) cents runs past the prior's width."""
    voiced = (f0[..., :spread.shape[-1]] > 0).to(spread.dtype)
    return (torch.relu(spread - cents) * voiced).sum() / voiced.sum().clamp_min(1.0)


def training_step(trained, config: NetworkConfig, optimizer, segments: Segments, batch_size: int,
                  generator: torch.Generator, device, prior: dict[str, float] | None = None) -> float:
    """One optimisation step on a batch drawn from ``segments``: the loss of the sum of the
    voices against the mixture (plus, for a section model with a ``prior`` ``{"weight",
    "cents"}``, weight times ``spread_prior``), gradients clipped to norm 1; returns the
    spectral loss alone. ``trained`` may be wrapped in DistributedDataParallel, hence the
    explicit config."""
    mix, f0, sines = (part.to(device) for part in segments.batch(batch_size, generator))
    trained.train()
    controls = trained(mix, f0)
    spectral = spectral_loss(synthesize(controls, config, f0, sines, generator).sum(dim=1), mix)
    loss = spectral
    if prior is not None and prior["weight"] > 0 and controls.spread is not None:
        loss = spectral + prior["weight"] * spread_prior(controls.spread, f0, prior["cents"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trained.parameters(), 1.0)
    optimizer.step()
    return spectral.item()


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


def load_initial_model(model: str, model_dir: Path) -> tuple[ParamNet, str, dict[str, float], dict | None]:
    """The trained model that ``--init MODEL`` starts from, how to record it (``sfgraph:REL``
    as given, other folders as absolute paths), the separation settings its model.json
    recommends (they suit its fine-tuning too: a choir model's section width) and the spread
    prior it carries (None: none); ModelError prefixed with ``--init MODEL``."""
    try:
        folder = resolve_path(model)
        if folder.resolve() == model_dir.resolve():
            raise ModelError("it is also the output folder, which training overwrites; write to another folder")
        start = load_model(folder)
        separation = separation_settings(folder)
        prior = spread_prior_setting(folder)
    except (FileNotFoundError, ModelError) as exc:
        raise ModelError(f"--init {model}: {exc}") from None
    return start, path_record(model), separation, prior


def resolve_spread_prior(config: TrainConfig, carried: dict | None, voice: VoiceConfig) -> dict[str, float] | None:
    """The spread prior a run trains with, ``{"weight", "cents"}``, or None (off): each value
    from its flag when given, else from ``carried`` (the --init model's, or a resumed run's
    own), else ``TrainConfig.SPREAD_PRIOR_OFF``'s. A positive weight for a solo voice
    model, which has no spread, is refused (only a flag can give one: a solo model carries
    no prior, and a section model does not train as a solo one)."""
    carried = carried or {}
    weight = (config.spread_prior_weight if config.spread_prior_weight is not None
              else carried.get("weight", TrainConfig.SPREAD_PRIOR_OFF["spread_prior_weight"]))
    cents = (config.spread_prior_cents if config.spread_prior_cents is not None
             else carried.get("cents", TrainConfig.SPREAD_PRIOR_OFF["spread_prior_cents"]))
    if not weight > 0:
        return None
    if not voice.is_section:
        raise ModelError(f"--spread-prior-weight {weight:g}: only a section voice model has a spread; "
                         "train with --voice-model section or leave it out")
    return {"weight": float(weight), "cents": float(cents)}


def voice_config_to_train(given: VoiceConfig | None, start: VoiceConfig | None, model_dir: Path,
                          resume: bool) -> VoiceConfig:
    """The voice model a run trains for: ``given``; else the ``--init`` model's (``start``);
    else, resuming, the run's own (its model.json); else the default."""
    if given is not None:
        return given
    if start is not None:
        return start
    if resume and (model_dir / "model.json").exists():
        return read_model_config(model_dir)[0].voice
    return VoiceConfig()


def initial_voice(init: str | None) -> VoiceConfig | None:
    """The voice model of the ``--init`` model, read from its model.json (None: no --init,
    or one that cannot be read, which ``load_initial_model`` reports)."""
    try:
        return None if init is None else read_model_config(resolve_path(init))[0].voice
    except (FileNotFoundError, ModelError):
        return None


def becomes_section(saved: VoiceConfig, wanted: VoiceConfig) -> bool:
    """Whether ``wanted`` is the section form of the solo voice model ``saved`` (all else equal):
    a section network then starts from a solo network's weights, its spread output new."""
    return (not saved.is_section and wanted.is_section
            and replace(wanted, section_copies=1, section_step_cents=saved.section_step_cents) == saved)


def load_leading_weights(network: ParamNet, state: dict) -> None:
    """``state`` (a trained network's) into ``network``: every tensor of the same shape, and of
    one with more output rows (a section decoder's last layer), the rows they share; the
    other rows keep their fresh initialisation."""
    own = network.state_dict()
    for name, values in state.items():
        if own[name].shape[1:] == values.shape[1:] and own[name].shape[0] >= values.shape[0]:
            own[name][:values.shape[0]] = values
    network.load_state_dict(own)


def check_initial_model(model: str, start: ParamNet, network: ParamNet) -> None:
    """Refuse to start from a model whose settings differ from the network about to train,
    naming the differences and the flags that match it."""
    saved, wanted = start.config, network.config
    if becomes_section(saved.voice, wanted.voice):  # the spread is the one new output
        saved = replace(saved, voice=wanted.voice)
    changed = setting_differences(saved, wanted)
    if not changed:
        return
    hints = []
    if saved.voices != wanted.voices:
        hints.append(f"use a dataset with the voices {', '.join(saved.voices)}")
    if saved.hidden != wanted.hidden:
        hints.append(f"pass --hidden {saved.hidden}")
    if saved.causal_frames != wanted.causal_frames:
        hints.append("drop --no-causal-frames" if saved.causal_frames else "pass --no-causal-frames")
    if saved.voice != wanted.voice:
        hints.append("give no other voice settings (they are taken from it)")
    if len(hints) < len(changed):
        unsettable = "the others" if hints else "these"
        hints.append(f"no training flag sets {unsettable} (a model from another sfgraph version?)")
    raise ModelError(f"--init {model}: that model has {'; '.join(changed)}: {', '.join(hints)}")


def train(dataset, model_dir: Path, config: TrainConfig, resume: bool = False,
          device: str = "auto", progress: bool = True, keep_rank_weights: bool = False,
          init: str | None = None, force: bool = False, threads: int | None = None,
          voice: VoiceConfig | None = None) -> dict:
    """Train (or resume) on ``dataset`` (``sfgraph.data.layout.load_training_dataset``'s)
    and return a summary; writes the model folder as it goes.

    ``init``: a trained model folder to start a new run from (fine-tuning) instead of
    random weights; a resumed run continues from its checkpoint, so it takes no ``init``.
    The model folder is locked while training (a second run into it fails at once) and
    must be empty unless ``resume`` or ``force`` (which removes the earlier run's files).
    ``threads``: torch's CPU threads; None: the cores other processes leave idle, checked
    again every 10 steps (``sfgraph.threads.StepThreads``). ``voice``: the voice
    model's settings (``voice_config_to_train``: by default the ``init`` or resumed model's),
    resolved here once, before anything in the folder changes."""
    config.check()
    main_process = int(os.environ.get("RANK", "0")) == 0
    with FolderLock(model_dir) if main_process else contextlib.nullcontext():
        voice = voice_config_to_train(voice, initial_voice(init), Path(model_dir), resume)
        if config.spread_prior_weight:  # refused for a solo voice model before --force empties the folder
            resolve_spread_prior(config, None, voice)
        if main_process:
            prepare_output_folder(model_dir, resume, force)
        return Trainer(dataset, Path(model_dir), config, resume, device, progress, keep_rank_weights, init,
                       threads, voice).run()


class Trainer:
    """One training run in one process (one rank of a distributed run): ``run`` reads top
    to bottom, each step a method."""

    def __init__(self, dataset, model_dir: Path, config: TrainConfig, resume: bool, device: str, progress: bool,
                 keep_rank_weights: bool, init: str | None, threads: int | None, voice: VoiceConfig):
        if init is not None and resume:
            raise ModelError("--init starts a new run and --resume continues one from its checkpoint: "
                             "give one of them")
        self.dataset, self.model_dir, self.config = dataset, model_dir, config
        self.resume, self.progress, self.keep_rank_weights, self.init = resume, progress, keep_rank_weights, init
        self.threads, self.device_name, self.voice = threads, device, voice
        self.checkpoint_path = model_dir / "checkpoint.pt"

    def run(self) -> dict:
        self.set_up_processes()
        self.build()
        if self.resume:
            self.restore_checkpoint()
        elif self.main_process:
            self.start_log()
        stopped_by = self.loop()
        self.finish()
        return {"steps": self.state["step"], "best_validation_loss": self.state["best"],
                "seconds": self.state["seconds"], "stopped_by": stopped_by}

    def set_up_processes(self) -> None:
        """Threads, device, and the process group when torchrun started several processes."""
        self.step_threads = StepThreads(self.threads)
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.device = torch.device(resolve_device(self.device_name))
        self.rank, self.world = 0, 1
        if self.distributed:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        self.main_process = self.rank == 0

    def build(self) -> None:
        """Segments, the network (from ``init``'s weights or seeded random ones), optimiser,
        schedule and the run's state."""
        config = self.config
        torch.manual_seed(config.seed)
        start, init_record, separation, carried_prior = (
            load_initial_model(self.init, self.model_dir) if self.init is not None else (None, None, {}, None))
        self.train_set, self.validation_set, voices = load_segments(self.dataset, config, self.voice)
        network = ParamNet(NetworkConfig(voices=voices, hidden=config.hidden, causal_frames=config.causal_frames,
                                         voice=self.voice))
        if start is not None:
            check_initial_model(self.init, start, network)
            load_leading_weights(network, start.state_dict())
        self.network = network.to(self.device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.learning_rate)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, learning_rate_factor(config))
        self.state = {"step": 0, "best": math.inf, "evals_since_best": 0, "seconds": 0.0, "init": init_record,
                      "separation": separation,
                      "spread_prior": resolve_spread_prior(config, carried_prior, self.voice)}

    def restore_checkpoint(self) -> None:
        """Network, optimiser, schedule and state from the model folder's checkpoint, if it was
        trained with this network's settings."""
        if not self.checkpoint_path.exists():
            raise ModelError(f"--resume: no checkpoint at {self.checkpoint_path}")
        if (self.model_dir / "model.json").exists():
            changed = setting_differences(read_model_config(self.model_dir)[0], self.network.config)
            if changed:
                raise ModelError(f"--resume: {self.model_dir} was trained with {', '.join(changed)}; resume with "
                                 "the same settings")
        saved = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        self.network.load_state_dict(saved["network"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        self.state = saved["state"]
        self.state.setdefault("init", None)  # checkpoints written before --init existed
        self.state.setdefault("separation", {})  # and before models carried separation settings
        # the run's own prior, unless flags given now change it (checkpoints written before
        # models carried it: the flags alone)
        self.state["spread_prior"] = resolve_spread_prior(self.config, self.state.get("spread_prior"),
                                                          self.network.config.voice)

    def start_log(self) -> None:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        (self.model_dir / "log.csv").write_text("step,train_loss,validation_loss,learning_rate,seconds\n")

    def loop(self) -> str:
        """Steps until the last, evaluating every ``eval_every`` steps and when the time budget
        is spent; returns what stopped it."""
        config, state = self.config, self.state
        trained = torch.nn.parallel.DistributedDataParallel(self.network) if self.distributed else self.network
        bar = tqdm(total=config.steps, initial=state["step"], desc="training",
                   disable=not (self.progress and self.main_process), file=sys.stderr)
        started = time.perf_counter() - state["seconds"]
        losses = []
        stopped_by = "steps"
        while state["step"] < config.steps:
            loss = self.step(trained)
            losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            state["seconds"] = time.perf_counter() - started
            over_budget = self.over_budget()
            if state["step"] % config.eval_every and state["step"] < config.steps and not over_budget:
                continue
            stop = torch.zeros(1)
            if self.main_process:
                reason = self.evaluate_and_save(sum(losses) / len(losses), over_budget)
                if reason:
                    stop[0], stopped_by = 1, reason
            losses = []
            if self.distributed:
                dist.broadcast(stop, 0)
            if stop[0]:
                break
        bar.close()
        return stopped_by

    def step(self, trained) -> float:
        """One optimisation step, with noise and segments drawn from a generator seeded by the
        step (so a resumed run continues exactly); returns its loss."""
        step = self.state["step"]
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + step * self.world + self.rank)
        loss = training_step(trained, self.network.config, self.optimizer, self.train_set, self.config.batch_size,
                             generator, self.device, self.state["spread_prior"])
        self.schedule.step()
        self.state["step"] += 1
        self.step_threads.step_done(self.state["step"])
        return loss

    def over_budget(self) -> bool:
        """Past ``max_minutes``; rank 0's clock decides, so that all ranks evaluate together."""
        over = self.config.max_minutes is not None and self.state["seconds"] > 60 * self.config.max_minutes
        if self.distributed and self.config.max_minutes is not None:
            flag = torch.tensor([float(over)])
            dist.broadcast(flag, 0)
            over = bool(flag[0])
        return over

    def evaluate_and_save(self, train_loss: float, over_budget: bool) -> str | None:
        """Validation loss, a log line, the model when it improved, the checkpoint and the
        loss curve (main process only); returns why training stops now, if it does."""
        config, state = self.config, self.state
        validation = evaluate(self.network, self.validation_set, config.batch_size, self.device)
        improved = validation < state["best"]
        state["best"] = min(state["best"], validation)
        state["evals_since_best"] = 0 if improved else state["evals_since_best"] + 1
        with open(self.model_dir / "log.csv", "a") as log:
            log.write(f"{state['step']},{train_loss:.5f},{validation:.5f},"
                      f"{self.schedule.get_last_lr()[0]:.6g},{state['seconds']:.1f}\n")
        if improved:
            prior = state["spread_prior"] or {}
            training = {**asdict(config), "spread_prior_weight": prior.get("weight", 0.0),
                        "spread_prior_cents": prior.get("cents", TrainConfig.SPREAD_PRIOR_OFF["spread_prior_cents"]),
                        "dataset": str(self.dataset.root), "init": state["init"]}
            save_model(self.model_dir, self.network, training, state["separation"], state["spread_prior"])
        write_torch(self.checkpoint_path, {"network": self.network.state_dict(),
                                           "optimizer": self.optimizer.state_dict(),
                                           "schedule": self.schedule.state_dict(), "state": state})
        plot_loss_curve(self.model_dir)
        if state["evals_since_best"] >= config.patience:
            return "early stopping"
        return "time budget" if over_budget else None

    def finish(self) -> None:
        if self.keep_rank_weights:
            write_torch(self.model_dir / f"final_weights_rank{self.rank}.pt", self.network.state_dict())
        if self.distributed:
            dist.barrier()
            dist.destroy_process_group()


@torch.no_grad()
def evaluate(network: ParamNet, segments: Segments, batch_size: int, device) -> float:
    """Mean validation loss over fixed segments, with fixed synthesizer noise."""
    network.eval()
    generator = torch.Generator().manual_seed(12345)
    losses = []
    for batch in segments.fixed_batches(batch_size):
        mix, f0, sines = (part.to(device) for part in batch)
        voices = synthesize(network(mix, f0), network.config, f0, sines, generator)
        losses.append(float(spectral_loss(voices.sum(dim=1), mix)))
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
