"""Recordings that the F0 trackers read, at 16 kHz: one file, or a folder of ``<voice>.wav``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sfgraph.grid import DEFAULT_VOICES, SAMPLE_RATE, voice_order


def read_audio(path: Path) -> np.ndarray:
    """(channels, samples) float32 of an audio file, resampled to 16 kHz."""
    from pedalboard.io import AudioFile

    try:
        with AudioFile(str(path)).resampled_to(float(SAMPLE_RATE)) as audio_file:
            return np.asarray(audio_file.read(audio_file.frames), dtype=np.float32)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"cannot read audio file {path}: {exc}") from None


def read_voices(path: Path, voices: list[str] | None) -> tuple[tuple[str, ...], np.ndarray]:
    """Voice names and (voices, samples) at 16 kHz from a folder of ``<voice>.wav`` (mono) or one
    audio file with a channel per voice."""
    if path.is_dir():
        found = voice_order([p.stem for p in path.glob("*.wav")])
        names = tuple(voices) if voices else found
        missing = [name for name in names if name not in found]
        if not names or missing:
            raise ValueError(f"{path}: no {', '.join(f'{m}.wav' for m in missing) or '<voice>.wav files'} "
                             f"(found: {', '.join(found) or 'none'})")
        channels = [read_audio(path / f"{name}.wav") for name in names]
        for name, audio in zip(names, channels):
            if audio.shape[0] != 1:
                raise ValueError(f"{path / (name + '.wav')}: expected mono audio, found {audio.shape[0]} channels")
        length = max(audio.shape[1] for audio in channels)
        return names, np.stack([np.pad(audio[0], (0, length - audio.shape[1])) for audio in channels])
    audio = read_audio(path)
    if voices:
        names = tuple(voices)
    elif audio.shape[0] == len(DEFAULT_VOICES):
        names = DEFAULT_VOICES
    else:
        names = tuple(f"voice{i + 1}" for i in range(audio.shape[0]))
    if len(names) != audio.shape[0]:
        raise ValueError(f"{path} has {audio.shape[0]} channel(s) but {len(names)} voices are named "
                         f"({', '.join(names)}): CREPE tracks one voice per channel; for a mixture use "
                         "--method score")
    return names, audio
