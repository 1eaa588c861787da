"""The sfgraph dataset layout: loading, validation and writing.

A dataset is a folder of items; an item is a folder with::

    mix.wav              mono mixture
    f0/<voice>.csv       header ``time_s,f0_hz``; one row per frame; 0 Hz = unvoiced or silent
    stems/<voice>.wav    (optional) mono ground-truth voice, same rate and length as mix.wav
    meta.json            (optional) a JSON object; its ``voices`` list, if any, fixes the voice order

Voices are named by their files; ``soprano, alto, tenor, bass`` come first in
that order, any other names follow alphabetically (unless ``meta.json`` says
otherwise). Items may use any number of voices.

The project's own data uses 16 kHz audio and F0 frames every 256 samples
(frame ``t`` at ``t * 256 / 16000`` s, ``1 + n_samples // 256`` frames), but the
loader accepts any sample rate and any uniform or non-uniform F0 time grid;
``Item.f0_on_frames`` resamples F0 onto the frame grid a consumer needs.

Loading never skips anything silently: every problem of every item is
collected and raised together as one ``DatasetError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sfgraph.atomic import write_text
from sfgraph.data.audio import audio_info, read_mono, write_wav
from sfgraph.grid import DEFAULT_VOICES, HOP_LENGTH, SAMPLE_RATE, frame_times, voice_order

F0_HEADER = "time_s,f0_hz"

# Two F0 tracks whose times differ by less than this are the same grid.
_TIME_TOLERANCE_S = 1e-4
# How many row numbers a problem message quotes before summarising the rest.
_ROWS_QUOTED = 5


class DatasetError(Exception):
    """Invalid dataset or item; ``problems`` lists every problem found, each naming its file."""

    def __init__(self, problems: Sequence[str], context: str = "dataset"):
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in {context}:\n{lines}")


def _quote_rows(rows: Sequence[int]) -> str:
    shown = ", ".join(str(row) for row in rows[:_ROWS_QUOTED])
    extra = len(rows) - _ROWS_QUOTED
    return f"row {shown}" if len(rows) == 1 else f"rows {shown}" + (f" (and {extra} more)" if extra > 0 else "")


def _parse_f0_csv(path: Path) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """Parse an F0 CSV; returns ``(times, f0, problems)``, arrays ``None`` if unusable.

    Row numbers in messages are file line numbers (the header is line 1).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        return None, None, [f"{path}: cannot read ({error})"]
    problems: list[str] = []
    header = lines[0].strip().replace(" ", "") if lines else ""
    if header != F0_HEADER:
        problems.append(
            f"{path}: header is {lines[0].strip()!r}, expected {F0_HEADER!r}" if lines else f"{path}: empty file"
        )
    bad_rows: list[int] = []
    values: list[tuple[float, float]] = []
    line_numbers: list[int] = []
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        try:
            if len(fields) != 2:
                raise ValueError
            values.append((float(fields[0]), float(fields[1])))
            line_numbers.append(line_number)
        except ValueError:
            bad_rows.append(line_number)
    if bad_rows:
        problems.append(f"{path}: {_quote_rows(bad_rows)}: not two numbers 'time_s,f0_hz'")
    if not values:
        if lines:
            problems.append(f"{path}: no F0 rows")
        return None, None, problems
    table = np.array(values, dtype=np.float64)
    numbers = np.array(line_numbers)
    times, f0 = table[:, 0], table[:, 1]
    checks = (
        (~np.isfinite(times), "time is NaN or infinite"),
        (times < 0, "time is negative"),
        (np.isnan(f0), "f0 is NaN (write 0 for unvoiced frames)"),
        (np.isinf(f0), "f0 is infinite"),
        (f0 < 0, "f0 is negative (write 0 for unvoiced frames)"),
    )
    for mask, message in checks:
        if mask.any():
            problems.append(f"{path}: {_quote_rows(numbers[mask].tolist())}: {message}")
    not_increasing = np.flatnonzero(~(np.diff(times) > 0)) + 1
    if not_increasing.size:
        problems.append(
            f"{path}: {_quote_rows(numbers[not_increasing].tolist())}: "
            "time does not increase (times must be strictly monotonic)"
        )
    return times, f0, problems


