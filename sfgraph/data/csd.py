"""Converter from the Choral Singing Dataset (CSD; Cuesta et al., 2018) to the sfgraph layout.

Assumed published layout (CSD v1.1 on Zenodo, record 2649950, as read by
public loaders; the archive itself was not available here), searched
recursively under the given folder::

    CSD_<piece>_<voice>_<singer>.wav   one singer, mono, 44.1 kHz; piece ER (El Rossinyol),
                                       LI (Locus Iste) or ND (Nino Dios); voice soprano, alto,
                                       tenor or bass; singer 1..4
    CSD_<piece>_<voice>_<singer>.f0    that singer's F0 (pYIN-like tracker, hand-corrected):
                                       text, column 1 time in s, column 2 F0 in Hz
    CSD_<piece>_<voice>_<singer>.csv   accepted instead of .f0, same two first columns
                                       (e.g. a ``time,f0`` header)

F0 files may be separated by commas or whitespace, may have a header line and
extra columns (ignored); values <= 0 or NaN mean unvoiced (pYIN writes
negative values there). Files whose names do not match are ignored.

Every piece becomes one item per combination of singers, one singer per
voice: ``matched`` pairs singer n of every voice (4 items per piece),
``all`` takes every combination (4^4 = 256 per piece). Stems are the singers'
recordings resampled to ``sample_rate`` (and cut to the shortest of the
four), the mixture is their exact sum, and each F0 track is resampled onto
the frame grid ``t * 256 / sample_rate``.

Known defect of the published data: ``CSD_ND_tenor_3.f0`` is reported to be a
copy of ``CSD_ND_tenor_2.f0``; it is converted as is.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np

from sfgraph.data.audio import audio_info, read_mono
from sfgraph.data.layout import (
    DEFAULT_VOICES,
    HOP_LENGTH,
    SAMPLE_RATE,
    DatasetError,
    frame_times,
    resample_f0,
    write_item,
)
from sfgraph.dsp.resample import resample

_AUDIO_NAME = re.compile(r"CSD_(?P<piece>[A-Za-z]+)_(?P<voice>soprano|alto|tenor|bass)_(?P<singer>\d+)\.wav")
COMBINATIONS = ("matched", "all")


def read_csd_f0(path: Path) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """Read a CSD F0 file: ``(times (n,) s, f0 (n,) Hz with 0 = unvoiced, problems)``; arrays None if unusable."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        return None, None, [f"{path}: cannot read ({error})"]
    rows, bad = [], []
    for line_number, line in enumerate(lines, start=1):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        try:
            rows.append((float(fields[0]), float(fields[1])))
        except (ValueError, IndexError):
            if line_number == 1:
                continue  # a header line
            bad.append(line_number)
    problems = []
    if bad:
        problems.append(
            f"{path}: lines {', '.join(map(str, bad[:5]))}{' ...' if len(bad) > 5 else ''}: not 'time f0' numbers"
        )
    if not rows:
        return None, None, problems + [f"{path}: no F0 rows"]
    table = np.array(rows)
    times, f0 = table[:, 0], table[:, 1]
    if not np.all(np.isfinite(times)):
        problems.append(f"{path}: some times are NaN or infinite")
    elif not np.all(np.diff(times) > 0):
        problems.append(f"{path}: times do not increase strictly")
    return times, np.where(np.isfinite(f0) & (f0 > 0), f0, 0.0), problems


def scan_csd(folder: Path) -> dict[str, dict[str, dict[int, Path]]]:
    """Find CSD recordings: ``{piece: {voice: {singer: wav path}}}``."""
    found: dict[str, dict[str, dict[int, Path]]] = {}
    for path in sorted(Path(folder).rglob("CSD_*.wav")):
        match = _AUDIO_NAME.fullmatch(path.name)
        if match:
            found.setdefault(match["piece"], {}).setdefault(match["voice"], {})[int(match["singer"])] = path
    return found


