"""Scoring separated voices against the ground-truth stems.

Estimates live in ``DIR/<item>/<voice>.wav`` (mono, as long as the item's stems).
An estimate at another sample rate (a live graph rendered at 48 kHz) is resampled to
the stems' rate first (``sfgraph.dsp.resample.resample``: linear phase, no delay), and
must last as long as they do to within one sample. Metrics come from ``fast_bss_eval.numpy``:

- SI-SDR (scale-invariant SDR, no mean removal), and
- SDR as in BSS Eval (a 512-tap distortion filter on the target reference).

Each estimate is scored against the stem of the voice it is named after:
the pairing is fixed, never permuted (``fast_bss_eval.sdr``/``si_sdr``
would search the best permutation, which hides swapped voices). Values are
clamped to +-100 dB so a perfect estimate stays finite.

Optionally items are cut into segments (e.g. 1 s, as in the published choir
separation results); segments where a voice's reference is more than
``silence_db`` below that voice's level over the whole item are skipped for
that voice, and a voice's item score is the median over its segments.
Summaries give the mean and the median over items, per voice and over all
voices.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sfgraph.atomic import write_text
from sfgraph.data.audio import read_mono
from sfgraph.data.layout import Dataset, DatasetError, check_voice_wav
from sfgraph.dsp.resample import resample

CLAMP_DB = 100.0
SDR_FILTER_LENGTH = 512
DEFAULT_SILENCE_DB = -40.0
# Method names become file names (boxplot_<method>.png).
_METHOD_NAME = re.compile(r"[A-Za-z0-9._-]+")


def si_sdr_db(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """SI-SDR in dB of each estimate against the reference at the same index.

    ``reference``, ``estimate``: ``(..., n_voices, n_samples)``. Returns ``(..., n_voices)``.
    """
    from fast_bss_eval.numpy import si_sdr_loss

    return -si_sdr_loss(
        np.asarray(estimate, np.float64), np.asarray(reference, np.float64), clamp_db=CLAMP_DB, pairwise=False
    )


def sdr_db(reference: np.ndarray, estimate: np.ndarray, filter_length: int = SDR_FILTER_LENGTH) -> np.ndarray:
    """BSS Eval SDR in dB (``filter_length``-tap distortion filter), same shapes as ``si_sdr_db``."""
    from fast_bss_eval.numpy import sdr_loss

    # fast_bss_eval 0.1.4's non-pairwise SDR calls np.linalg.solve with a
    # batched vector, which NumPy 2 rejects; the pairwise form solves the same
    # per-reference systems, and its diagonal is the fixed pairing.
    pairwise = sdr_loss(
        np.asarray(estimate, np.float64),
        np.asarray(reference, np.float64),
        filter_length=filter_length,
        clamp_db=CLAMP_DB,
        pairwise=True,
    )  # (..., n_ref, n_est)
    return -np.diagonal(pairwise, axis1=-2, axis2=-1)


@dataclass(frozen=True)
class ScoreRow:
    """One score: a voice of an item by a method, over the whole item (``segment`` -1) or one segment."""

    method: str
    item: str
    voice: str
    segment: int
    start_s: float
    end_s: float
    si_sdr_db: float
    sdr_db: float


def score_voices(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    segment_seconds: float | None = None,
    silence_db: float = DEFAULT_SILENCE_DB,
) -> list[tuple[int, float, float, np.ndarray, np.ndarray]]:
    """Score ``(n_voices, n_samples)`` estimates against references.

    Returns ``[(segment, start_s, end_s, si_sdr (n_voices,), sdr (n_voices,)), ...]``:
    one entry with segment -1 for the whole signal, or one per full segment of
    ``segment_seconds``. A voice whose reference is silent (all zero, or with
    segments more than ``silence_db`` below its whole-signal level) scores NaN there.
    """
    n_voices, n_samples = reference.shape
    length = n_samples if segment_seconds is None else int(round(segment_seconds * sample_rate))
    n_segments = n_samples // length
    if n_segments == 0:
        return []
    cut = n_segments * length
    segments_ref = (
        reference[:, :cut].reshape(n_voices, n_segments, length).transpose(1, 0, 2)
    )  # (n_segments, n_voices, length)
    segments_est = estimate[:, :cut].reshape(n_voices, n_segments, length).transpose(1, 0, 2)
    level = np.mean(np.square(reference, dtype=np.float64), axis=1)  # (n_voices,)
    segment_level = np.mean(np.square(segments_ref, dtype=np.float64), axis=2)  # (n_segments, n_voices)
    audible = (segment_level > 0) & (segment_level > level[None] * 10.0 ** (silence_db / 10.0))
    # Each (segment, voice) pair is scored on its own (the metrics only use the
    # target's reference), so silent references never enter the solver.
    si = np.full((n_segments, n_voices), np.nan)
    sdr = np.full((n_segments, n_voices), np.nan)
    if audible.any():
        chosen_ref = segments_ref[audible][:, None, :]  # (n_audible, 1, length)
        chosen_est = segments_est[audible][:, None, :]
        si[audible] = si_sdr_db(chosen_ref, chosen_est)[:, 0]
        sdr[audible] = sdr_db(chosen_ref, chosen_est)[:, 0]
    if segment_seconds is None:
        return [(-1, 0.0, n_samples / sample_rate, si[0], sdr[0])]
    return [
        (index, index * length / sample_rate, (index + 1) * length / sample_rate, si[index], sdr[index])
        for index in range(n_segments)
    ]


def parse_estimates(specs: Sequence[str]) -> dict[str, Path]:
    """``['name=DIR', 'DIR2']`` to ``{name: DIR, basename(DIR2): DIR2}``; names must be unique."""
    methods: dict[str, Path] = {}
    for spec in specs:
        name, separator, directory = spec.partition("=")
        if not separator:
            directory = spec
            name = Path(spec).resolve().name
        if not directory or not _METHOD_NAME.fullmatch(name):
            raise ValueError(
                f"--estimates {spec!r}: expected NAME=DIR or DIR, NAME made of letters, digits, '.', '_', '-'"
            )
        if name in methods:
            raise ValueError(f"--estimates: method name {name!r} used twice (name them with NAME=DIR)")
        methods[name] = Path(directory)
    return methods


def check_estimates(dataset: Dataset, methods: Mapping[str, Path]) -> None:
    """Check that every estimate exists and matches its stem (mono, rate, length); raise ``DatasetError`` if not."""
    problems: list[str] = []
    for name, directory in methods.items():
        if not Path(directory).is_dir():
            problems.append(f"{directory}: estimates folder of {name!r} not found")
            continue
        for item in dataset:
            for voice in item.voices:
                path = Path(directory) / item.name / f"{voice}.wav"
                if not path.is_file():
                    problems.append(f"{path}: missing")
                    continue
                problems += check_voice_wav(path, item.sample_rate, item.num_samples, "the item's stems",
                                            any_rate=True)
    if problems:
        raise DatasetError(problems, context="estimates")


def _read_estimate(path: Path, sample_rate: int, num_samples: int) -> np.ndarray:
    """An estimate (num_samples,) at ``sample_rate``, resampled if it was written at another rate."""
    audio, rate = read_mono(path)
    if rate != sample_rate:
        audio = resample(audio, rate, sample_rate)
    return np.pad(audio[:num_samples], (0, max(0, num_samples - audio.size)))


def evaluate(
    dataset: Dataset,
    methods: Mapping[str, Path],
    segment_seconds: float | None = None,
    silence_db: float = DEFAULT_SILENCE_DB,
    progress: bool = True,
) -> list[ScoreRow]:
    """Score every method's estimates of every item and voice.

    ``methods``: ``{name: estimates folder}``. The dataset must have stems.
    Raises ``DatasetError`` (listing all problems) before scoring anything if
    an estimate is missing or does not match its stem.
    """
    from tqdm import tqdm

    missing_stems = [
        f"{item.path / 'stems'}: missing (evaluation needs ground truth)" for item in dataset if not item.has_stems
    ]
    if missing_stems:
        raise DatasetError(missing_stems, context=f"dataset {dataset.root}")
    check_estimates(dataset, methods)
    rows: list[ScoreRow] = []
    for item in tqdm(dataset.items, desc="scoring", unit="item", disable=not progress):
        reference = item.load_stems()
        for name, directory in methods.items():
            estimate = np.stack([_read_estimate(Path(directory) / item.name / f"{voice}.wav", item.sample_rate,
                                                item.num_samples) for voice in item.voices])
            for segment, start, end, si, sdr in score_voices(
                reference, estimate, item.sample_rate, segment_seconds, silence_db
            ):
                for index, voice in enumerate(item.voices):
                    rows.append(
                        ScoreRow(name, item.name, voice, segment, start, end, float(si[index]), float(sdr[index]))
                    )
    return rows


def item_scores(rows: Sequence[ScoreRow]) -> dict[tuple[str, str, str], tuple[float, float]]:
    """``{(method, item, voice): (si_sdr_db, sdr_db)}``: whole-item score, or median over scored segments (or NaN)."""
    grouped: dict[tuple[str, str, str], list[ScoreRow]] = {}
    for row in rows:
        grouped.setdefault((row.method, row.item, row.voice), []).append(row)
    scores = {}
    for key, group in grouped.items():
        si = np.array([row.si_sdr_db for row in group])
        sdr = np.array([row.sdr_db for row in group])
        scored = ~np.isnan(si)
        scores[key] = (
            (float(np.median(si[scored])), float(np.median(sdr[scored])))
            if scored.any()
            else (float("nan"), float("nan"))
        )
    return scores


def _stats(values: list[float]) -> dict[str, float]:
    finite = np.array([value for value in values if not np.isnan(value)])
    if finite.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "count": 0}
    return {"mean": float(finite.mean()), "median": float(np.median(finite)), "count": int(finite.size)}


def summarize(rows: Sequence[ScoreRow]) -> dict:
    """Mean and median over items of each method, per voice and over all voices, and each item's mean over voices.

    Returns ``{method: {"voices": {voice|"all": {"si_sdr": stats, "sdr": stats}},
    "items": {item: {"si_sdr": mean, "sdr": mean}}}}`` with stats
    ``{"mean", "median", "count"}`` in dB.
    """
    scores = item_scores(rows)
    summary: dict = {}
    for (method, item, voice), (si, sdr) in scores.items():
        entry = summary.setdefault(method, {"voices": {}, "items": {}})
        for key in (voice, "all"):
            bucket = entry["voices"].setdefault(key, {"si_sdr": [], "sdr": []})
            bucket["si_sdr"].append(si)
            bucket["sdr"].append(sdr)
        item_bucket = entry["items"].setdefault(item, {"si_sdr": [], "sdr": []})
        item_bucket["si_sdr"].append(si)
        item_bucket["sdr"].append(sdr)
    for entry in summary.values():
        entry["voices"] = {
            voice: {metric: _stats(values) for metric, values in bucket.items()}
            for voice, bucket in entry["voices"].items()
        }
        entry["items"] = {
            item: {metric: _stats(values)["mean"] for metric, values in bucket.items()}
            for item, bucket in entry["items"].items()
        }
    return summary


def _ordered_voices(summary: dict) -> list[str]:
    from sfgraph.grid import voice_order

    voices = {voice for entry in summary.values() for voice in entry["voices"] if voice != "all"}
    return list(voice_order(sorted(voices))) + ["all"]


def format_tables(summary: dict) -> str:
    """Terminal tables: per metric methods x voices (mean / median over items), then items x methods (voice mean)."""
    methods = list(summary)
    voices = _ordered_voices(summary)
    name_width = max([len("method")] + [len(method) for method in methods])
    lines = []
    items = sorted({item for method in methods for item in summary[method]["items"]})
    for metric, title in (("si_sdr", "SI-SDR"), ("sdr", "SDR")):
        lines.append(f"{title} (dB): mean / median over {len(items)} items")
        lines.append("  ".join([f"{'method':<{name_width}}"] + [f"{voice:>15}" for voice in voices]))
        for method in methods:
            cells = []
            for voice in voices:
                stats = summary[method]["voices"].get(voice, {}).get(metric)
                cells.append(f"{stats['mean']:7.2f} /{stats['median']:6.2f}" if stats else f"{'-':>15}")
            lines.append("  ".join([f"{method:<{name_width}}"] + cells))
        lines.append("")
    item_width = max([len("item")] + [len(item) for item in items])
    lines.append("SI-SDR (dB) per item, mean over voices")
    lines.append("  ".join([f"{'item':<{item_width}}"] + [f"{method:>{max(8, len(method))}}" for method in methods]))
    for item in items:
        cells = [
            f"{summary[method]['items'].get(item, {}).get('si_sdr', float('nan')):>{max(8, len(method))}.2f}"
            for method in methods
        ]
        lines.append("  ".join([f"{item:<{item_width}}"] + cells))
    return "\n".join(lines)


def _csv_text(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_reports(rows: Sequence[ScoreRow], summary: dict, out_dir: Path) -> list[Path]:
    """Write ``scores.csv`` (every score row), ``summary.csv``, ``summary.json`` and ``boxplot_<method>.png``.

    Returns the written paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "scores.csv", out_dir / "summary.csv", out_dir / "summary.json"]
    header = list(ScoreRow.__dataclass_fields__)
    write_text(paths[0], _csv_text(header, [list(asdict(row).values()) for row in rows]))
    summary_rows = []
    for method, entry in summary.items():
        for voice in _ordered_voices(summary):
            stats = entry["voices"].get(voice)
            if stats:
                summary_rows.append(
                    [
                        method,
                        voice,
                        stats["si_sdr"]["mean"],
                        stats["si_sdr"]["median"],
                        stats["sdr"]["mean"],
                        stats["sdr"]["median"],
                        stats["si_sdr"]["count"],
                    ]
                )
    write_text(
        paths[1],
        _csv_text(
            ["method", "voice", "si_sdr_mean_db", "si_sdr_median_db", "sdr_mean_db", "sdr_median_db", "count"],
            summary_rows,
        ),
    )
    write_text(paths[2], json.dumps(summary, indent=2, allow_nan=True) + "\n")
    paths.extend(_box_plots(rows, summary, out_dir))
    return paths


def _box_plots(rows: Sequence[ScoreRow], summary: dict, out_dir: Path) -> list[Path]:
    """One PNG per method: SI-SDR over items, one box per voice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = item_scores(rows)
    voices = _ordered_voices(summary)[:-1]
    paths = []
    for method in summary:
        data = [
            [
                si
                for (name, _, voice), (si, _) in scores.items()
                if name == method and voice == wanted and not np.isnan(si)
            ]
            for wanted in voices
        ]
        figure, axes = plt.subplots(figsize=(1.6 * len(voices) + 2, 4))
        axes.boxplot(data, showmeans=True)
        axes.set_xticks(range(1, len(voices) + 1), voices)
        axes.set_ylabel("SI-SDR (dB)")
        axes.set_title(f"{method}: SI-SDR per voice over items")
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        path = out_dir / f"boxplot_{method}.png"
        temp = out_dir / f".boxplot_{method}.tmp.png"
        figure.savefig(temp, dpi=100)
        plt.close(figure)
        temp.replace(path)
        paths.append(path)
    return paths
