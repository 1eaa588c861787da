"""A picture of F0 tracks over the mixture's spectrogram, to check them before separating."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from sfgraph.atomic import write_bytes

N_FFT = 2048
MAX_HZ = 2000.0  # sung F0s and their first partials


def plot_f0(path: Path, mixture: np.ndarray, f0: np.ndarray, voices: tuple[str, ...], sample_rate: int,
            hop: int) -> None:
    """Write a PNG (or SVG, by ``path``'s suffix) of ``f0`` (voices, frames) Hz, frame t at
    t·hop/sample_rate s, one colour per voice (gaps where unvoiced), over the log-magnitude
    spectrogram of ``mixture`` (samples,) from 0 to 2 kHz on a log-frequency axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = np.hanning(N_FFT).astype(np.float32)
    padded = np.pad(np.asarray(mixture, dtype=np.float32), (N_FFT // 2, N_FFT // 2))
    starts = np.arange(0, max(1, padded.size - N_FFT + 1), hop)
    frames = np.stack([padded[s:s + N_FFT] * window for s in starts]) if padded.size >= N_FFT else window[None] * 0
    decibels = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=-1)).T + 1e-6)
    frequencies = np.fft.rfftfreq(N_FFT, 1 / sample_rate)
    shown = (frequencies >= 40) & (frequencies <= MAX_HZ)
    times = np.arange(decibels.shape[1]) * hop / sample_rate
    fig, ax = plt.subplots(figsize=(max(6.0, min(24.0, times[-1] / 2 + 4)), 4.5))
    ax.pcolormesh(times, frequencies[shown], decibels[shown], shading="nearest", cmap="Greys",
                  vmin=decibels.max() - 70, vmax=decibels.max(),
                  rasterized=True)  # an image inside an SVG: a cell per bin and frame made 12 MB for 4 s
    track_times = np.arange(f0.shape[1]) * hop / sample_rate
    for voice, track in zip(voices, f0, strict=True):
        ax.plot(track_times, np.where(track > 0, track, np.nan), linewidth=1.5, label=voice)
    ax.set_yscale("log")
    ax.set_ylim(40, MAX_HZ)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".").lower(), dpi=100)
    plt.close(fig)
    write_bytes(Path(path), buffer.getvalue())