def _f0_path(wav_path: Path) -> Path | None:
    for suffix in (".f0", ".csv"):
        candidate = wav_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _combinations(
    singers: dict[str, dict[int, Path]], mode: str, piece: str, problems: list[str]
) -> list[dict[str, int]]:
    """Singer choices ``{voice: singer}`` of one piece; missing recordings are reported."""
    for voice in DEFAULT_VOICES:
        if voice not in singers:
            problems.append(f"piece {piece}: no CSD_{piece}_{voice}_<n>.wav recordings")
    if any(voice not in singers for voice in DEFAULT_VOICES):
        return []
    if mode == "all":
        return [
            dict(zip(DEFAULT_VOICES, choice, strict=True))
            for choice in itertools.product(*(sorted(singers[voice]) for voice in DEFAULT_VOICES))
        ]
    numbers = sorted(set().union(*(singers[voice] for voice in DEFAULT_VOICES)))
    combos = []
    for number in numbers:
        missing = [voice for voice in DEFAULT_VOICES if number not in singers[voice]]
        for voice in missing:
            problems.append(
                f"piece {piece}: CSD_{piece}_{voice}_{number}.wav missing "
                f"(needed to match singer {number} of the other voices)"
            )
        if not missing:
            combos.append(dict.fromkeys(DEFAULT_VOICES, number))
    return combos


def convert_csd(
    csd_folder: Path,
    outdir: Path,
    combinations: str = "matched",
    sample_rate: int = SAMPLE_RATE,
    force: bool = False,
    progress: bool = True,
) -> list[str]:
    """Convert a CSD folder into items under ``outdir``; returns the item names.

    Raises ``DatasetError`` listing every problem (missing recordings or F0
    files, unreadable or multi-channel audio, bad F0 rows) before writing anything.
    """
    from tqdm import tqdm

    if combinations not in COMBINATIONS:
        raise ValueError(f"combinations {combinations!r}: choose from {', '.join(COMBINATIONS)}")
    outdir = Path(outdir)
    if outdir.exists() and any(outdir.iterdir()) and not force:
        raise DatasetError([f"{outdir}: folder is not empty (use --force to write into it)"], context="conversion")
    recordings = scan_csd(csd_folder)
    problems: list[str] = []
    if not recordings:
        problems.append(f"{csd_folder}: no CSD_<piece>_<voice>_<singer>.wav files found")
    plan = []
    f0_tracks: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
    for piece, singers in sorted(recordings.items()):
        for combo in _combinations(singers, combinations, piece, problems):
            plan.append((piece, combo))
        for voice_singers in singers.values():
            for wav_path in voice_singers.values():
                try:
                    channels = audio_info(wav_path)[1]
                    if channels != 1:
                        problems.append(f"{wav_path}: has {channels} channels, expected mono")
                except (OSError, RuntimeError, ValueError) as error:
                    problems.append(f"{wav_path}: cannot read audio ({error})")
                f0_path = _f0_path(wav_path)
                if f0_path is None:
                    problems.append(f"{wav_path.with_suffix('.f0')}: missing (nor is there a .csv)")
                    continue
                times, f0, f0_problems = read_csd_f0(f0_path)
                problems.extend(f0_problems)
                if times is not None and f0 is not None and not f0_problems:
                    f0_tracks[wav_path] = (times, f0)
    if problems:
        raise DatasetError(problems, context=f"CSD folder {csd_folder}")

    names = []
    audio_cache: dict[Path, np.ndarray] = {}  # resampled recordings of the current piece only
    cached_piece = None

    for piece, combo in tqdm(plan, desc="CSD items", unit="item", disable=not progress):
        if piece != cached_piece:
            audio_cache.clear()
            cached_piece = piece
        paths = [recordings[piece][voice][combo[voice]] for voice in DEFAULT_VOICES]
        for path in paths:
            if path not in audio_cache:
                audio, rate = read_mono(path)
                audio_cache[path] = resample(audio, rate, sample_rate)
        length = min(audio_cache[path].size for path in paths)
        stems = np.stack([audio_cache[path][:length] for path in paths])
        times = frame_times(length, sample_rate, HOP_LENGTH)
        f0 = np.stack([resample_f0(*f0_tracks[path], times) for path in paths])
        name = f"CSD_{piece}_" + "_".join(f"{voice[0]}{combo[voice]}" for voice in DEFAULT_VOICES)
        meta = {
            "source": "Choral Singing Dataset (Cuesta et al. 2018), converted by sfgraph data convert-csd",
            "piece": piece,
            "singers": {voice: paths[index].name for index, voice in enumerate(DEFAULT_VOICES)},
            "voices": list(DEFAULT_VOICES),
        }
        write_item(
            outdir / name,
            mix=stems.sum(axis=0, dtype=np.float32),
            sample_rate=sample_rate,
            voices=DEFAULT_VOICES,
            f0_times=times,
            f0_hz=f0,
            stems=stems,
            meta=meta,
        )
        names.append(name)
    return names
