"""pedalboard effects: any built-in effect by name, or a hosted VST3 / Audio Unit plugin."""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pedalboard

from sfgraph.buffers import Fifo
from sfgraph.graph.node import Node
from sfgraph.graph.params import Param, ParamError
from sfgraph.graph.ports import Port

# Built-in pedalboard classes that are effects one can name in a graph.
BUILTIN_EFFECTS = {
    name: cls for name, cls in vars(pedalboard).items()
    if isinstance(cls, type) and issubclass(cls, pedalboard.Plugin)
    and name not in {"Plugin", "ExternalPlugin", "VST3Plugin", "AudioUnitPlugin", "Pedalboard", "Chain", "Mix",
                     "PluginContainer"}
}
_PLUGIN_SUFFIXES = (".vst3", ".component")
# How much silence to push through a plugin to measure its latency.
_LATENCY_PROBE_SECONDS = 2.0
# pedalboard's buffer size. pedalboard re-prepares (and so clears) a plugin when a
# call's block (the shorter of its length and buffer_size) is longer than that of
# its first call since a reset; every stream therefore opens with one call of this
# many samples of silence, and every call passes it as buffer_size, so a block of
# any length is one call (pedalboard cuts it into pieces of this many itself).
_CALL_SAMPLES = 512


def builtin_parameters(plugin: pedalboard.Plugin) -> list[str]:
    """The settable parameters of a built-in effect (its Python properties)."""
    return sorted(name for name, attr in vars(type(plugin)).items()
                  if isinstance(attr, property) and attr.fset is not None)


def load_effect(name: str, context, state: str | None = None, plugin_name: str | None = None) -> pedalboard.Plugin:
    """A built-in effect by class name, or a hosted VST3 / Audio Unit plugin by path
    (with ``state``, a preset or raw state file, loaded into it)."""
    if name.endswith(_PLUGIN_SUFFIXES) or "/" in name:
        path = context.input_path(name)
        if not path.exists():
            raise ValueError(f"plugin file not found: {path}")
        try:
            plugin = pedalboard.load_plugin(str(path), plugin_name=plugin_name)
        except Exception as exc:  # pedalboard raises ImportError/RuntimeError/ValueError by platform
            raise ValueError(f"cannot load plugin {path}: {exc}") from None
        if state:
            _load_state(plugin, context.input_path(state))
        return plugin
    cls = BUILTIN_EFFECTS.get(name)
    if cls is None:
        hint = difflib.get_close_matches(name, list(BUILTIN_EFFECTS), n=3)
        raise ValueError(f"unknown pedalboard effect '{name}'"
                         + (f"; did you mean {', '.join(hint)}?" if hint else
                            f"; built-in effects: {', '.join(sorted(BUILTIN_EFFECTS))}"))
    if state:
        raise ValueError("'state' applies to hosted plugins only; set a built-in effect with 'params'")
    return cls()


def _load_state(plugin, path: Path) -> None:
    if not path.exists():
        raise ValueError(f"plugin state file not found: {path}")
    if path.suffix == ".vstpreset":
        plugin.load_preset(str(path))
    else:
        plugin.raw_state = path.read_bytes()


def _parameter_names(plugin: pedalboard.Plugin) -> list[str]:
    if isinstance(plugin, pedalboard.ExternalPlugin):
        # read-only parameters (e.g. a plugin's reported latency) are not automatable
        return sorted(name for name, parameter in plugin.parameters.items() if parameter.is_automatable)
    return builtin_parameters(plugin)


def set_effect_parameters(plugin: pedalboard.Plugin, values: dict, label: str) -> None:
    """Set ``plugin``'s parameters by name; ParamError (naming ``label`` and the
    parameter) for a name it lacks or a value it refuses."""
    names = _parameter_names(plugin)
    for key, value in values.items():
        if key not in names:
            hint = difflib.get_close_matches(key, names, n=3)
            raise ParamError(f"{label} has no parameter '{key}'"
                             + (f"; did you mean {', '.join(hint)}?" if hint else f"; it has {', '.join(names)}"))
        try:
            setattr(plugin, key, value)
        except (ValueError, TypeError) as exc:
            raise ParamError(f"{label} parameter '{key}' = {value!r}: {exc}") from None


def _reported_latency(plugin: pedalboard.Plugin) -> int:
    """The latency hosted plugins report (in series, the sum); built-in effects report none (0)."""
    if isinstance(plugin, pedalboard.Pedalboard):
        return sum(_reported_latency(p) for p in plugin)
    return getattr(plugin, "reported_latency_samples", 0)


