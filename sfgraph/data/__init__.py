"""Choir data and evaluation: the dataset layout, the Bach generator, the CSD converter, metrics and baselines.

Modules (imported on demand, so ``import sfgraph.data`` stays light):

- ``layout``: the dataset layout (``load_dataset``, ``Item``, ``write_item``,
  F0 CSV reading/writing/resampling, ``DatasetError``).
- ``bach``: four-part Bach chorales rendered with fluidsynth (``generate_bach``).
- ``csd``: Choral Singing Dataset converter (``convert_csd``).
- ``evaluate``: SI-SDR / SDR scoring, summaries, tables and reports.
- ``baselines``: oracle masks, mixture floor, F0-informed NMF and voices fitted to the stems.
- ``cli``: the ``data``, ``eval`` and ``baseline`` commands (``add_commands``).
"""

from sfgraph.data.layout import DEFAULT_VOICES, Dataset, DatasetError, Item, load_dataset, load_item, write_item

__all__ = ["DEFAULT_VOICES", "Dataset", "DatasetError", "Item", "load_dataset", "load_item", "write_item"]
