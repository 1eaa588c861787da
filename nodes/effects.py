"""pedalboard effects: any built-in effect by name, or a hosted VST3 / Audio Unit plugin."""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pedalboard

from sfgraph.engine.buffers import Fifo
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
# Samples per plugin call. pedalboard re-prepares (and so clears) a plugin when a
# call is longer than its first call since a reset; every stream therefore opens
# with one call of this many samples of silence and never calls with more.
_CALL_SAMPLES = 512


def builtin_parameters(plugin: pedalboard.Plugin) -> list[str]:
    """The settable parameters of a built-in effect (its Python properties)."""
    return sorted(name for name, attr in vars(type(plugin)).items()
                  if isinstance(attr, property) and attr.fset is not None)


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
        self.sample_rate = float(inputs["audio"].rate)
        self.channels = inputs["audio"].channels
        self.plugin = self._load(context)
        self._apply(self.p.params or {})
        self.latency = self._measure_latency()
        return {"audio": inputs["audio"]}

    def _load(self, context) -> pedalboard.Plugin:
        name = self.p.plugin
        if name.endswith(_PLUGIN_SUFFIXES) or "/" in name:
            path = context.input_path(name)
            if not path.exists():
                raise ValueError(f"plugin file not found: {path}")
            try:
                plugin = pedalboard.load_plugin(str(path), plugin_name=self.p.plugin_name)
            except Exception as exc:  # pedalboard raises ImportError/RuntimeError/ValueError by platform
                raise ValueError(f"cannot load plugin {path}: {exc}") from None
            if self.p.state:
                self._load_state(plugin, context.input_path(self.p.state))
            return plugin
        cls = BUILTIN_EFFECTS.get(name)
        if cls is None:
            hint = difflib.get_close_matches(name, list(BUILTIN_EFFECTS), n=3)
            raise ValueError(f"unknown pedalboard effect '{name}'"
                             + (f"; did you mean {', '.join(hint)}?" if hint else
                                f"; built-in effects: {', '.join(sorted(BUILTIN_EFFECTS))}"))
        if self.p.state:
            raise ValueError("'state' applies to hosted plugins only; set a built-in effect with 'params'")
        return cls()

    @staticmethod
    def _load_state(plugin, path: Path) -> None:
        if not path.exists():
            raise ValueError(f"plugin state file not found: {path}")
        if path.suffix == ".vstpreset":
            plugin.load_preset(str(path))
        else:
            plugin.raw_state = path.read_bytes()

    def _parameter_names(self) -> list[str]:
        if isinstance(self.plugin, pedalboard.ExternalPlugin):
            # read-only parameters (e.g. a plugin's reported latency) are not automatable
            return sorted(name for name, parameter in self.plugin.parameters.items() if parameter.is_automatable)
        return builtin_parameters(self.plugin)

    def _apply(self, values: dict) -> None:
        names = self._parameter_names()
        for key, value in values.items():
            if key not in names:
                hint = difflib.get_close_matches(key, names, n=3)
                raise ParamError(f"{self.p.plugin} has no parameter '{key}'"
                                 + (f"; did you mean {', '.join(hint)}?" if hint else f"; it has {', '.join(names)}"))
            try:
                setattr(self.plugin, key, value)
            except (ValueError, TypeError) as exc:
                raise ParamError(f"{self.p.plugin} parameter '{key}' = {value!r}: {exc}") from None

    def set_param(self, name, value):
        """A ``params`` change updates the named plugin parameters, keeping the others."""
        if name == "params":
            value = {**(self.p.params or {}), **value}
        super().set_param(name, value)
        if name == "params":
            self._apply(value)
            self._latency_check_due = True

    def _call(self, audio: np.ndarray) -> np.ndarray:
        return self.plugin.process(audio, self.sample_rate, buffer_size=_CALL_SAMPLES, reset=False)

    def _measure_latency(self) -> int:
        """Samples by which streaming output lags input (0 for most effects)."""
        silence = np.zeros((self.channels, _CALL_SAMPLES), dtype=np.float32)
        # a hosted plugin reports its latency to pedalboard only once it has
        # processed audio; pedalboard applies it from the next reset
        self._call(silence)
        self.plugin.reset()
        produced, pushed = 0, 0
        while pushed < _LATENCY_PROBE_SECONDS * self.sample_rate:
            produced += self._call(silence).shape[-1]
            pushed += _CALL_SAMPLES
        self.plugin.reset()
        return pushed - produced

    def prepare(self):
        self.reset()

    def reset(self):
        """Clear the plugin, then open the stream with one call of silence (see
        ``_CALL_SAMPLES``). The plugin's answer to that silence is silence, so the
        stream starts as if from rest; effects with an LFO (chorus, phaser) start
        ``_CALL_SAMPLES`` samples into their cycle."""
        self.plugin.reset()
        opened = self._call(np.zeros((self.channels, _CALL_SAMPLES), dtype=np.float32)).shape[-1]
        self.pending = Fifo((self.channels,), capacity=max(4096, 2 * self.latency))
        # node output k is plugin output _CALL_SAMPLES + k; what the plugin still
        # holds of the opening silence stands in for the first outputs
        held = self.latency - _CALL_SAMPLES + opened
        if held < 0:
            raise RuntimeError(f"{self.p.plugin}: latency changed from {self.latency} samples while starting")
        self.pending.push_zeros(held)
        self._latency_check_due = False

    def process(self, audio):
        for start in range(0, audio.shape[-1], _CALL_SAMPLES):
            self.pending.push(self._call(audio[:, start:start + _CALL_SAMPLES]))
        if self._latency_check_due:
            self._latency_check_due = False
            reported = getattr(self.plugin, "reported_latency_samples", self.latency)
            if reported != self.latency:
                raise ValueError(f"{self.p.plugin}: a parameter change moved its latency from {self.latency} to "
                                 f"{reported} samples; set such parameters before the graph starts")
        return {"audio": self.pending.pop(min(len(self.pending), audio.shape[-1]))}
