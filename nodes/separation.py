"""Separation: soft masks from synthesized voices applied to the mixture."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from sfgraph.devices import resolve_device
from sfgraph.dsp.mask_fit import MixtureFit
from sfgraph.dsp.stft import StreamingMaskSeparator, TwoBandMaskSeparator, check_two_band, window_pair
from sfgraph.graph.errors import PortError
from sfgraph.graph.node import Node
from sfgraph.graph.params import Param
from sfgraph.graph.ports import Port, PortMap, StreamSpec, audio_spec
from sfgraph.grid import HOP_LENGTH, SAMPLE_RATE


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

    With ``section_cents`` > 0 each voice estimate's STFT magnitude is first widened
    along frequency by a Gaussian of that many cents (``sfgraph.dsp.section_width``): a
    choir section's partials are bands a few to tens of cents wide, a one-F0 voice
    model's are sharp. Frame by frame, so it adds no latency either.

    With ``low_n_fft`` set (samples, longer than ``n_fft``) the masks below
    ``crossover_hz`` (Hz) come from a ``low_n_fft`` STFT, where the voices' low partials
    crowd, and those above from the ``n_fft`` one, where vibrato moves the partials
    (``sfgraph.dsp.stft``: complementary band weights, the two inverse STFTs summed).
    Latency ``low_n_fft - hop`` samples; symmetric windows only (no ``synthesis``).
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
        "section_cents": Param("float", 0.0, "widen each voice estimate's partials like a choir section's "
                                             "(Gaussian standard deviation); 0: as they are",
                               unit="cents", range=(0.0, 100.0)),
        "low_n_fft": Param("int", None, "STFT window of the masks below crossover_hz (longer than n_fft; "
                                        "default: one resolution)", unit="samples", range=(32, 32768)),
        "crossover_hz": Param("float", 600.0, "where the low_n_fft masks hand over to the n_fft ones",
                              unit="Hz", range=(20.0, 20000.0)),
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
        if self.p.low_n_fft is not None:
            check_two_band(self.p.n_fft, self.p.hop, self.p.low_n_fft, self.p.crossover_hz, float(voices.rate),
                           self.p.synthesis)
            self.latency = self.p.low_n_fft - self.p.hop
        return {"voices": audio_spec(voices.channels, voices.rate, voices.labels)}

    def prepare(self):
        fit = (MixtureFit(self.p.fit_seconds, self.p.fit_iterations, self.p.fit_smoothing_hz)
               if self.p.fit_seconds > 0 else None)
        voices, rate = self.output_specs["voices"].channels, float(self.output_specs["voices"].rate)
        if self.p.low_n_fft is None:
            self.separator = StreamingMaskSeparator(voices, self.p.n_fft, self.p.hop, self.p.power, self.p.synthesis,
                                                    fit, rate, self.p.section_cents)
        else:
            self.separator = TwoBandMaskSeparator(voices, self.p.n_fft, self.p.low_n_fft, self.p.crossover_hz, rate,
                                                  self.p.hop, self.p.power, fit, self.p.section_cents)

    def reset(self):
        self.separator.reset()

    def process(self, mix, voices):
        return {"voices": self.separator.process(mix[0], voices)}


class ParamNetNode(Node):
    """The parameter network: mixture + F0 per voice → the voices' controls per frame.

    Inputs: ``mix`` (1, samples) at the model's rate (16 kHz; other rates are
    resampled), consumed a hop (256 samples) at a time; ``f0`` (voices, frames) Hz at
    sample_rate / hop frames/s, voices in the model's order. Output ``controls``: (voices,
    2 + lpc_order + 1, frames), each frame's amplitude, noise gain and LSF increments, and
    for a section voice model one more row, the spread (``VoiceControls.pack_frames``);
    the stream's ``constants`` carry the model's voice settings and noise colours
    (``VoiceControlStream``). Streams as
    ``StreamingParamNet`` does: offline and live give the same frames, frame t with the
    hop that completes its analysis window, which for a ``causal_frames`` model is the
    hop before it (one frame ahead of the input). On the CPU it runs the network without
    torch (``InferenceParamNet``: the same controls within float32 rounding).
    """

    type_name = "param_net"
    params = {
        "model": Param("path", "sfgraph:models/default", "model folder (from 'sfgraph train')"),
        "device": Param("str", "auto", "auto (CUDA when available), cpu, cuda, cuda:N"),
    }

    @classmethod
    def declare_ports(cls, params):
        # the frame grid of the F0 nodes; configure refuses a model on another
        return PortMap({"mix": Port("audio", "the mixture", channels=1, rate=SAMPLE_RATE, quantum=HOP_LENGTH),
                        "f0": Port("f0", "F0 per voice", unit="Hz", rate=Fraction(SAMPLE_RATE, HOP_LENGTH))},
                       {"controls": Port("tensor", "the voices' controls per frame")})

    def configure(self, inputs, context):
        from sfgraph.dsp.voice_controls import VoiceControlStream, n_frame_controls
        from sfgraph.model.checkpoint import ModelError

        self.model_folder = context.input_path(self.p.model)
        self.device = resolve_device(self.p.device)
        try:
            self.stream = self.load_stream()
        except ModelError as exc:
            raise ValueError(str(exc)) from None
        config = self.stream.config
        mix_port = self.input_ports["mix"]
        if (config.voice.sample_rate, config.voice.hop) != (mix_port.rate, mix_port.quantum):
            raise ValueError(f"{self.p.model}: a model for {config.voice.sample_rate} Hz audio in "
                             f"{config.voice.hop}-sample frames; graphs run {float(mix_port.rate):g} Hz in "
                             f"{mix_port.quantum}-sample frames")
        f0 = inputs["f0"]
        voices = config.voices
        if f0.channels != len(voices) or (f0.labels is not None and tuple(f0.labels) != tuple(voices)):
            given = ", ".join(f0.labels) if f0.labels else f"{f0.channels} unnamed voices"
            missing = [v for v in voices if f0.labels is not None and v not in f0.labels]
            raise PortError("f0", f"the model separates {', '.join(voices)}; the F0 input has {given}"
                                  + (f": no F0 for {', '.join(missing)}" if missing else ""))
        return {"controls": StreamSpec("tensor", (len(voices), n_frame_controls(config.voice)), f0.rate, voices,
                                     VoiceControlStream(config.voice, self.stream.noise_bands))}

    def load_stream(self):
        """The network on a stream: on the CPU without torch (``InferenceParamNet``, no torch
        import at start-up, its thread pools left alone), on CUDA torch's ``StreamingParamNet``."""
        if self.device == "cpu":
            from sfgraph.model.inference import load_inference_model

            return load_inference_model(self.model_folder)
        from sfgraph.model.checkpoint import load_model
        from sfgraph.model.network import StreamingParamNet

        return StreamingParamNet(load_model(self.model_folder, self.device))

    def prepare(self):
        self.stream.reset()

    def reset(self):
        self.stream.reset()

    def process(self, mix, f0):
        return {"controls": self.stream.process(mix[0], f0).pack_frames()}