def read_f0_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``f0/<voice>.csv``: ``(times (n_frames,) s, f0 (n_frames,) Hz)``; raises ``DatasetError``."""
    times, f0, problems = _parse_f0_csv(Path(path))
    if problems or times is None or f0 is None:
        raise DatasetError(problems, context=str(path))
    return times, f0


# F0s a singer can sing (a low bass's 30 Hz to a high soprano's 2 kHz, with room):
# voiced values outside it are most likely a mistake (kHz for Hz, a period for F0 ...).
SUNG_F0_HZ = (25.0, 3000.0)


def f0_doubts(path: Path, times: np.ndarray, f0_hz: np.ndarray) -> list[str]:
    """Reasons to doubt a valid F0 track (one line each, naming ``path``): no voiced frame
    at all, or voiced values outside ``SUNG_F0_HZ``."""
    voiced = f0_hz > 0
    if not voiced.any():
        return [f"{path}: no voiced frame (0 Hz throughout): this voice gets nothing"]
    low, high = SUNG_F0_HZ
    outside = np.flatnonzero(voiced & ((f0_hz < low) | (f0_hz > high)))
    if not outside.size:
        return []
    first = outside[0]
    return [f"{path}: {outside.size} voiced frame(s) outside {low:g}-{high:g} Hz, the range of singing "
            f"(first {f0_hz[first]:g} Hz at {times[first]:.2f} s)"]


def f0_csv_text(times: np.ndarray, f0_hz: np.ndarray) -> str:
    """One voice's F0 track as the text of an F0 file; ``times`` and ``f0_hz`` of shape ``(n_frames,)``."""
    times = np.asarray(times, dtype=np.float64)
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    if times.shape != f0_hz.shape or times.ndim != 1:
        raise ValueError(f"times {times.shape} and f0 {f0_hz.shape} must be equal 1-D shapes")
    rows = "\n".join(f"{time:.6f},{value:.4f}" for time, value in zip(times, f0_hz, strict=True))
    return f"{F0_HEADER}\n{rows}\n"


def write_f0_csv(path: Path, times: np.ndarray, f0_hz: np.ndarray) -> None:
    """Write one voice's F0 track atomically; ``times`` and ``f0_hz`` of shape ``(n_frames,)``."""
    try:
        text = f0_csv_text(times, f0_hz)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    write_text(path, text)


