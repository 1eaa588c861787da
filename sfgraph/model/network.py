"""The parameter network: mixture + each voice's F0 → the source-filter voices' controls per frame.

Causal by construction (a unidirectional GRU encoder over the mixture's frames, one
GRU decoder per voice), so the same weights run offline over a whole file
(``ParamNet``) or on a stream, a block at a time, with the hidden state carried
between blocks (``StreamingParamNet``). Separating on the CPU runs the same network
without torch (``sfgraph.model.inference``).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sfgraph.dsp.voice_controls import VoiceControls
from sfgraph.model.gru import run_grus
from sfgraph.model.network_config import (
    LSF_INCREMENT_FLOOR,
    MAGNITUDE_FLOOR,
    SPREAD_FLOOR_CENTS,
    SPREAD_RANGE_CENTS,
    NetworkConfig,
    leading_silent_frames,
)


def exp_sigmoid(x: torch.Tensor, maximum: float) -> torch.Tensor:
    """A positive, bounded output with a log-scale range (as DDSP's amplitudes)."""
    return maximum * torch.sigmoid(x) ** math.log(10.0) + 1e-7


def lsf_increments_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """The network's bounded LSF increments, ``(…)`` logits → ``(…)`` in (0.01, 1.01)."""
    return LSF_INCREMENT_FLOOR + torch.sigmoid(logits)


def lsf_increment_logits(increments: torch.Tensor) -> torch.Tensor:
    """The logits that ``lsf_increments_from_logits`` maps to ``increments`` ``(…)`` (clamped
    1e-4 inside the range)."""
    return torch.logit(increments - LSF_INCREMENT_FLOOR, eps=1e-4)


def spread_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """The network's bounded section spread, ``(…)`` logits → ``(…)`` cents."""
    return SPREAD_FLOOR_CENTS + SPREAD_RANGE_CENTS * torch.sigmoid(logits)


def log_magnitude_frames(mix: torch.Tensor, n_fft: int, hop: int, history: torch.Tensor | None = None) -> torch.Tensor:
    """(B, samples) → (B, frames, n_fft//2+1) log magnitudes, frames = samples // hop.

    Frame ``t`` covers samples ``[t*hop + hop - n_fft, t*hop + hop)``: causal,
    complete once sample ``(t+1)*hop - 1`` is in, and for n_fft = 2 hop centred on
    sample ``t*hop``, where the synthesizer's frame t holds. ``history`` (B,
    n_fft - hop) holds the samples before ``mix`` (a stream's previous block);
    zeros when omitted.
    """
    frames = mix.shape[-1] // hop
    if history is None:
        history = mix.new_zeros(mix.shape[:-1] + (n_fft - hop,))
    padded = torch.cat([history, mix[..., :frames * hop]], dim=-1)
    window = torch.hann_window(n_fft, periodic=True, dtype=mix.dtype, device=mix.device)
    segments = padded.unfold(-1, n_fft, hop)  # (B, frames, n_fft)
    return torch.log(torch.fft.rfft(segments * window, dim=-1).abs() + MAGNITUDE_FLOOR)


class VoiceDecoder(nn.Module):
    """One voice: the shared mixture embedding + this voice's F0 → its parameters (the GRUs of
    all voices run together: ``ParamNet.forward_features``)."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        self.f0_mlp = nn.Sequential(nn.Linear(2, config.f0_hidden), nn.LeakyReLU(0.1),
                                    nn.Linear(config.f0_hidden, config.f0_hidden), nn.LeakyReLU(0.1))
        self.gru = nn.GRU(config.hidden + config.f0_hidden, config.hidden, batch_first=True)
        self.out = nn.Sequential(nn.Linear(config.hidden + config.f0_hidden, config.hidden), nn.LeakyReLU(0.1),
                                 nn.Linear(config.hidden, 2 + config.voice.n_lsf_increments
                                           + int(config.voice.is_section)))

    def f0_features(self, f0_hz: torch.Tensor) -> torch.Tensor:
        """(B, frames) Hz → (B, frames, f0_hidden): the F0 embedding, input of the GRU and the output layers."""
        voiced = (f0_hz > 0).to(self.f0_mlp[0].weight.dtype)
        # log-frequency axis: 0 at 220 Hz, one unit per two octaves (choir range about ±1)
        log_f0 = torch.log2(torch.clamp(f0_hz, min=20.0) / 220.0) / 2.0 * voiced
        return self.f0_mlp(torch.stack([log_f0, voiced], dim=-1))

    def outputs(self, hidden: torch.Tensor, f0_features: torch.Tensor) -> torch.Tensor:
        """The GRU's states (B, frames, hidden) and the F0 embedding → raw outputs (B, frames, outputs)."""
        return self.out(torch.cat([hidden, f0_features], dim=-1))


class ParamNet(nn.Module):
    """Mixture (B, samples) at 16 kHz and F0 (B, V, frames) Hz → the voices' controls
    (``VoiceControls``: amplitude and noise gain (B, V, frames), LSF increments (B, V,
    frames, lpc_order + 1), noise bands (B, V, n_noise_bands), and for a section voice
    model the spread (B, V, frames) cents), ``frames = samples // hop``.
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        bins = config.n_fft // 2 + 1
        self.input_norm = nn.LayerNorm(bins)
        self.encoder_in = nn.Sequential(nn.Linear(bins, config.hidden), nn.LeakyReLU(0.1))
        self.encoder = nn.GRU(config.hidden, config.hidden, batch_first=True)
        self.decoders = nn.ModuleList(VoiceDecoder(config) for _ in config.voices)
        # one learned noise colour per voice (band magnitudes before a softplus)
        self.noise_shape = nn.Parameter(torch.zeros(len(config.voices), config.voice.n_noise_bands))

    def forward(self, mix: torch.Tensor, f0_hz: torch.Tensor) -> VoiceControls:
        """The controls of a whole signal (see the class docstring)."""
        frames = mix.shape[-1] // self.config.voice.hop
        if self.config.causal_frames:  # frame t: the window ending at t·hop, the F0 of frame t - 1
            mix, f0_hz = self.causal_inputs(mix, f0_hz)
        features = log_magnitude_frames(mix, self.config.n_fft, self.config.voice.hop)
        # every feature frame, then the signal's (a causal network has one more): the GRUs'
        # float sums depend on the sequence length, so cutting the features first would
        # change the controls in their last bits
        return self.forward_features(features, f0_hz)[0].first_frames(frames)

    def causal_inputs(self, mix: torch.Tensor, f0_hz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs of a ``causal_frames`` network, one hop of silence and one unvoiced
        frame earlier: ``log_magnitude_frames``' frame t then ends where frame t sits."""
        return F.pad(mix, (self.config.voice.hop, 0)), F.pad(f0_hz, (1, 0))

    def noise_bands(self) -> torch.Tensor:
        """Each voice's learned noise colour, (V, n_noise_bands) linear band magnitudes."""
        return F.softplus(self.noise_shape)

    def forward_features(self, features: torch.Tensor, f0_hz: torch.Tensor, state=None
                         ) -> tuple[VoiceControls, tuple]:
        """The controls of the frames of ``features`` (B, frames, n_fft // 2 + 1) from
        ``log_magnitude_frames``, with ``f0_hz`` (B, V, ≥ frames) Hz, starting from the GRU
        ``state`` that an earlier call returned (None: a new signal); and the state after them."""
        encoder_state, decoder_states = state if state is not None else (None, [None] * len(self.decoders))
        (embedding,), (encoder_state,) = run_grus([self.encoder], [self.encoder_in(self.input_norm(features))],
                                                  [encoder_state])
        f0_features = [decoder.f0_features(f0_hz[:, v, :embedding.shape[1]]) for v, decoder in enumerate(self.decoders)]
        hidden, new_states = run_grus([decoder.gru for decoder in self.decoders],
                                      [torch.cat([embedding, features_v], dim=-1) for features_v in f0_features],
                                      decoder_states)
        raw = torch.stack([decoder.outputs(*pair) for decoder, *pair in zip(self.decoders, hidden, f0_features)],
                          dim=1)  # (B, V, frames, 2 + increments [+ spread])
        increments_end = 2 + self.config.voice.n_lsf_increments
        controls = VoiceControls(amplitude=exp_sigmoid(raw[..., 0], self.config.amplitude_max),
                                 noise_gain=exp_sigmoid(raw[..., 1], self.config.noise_gain_max),
                                 lsf_increments=lsf_increments_from_logits(raw[..., 2:increments_end]),
                                 noise_bands=self.noise_bands().expand(raw.shape[0], -1, -1),
                                 spread=spread_from_logits(raw[..., increments_end])
                                 if self.config.voice.is_section else None)
        return controls, (encoder_state, new_states)


class StreamingParamNet:
    """A ``ParamNet`` on a stream: push the mixture and the F0s a block at a time, get each
    frame's controls as soon as its analysis window is in. The GRU states and the last
    ``n_fft - hop`` samples are carried from block to block, so the frames equal the
    whole-signal forward pass's however the stream is cut.

    ``process(mix, f0)``: ``mix`` (samples,) float32 at ``voice.sample_rate``, a multiple of
    ``voice.hop`` samples; ``f0`` (V, samples // hop) float32 Hz. Returns the controls of the
    frames this block completes, as numpy float32 (amplitude (V, k) …, noise bands (V,
    n_noise_bands)): for a model with centred frames frame t comes with the block starting
    at sample t·hop; for a ``causal_frames`` model with the hop before it, so its first block
    also gives frame 0 (from silence) and it runs one frame ahead of its input.

    Leading silence (frames whose mixture window is all zeros and whose voices are all
    unvoiced) leaves the network where the sound alone would start it (a ``causal_frames``
    network: after its own silent first frame), however long the silence lasts: a branch
    that a graph delays by padding it with zeros, or a recording that starts with silence,
    gives the frames the sound alone gives, as the GRUs were trained (on segments that
    start with the sound).
    """

    def __init__(self, network: ParamNet):
        self.network = network
        self.config = network.config
        self.device = next(network.parameters()).device
        self.reset()

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Run with ``weights`` (a state dict as numpy arrays) from now on."""
        self.network.load_state_dict({name: torch.from_numpy(values) for name, values in weights.items()})

    def reset(self) -> None:
        """Start a new stream."""
        config = self.network.config
        self.history = torch.zeros(1, config.n_fft - config.voice.hop, device=self.device)
        self.state = None
        self.started = False
        self.heard = False

    @torch.no_grad()
    def process(self, mix: np.ndarray, f0: np.ndarray) -> VoiceControls:
        config = self.network.config
        audio = torch.from_numpy(mix).to(self.device)[None]
        f0_frames = torch.from_numpy(f0).to(self.device)[None]
        if config.causal_frames and not self.started:
            audio, f0_frames = self.network.causal_inputs(audio, f0_frames)
        self.started = True
        features = log_magnitude_frames(audio, config.n_fft, config.voice.hop, self.history)
        self.history = torch.cat([self.history, audio], dim=-1)[:, -self.history.shape[-1]:]
        parts = []
        if not self.heard:
            frames = features.shape[1]
            silent = leading_silent_frames(features[0], f0_frames[0])
            if silent:
                hush, after_hush = self.network.forward_features(features[:, :1], f0_frames[:, :, :1])
                # where the sound alone would start from: a causal network's stream opens with a silent frame
                self.state = after_hush if config.causal_frames else None
                parts.append(hush.map(lambda values: values[0].cpu().numpy()))
                parts.extend([parts[0]] * (silent - 1))
                features, f0_frames = features[:, silent:], f0_frames[:, :, silent:]
            self.heard = silent < frames
        if features.shape[1] or not parts:
            controls, self.state = self.network.forward_features(features, f0_frames, self.state)
            parts.append(controls.map(lambda values: values[0].cpu().numpy()))
        return parts[0] if len(parts) == 1 else VoiceControls.concat_frames(parts)

    @torch.no_grad()
    def noise_bands(self) -> np.ndarray:
        """The network's noise colours now, (V, n_noise_bands) float32 (``ParamNet.noise_bands``)."""
        return self.network.noise_bands().cpu().numpy()