class SourceFilterSynth(Node):
    """Synthesizes each voice from its F0 and controls (Numba, streaming).

    Inputs: ``f0`` (voices, frames) Hz and ``controls`` (voices, 2 + lpc_order + 1
    [+ 1 spread for a section voice model], frames) from ``param_net``
    (``VoiceControls.pack_frames``), both at sample_rate / hop frames/s; the voice
    settings and noise colours are the ones the ``controls`` stream carries
    (``VoiceControlStream``). Output ``voices``: (voices, samples) at
    the model's rate, labelled by voice. Frame t holds at sample t·hop; a segment
    is rendered once the next frame is in, so the output runs ``hop`` samples
    (16 ms) behind its input (``lookahead``: one frame) while staying aligned to
    the timeline. ``noise`` scales each voice's noise part (breath, consonants; the
    ``noise_gain`` control): 1 renders the voices as the model made them, 0 their
    harmonic part alone, which makes sharper masks (README, "Choir sections").
    """

    type_name = "sf_synth"
    inputs = {"f0": Port("f0", "F0 per voice", unit="Hz"),
              "controls": Port("tensor", "the voices' controls per frame from param_net")}
    outputs = {"voices": Port("audio", "one synthesized voice per channel")}
    params = {"seed": Param("int", 0, "seed of the noise generators"),
              "noise": Param("float", 1.0, "scale of the voices' noise part: 1 as the model made it, "
                                           "0 the harmonic part alone", range=(0.0, 1.0))}

    def configure(self, inputs, context):
        from sfgraph.dsp.voice_controls import VoiceControlStream, n_frame_controls

        f0, controls = inputs["f0"], inputs["controls"]
        if not isinstance(controls.constants, VoiceControlStream):
            raise PortError("controls", f"expects the voice controls of a param_net (with its voice settings), "
                                        f"got a {controls.describe()} stream without them")
        self.config = controls.constants.config
        n_controls = n_frame_controls(self.config)
        if controls.shape[1:] != (n_controls,) or controls.channels != f0.channels:
            raise PortError("controls", f"expects ({f0.channels} voices, {n_controls} controls) per frame, "
                                        f"got {controls.shape}")
        if controls.rate != f0.rate or f0.rate != Fraction(self.config.sample_rate, self.config.hop):
            raise PortError("f0", f"expects {self.config.sample_rate / self.config.hop:g} frames/s on both inputs")
        self.lookahead = 1  # frame: Node.lookahead counts input items
        return {"voices": audio_spec(f0.channels, self.config.sample_rate, f0.labels)}

    def prepare(self):
        from sfgraph.dsp.voice_numba import StreamingVoiceSynth

        # read now, not at configure: the model's weights may change in between (separate --adapt)
        self.noise_bands = self.input_specs["controls"].constants.noise_bands()
        self.synth = StreamingVoiceSynth(self.output_specs["voices"].channels, self.noise_bands, self.config,
                                         seed=self.p.seed)

    def reset(self):
        self.synth.reset()

    def process(self, f0, controls):
        from sfgraph.dsp.voice_controls import VoiceControls

        controls = VoiceControls.split_frames(controls, self.noise_bands, self.config)
        self.synth.push(f0, controls.amplitude, controls.noise_gain * np.float32(self.p.noise), controls.lsf_increments,
                        spread=controls.spread)
        return {"voices": self.synth.render()}
