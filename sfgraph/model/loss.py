"""Multi-resolution spectral loss between the mixture and the sum of the voices."""
from __future__ import annotations

import torch

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def magnitude(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """(…, samples) → (…, bins, frames) STFT magnitude, Hann window, 75 % overlap."""
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    return torch.stft(x.reshape(-1, x.shape[-1]), n_fft, hop_length=n_fft // 4, window=window,
                      center=True, return_complex=True).abs()


def spectral_loss(estimate: torch.Tensor, target: torch.Tensor, fft_sizes=FFT_SIZES,
                  eps: float = 1e-7) -> torch.Tensor:
    """Sum over FFT sizes of mean |‖X‖ - ‖Y‖| + mean |log ‖X‖ - log ‖Y‖| (a scalar)."""
    total = estimate.new_zeros(())
    for n_fft in fft_sizes:
        est, tgt = magnitude(estimate, n_fft), magnitude(target, n_fft)
        total = total + (est - tgt).abs().mean() + (torch.log(est + eps) - torch.log(tgt + eps)).abs().mean()
    return total
