"""Source-filter voices fitted to the true stems: the ceiling of the voice model.

The network has to infer each voice's parameters from the mixture alone. Here
every frame's parameters (harmonic amplitude, noise gain, LSF increments) and
each voice's noise colour are free, and fitted to that voice's own stem with
the training loss (``spectral_loss``), starting from a trained network's
estimate. Masks made from these voices show how far any network driving this
synthesizer could go on a recording (at least that far: the fit stops after a
fixed number of steps). Needs the stems, so it is an evaluation tool only.

Shapes and units: ``mix`` ``(samples,)`` and ``stems`` ``(V, samples)`` at the
model's 16 kHz; ``f0_hz`` ``(V, frames)`` Hz on the model's 256-sample frame grid
(0 = unvoiced), ``frames >= samples // 256``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from sfgraph.dsp.voice_controls import VoiceControls
from sfgraph.dsp.voice_torch import synthesize_voices
from sfgraph.model.loss import spectral_loss
from sfgraph.model.network import ParamNet, lsf_increment_logits, lsf_increments_from_logits
from sfgraph.threads import StepThreads

FIT_LEARNING_RATE = 0.05


def fit_voices_to_stems(network: ParamNet, mix: np.ndarray, stems: np.ndarray, f0_hz: np.ndarray,
                        steps: int, learning_rate: float = FIT_LEARNING_RATE,
                        seed: int = 0) -> np.ndarray:
    """Synthesized voices ``(V, samples)`` float32 whose parameters were fitted to ``stems``.

    Adam over ``steps`` steps, learning rate ``learning_rate`` decaying to a tenth
    on a cosine; amplitudes, noise gains, noise colours (and a section's spread) in the log domain, LSF
    increments through the network's own bounded map (``lsf_increments_from_logits``).
    """
    config = network.config
    hop = config.voice.hop
    frames = mix.shape[-1] // hop
    if frames == 0:
        raise ValueError(f"{mix.shape[-1]} samples: shorter than one {hop}-sample frame")
    mix_t = torch.from_numpy(np.asarray(mix, np.float32)[:frames * hop])[None]
    target = torch.from_numpy(np.asarray(stems, np.float32)[:, :frames * hop])[None]
    f0 = torch.from_numpy(np.asarray(f0_hz, np.float32)[:, :frames])[None]
    with torch.no_grad():
        estimate = network(mix_t, f0)
    log_amplitude = torch.log(estimate.amplitude).requires_grad_()
    log_noise_gain = torch.log(estimate.noise_gain).requires_grad_()
    increment_logits = lsf_increment_logits(estimate.lsf_increments).requires_grad_()
    log_colour = torch.log(estimate.noise_bands[0]).requires_grad_()
    # a section's spread in the log domain too (None for solo voices)
    log_spread = None if estimate.spread is None else torch.log(estimate.spread).requires_grad_()
    variables = [log_amplitude, log_noise_gain, increment_logits, log_colour] + ([log_spread] if config.voice.is_section
                                                                                 else [])
    optimizer = torch.optim.Adam(variables, lr=learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, steps)))))
    step_threads = StepThreads(None)  # the cores other processes leave idle, checked again every 10 steps

    def voices(generator: torch.Generator) -> torch.Tensor:
        controls = VoiceControls(log_amplitude.exp(), log_noise_gain.exp(), lsf_increments_from_logits(increment_logits),
                                 log_colour.exp(), None if log_spread is None else log_spread.exp())
        return synthesize_voices(f0, controls, config=config.voice, generator=generator)

    for step in range(steps):
        loss = spectral_loss(voices(torch.Generator().manual_seed(seed * 1_000_003 + step)), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step_threads.step_done(step + 1)
    with torch.no_grad():
        fitted = voices(torch.Generator().manual_seed(seed))[0].numpy()
    return np.pad(fitted, ((0, 0), (0, mix.shape[-1] - fitted.shape[-1])))
