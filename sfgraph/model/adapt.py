"""Adaptation: fine-tune a trained model on the one recording it is about to separate.

The method learns from mixtures and F0s alone, so the recording a user brings is
training material too. ``adapt`` holds part of it back (every fifth chunk), trains on
the rest with the training loss for a wall-clock budget, and returns the weights with
the lowest loss on the held-back part, never worse there than the starting model's.
Each step's randomness comes from a generator seeded by ``seed`` and the step
number: the same seed and step count give the same weights.
"""
from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sfgraph.atomic import staged_folder
from sfgraph.dsp.voice_config import VoiceConfig
from sfgraph.model.checkpoint import is_spread_prior, save_model
from sfgraph.model.network import ParamNet
from sfgraph.model.train import Segments, evaluate, training_step
from sfgraph.threads import StepThreads

VALIDATION_EVERY = 5  # every fifth chunk of the recording is held back


@dataclass(frozen=True)
class AdaptOptions:
    minutes: float                  # wall-clock budget for training and validation, in minutes
    max_steps: int | None = None    # stop earlier after this many steps (None: the budget decides)
    learning_rate: float = 1e-3     # Adam, after a linear warm-up over ``warmup_steps``
    warmup_steps: int = 10
    batch_size: int = 8
    segment_seconds: float = 4.0    # at most: shorter on recordings whose chunks are shorter
    eval_every: int = 10            # steps between validations
    seed: int = 0
    threads: int | None = None      # torch's CPU threads (None: the cores other processes leave idle,
                                    # checked again every 10 steps); a fixed count makes runs repeat exactly
    spread_prior: dict | None = None  # a section model's {"weight", "cents"} (its model.json's, which
                                      # separate --adapt passes), added to the loss as in training

    def __post_init__(self):
        if not (self.minutes > 0 and math.isfinite(self.minutes)):
            raise ValueError(f"adaptation needs a positive number of minutes, not {self.minutes:g}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, not {self.max_steps}")
        prior = self.spread_prior
        if prior is not None and not (is_spread_prior(prior) and prior["weight"] > 0):
            raise ValueError(f"spread_prior must be None or {{'weight': W > 0, 'cents': C > 0}}, not {prior!r}")


@dataclass
class AdaptResult:
    steps: int                  # training steps taken
    seconds: float              # wall-clock time spent
    initial_loss: float         # the starting model's loss on the held-back part
    best_loss: float            # the returned weights' loss there (<= initial_loss)
    best_step: int              # step of the returned weights (0: the starting model, unchanged)
    training_seconds: float     # audio trained on
    validation_seconds: float   # audio held back


