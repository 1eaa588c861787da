"""Estimated F0s scored against a dataset's true F0 files (``sfgraph eval-f0``).

Estimates are folders ``ROOT/<item>/<voice>.csv`` (what ``sfgraph f0`` writes).
Per method it reports, with ``mir_eval``:

- **multi-pitch** (``mir_eval.multipitch``): all voices' pitches per frame as one
  set, against the true set: precision, recall, accuracy and chroma accuracy (a
  pitch counts within half a semitone);
- **per voice** (``mir_eval.melody``): each estimated voice against the same
  voice's truth: raw pitch accuracy (voiced truth frames whose estimate is within
  50 cents; this is the voice-assignment accuracy: a pitch given to the wrong
  voice counts as wrong), voicing recall and false alarm, overall accuracy.

Scores are means over items (frames weighted equally within an item); an item where a
voice never sings does not count for that voice.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sfgraph.data.layout import DatasetError, load_dataset, read_f0_csv, resample_f0
from sfgraph.grid import HOP_LENGTH, frame_times

MULTIPITCH_KEYS = ("Precision", "Recall", "Accuracy", "Chroma Accuracy")
VOICE_KEYS = ("Raw Pitch Accuracy", "Voicing Recall", "Voicing False Alarm", "Overall Accuracy")


def _frame_sets(f0: np.ndarray) -> list[np.ndarray]:
    """(V, frames) Hz → per frame, the array of sung pitches."""
    return [column[column > 0] for column in f0.T]


def score_item(times: np.ndarray, truth: np.ndarray, estimate: np.ndarray) -> dict:
    """``truth``, ``estimate``: (V, frames) Hz on ``times`` → {"multipitch": {...}, "voices": [{...}, ...]}."""
    import mir_eval

    multipitch = mir_eval.multipitch.evaluate(times, _frame_sets(truth), times, _frame_sets(estimate))
    voices = []
    for reference, estimated in zip(truth, estimate):
        if not (reference > 0).any():  # a voice that never sings here has no pitch to find: not scored
            voices.append({key: float("nan") for key in VOICE_KEYS})
            continue
        scores = mir_eval.melody.evaluate(times, reference, times, estimated)
        voices.append({key: float(scores[key]) for key in VOICE_KEYS})
    return {"multipitch": {key: float(multipitch[key]) for key in MULTIPITCH_KEYS}, "voices": voices}


def evaluate_f0(dataset_root: Path, methods: dict[str, Path]) -> dict:
    """{method: {"multipitch": means, "voices": {voice: means}, "items": n}} over the dataset."""
    dataset = load_dataset(dataset_root, use_stems=False)
    problems = [f"{root}: no such folder ({name})" for name, root in methods.items() if not root.is_dir()]
    problems += [f"{root / item.name / (voice + '.csv')}: missing ({name})"
                 for name, root in methods.items() if root.is_dir() for item in dataset for voice in dataset.voices
                 if not (root / item.name / f"{voice}.csv").exists()]
    if problems:
        raise DatasetError(problems, context="F0 estimates")
    results = {}
    for name, root in methods.items():
        per_item = []
        for item in dataset:
            truth = item.f0_on_frames()
            times = frame_times(item.num_samples, item.sample_rate, HOP_LENGTH)
            estimate = []
            for voice in dataset.voices:
                est_times, est_f0 = read_f0_csv(root / item.name / f"{voice}.csv")
                estimate.append(resample_f0(est_times, est_f0, times))
            per_item.append(score_item(times, truth, np.stack(estimate)))
        results[name] = {
            "items": len(per_item),
            "multipitch": {key: float(np.mean([s["multipitch"][key] for s in per_item])) for key in MULTIPITCH_KEYS},
            "voices": {voice: {key: float(np.nanmean([s["voices"][v][key] for s in per_item])) for key in VOICE_KEYS}
                       for v, voice in enumerate(dataset.voices)},
        }
    return results


def format_report(results: dict) -> str:
    lines = ["multi-pitch (mir_eval.multipitch), mean over items",
             f"{'method':14s}" + "".join(f"{key:>17s}" for key in MULTIPITCH_KEYS)]
    for name, result in results.items():
        lines.append(f"{name:14s}" + "".join(f"{result['multipitch'][key]:17.3f}" for key in MULTIPITCH_KEYS))
    for key in VOICE_KEYS:
        voices = list(next(iter(results.values()))["voices"])
        lines += ["", f"{key} per voice (mir_eval.melody)",
                  f"{'method':14s}" + "".join(f"{voice:>10s}" for voice in voices) + f"{'mean':>10s}"]
        for name, result in results.items():
            values = [result["voices"][voice][key] for voice in voices]
            lines.append(f"{name:14s}" + "".join(f"{value:10.3f}" for value in values) + f"{np.mean(values):10.3f}")
    return "\n".join(lines)
