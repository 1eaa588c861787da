"""F0 for every voice of an ensemble, as ``f0`` streams (voices, frames) Hz, 0 = unvoiced.

- ``crepe``: per-voice tracking of close-miked or separate voices with CREPE (torchcrepe's
  networks), streaming; the one place that handles torchcrepe's torchaudio import.
- ``score``: a MIDI file or MusicXML score, one part or track per voice → F0 per frame.
- ``align``: aligns a score to a recording (DTW on chroma of a harmonic rendering).
- ``midi_live``: notes played on a live MIDI input → F0 per voice.
- ``multif0``: every voice's F0 from the mixture alone (salience network + voice tracker);
  ``multif0_train`` trains its network (supervised, on generated data).
- ``refine``: F0 tracks refined against each voice's own audio (a first separation): the
  pitch its partials' peaks show.
- ``unison``: silences a voice that leaps onto another's pitch (a voice the tracker lost).
- ``recording``: reads the recordings the trackers take (one file, or a file per voice).
- ``plot``: draws F0 tracks over a recording's spectrogram.

Their scores are in ``sfgraph.evaluation.f0_scoring``, the commands in ``sfgraph.cli.f0``.

The nodes ``f0_crepe``, ``f0_score``, ``f0_multi``, ``f0_midi`` and ``f0_refine`` (``nodes/f0.py``) wrap these.
"""

MULTIF0_MODEL = "sfgraph:models/multif0"  # the bundled multi-F0 salience model
UNISON_LEAP_CENTS = 250.0  # default of sfgraph.f0.unison's leap into a unison that silences a voice
