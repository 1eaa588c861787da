"""Mono WAV reading and writing through ``pedalboard.io.AudioFile``; ``write_wav``
writes whole files or none (``sfgraph.atomic``), as every writer of the data does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from sfgraph.atomic import replacing


# Samples an MP3 decoder outputs before the first encoded sample (pedalboard's decoder
# as every other: an impulse encoded by LAME at sample k decodes at k + delay + 529).
MP3_DECODER_DELAY = 529


def mp3_padding(path: Path) -> tuple[int, int] | None:
    """For an MP3 file: ``(leading, trailing)`` samples that decoding adds around the
    encoded signal, from the encoder's LAME tag (written by LAME, ffmpeg and most
    encoders in the first frame's Xing/Info header); None when the file has no such tag."""
    with open(path, "rb") as f:
        head = f.read(10)
        if head[:3] == b"ID3" and len(head) == 10:  # skip an ID3v2 tag (its size is syncsafe)
            f.seek(10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10])))
        else:
            f.seek(0)
        frame = f.read(4096)
    for marker in (b"Xing", b"Info"):
        at = frame.find(marker)
        if at >= 0:
            break
    else:
        return None
    flags = int.from_bytes(frame[at + 4:at + 8], "big")
    # Optional fields: frame count, byte count, 100-byte table of contents, quality.
    tag = at + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
    fields = frame[tag + 21:tag + 24]  # after a 9-byte encoder name and 12 bytes of other fields
    if len(fields) < 3 or not frame[tag:tag + 4].isalpha():
        return None
    delay = (fields[0] << 4) | (fields[1] >> 4)
    padding = ((fields[1] & 0x0F) << 8) | fields[2]
    return delay + MP3_DECODER_DELAY, max(0, padding - MP3_DECODER_DELAY)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read an audio file (an MP3 without the samples its encoder and decoder add, when
    its LAME tag says how many).

    Returns ``(audio, sample_rate)`` with ``audio`` float32 of shape
    ``(n_channels, n_samples)`` in [-1, 1] for integer files.
    """
    with AudioFile(str(path)) as audio_file:
        audio = audio_file.read(audio_file.frames)
        sample_rate = int(round(audio_file.samplerate))
    padding = mp3_padding(path) if Path(path).suffix.lower() == ".mp3" else None
    if padding is not None:
        audio = audio[:, padding[0]:audio.shape[1] - padding[1]]
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
    with replacing(path, ".wav") as temporary, \
            AudioFile(str(temporary), "w", samplerate=sample_rate, num_channels=1, bit_depth=bit_depth) as audio_file:
        audio_file.write(samples[None, :])
