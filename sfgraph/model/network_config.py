"""The parameter network's architecture, as a model folder's ``model.json`` records it
(apart from ``sfgraph.model.network``, so that reading it needs no torch)."""
from __future__ import annotations

import math

from dataclasses import asdict, dataclass, field

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
        """The config ``to_dict`` wrote; without ``voice`` (the voice model's settings), the
        default ``VoiceConfig``."""
        values = dict(values)
        values["voices"] = tuple(values["voices"])
        values["voice"] = VoiceConfig(**values.get("voice", {}))
        return cls(**values)


# added before the log of the mixture's features: a silent frame is log(MAGNITUDE_FLOOR) in every bin
MAGNITUDE_FLOOR = 1e-5


def leading_silent_frames(features, f0_hz) -> int:
    """How many frames open in silence: the mixture's window all zeros (``features`` (frames,
    bins), log magnitudes) and every voice unvoiced (``f0_hz`` (V, ≥ frames)). numpy arrays
    or torch tensors, for both streaming networks (``StreamingParamNet``, ``InferenceParamNet``)."""
    frames = features.shape[0]
    # a Python float against float32 features compares in float32 (numpy 2, torch), as they were computed
    heard = ((features > math.log(MAGNITUDE_FLOOR)).any(-1) | (f0_hz[:, :frames] > 0).any(0)).tolist()
    return heard.index(True) if True in heard else frames

# Smallest LSF increment the network gives: with the sigmoid's ceiling of one more, a spread
# of at most ~100:1, since crowded LSFs make float filters unstable (see VoiceConfig.min_lsf_gap).
LSF_INCREMENT_FLOOR = 0.01

# A section's spread (cents) lies in (SPREAD_FLOOR_CENTS, SPREAD_FLOOR_CENTS + SPREAD_RANGE_CENTS):
# from a near-unison to singers some 40 cents apart, wider than vibrato and detune together.
SPREAD_FLOOR_CENTS = 0.5
SPREAD_RANGE_CENTS = 40.0
