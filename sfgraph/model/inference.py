"""The parameter network's forward pass without torch, for separating on the CPU.

``ParamNet`` (``sfgraph.model.network``) is what training builds and differentiates; a
separation only runs it forward, on a stream. Importing torch costs a separation of a
minute more than the network itself (1.3-2.8 s of start-up here, issue 16), so this module
runs the same weights (``sfgraph.model.checkpoint.read_weights``) with numpy and one Numba
kernel: the recurrences of the encoder and of every voice's decoder, all voices in one
call. Each layer's input half runs as one matrix product over all the block's frames;
only the GRUs' recurrent half goes frame by frame. The controls equal ``ParamNet``'s
within float32 rounding (the sums run in another order; tested).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numba import njit

from sfgraph.dsp.stft import hann
from sfgraph.dsp.voice_controls import VoiceControls
from sfgraph.model.checkpoint import read_model_config, read_weights
from sfgraph.model.errors import ModelError
from sfgraph.model.network_config import (
    LSF_INCREMENT_FLOOR,
    MAGNITUDE_FLOOR,
    SPREAD_FLOOR_CENTS,
    SPREAD_RANGE_CENTS,
    NetworkConfig,
    leading_silent_frames,
)
from sfgraph.threads import numpy_blas_threads

LEAKY_SLOPE = 0.1  # the network's LeakyReLU
LAYER_NORM_EPSILON = 1e-5  # torch's LayerNorm default


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def gru_recurrence(input_gates: np.ndarray, recurrent_weights: np.ndarray, recurrent_bias: np.ndarray,
                   state: np.ndarray, hidden_out: np.ndarray) -> None:
    """Runs ``G`` GRUs (torch's ``nn.GRU`` equations, gates r, z, n) over ``T`` frames.

    ``input_gates`` (G, T, 3H): each frame's input times the input weights, plus their bias;
    ``recurrent_weights`` (G, 3H, H) and ``recurrent_bias`` (G, 3H); ``state`` (G, H) the
    hidden state before the first frame, updated in place; ``hidden_out`` (G, T, H) each
    frame's hidden state. Float32 throughout; the recurrent sums may be reordered (the
    only fast-math licence), which vectorizes them.
    """
    n_grus, frames, gates = input_gates.shape
    width = gates // 3
    recurrent = np.empty(gates, np.float32)
    for g in range(n_grus):
        for t in range(frames):
            for row in range(gates):
                total = np.float32(0.0)
                for k in range(width):
                    total += recurrent_weights[g, row, k] * state[g, k]
                recurrent[row] = total + recurrent_bias[g, row]
            for j in range(width):
                reset = 1.0 / (1.0 + np.exp(-(input_gates[g, t, j] + recurrent[j])))
                update = 1.0 / (1.0 + np.exp(-(input_gates[g, t, width + j] + recurrent[width + j])))
                candidate = np.tanh(input_gates[g, t, 2 * width + j] + reset * recurrent[2 * width + j])
                state[g, j] = (1.0 - update) * candidate + update * state[g, j]
                hidden_out[g, t, j] = state[g, j]


def weight_shapes(config: NetworkConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every weight of ``ParamNet(config)`` (its state dict's)."""
    bins, width, f0_width = config.n_fft // 2 + 1, config.hidden, config.f0_hidden
    outputs = 2 + config.voice.n_lsf_increments + int(config.voice.is_section)
    shapes = {"input_norm.weight": (bins,), "input_norm.bias": (bins,),
              "encoder_in.0.weight": (width, bins), "encoder_in.0.bias": (width,),
              **gru_shapes("encoder", width, width),
              "noise_shape": (len(config.voices), config.voice.n_noise_bands)}
    for v in range(len(config.voices)):
        decoder = f"decoders.{v}"
        shapes.update({f"{decoder}.f0_mlp.0.weight": (f0_width, 2), f"{decoder}.f0_mlp.0.bias": (f0_width,),
                       f"{decoder}.f0_mlp.2.weight": (f0_width, f0_width), f"{decoder}.f0_mlp.2.bias": (f0_width,),
                       **gru_shapes(f"{decoder}.gru", width + f0_width, width),
                       f"{decoder}.out.0.weight": (width, width + f0_width), f"{decoder}.out.0.bias": (width,),
                       f"{decoder}.out.2.weight": (outputs, width), f"{decoder}.out.2.bias": (outputs,)})
    return shapes


def gru_shapes(name: str, inputs: int, width: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight_ih_l0": (3 * width, inputs), f"{name}.weight_hh_l0": (3 * width, width),
            f"{name}.bias_ih_l0": (3 * width,), f"{name}.bias_hh_l0": (3 * width,)}