class StreamingEffect:
    """A pedalboard plugin (or a ``pedalboard.Pedalboard`` of several) run on a stream.

    ``process`` takes (channels, n) float32 blocks at ``sample_rate`` Hz and returns
    (channels, n): block by block equals the whole signal, with the plugin's delay
    (measured on construction, ``latency`` samples) kept constant, so the output
    lags the input by exactly ``latency`` samples from the first block on.
    """

    def __init__(self, plugin: pedalboard.Plugin, channels: int, sample_rate: float, label: str):
        self.plugin, self.channels, self.sample_rate, self.label = plugin, channels, sample_rate, label
        self.latency = self._measure_latency()
        self._reported = _reported_latency(plugin)
        self.reset()

    def _call(self, audio: np.ndarray) -> np.ndarray:
        return self.plugin.process(audio, self.sample_rate, buffer_size=_CALL_SAMPLES, reset=False)

    def _measure_latency(self) -> int:
        """Samples by which streaming output lags input (0 for most effects)."""
        silence = np.zeros((self.channels, _CALL_SAMPLES), dtype=np.float32)
        # a hosted plugin reports its latency to pedalboard only once it has
        # processed audio; pedalboard applies it from the next reset
        self._call(silence)
        self.plugin.reset()
        pushed = round(_LATENCY_PROBE_SECONDS * self.sample_rate)
        produced = self._call(np.zeros((self.channels, pushed), dtype=np.float32)).shape[-1]
        self.plugin.reset()
        return pushed - produced

    def reset(self) -> None:
        """Clear the plugin, then open the stream with one call of silence (see
        ``_CALL_SAMPLES``). The plugin's answer to that silence is silence, so the
        stream starts as if from rest; effects with an LFO (chorus, phaser) start
        ``_CALL_SAMPLES`` samples into their cycle."""
        self.plugin.reset()
        opened = self._call(np.zeros((self.channels, _CALL_SAMPLES), dtype=np.float32)).shape[-1]
        self.pending = Fifo((self.channels,), capacity=max(4096, 2 * self.latency))
        # stream output k is plugin output _CALL_SAMPLES + k; what the plugin still
        # holds of the opening silence stands in for the first outputs
        held = self.latency - _CALL_SAMPLES + opened
        if held < 0:
            raise RuntimeError(f"{self.label}: latency changed from {self.latency} samples while starting")
        self.pending.push_zeros(held)

    def process(self, audio: np.ndarray) -> np.ndarray:
        self.pending.push(self._call(audio))
        return self.pending.pop(min(len(self.pending), audio.shape[-1]))

    def check_latency(self) -> None:
        """After a parameter change: ValueError if it moved the plugin's latency."""
        moved = _reported_latency(self.plugin) - self._reported
        if moved:
            raise ValueError(f"{self.label}: a parameter change moved its latency from {self.latency} to "
                             f"{self.latency + moved} samples; set such parameters before the graph starts")


class PedalboardEffect(Node):
    """Runs audio through one pedalboard effect.

    ``plugin`` is a built-in effect class name (``Reverb``, ``Compressor``,
    ``HighpassFilter`` …; ``sfgraph describe pedalboard`` lists them) or the path of
    a VST3 / Audio Unit plugin. ``params`` sets its parameters by name (pedalboard's
    names and units, e.g. ``room_size`` 0…1, ``cutoff_frequency_hz`` Hz,
    ``threshold_db`` dB); each can change while running. ``state`` loads a preset
    file (``.vstpreset``) or raw plugin state saved with ``raw_state``.

    In/out ``audio``: (channels, samples) at any rate. A plugin that delays its
    output (look-ahead, resampling) has that delay measured when the graph starts
    and reported as this node's latency, so parallel branches stay aligned.
    """

    type_name = "pedalboard"
    inputs = {"audio": Port("audio")}
    outputs = {"audio": Port("audio")}
    params = {
        "plugin": Param("str", doc="built-in effect name, or path to a .vst3 / .component plugin"),
        "params": Param("mapping", None, "effect parameters by name", live=True),
        "state": Param("path", None, "preset (.vstpreset) or raw state file for a hosted plugin"),
        "plugin_name": Param("str", None, "which plugin of a multi-plugin bundle"),
    }

    def configure(self, inputs, context):
        self.plugin = load_effect(self.p.plugin, context, self.p.state, self.p.plugin_name)
        set_effect_parameters(self.plugin, self.p.params or {}, self.p.plugin)
        self.stream = StreamingEffect(self.plugin, inputs["audio"].channels, float(inputs["audio"].rate),
                                      self.p.plugin)
        self.latency = self.stream.latency
        return {"audio": inputs["audio"]}

    def set_param(self, name, value):
        """A ``params`` change updates the named plugin parameters, keeping the others."""
        if name == "params":
            value = {**(self.p.params or {}), **value}
        super().set_param(name, value)
        if name == "params":
            set_effect_parameters(self.plugin, value, self.p.plugin)
            self._latency_check_due = True

    def prepare(self):
        self.reset()

    def reset(self):
        self.stream.reset()
        self._latency_check_due = False

    def process(self, audio):
        out = self.stream.process(audio)
        if self._latency_check_due:
            self._latency_check_due = False
            self.stream.check_latency()
        return {"audio": out}


