"""Separation: soft masks from synthesized voices applied to the mixture."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from sfgraph.dsp.mask_fit import MixtureFit
from sfgraph.dsp.stft import StreamingMaskSeparator, window_pair
from sfgraph.graph.errors import PortError
from sfgraph.graph.node import Node
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port, PortMap, StreamSpec, audio_spec


class Mask(Node):
    """Separates the mixture with ratio masks from voice estimates.

    Inputs: ``mix`` (1, samples) and ``voices`` (V, samples), at one sample rate.
    Output ``voices``: (V, samples), voice j = STFT⁻¹(|Ŝj|^p / Σk |Ŝk|^p · X), on an
    ``n_fft``/``hop`` STFT (samples at the input rate; 2048/256 at 16 kHz is 128 ms /
    16 ms). ``power`` 1 is the magnitude ratio, 2 the power ratio. Latency:
    ``n_fft - hop`` samples with the symmetric Hann windows (the STFT is causal so
    the same node runs live); ``synthesis`` below ``n_fft`` switches to the
    asymmetric low-delay window pair of ``sfgraph.dsp.stft`` (frequency resolution
    of ``n_fft``, latency ``synthesis - hop``), for live use.

    With ``fit_seconds`` > 0 (the default) the voice estimates are first fitted to the
    mixture (``sfgraph.dsp.mask_fit``): a per-voice timbre correction across frequency,
    learned causally over about ``fit_seconds`` s and smoothed over ``fit_smoothing_hz``,
    and a gain per voice and frame (``fit_iterations`` updates). It adds no latency.
    """

    type_name = "mask"
    params = {
        "n_fft": Param("int", 2048, "STFT window", unit="samples", range=(16, 16384)),
        "hop": Param("int", 256, "STFT hop", unit="samples", range=(4, 4096)),
        "power": Param("float", 1.0, "mask exponent: 1 magnitude ratio, 2 power ratio", range=(0.25, 4.0)),
        "synthesis": Param("int", None, "samples of each frame written back (default n_fft); fewer: "
                                        "asymmetric low-delay windows, latency synthesis - hop",
                           unit="samples", range=(8, 16384)),
        "fit_seconds": Param("float", 2.0, "memory of the timbre correction fitted to the mixture; "
                                           "0: masks straight from the voice estimates", unit="s", range=(0.0, 600.0)),
        "fit_iterations": Param("int", 3, "gain updates per frame of the mixture fit", range=(0, 50)),
        "fit_smoothing_hz": Param("float", 125.0, "smoothing of the timbre correction across frequency "
                                                  "(half-width)", unit="Hz", range=(0.0, 4000.0)),
    }

    @classmethod
    def declare_ports(cls, params):
        hop = params["hop"]
        return PortMap({"mix": Port("audio", "the mixture", channels=1, quantum=hop),
                        "voices": Port("audio", "voice estimates that shape the masks", quantum=hop)},
                       {"voices": Port("audio", "separated voices")})

    def configure(self, inputs, context):
        if self.p.n_fft % self.p.hop or self.p.n_fft < 4 * self.p.hop:
            raise ValueError(f"n_fft ({self.p.n_fft}) must be a multiple of hop ({self.p.hop}), at least 4 hops")
        window_pair(self.p.n_fft, self.p.hop, self.p.synthesis)  # raises for a synthesis length it cannot make
        synthesis = self.p.n_fft if self.p.synthesis is None else self.p.synthesis
        voices = inputs["voices"]
        if voices.rate != inputs["mix"].rate:
            raise PortError("voices", f"rate {float(voices.rate):g} Hz differs from the mixture's "
                                      f"{float(inputs['mix'].rate):g} Hz")
        self.latency = synthesis - self.p.hop
        return {"voices": audio_spec(voices.channels, voices.rate, voices.labels)}

    def prepare(self):
        fit = (MixtureFit(self.p.fit_seconds, self.p.fit_iterations, self.p.fit_smoothing_hz)
               if self.p.fit_seconds > 0 else None)
        self.separator = StreamingMaskSeparator(self.output_specs["voices"].channels, self.p.n_fft, self.p.hop,
                                                self.p.power, self.p.synthesis, fit,
                                                float(self.output_specs["voices"].rate))

    def reset(self):
        self.separator.reset()

    def process(self, mix, voices):
        return {"voices": self.separator.process(mix[0], voices)}


class ParamNetNode(Node):
    """The parameter network: mixture + F0 per voice → source-filter parameters per frame.

    Inputs: ``mix`` (1, samples) at the model's rate (16 kHz; other rates are
    resampled), consumed a hop (256 samples) at a time; ``f0`` (voices, frames) Hz at
    sample_rate / hop frames/s, voices in the model's order. Output ``params``:
    (voices, P, frames) with P = [amplitude, noise gain, 21 LSF increments, 40
    noise bands] (linear; see ``sfgraph.model.network``). Causal: the GRU states
    are carried from block to block, so offline and live give the same parameters.
    Frame t comes out with the hop that completes its analysis window: the hop
    starting at sample t·hop for a model with centred frames, the hop before it for
    a ``causal_frames`` model (whose first call also gives frame 0, from silence),
    which so runs one hop ahead of its input.
    """

    type_name = "param_net"
    params = {
        "model": Param("path", "sfgraph:models/default", "model folder (from 'sfgraph train')"),
        "device": Param("str", "auto", "auto (CUDA when available), cpu, cuda, cuda:N"),
    }

    @classmethod
    def declare_ports(cls, params):
        from sfgraph.dsp.voice_config import VoiceConfig

        voice = VoiceConfig()
        return PortMap({"mix": Port("audio", "the mixture", channels=1, rate=voice.sample_rate, quantum=voice.hop),
                        "f0": Port("f0", "F0 per voice", unit="Hz", rate=Fraction(voice.sample_rate, voice.hop))},
                       {"params": Port("tensor", "synthesizer parameters per voice and frame")})

    def configure(self, inputs, context):
        import torch

        from sfgraph.model.checkpoint import ModelError, load_model

        self.device = torch.device("cuda" if self.p.device == "auto" and torch.cuda.is_available() else
                                   "cpu" if self.p.device == "auto" else self.p.device)
        try:
            self.network = load_model(context.input_path(self.p.model), self.device)
        except ModelError as exc:
            raise ValueError(str(exc)) from None
        config = self.network.config
        f0 = inputs["f0"]
        voices = config.voices
        if f0.channels != len(voices) or (f0.labels is not None and tuple(f0.labels) != tuple(voices)):
            given = ", ".join(f0.labels) if f0.labels else f"{f0.channels} unnamed voices"
            raise PortError("f0", f"the model separates {', '.join(voices)}; the F0 input has {given}")
        # offline on one torch thread: ops on a few frames gain nothing from a team, and a team
        # stalls on a busy CPU (live, the engine already runs the graph on one)
        self.threads = 1 if context.mode == "offline" else None
        return {"params": StreamSpec("tensor", (len(voices), config.n_features), f0.rate, voices)}

    def prepare(self):
        self.reset()

    def reset(self):
        import torch

        config = self.network.config
        self.history = torch.zeros(1, config.n_fft - config.voice.hop, device=self.device)
        self.state = None
        self.started = False

    def process(self, mix, f0):
        import torch

        from sfgraph.model.network import log_magnitude_frames
        from sfgraph.threads import torch_threads

        config = self.network.config
        with torch_threads(self.threads), torch.no_grad():
            audio = torch.from_numpy(mix).to(self.device)
            f0_frames = torch.from_numpy(f0).to(self.device)[None]
            if config.causal_frames and not self.started:
                audio, f0_frames = self.network.causal_inputs(audio, f0_frames)
            self.started = True
            features = log_magnitude_frames(audio, config.n_fft, config.voice.hop, self.history)
            self.history = torch.cat([self.history, audio], dim=-1)[:, -self.history.shape[-1]:]
            params, self.state = self.network.forward_features(features, f0_frames, self.state)
        return {"params": params[0].permute(0, 2, 1).cpu().numpy()}


class SourceFilterSynth(Node):
    """Synthesizes each voice from its F0 and source-filter parameters (Numba, streaming).

    Inputs: ``f0`` (voices, frames) Hz and ``params`` (voices, P, frames) from
    ``param_net``, both at sample_rate / hop frames/s. Output ``voices``: (voices,
    samples) at 16 kHz, labelled by voice. Frame t holds at sample t·hop; a segment
    is rendered once the next frame is in, so the output runs ``hop`` samples
    (16 ms) behind its input (``lookahead``: one frame) while staying aligned to
    the timeline.
    """

    type_name = "sf_synth"
    inputs = {"f0": Port("f0", "F0 per voice", unit="Hz"),
              "params": Port("tensor", "parameters per voice and frame from param_net")}
    outputs = {"voices": Port("audio", "one synthesized voice per channel")}
    params = {"seed": Param("int", 0, "seed of the noise generators")}

    def configure(self, inputs, context):
        from sfgraph.dsp.voice_config import VoiceConfig

        self.config = VoiceConfig()
        f0, params = inputs["f0"], inputs["params"]
        n_features = 2 + self.config.n_lsf_increments + self.config.n_noise_bands
        if params.shape[1:] != (n_features,) or params.channels != f0.channels:
            raise PortError("params", f"expects ({f0.channels} voices, {n_features} parameters) per frame, "
                                      f"got {params.shape}")
        if params.rate != f0.rate or f0.rate != Fraction(self.config.sample_rate, self.config.hop):
            raise PortError("f0", f"expects {self.config.sample_rate / self.config.hop:g} frames/s on both inputs")
        self.lookahead = 1  # frame: Node.lookahead counts input items
        return {"voices": audio_spec(f0.channels, self.config.sample_rate, f0.labels)}

    def prepare(self):
        from sfgraph.dsp.voice_numba import StreamingVoiceSynth

        voices = self.output_specs["voices"].channels
        self.synth = StreamingVoiceSynth(voices, np.ones((voices, self.config.n_noise_bands)), self.config,
                                         seed=self.p.seed)
        self.noise_shape_set = False

    def reset(self):
        self.synth.reset()
        self.noise_shape_set = False

    def process(self, f0, params):
        increments = 2 + self.config.n_lsf_increments
        if not self.noise_shape_set:  # a model's noise colour is constant: take it from the first frame
            self.synth.set_noise_shape(params[:, increments:, 0])
            self.noise_shape_set = True
        self.synth.push(f0, params[:, 0], params[:, 1], params[:, 2:increments].transpose(0, 2, 1))
        return {"voices": self.synth.render()}
