"""Choir data: the dataset layout, the Bach generator, the CSD converter.

Modules (imported on demand, so ``import sfgraph.data`` stays light):

- ``layout``: the dataset layout (``load_dataset``, ``Item``, ``write_item``,
  F0 CSV reading/writing/resampling, ``DatasetError``).
- ``audio``: reading audio files, writing mono WAV.
- ``bach``: four-part Bach chorales rendered with fluidsynth (``generate_bach``).
- ``midi``: the Standard MIDI File writer the generator renders from.
- ``csd``: Choral Singing Dataset converter (``convert_csd``).

Scoring and baselines are in ``sfgraph.evaluation``, the commands in ``sfgraph.cli``.
"""
