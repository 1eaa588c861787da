"""Small helpers shared by the tests (importable as ``helpers``: pytest puts tests/ on the path)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

FIXTURES = Path(__file__).parent / "fixtures"
CUSTOM_NODES = FIXTURES / "custom_nodes.py"


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write (channels, samples) float32 audio as a float wav."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    with AudioFile(str(path), "w", sample_rate, audio.shape[0], bit_depth=32) as f:
        f.write(audio)
    return path


def read_wav(path: Path) -> tuple[np.ndarray, float]:
    """(channels, samples) float32 and the sample rate in Hz."""
    with AudioFile(str(path)) as f:
        return f.read(f.frames), f.samplerate


def harmonic_tone(hz: float, seconds: float, partials: int, level: float, rate: int = 16000) -> np.ndarray:
    """A steady tone of ``partials`` harmonics, the k-th at ``level / k``, float32 at ``rate``."""
    t = np.arange(int(seconds * rate)) / rate
    return sum(level / k * np.sin(2 * np.pi * k * hz * t) for k in range(1, partials + 1)).astype(np.float32)


def cents(estimate, truth) -> np.ndarray:
    """How far ``estimate`` Hz lies above ``truth`` Hz, in cents."""
    return 1200 * np.log2(np.asarray(estimate) / truth)
