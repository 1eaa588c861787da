"""Multi-resolution spectral loss between the mixture and the sum of the voices."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from sfgraph.dsp.lsf_torch import real_fft

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def magnitude(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """(…, samples) → (…, frames, bins) STFT magnitude, Hann window, 75 % overlap, frames
    centred on multiples of the hop (``torch.stft``'s ``center=True``: the signal's ends
    reflected). Framed here rather than by ``torch.stft`` for ``real_fft``'s cheaper backward."""
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    padded = F.pad(x.reshape(-1, 1, x.shape[-1]), (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]
    frames = padded.unfold(-1, n_fft, n_fft // 4) * window
    return real_fft(frames, n_fft).abs().reshape(x.shape[:-1] + frames.shape[-2:-1] + (n_fft // 2 + 1,))


def spectral_loss(estimate: torch.Tensor, target: torch.Tensor, fft_sizes=FFT_SIZES,
                  eps: float = 1e-7) -> torch.Tensor:
    """Sum over FFT sizes of mean |‖X‖ - ‖Y‖| + mean |log ‖X‖ - log ‖Y‖| (a scalar)."""
    total = estimate.new_zeros(())
    for n_fft in fft_sizes:
        est, tgt = magnitude(estimate, n_fft), magnitude(target, n_fft)
        total = total + (est - tgt).abs().mean() + (torch.log(est + eps) - torch.log(tgt + eps)).abs().mean()
    return total
