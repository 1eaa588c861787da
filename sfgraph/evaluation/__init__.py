"""How good a separation or an F0 track is, and what to compare it with; above ``model``,
``data`` and ``f0``, which it uses and which never import it.

- ``scoring``: SI-SDR / SDR of separated voices against the stems, summaries, tables, reports.
- ``baselines``: reference separators (oracle masks, F0-informed NMF, voices fitted to the
  stems, the mixture).
- ``fit``: the voice model's parameters fitted to known stems (the ``fitted`` baseline).
- ``f0_scoring``: estimated F0s against the true ones (mir_eval).
"""
