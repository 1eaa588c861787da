"""Pure DSP (no graph knowledge); import the modules directly, this package imports nothing.

* :mod:`sfgraph.dsp.voice_config` -- ``VoiceConfig`` and tables shared by both synthesizers.
* :mod:`sfgraph.dsp.voice_controls` -- ``VoiceControls``, what both synthesizers take besides F0.
* :mod:`sfgraph.dsp.lsf` -- LSF increments -> LSF -> LPC (Numba), :mod:`sfgraph.dsp.lsf_torch` the same in torch.
* :mod:`sfgraph.dsp.voice_torch` -- differentiable batched voice synthesizer.
* :mod:`sfgraph.dsp.voice_numba` -- streaming real-time voice synthesizer.
"""