class EffectChain(Node):
    """Runs every channel through its own chain of pedalboard effects, in order.

    ``effects`` names each effect of the chain, in order, with the ``pedalboard``
    node's params (``plugin``, ``params``, ``state``, ``plugin_name``), e.g.
    ``{eq: {plugin: PeakFilter, params: {gain_db: 2}}, verb: {plugin: Reverb}}``.
    Every channel has its own instances (a compressor or a reverb keeps its state
    per voice). ``channels`` overrides parameters of some channels, by channel label
    (the voice names, after separation) and effect name, e.g. ``{bass: {verb:
    {wet_level: 0.1}}}``; it can change while running.

    In/out ``audio``: (channels, samples) at any rate, each channel processed as
    mono, labels kept. Latency: the chain's delay (measured when the graph starts),
    the same for every channel.
    """

    type_name = "chain"
    inputs = {"audio": Port("audio")}
    outputs = {"audio": Port("audio")}
    params = {
        "effects": Param("mapping", doc="effect name -> {plugin, params, state, plugin_name} as the pedalboard "
                                        "node takes them, in chain order"),
        "channels": Param("mapping", None, "per-channel parameters: channel label -> effect name -> "
                                           "{parameter: value}", live=True),
    }

    def configure(self, inputs, context):
        spec = inputs["audio"]
        self.labels = list(spec.channel_labels())
        if not self.p.effects:
            raise ParamError("param 'effects': name at least one effect")
        settings = {}
        for name, given in self.p.effects.items():
            if not isinstance(given, dict):
                raise ParamError(f"param 'effects': '{name}' must be a mapping such as {{plugin: Reverb, "
                                 f"params: {{room_size: 0.5}}}}, got {given!r}")
            try:
                settings[name] = PedalboardEffect.validate_params(given)
            except ParamError as exc:
                raise ParamError(f"param 'effects': '{name}': {exc}") from None
        self.names = list(settings)
        self.boards = []
        for _ in self.labels:
            plugins = []
            for name, s in settings.items():
                plugin = load_effect(s["plugin"], context, s["state"], s["plugin_name"])
                set_effect_parameters(plugin, s["params"] or {}, f"effect '{name}' ({s['plugin']})")
                plugins.append(plugin)
            self.boards.append(pedalboard.Pedalboard(plugins))
        self._apply_overrides(self.p.channels or {})
        rate = float(spec.rate)
        self.streams = [StreamingEffect(board, 1, rate, f"channel '{label}'")
                        for label, board in zip(self.labels, self.boards)]
        latencies = {stream.label: stream.latency for stream in self.streams}
        if len(set(latencies.values())) > 1:
            raise ValueError("the channels' chains delay by different amounts ("
                             + ", ".join(f"{k}: {v}" for k, v in latencies.items())
                             + " samples); give every channel effects of the same latency")
        self.latency = self.streams[0].latency
        return {"audio": spec}

    def _apply_overrides(self, overrides: dict) -> None:
        """Set the parameters that ``overrides`` (label -> effect -> values) names;
        ParamError naming the label, effect or parameter that does not exist."""
        for label, per_effect in overrides.items():
            if label not in self.labels:
                hint = difflib.get_close_matches(str(label), self.labels, n=1)
                raise ParamError(f"param 'channels': no channel '{label}'"
                                 + (f"; did you mean {hint[0]}?" if hint else f"; channels: {', '.join(self.labels)}"))
            if not isinstance(per_effect, dict):
                raise ParamError(f"param 'channels': '{label}' must map effect names to parameters, got {per_effect!r}")
            board = self.boards[self.labels.index(label)]
            for name, values in per_effect.items():
                if name not in self.names:
                    raise ParamError(f"param 'channels': '{label}': no effect '{name}' in the chain "
                                     f"({', '.join(self.names)})")
                if not isinstance(values, dict):
                    raise ParamError(f"param 'channels': '{label}.{name}' must map parameters to values, "
                                     f"got {values!r}")
                set_effect_parameters(board[self.names.index(name)], values, f"channel '{label}' effect '{name}'")

    def set_param(self, name, value):
        """A ``channels`` change updates the parameters it names, keeping the others."""
        if name != "channels":
            return super().set_param(name, value)
        self._apply_overrides(value)
        merged = {label: dict(per_effect) for label, per_effect in (self.p.channels or {}).items()}
        for label, per_effect in value.items():
            for effect, values in per_effect.items():
                merged.setdefault(label, {})[effect] = {**merged.get(label, {}).get(effect, {}), **values}
        super().set_param(name, merged)
        self._latency_check_due = True

    def prepare(self):
        self.reset()

    def reset(self):
        for stream in self.streams:
            stream.reset()
        self._latency_check_due = False

    def process(self, audio):
        out = np.concatenate([stream.process(audio[c:c + 1]) for c, stream in enumerate(self.streams)], axis=0)
        if self._latency_check_due:
            self._latency_check_due = False
            for stream in self.streams:
                stream.check_latency()
        return {"audio": out}
