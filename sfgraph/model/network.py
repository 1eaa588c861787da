"""The parameter network: mixture + each voice's F0 → source-filter parameters per frame.

Causal by construction (a unidirectional GRU encoder over the mixture's frames, one
GRU decoder per voice), so the same weights run offline over a whole file or live,
frame by frame, with the hidden state carried between calls.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from sfgraph.dsp.voice_config import VoiceConfig
from sfgraph.grid import DEFAULT_VOICES


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of the parameter network (saved with every model)."""

    voices: tuple[str, ...] = DEFAULT_VOICES
    hidden: int = 256            # GRU width of encoder and decoders
    f0_hidden: int = 64          # width of the F0 embedding
    n_fft: int = 512             # mixture features: log-magnitude STFT, samples at 16 kHz
    amplitude_max: float = 2.0   # harmonic amplitude ceiling (linear)
    noise_gain_max: float = 0.5  # noise gain ceiling (linear)
    # False: frame t's analysis window is centred on its time t·hop. True: it ends
    # there, and the decoders see the previous frame's F0, so that a stream has frame t
    # as soon as sample t·hop is in: one hop (16 ms) less latency live.
    causal_frames: bool = False
    voice: VoiceConfig = field(default_factory=VoiceConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "NetworkConfig":
        values = dict(values)
        values["voices"] = tuple(values["voices"])
        values["voice"] = VoiceConfig(**values["voice"])
        return cls(**values)

    @property
    def n_features(self) -> int:
        """Per-frame parameters of one voice: amplitude, noise gain, LSF increments, noise bands."""
        return 2 + self.voice.n_lsf_increments + self.voice.n_noise_bands


def exp_sigmoid(x: torch.Tensor, maximum: float) -> torch.Tensor:
    """A positive, bounded output with a log-scale range (as DDSP's amplitudes)."""
    return maximum * torch.sigmoid(x) ** math.log(10.0) + 1e-7


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
    return torch.log(torch.fft.rfft(segments * window, dim=-1).abs() + 1e-5)


class VoiceDecoder(nn.Module):
    """One voice: the shared mixture embedding + this voice's F0 → its parameters."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        self.f0_mlp = nn.Sequential(nn.Linear(2, config.f0_hidden), nn.LeakyReLU(0.1),
                                    nn.Linear(config.f0_hidden, config.f0_hidden), nn.LeakyReLU(0.1))
        self.gru = nn.GRU(config.hidden + config.f0_hidden, config.hidden, batch_first=True)
        self.out = nn.Sequential(nn.Linear(config.hidden + config.f0_hidden, config.hidden), nn.LeakyReLU(0.1),
                                 nn.Linear(config.hidden, 2 + config.voice.n_lsf_increments))

    def forward(self, embedding, f0_hz, state):
        voiced = (f0_hz > 0).to(embedding.dtype)
        # log-frequency axis: 0 at 220 Hz, one unit per two octaves (choir range about ±1)
        log_f0 = torch.log2(torch.clamp(f0_hz, min=20.0) / 220.0) / 2.0 * voiced
        f0_features = self.f0_mlp(torch.stack([log_f0, voiced], dim=-1))
        hidden, state = self.gru(torch.cat([embedding, f0_features], dim=-1), state)
        raw = self.out(torch.cat([hidden, f0_features], dim=-1))
        return raw, state


class ParamNet(nn.Module):
    """Mixture (B, samples) at 16 kHz and F0 (B, V, frames) Hz → parameters (B, V, frames, P).

    ``P = config.n_features``: [amplitude, noise_gain, 21 LSF increments, 40 noise
    band magnitudes]; see ``split_parameters``. ``frames = samples // hop``.
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

    def forward(self, mix: torch.Tensor, f0_hz: torch.Tensor) -> torch.Tensor:
        """Parameters (B, V, frames, P) of a whole signal."""
        frames = mix.shape[-1] // self.config.voice.hop
        if self.config.causal_frames:  # frame t: the window ending at t·hop, the F0 of frame t - 1
            mix, f0_hz = self.causal_inputs(mix, f0_hz)
        features = log_magnitude_frames(mix, self.config.n_fft, self.config.voice.hop)
        return self.forward_features(features, f0_hz)[0][:, :, :frames]

    def causal_inputs(self, mix: torch.Tensor, f0_hz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs of a ``causal_frames`` network, one hop of silence and one unvoiced
        frame earlier: ``log_magnitude_frames``' frame t then ends where frame t sits."""
        return F.pad(mix, (self.config.voice.hop, 0)), F.pad(f0_hz, (1, 0))

    def forward_features(self, features: torch.Tensor, f0_hz: torch.Tensor, state=None):
        encoder_state, decoder_states = state if state is not None else (None, [None] * len(self.decoders))
        embedding, encoder_state = self.encoder(self.encoder_in(self.input_norm(features)), encoder_state)
        outputs, new_states = [], []
        for v, decoder in enumerate(self.decoders):
            raw, decoder_state = decoder(embedding, f0_hz[:, v, :embedding.shape[1]], decoder_states[v])
            outputs.append(raw)
            new_states.append(decoder_state)
        raw = torch.stack(outputs, dim=1)  # (B, V, frames, 2 + increments)
        amplitude = exp_sigmoid(raw[..., 0], self.config.amplitude_max)
        noise_gain = exp_sigmoid(raw[..., 1], self.config.noise_gain_max)
        # bounded spread (at most ~100:1): crowded LSFs make float filters unstable
        increments = 0.01 + torch.sigmoid(raw[..., 2:])
        bands = F.softplus(self.noise_shape)[None, :, None, :].expand(raw.shape[0], -1, raw.shape[2], -1)
        params = torch.cat([amplitude[..., None], noise_gain[..., None], increments, bands], dim=-1)
        return params, (encoder_state, new_states)


def split_parameters(params: torch.Tensor, config: NetworkConfig):
    """(…, P) → amplitude (…), noise_gain (…), lsf_increments (…, 21), noise_bands (…, 40)."""
    n_increments = config.voice.n_lsf_increments
    return params[..., 0], params[..., 1], params[..., 2:2 + n_increments], params[..., 2 + n_increments:]