def resample_f0(times: np.ndarray, f0_hz: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Resample F0 tracks onto new frame times.

    ``times``: ``(n_frames,)`` s, increasing; ``f0_hz``: ``(..., n_frames)`` Hz
    with 0 = unvoiced; ``new_times``: ``(n_new,)`` s. Returns ``(..., n_new)``.
    Voicing follows the nearest original frame (unvoiced more than one frame
    period outside the original span); voiced values are interpolated
    linearly in log-frequency between voiced neighbours, else copied from
    the nearest frame.
    """
    times = np.asarray(times, dtype=np.float64)
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    new_times = np.asarray(new_times, dtype=np.float64)
    if times.size == 1:
        # One frame: it holds for one default frame period around its time.
        inside = np.abs(new_times - times[0]) <= HOP_LENGTH / SAMPLE_RATE
        return np.where(inside, f0_hz[..., :1], 0.0)
    right = np.clip(np.searchsorted(times, new_times), 1, times.size - 1)
    left = right - 1
    weight = np.clip((new_times - times[left]) / (times[right] - times[left]), 0.0, 1.0)
    nearest = np.where(weight < 0.5, left, right)
    f0_left, f0_right, f0_nearest = f0_hz[..., left], f0_hz[..., right], f0_hz[..., nearest]
    both_voiced = (f0_left > 0) & (f0_right > 0)
    log_left = np.log2(np.where(both_voiced, f0_left, 1.0))
    log_right = np.log2(np.where(both_voiced, f0_right, 1.0))
    resampled = np.where(both_voiced, np.exp2((1 - weight) * log_left + weight * log_right), f0_nearest)
    period = float(np.median(np.diff(times)))
    inside = (new_times >= times[0] - period) & (new_times <= times[-1] + period)
    return np.where((f0_nearest > 0) & inside, resampled, 0.0)


@dataclass(frozen=True)
class Item:
    """One validated item. Audio is read lazily; F0 is held in memory.

    ``f0_times``: ``(n_frames,)`` s; ``f0_hz``: ``(n_voices, n_frames)`` Hz in
    ``voices`` order, 0 = unvoiced.
    """

    name: str
    path: Path
    voices: tuple[str, ...]
    sample_rate: int
    num_samples: int
    f0_times: np.ndarray
    f0_hz: np.ndarray
    has_stems: bool
    meta: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate

    def mix_path(self) -> Path:
        return self.path / "mix.wav"

    def stem_path(self, voice: str) -> Path:
        return self.path / "stems" / f"{voice}.wav"

    def load_mix(self) -> np.ndarray:
        """The mixture, ``(num_samples,)`` float32."""
        return read_mono(self.mix_path())[0]

    def load_stems(self) -> np.ndarray:
        """The ground-truth voices, ``(n_voices, num_samples)`` float32 in ``voices`` order."""
        if not self.has_stems:
            raise DatasetError(
                [f"{self.path}: no stems/ folder (this item has no ground truth)"], context=f"item {self.name}"
            )
        return np.stack([read_mono(self.stem_path(voice))[0] for voice in self.voices])

    def f0_on_frames(self, hop_length: int = HOP_LENGTH) -> np.ndarray:
        """F0 on the frame grid ``t * hop_length / sample_rate``, ``t = 0 .. num_samples // hop_length``.

        Returns ``(n_voices, 1 + num_samples // hop_length)`` Hz (0 = unvoiced).
        """
        grid = frame_times(self.num_samples, self.sample_rate, hop_length)
        if grid.size == self.f0_times.size and np.allclose(grid, self.f0_times, atol=_TIME_TOLERANCE_S, rtol=0):
            return self.f0_hz.copy()
        return resample_f0(self.f0_times, self.f0_hz, grid)


@dataclass(frozen=True)
class Dataset:
    """A validated dataset: items sorted by name."""

    root: Path
    items: tuple[Item, ...]

    @property
    def voices(self) -> tuple[str, ...]:
        """All voice names used by any item, in voice order."""
        return voice_order(sorted({voice for item in self.items for voice in item.voices}))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __getitem__(self, key: int | str) -> Item:
        if isinstance(key, str):
            for item in self.items:
                if item.name == key:
                    return item
            raise KeyError(f"no item named {key!r} in {self.root}")
        return self.items[key]


def _read_meta(path: Path, problems: list[str]) -> dict:
    meta_path = path / "meta.json"
    if not meta_path.exists():
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problems.append(f"{meta_path}: not valid JSON ({error})")
        return {}
    if not isinstance(meta, dict):
        problems.append(f"{meta_path}: must hold a JSON object")
        return {}
    return meta


def check_voice_wav(path: Path, sample_rate: int | None, num_samples: int | None, reference: str,
                    any_rate: bool = False) -> list[str]:
    """Problems of one voice's wav (a stem or an estimate): unreadable, not mono, or a
    sample rate or length other than ``reference``'s (None: not checked). ``any_rate``:
    another rate is no problem if the file lasts as long, to within one sample at
    ``sample_rate`` (it will be resampled)."""
    try:
        rate, channels, length = audio_info(path)
    except (OSError, RuntimeError, ValueError) as error:
        return [f"{path}: cannot read audio ({error})"]
    problems = []
    if channels != 1:
        problems.append(f"{path}: has {channels} channels, expected mono")
    if any_rate and sample_rate is not None and rate != sample_rate:
        if num_samples is not None and abs(length * sample_rate / rate - num_samples) > 1:
            problems.append(f"{path}: {length / rate:.4f} s at {rate} Hz, {reference} last "
                            f"{num_samples / sample_rate:.4f} s")
        return problems
    if sample_rate is not None and rate != sample_rate:
        problems.append(f"{path}: sample rate {rate} Hz differs from {reference} ({sample_rate} Hz)")
    if num_samples is not None and length != num_samples:
        problems.append(f"{path}: {length} samples, {reference} has {num_samples}")
    return problems


def _inspect_item(
    path: Path, voices: Sequence[str] | None, require_stems: bool, sample_rate: int | None, use_stems: bool
) -> tuple[Item | None, list[str]]:
    """Validate one item folder; returns ``(item or None, problems)``."""
    problems: list[str] = []
    meta = _read_meta(path, problems)

    mix_rate = mix_length = None
    mix_path = path / "mix.wav"
    if not mix_path.is_file():
        problems.append(f"{mix_path}: missing")
    else:
        try:
            mix_rate, channels, mix_length = audio_info(mix_path)
            if channels != 1:
                problems.append(f"{mix_path}: has {channels} channels, expected mono")
            if sample_rate is not None and mix_rate != sample_rate:
                problems.append(f"{mix_path}: sample rate {mix_rate} Hz, expected {sample_rate} Hz")
        except (OSError, RuntimeError, ValueError) as error:
            problems.append(f"{mix_path}: cannot read audio ({error})")
            mix_rate = mix_length = None

    f0_dir = path / "f0"
    found: list[str] = []
    if not f0_dir.is_dir():
        problems.append(f"{f0_dir}: missing folder (one <voice>.csv per voice)")
    else:
        for entry in sorted(f0_dir.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.suffix == ".csv" and entry.is_file():
                found.append(entry.stem)
            else:
                problems.append(f"{entry}: unexpected entry (F0 files are f0/<voice>.csv)")
        if not found:
            problems.append(f"{f0_dir}: no <voice>.csv files")

    meta_voices = meta.get("voices")
    if meta_voices is not None and (
        not isinstance(meta_voices, list) or sorted(map(str, meta_voices)) != sorted(found)
    ):
        problems.append(
            f"{path / 'meta.json'}: 'voices' {meta_voices} does not match the F0 files {voice_order(found)}"
        )
        meta_voices = None
    if voices is not None:
        for voice in voices:
            if voice not in found:
                problems.append(f"{f0_dir / (voice + '.csv')}: missing (voice {voice!r} was requested)")
        item_voices = tuple(voice for voice in voices if voice in found)
    elif meta_voices is not None:
        item_voices = tuple(meta_voices)
    else:
        item_voices = voice_order(found)

    tracks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for voice in item_voices:
        times, f0, f0_problems = _parse_f0_csv(f0_dir / f"{voice}.csv")
        problems.extend(f0_problems)
        if times is not None and f0 is not None and not f0_problems:
            tracks[voice] = (times, f0)
    reference_voice = next(iter(tracks), None)
    for voice, (times, _) in tracks.items():
        f0_path = f0_dir / f"{voice}.csv"
        reference_times = tracks[reference_voice][0]  # the first voice's grid; the others must equal it
        if voice != reference_voice and (
            times.size != reference_times.size
            or not np.allclose(times, reference_times, atol=_TIME_TOLERANCE_S, rtol=0)
        ):
            problems.append(
                f"{f0_path}: times differ from {f0_dir / (reference_voice + '.csv')} "
                "(all voices of an item share one time grid)"
            )
        if mix_rate and mix_length is not None:
            duration = mix_length / mix_rate
            period = float(np.median(np.diff(times))) if times.size > 1 else HOP_LENGTH / SAMPLE_RATE
            first, last = float(times[0]), float(times[-1])
            if first > 2 * period or last > duration + 2 * period or last < duration - 2 * period:
                problems.append(
                    f"{f0_path}: covers {first:.3f}-{last:.3f} s but {mix_path.name} lasts {duration:.3f} s "
                    "(length mismatch)"
                )

    stems_dir = path / "stems"
    has_stems = use_stems and stems_dir.is_dir()
    if require_stems and not has_stems:
        problems.append(f"{stems_dir}: missing folder (ground truth is required here)")
    if has_stems:
        for entry in sorted(stems_dir.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.suffix != ".wav" or not entry.is_file():
                problems.append(f"{entry}: unexpected entry (stems are stems/<voice>.wav)")
            elif entry.stem not in found:
                problems.append(f"{entry}: no matching {f0_dir / (entry.stem + '.csv')}")
        for voice in item_voices:
            stem_path = stems_dir / f"{voice}.wav"
            if not stem_path.is_file():
                problems.append(f"{stem_path}: missing (every voice needs a stem when stems/ exists)")
                continue
            problems += check_voice_wav(stem_path, mix_rate, mix_length, "mix.wav")

    if problems or mix_rate is None or mix_length is None:
        return None, problems
    item = Item(
        name=path.name,
        path=path,
        voices=item_voices,
        sample_rate=mix_rate,
        num_samples=mix_length,
        f0_times=tracks[item_voices[0]][0],
        f0_hz=np.stack([tracks[voice][1] for voice in item_voices]),
        has_stems=has_stems,
        meta=meta,
    )
    return item, problems


def load_item(
    path: Path,
    voices: Sequence[str] | None = None,
    require_stems: bool = False,
    sample_rate: int | None = None,
    use_stems: bool = True,
) -> Item:
    """Validate and load one item folder; raises ``DatasetError`` listing all its problems.

    ``voices``: load only these voices (each must exist); default all.
    ``require_stems``: every voice must have a stem. ``sample_rate``: if
    given, audio must have this rate. ``use_stems`` False ignores ``stems/``
    altogether (not validated, ``has_stems`` False), for uses without ground truth.
    """
    if require_stems and not use_stems:
        raise ValueError("require_stems and use_stems=False contradict each other")
    item, problems = _inspect_item(Path(path), voices, require_stems, sample_rate, use_stems)
    if item is None:
        raise DatasetError(problems, context=f"item {path}")
    return item


def load_dataset(
    root: Path,
    voices: Sequence[str] | None = None,
    require_stems: bool = False,
    sample_rate: int | None = None,
    use_stems: bool = True,
) -> Dataset:
    """Validate and load every item (every non-hidden sub-folder) of a dataset.

    All items must have the same voices (``voices`` selects a subset that
    each must have). The other arguments are those of ``load_item``. Raises
    one ``DatasetError`` listing the problems of all items. Files at the top
    level (README, generation.json ...) are not items and are ignored.
    """
    if require_stems and not use_stems:
        raise ValueError("require_stems and use_stems=False contradict each other")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError([f"{root}: not a folder"], context=f"dataset {root}")
    problems: list[str] = []
    items: list[Item] = []
    folders = sorted(entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if not folders:
        problems.append(f"{root}: no item folders")
    for folder in folders:
        item, item_problems = _inspect_item(folder, voices, require_stems, sample_rate, use_stems)
        problems.extend(item_problems)
        if item is not None:
            items.append(item)
    # The items of a dataset share their voices: a voice that some items lack
    # is most likely a forgotten F0 file (pass ``voices`` to load a subset).
    every_voice = {voice for item in items for voice in item.voices}
    for item in items:
        for voice in voice_order(sorted(every_voice - set(item.voices))):
            problems.append(f"{item.path / 'f0' / (voice + '.csv')}: missing (other items have voice {voice!r})")
    if problems:
        raise DatasetError(problems, context=f"dataset {root}")
    return Dataset(root=root, items=tuple(items))


def load_training_dataset(
    root: Path, validation_items: int = 1, require_stems: bool = False, use_stems: bool = False
) -> Dataset:
    """A dataset that ``sfgraph train`` accepts (``data check`` applies the same rules):
    valid, every item at ``SAMPLE_RATE`` with F0 for every voice, and more items than
    ``validation_items`` (held out). Raises ``DatasetError``. Stems are neither needed
    nor read unless ``use_stems`` or ``require_stems``."""
    dataset = load_dataset(
        root, require_stems=require_stems, sample_rate=SAMPLE_RATE, use_stems=use_stems or require_stems
    )
    voices = dataset.voices
    incomplete = [item.name for item in dataset if item.voices != voices]
    if incomplete:
        raise DatasetError(
            [f"every item needs F0 for all voices {', '.join(voices)}; not: {', '.join(incomplete)}"], context=str(root)
        )
    if len(dataset) <= validation_items:
        raise DatasetError(
            [
                f"{len(dataset)} item(s); training needs more than the {validation_items} held "
                "out for validation (--validation-items)"
            ],
            context=str(root),
        )
    return dataset


def write_item(
    item_dir: Path,
    *,
    mix: np.ndarray,
    sample_rate: int,
    voices: Sequence[str],
    f0_times: np.ndarray,
    f0_hz: np.ndarray,
    stems: np.ndarray | None = None,
    meta: dict | None = None,
    bit_depth: int = 32,
) -> None:
    """Write one item in the dataset layout (every file atomically).

    ``mix``: ``(n_samples,)``; ``stems``: ``(n_voices, n_samples)`` or None,
    float (or int16 PCM samples, stored as they are); ``f0_times``:
    ``(n_frames,)`` s; ``f0_hz``: ``(n_voices, n_frames)`` Hz; ``bit_depth``:
    32 (float) or 16 (PCM) for float audio (see ``audio.write_wav``).
    """
    item_dir = Path(item_dir)
    f0_hz = np.asarray(f0_hz)
    if f0_hz.shape != (len(voices), len(f0_times)):
        raise ValueError(f"f0_hz has shape {f0_hz.shape}, expected ({len(voices)}, {len(f0_times)})")
    if stems is not None and np.shape(stems) != (len(voices), len(mix)):
        raise ValueError(f"stems have shape {np.shape(stems)}, expected ({len(voices)}, {len(mix)})")
    for voice_index, voice in enumerate(voices):
        write_f0_csv(item_dir / "f0" / f"{voice}.csv", f0_times, f0_hz[voice_index])
        if stems is not None:
            write_wav(item_dir / "stems" / f"{voice}.wav", stems[voice_index], sample_rate, bit_depth)
    write_wav(item_dir / "mix.wav", mix, sample_rate, bit_depth)
    if meta is not None:
        write_text(item_dir / "meta.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