def leaky_relu(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, np.float32(LEAKY_SLOPE) * x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # e^-x overflows to inf for x below about -88: the sigmoid's 0
        return 1.0 / (1.0 + np.exp(-x))


class InferenceParamNet:
    """``ParamNet``'s forward pass on a stream, in numpy (see the module docstring): the
    same interface as ``StreamingParamNet``. ``weights``: a state dict of ``ParamNet(config)``
    as numpy arrays (``read_weights``); ModelError when a weight is missing or misshapen."""

    def __init__(self, config: NetworkConfig, weights: dict[str, np.ndarray]):
        self.config = config
        self.window = hann(config.n_fft).astype(np.float32)  # torch.hann_window(periodic=True), as ParamNet's
        self.load_weights(weights)
        self.reset()

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Run with ``weights`` from now on (``separate --adapt`` hands over the adapted ones)."""
        expected = weight_shapes(self.config)
        wrong = sorted(name for name, shape in expected.items()
                       if name not in weights or tuple(weights[name].shape) != shape)
        unexpected = sorted(set(weights) - set(expected))
        if wrong or unexpected:
            raise ModelError(f"weights do not match the network's configuration: "
                             f"{', '.join(wrong + unexpected)}")
        w = {name: np.ascontiguousarray(values, np.float32) for name, values in weights.items()}
        width, voices = self.config.hidden, range(len(self.config.voices))

        def stacked(pattern: str) -> np.ndarray:
            return np.ascontiguousarray(np.stack([w[pattern.format(v)] for v in voices]))

        self.norm_weight, self.norm_bias = w["input_norm.weight"], w["input_norm.bias"]
        self.encoder_in = (w["encoder_in.0.weight"].T.copy(), w["encoder_in.0.bias"])
        self.encoder_input = (w["encoder.weight_ih_l0"].T.copy(), w["encoder.bias_ih_l0"])
        self.encoder_recurrent = (w["encoder.weight_hh_l0"][None].copy(), w["encoder.bias_hh_l0"][None].copy())
        self.f0_layers = [(stacked(f"decoders.{{}}.f0_mlp.{i}.weight").transpose(0, 2, 1).copy(),
                           stacked(f"decoders.{{}}.f0_mlp.{i}.bias")[:, None]) for i in (0, 2)]
        decoder_input = stacked("decoders.{}.gru.weight_ih_l0")  # (V, 3H, H + F): embedding, then F0 features
        # the embedding's part for all voices as one product: (H, V * 3H)
        self.decoder_embedding = np.ascontiguousarray(decoder_input[:, :, :width].transpose(2, 0, 1).reshape(width, -1))
        self.decoder_f0 = decoder_input[:, :, width:].transpose(0, 2, 1).copy()
        self.decoder_input_bias = stacked("decoders.{}.gru.bias_ih_l0")[:, None]
        self.decoder_recurrent = (stacked("decoders.{}.gru.weight_hh_l0"), stacked("decoders.{}.gru.bias_hh_l0"))
        self.out_layers = [(stacked(f"decoders.{{}}.out.{i}.weight").transpose(0, 2, 1).copy(),
                            stacked(f"decoders.{{}}.out.{i}.bias")[:, None]) for i in (0, 2)]
        noise_shape = w["noise_shape"].astype(np.float64)
        # torch's softplus: log(1 + e^x), x itself above 20
        self.noise_colours = np.where(noise_shape > 20, noise_shape, np.log1p(np.exp(np.minimum(noise_shape, 20))))
        self.noise_colours = self.noise_colours.astype(np.float32)

    def reset(self) -> None:
        """Start a new stream."""
        config = self.config
        self.history = np.zeros(config.n_fft - config.voice.hop, np.float32)
        self.encoder_state = np.zeros((1, config.hidden), np.float32)
        self.decoder_states = np.zeros((len(config.voices), config.hidden), np.float32)
        self.started = False
        self.heard = False

    def noise_bands(self) -> np.ndarray:
        """The network's noise colours, (V, n_noise_bands) float32 (``ParamNet.noise_bands``)."""
        return self.noise_colours

    def process(self, mix: np.ndarray, f0: np.ndarray) -> VoiceControls:
        """``StreamingParamNet.process``: the controls of the frames this block completes, and
        leading silence handled as there (the network left where the sound alone starts it)."""
        config = self.config
        hop = config.voice.hop
        mix = np.asarray(mix, np.float32)
        f0 = np.asarray(f0, np.float32)
        if config.causal_frames and not self.started:  # as ParamNet.causal_inputs
            mix = np.concatenate([np.zeros(hop, np.float32), mix])
            f0 = np.concatenate([np.zeros((f0.shape[0], 1), np.float32), f0], axis=1)
        self.started = True
        frames = mix.size // hop
        padded = np.concatenate([self.history, mix])
        self.history = padded[padded.size - self.history.size:].copy()
        with numpy_blas_threads(1):  # a team gains little on these products and stalls on a busy CPU
            features, f0 = self.log_magnitude_frames(padded, frames), f0[:, :frames]
            parts = []
            if not self.heard:
                silent = leading_silent_frames(features, f0)
                if silent:
                    self.encoder_state[:], self.decoder_states[:] = 0.0, 0.0
                    hush = self.frame_controls(features[:1], f0[:, :1])
                    if not config.causal_frames:  # a causal network's stream opens with a silent frame
                        self.encoder_state[:], self.decoder_states[:] = 0.0, 0.0
                    parts += [hush] * silent
                    features, f0 = features[silent:], f0[:, silent:]
                self.heard = silent < frames
            if features.shape[0] or not parts:
                parts.append(self.frame_controls(features, f0))
        return parts[0] if len(parts) == 1 else VoiceControls.concat_frames(parts)

    def frame_controls(self, features: np.ndarray, f0: np.ndarray) -> VoiceControls:
        """The controls of these feature frames and F0s, from the GRU states, which advance."""
        return self.controls(self.decode(self.encode(features), f0))

    def log_magnitude_frames(self, padded: np.ndarray, frames: int) -> np.ndarray:
        """``log_magnitude_frames`` of the network: (frames, n_fft // 2 + 1)."""
        n_fft, hop = self.config.n_fft, self.config.voice.hop
        segments = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:frames]
        return np.log(np.abs(np.fft.rfft(segments * self.window, axis=-1)) + np.float32(MAGNITUDE_FLOOR))

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Input norm, the input layer and the encoder GRU: (frames, H)."""
        mean = features.mean(axis=-1, keepdims=True)
        variance = np.square(features - mean).mean(axis=-1, keepdims=True)
        normalised = (features - mean) / np.sqrt(variance + np.float32(LAYER_NORM_EPSILON))
        normalised = normalised * self.norm_weight + self.norm_bias
        encoded = leaky_relu(normalised @ self.encoder_in[0] + self.encoder_in[1])
        gates = (encoded @ self.encoder_input[0] + self.encoder_input[1])[None]
        return self.recur(gates, *self.encoder_recurrent, self.encoder_state)[0]

    def decode(self, embedding: np.ndarray, f0: np.ndarray) -> np.ndarray:
        """Every voice's decoder on the embedding and its F0 (V, frames): raw outputs (V, frames, outputs)."""
        voices, frames = f0.shape
        voiced = (f0 > 0).astype(np.float32)
        # as VoiceDecoder: log-frequency, 0 at 220 Hz, one unit per two octaves
        log_f0 = np.log2(np.maximum(f0, np.float32(20.0)) / np.float32(220.0)) / np.float32(2.0) * voiced
        f0_features = np.stack([log_f0, voiced], axis=-1)  # (V, frames, 2)
        for weight, bias in self.f0_layers:
            f0_features = leaky_relu(np.matmul(f0_features, weight) + bias)
        from_embedding = (embedding @ self.decoder_embedding).reshape(frames, voices, -1).transpose(1, 0, 2)
        gates = from_embedding + np.matmul(f0_features, self.decoder_f0) + self.decoder_input_bias
        hidden = self.recur(gates, *self.decoder_recurrent, self.decoder_states)
        (first, first_bias), (second, second_bias) = self.out_layers
        out = leaky_relu(np.matmul(np.concatenate([hidden, f0_features], axis=-1), first) + first_bias)
        return np.matmul(out, second) + second_bias

    @staticmethod
    def recur(gates: np.ndarray, weights: np.ndarray, bias: np.ndarray, state: np.ndarray) -> np.ndarray:
        hidden = np.empty(gates.shape[:2] + (state.shape[-1],), np.float32)
        gru_recurrence(np.ascontiguousarray(gates, np.float32), weights, bias, state, hidden)
        return hidden

    def controls(self, raw: np.ndarray) -> VoiceControls:
        """``ParamNet.forward_features``' bounded controls from the decoders' raw outputs (V, frames, outputs)."""
        config = self.config
        increments_end = 2 + config.voice.n_lsf_increments
        squashed = sigmoid(raw)

        def exp_sigmoid(index: int, maximum: float) -> np.ndarray:
            return (maximum * squashed[..., index] ** np.float32(math.log(10.0)) + np.float32(1e-7)).astype(np.float32)

        return VoiceControls(amplitude=exp_sigmoid(0, config.amplitude_max),
                             noise_gain=exp_sigmoid(1, config.noise_gain_max),
                             lsf_increments=(LSF_INCREMENT_FLOOR + squashed[..., 2:increments_end]).astype(np.float32),
                             noise_bands=self.noise_colours,
                             spread=(SPREAD_FLOOR_CENTS + SPREAD_RANGE_CENTS * squashed[..., increments_end]
                                     ).astype(np.float32) if config.voice.is_section else None)


def load_inference_model(folder: Path) -> InferenceParamNet:
    """``checkpoint.load_model`` without torch: a model folder's network, for separating on the
    CPU; ModelError naming the file for any problem."""
    config, _ = read_model_config(folder)
    path = Path(folder) / "weights.pt"
    weights = read_weights(path)  # its errors name the file
    try:
        return InferenceParamNet(config, weights)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