def recording_spans(frames: int, frames_per_second: float, segment_seconds: float
                    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Training and held-back spans ``(start, end)`` in frames of a recording of ``frames``.

    It is cut into chunks of ``segment_seconds`` (at least 1 s and a tenth of the
    recording, so even short ones have several); every fifth chunk, starting with the
    third, is held back, so validation samples the whole recording. Training spans are
    what lies between held-back chunks."""
    chunk = int(np.clip(frames / 10, frames_per_second, segment_seconds * frames_per_second))
    starts = list(range(0, frames, chunk))
    held = {i for i in range(len(starts)) if i % VALIDATION_EVERY == 2} or {len(starts) - 1}
    train_spans, held_spans, span_start = [], [], 0
    for i, start in enumerate(starts):
        if i in held:
            if start > span_start:
                train_spans.append((span_start, start))
            span_start = min(start + chunk, frames)
            held_spans.append((start, span_start))
    if frames > span_start:
        train_spans.append((span_start, frames))
    return train_spans, held_spans


def split_recording(mix: np.ndarray, f0: np.ndarray, voice: VoiceConfig, segment_seconds: float
                    ) -> tuple[Segments, Segments]:
    """Training and held-back segments of one recording, ``mix`` (samples,) and ``f0``
    (V, frames) on the ``voice.hop`` grid (see ``recording_spans``): training segments are
    at most ``segment_seconds`` and never cross into a held-back chunk."""
    hop, sample_rate = voice.hop, voice.sample_rate
    frames = min(mix.shape[-1] // hop, f0.shape[-1])
    if frames * hop < 2 * sample_rate:
        raise ValueError(f"the recording is {mix.shape[-1] / sample_rate:.2f} s long; adaptation needs at least 2 s")
    train_spans, held_spans = recording_spans(frames, sample_rate / hop, segment_seconds)

    def pieces(spans):
        return ([np.ascontiguousarray(mix[a * hop:b * hop], dtype=np.float32) for a, b in spans],
                [np.ascontiguousarray(f0[:, a:b], dtype=np.float32) for a, b in spans])

    segment_frames = min(max(b - a for a, b in train_spans), int(segment_seconds * sample_rate / hop))
    return (Segments(*pieces(train_spans), segment_frames * hop, voice),
            Segments(*pieces(held_spans), max(b - a for a, b in held_spans) * hop, voice))


def adapt(network: ParamNet, mix: np.ndarray, f0: np.ndarray, options: AdaptOptions,
          progress: bool = True) -> tuple[ParamNet, AdaptResult]:
    """Fine-tune a copy of ``network`` on one recording: ``mix`` (samples,) mono at the
    model's rate, ``f0`` (V, frames) Hz on its frame grid, voices in the model's order.
    Returns the adapted copy (the starting weights when nothing beat them) and what
    happened; ``network`` itself is left unchanged."""
    voice = network.config.voice
    if f0.shape[0] != len(network.config.voices):
        raise ValueError(f"F0 has {f0.shape[0]} voices; the model separates {len(network.config.voices)}")
    if options.spread_prior is not None and not voice.is_section:
        raise ValueError("a spread prior is for section voice models; this model is a solo one (no spread)")
    train_set, validation_set = split_recording(mix, f0, voice, options.segment_seconds)
    device = next(network.parameters()).device
    step_threads = StepThreads(options.threads)
    model = copy.deepcopy(network).to(device)
    torch.manual_seed(options.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / options.warmup_steps))

    started = time.perf_counter()
    budget = 60.0 * options.minutes
    initial = evaluate(model, validation_set, options.batch_size, device)
    eval_seconds = time.perf_counter() - started
    best, best_step, best_state = initial, 0, copy.deepcopy(model.state_dict())
    bar = tqdm(total=round(budget), unit="s", desc="adapting", disable=not progress, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s {postfix}")
    bar.set_postfix_str(f"steps 0, loss {initial:.3f}")
    step, step_seconds = 0, 0.0
    while options.max_steps is None or step < options.max_steps:
        # stop before a step and the validation after it would overrun the budget
        if time.perf_counter() - started + step_seconds + eval_seconds > budget:
            break
        step_started = time.perf_counter()
        generator = torch.Generator().manual_seed(options.seed * 1_000_003 + step)
        loss = training_step(model, model.config, optimizer, train_set, options.batch_size, generator, device,
                             options.spread_prior)
        warmup.step()
        step += 1
        step_threads.step_done(step)
        step_seconds = time.perf_counter() - step_started
        last = options.max_steps is not None and step >= options.max_steps
        if step % options.eval_every == 0 or last or \
                time.perf_counter() - started + step_seconds + eval_seconds > budget:
            eval_started = time.perf_counter()
            current = evaluate(model, validation_set, options.batch_size, device)
            eval_seconds = time.perf_counter() - eval_started
            if current < best:
                best, best_step, best_state = current, step, copy.deepcopy(model.state_dict())
        bar.n = min(bar.total, time.perf_counter() - started)
        bar.set_postfix_str(f"steps {step}, loss {loss:.3f}, held-back loss {best:.3f} "
                            f"(from {initial:.3f})")
        bar.refresh()
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    hop_seconds = voice.hop / voice.sample_rate
    return model, AdaptResult(
        steps=step, seconds=time.perf_counter() - started, initial_loss=initial, best_loss=best, best_step=best_step,
        training_seconds=sum(m.shape[-1] for m in train_set.mixes) / voice.sample_rate,
        validation_seconds=sum(f.shape[-1] for f in validation_set.f0s) * hop_seconds)


def save_adapted_model(folder: Path, model: ParamNet, result: AdaptResult, options: AdaptOptions,
                       recording: str, start_model: str, separation: dict | None = None) -> None:
    """Write ``model`` as a model folder at ``folder``, all at once: it is written beside
    it under a hidden name and renamed into place, so ``folder`` holds the old model or the
    new, whole. ``model.json`` records the recording, the starting model and the run, and
    keeps the starting model's ``separation`` settings and the spread prior it adapted with."""
    with staged_folder(folder) as staging:
        save_model(staging, model, {"adapted": {"recording": recording, "start_model": start_model,
                                                "minutes": options.minutes, **asdict(result),
                                                "options": asdict(options)}}, separation, options.spread_prior)
