"""Mono WAV reading and atomic writing through ``pedalboard.io.AudioFile``.

Every writer in ``sfgraph.data`` goes through ``write_wav`` / ``write_text``,
which write to a temporary file in the destination folder and then
``os.replace`` it, so an interrupted run never leaves a truncated file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile


def _atomic_target(path: Path, suffix: str) -> str:
    """A fresh temporary file name next to ``path`` (same filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    # mkstemp creates the file private (0600); datasets are meant to be shared.
    os.chmod(temp_name, 0o644)
    return temp_name


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read an audio file.

    Returns ``(audio, sample_rate)`` with ``audio`` float32 of shape
    ``(n_channels, n_samples)`` in [-1, 1] for integer files.
    """
    with AudioFile(str(path)) as audio_file:
        audio = audio_file.read(audio_file.frames)
        sample_rate = int(round(audio_file.samplerate))
    return np.asarray(audio, dtype=np.float32), sample_rate


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """Read a mono audio file: ``(audio (n_samples,) float32, sample_rate)``.

    Raises ``ValueError`` naming the file if it has more than one channel.
    """
    audio, sample_rate = read_wav(path)
    if audio.shape[0] != 1:
        raise ValueError(f"{path}: expected mono audio, found {audio.shape[0]} channels")
    return audio[0], sample_rate


def audio_info(path: Path) -> tuple[int, int, int]:
    """``(sample_rate, n_channels, n_samples)`` of an audio file, read from its header."""
    with AudioFile(str(path)) as audio_file:
        return int(round(audio_file.samplerate)), int(audio_file.num_channels), int(audio_file.frames)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, bit_depth: int = 32) -> None:
    """Write mono audio atomically.

    ``audio``: shape ``(n_samples,)``. Float audio is written as IEEE float
    with ``bit_depth`` 32 (values kept exactly) or converted to 16-bit PCM by
    pedalboard with ``bit_depth`` 16. ``int16`` audio is written as 16-bit PCM
    unchanged (pedalboard reads sample ``k`` back as ``k / 32767``).
    """
    path = Path(path)
    samples = np.asarray(audio)
    if samples.ndim != 1:
        raise ValueError(f"{path}: write_wav expects mono audio of shape (n_samples,), got {samples.shape}")
    if samples.dtype == np.int16:
        bit_depth = 16
    else:
        samples = samples.astype(np.float32)
    temp_name = _atomic_target(path, ".wav")
    try:
        with AudioFile(temp_name, "w", samplerate=sample_rate, num_channels=1, bit_depth=bit_depth) as audio_file:
            audio_file.write(samples[None, :])
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    path = Path(path)
    temp_name = _atomic_target(path, ".tmp")
    try:
        Path(temp_name).write_text(text, encoding="utf-8")
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
