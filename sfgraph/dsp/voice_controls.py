"""The controls of the source-filter voices: everything besides F0 that the synthesizers take.

One type for every producer (the parameter network, the fit to true stems) and every
consumer (``voice_torch``, ``voice_numba``, the graph nodes), so that the network's
output needs no re-slicing or re-scaling on its way to a synthesizer.

A graph stream of controls (``param_net`` → ``sf_synth``) carries the per-frame ones
packed as ``(V, n_frame_controls, frames)`` (:meth:`VoiceControls.pack_frames`); what
stays fixed for the whole stream, the voice model's settings and each voice's noise
colour, travels once, in the stream's description (:class:`VoiceControlStream`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from sfgraph.dsp.voice_config import VoiceConfig

# Rows of a packed frame: amplitude, noise gain, then the LSF increments.
_AMPLITUDE, _NOISE_GAIN, _FIRST_INCREMENT = range(3)


class VoiceControls(NamedTuple):
    """Controls of ``V`` voices over ``T`` frames (frame ``t`` holds at sample ``t * hop``).

    The fields are all torch tensors or all numpy arrays; ``...`` is any batch shape
    (none in a stream, ``(B,)`` in training), and ``noise_bands`` may leave it out.

    Attributes:
        amplitude: ``(..., V, T)`` linear harmonic amplitude ``>= 0``, the sum of the
            flat harmonic weights before the spectral tilt and the vocal tract.
        noise_gain: ``(..., V, T)`` linear gain ``>= 0`` of the shaped noise.
        lsf_increments: ``(..., V, T, lpc_order + 1)`` positive gaps between the
            vocal tract's line spectral frequencies, relative: the synthesizer scales
            them to sum to pi (with ``VoiceConfig.min_lsf_gap``).
        noise_bands: ``(..., V, n_noise_bands)`` linear magnitudes ``>= 0`` of the
            noise at ``b * nyquist / (n_noise_bands - 1)`` Hz: each voice's noise
            colour, the same in every frame.
        spread: ``(..., V, T)`` cents ``> 0``, how far the singers of a section spread
            around the F0 (``VoiceConfig.section_copies`` > 1); None for solo voices.
    """

    amplitude: Any
    noise_gain: Any
    lsf_increments: Any
    noise_bands: Any
    spread: Any = None

    def map(self, function: Callable[[Any], Any]) -> VoiceControls:
        """The controls with ``function`` applied to every field that is set."""
        return VoiceControls(*(None if values is None else function(values) for values in self))

    def first_frames(self, count: int) -> VoiceControls:
        """The controls of frames ``[0, count)``."""
        return self._replace(amplitude=self.amplitude[..., :count], noise_gain=self.noise_gain[..., :count],
                             lsf_increments=self.lsf_increments[..., :count, :],
                             spread=None if self.spread is None else self.spread[..., :count])

    @classmethod
    def concat_frames(cls, parts: list[VoiceControls]) -> VoiceControls:
        """numpy controls of consecutive frame spans as one (the first part's noise colours)."""
        first = parts[0]
        return first._replace(amplitude=np.concatenate([p.amplitude for p in parts], axis=-1),
                              noise_gain=np.concatenate([p.noise_gain for p in parts], axis=-1),
                              lsf_increments=np.concatenate([p.lsf_increments for p in parts], axis=-2),
                              spread=None if first.spread is None else
                              np.concatenate([p.spread for p in parts], axis=-1))

    def pack_frames(self) -> np.ndarray:
        """The per-frame controls of numpy ``(V, T)`` fields as one stream block,
        ``(V, n_frame_controls, T)`` float32: amplitude, noise gain, LSF increments, and
        the spread for a section."""
        spread = [] if self.spread is None else [self.spread[:, None]]
        return np.concatenate([self.amplitude[:, None], self.noise_gain[:, None],
                               self.lsf_increments.swapaxes(-1, -2), *spread], axis=1, dtype=np.float32)

    @classmethod
    def split_frames(cls, frames: np.ndarray, noise_bands: np.ndarray, config: VoiceConfig) -> VoiceControls:
        """The controls in a stream block ``frames`` ``(V, n_frame_controls(config), T)`` (from
        :meth:`pack_frames`) with the stream's ``noise_bands`` ``(V, n_noise_bands)``."""
        increments_end = _FIRST_INCREMENT + config.n_lsf_increments
        return cls(frames[:, _AMPLITUDE], frames[:, _NOISE_GAIN],
                   frames[:, _FIRST_INCREMENT:increments_end].swapaxes(-1, -2), noise_bands,
                   frames[:, increments_end] if config.is_section else None)


def n_frame_controls(config: VoiceConfig) -> int:
    """Rows of a packed frame (:meth:`VoiceControls.pack_frames`): ``2 + lpc_order + 1``,
    plus one (the spread) for a section."""
    return _FIRST_INCREMENT + config.n_lsf_increments + int(config.is_section)


@dataclass(frozen=True)
class VoiceControlStream:
    """What a stream of packed voice controls carries once instead of in every frame.

    Attributes:
        config: the voice model's settings, which the controls are made for.
        noise_bands: returns each voice's noise colour, ``(V, n_noise_bands)``
            linear (``VoiceControls.noise_bands``). A function, read when a consumer
            starts: weights may still change between describing a stream and running
            it (``sfgraph separate --adapt`` adapts the configured graph's model).
    """

    config: VoiceConfig
    noise_bands: Callable[[], np.ndarray]
