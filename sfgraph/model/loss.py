"""Multi-resolution spectral loss between the mixture and the sum of the voices.

On the CPU each resolution's distance and its gradient come from one Numba pass over the two
spectra (``spectral_distance_kernel``): as torch ops, forward and backward took a dozen
passes over them, about a tenth of a training step (issue 16). Elsewhere the same sums run
as torch ops (``torch_spectral_distance``).
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from sfgraph.dsp.fft_torch import real_fft

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def spectrum(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """(…, samples) → (…, frames, bins) complex STFT, Hann window, 75 % overlap, frames
    centred on multiples of the hop (``torch.stft``'s ``center=True``: the signal's ends
    reflected). Framed here rather than by ``torch.stft`` for ``real_fft``'s cheaper backward."""
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    padded = F.pad(x.reshape(-1, 1, x.shape[-1]), (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]
    frames = padded.unfold(-1, n_fft, n_fft // 4) * window
    return real_fft(frames, n_fft).reshape(x.shape[:-1] + frames.shape[-2:-1] + (n_fft // 2 + 1,))


def spectral_loss(estimate: torch.Tensor, target: torch.Tensor, fft_sizes=FFT_SIZES,
                  eps: float = 1e-7) -> torch.Tensor:
    """Sum over FFT sizes of mean |‖X‖ - ‖Y‖| + mean |log ‖X‖ - log ‖Y‖| (a scalar; ``eps``
    inside the logs); differentiable in ``estimate``, not in ``target``."""
    on_cpu, with_grad = estimate.device.type == "cpu", torch.is_grad_enabled() and estimate.requires_grad
    total = estimate.new_zeros(())
    for n_fft in fft_sizes:
        est, tgt = spectrum(estimate, n_fft), spectrum(target, n_fft).detach()
        total = total + (_SpectralDistance.apply(est, tgt, eps, with_grad) if on_cpu else
                         torch_spectral_distance(est, tgt, eps))
    return total


def torch_spectral_distance(estimate: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """One resolution's term of ``spectral_loss`` from the complex spectra, in torch ops."""
    est, tgt = estimate.abs(), target.abs()
    return (est - tgt).abs().mean() + (torch.log(est + eps) - torch.log(tgt + eps)).abs().mean()


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def spectral_distance_kernel(estimate: np.ndarray, target: np.ndarray, eps: float, grad_out: np.ndarray) -> float:
    """``sum |‖X‖ - ‖Y‖| + |log(‖X‖ + eps) - log(‖Y‖ + eps)|`` over the flat spectra ``estimate``
    X and ``target`` Y, ``(n, 2)`` real and imaginary parts, and, unless ``grad_out`` (the same
    layout) is empty, its gradient with respect to X there (torch's convention for a complex
    input, ∂/∂Re + i ∂/∂Im: the magnitude's gradient times X / ‖X‖, 0 where X is 0, as torch's
    ``abs``). The log term is one log of the ratio, and its sign the linear term's; the loops
    other than the logs' vectorise (the sums may be reordered: the only fast-math licence; a
    division by zero gives inf, unchecked). Float32 as torch computes it, the sums in float64."""
    floor = np.float32(eps)
    n = estimate.shape[0]
    shifted = np.empty(n, np.float32)  # ‖X‖ + eps
    ratio = np.empty(n, np.float32)
    linear_total = 0.0
    for i in range(n):
        est = np.sqrt(estimate[i, 0] * estimate[i, 0] + estimate[i, 1] * estimate[i, 1])
        tgt = np.sqrt(target[i, 0] * target[i, 0] + target[i, 1] * target[i, 1])
        linear_total += abs(est - tgt)
        shifted[i] = est + floor
        ratio[i] = shifted[i] / (tgt + floor)
    log_total = 0.0
    for i in range(n):
        log_total += abs(np.log(ratio[i]))
    if grad_out.size:
        one, zero = np.float32(1.0), np.float32(0.0)
        for i in range(n):  # selects, no branches, so that it vectorises
            est = shifted[i] - floor
            sign = np.float32(ratio[i] > one) - np.float32(ratio[i] < one)
            scale = sign * (one + one / shifted[i]) / est  # inf or nan where est is 0: not selected
            scale = scale if est > zero else zero
            grad_out[i, 0] = estimate[i, 0] * scale
            grad_out[i, 1] = estimate[i, 1] * scale
    return linear_total + log_total


class _SpectralDistance(torch.autograd.Function):
    """``torch_spectral_distance`` by ``spectral_distance_kernel``: forward finds the gradient
    too (``with_grad``: autograd will want it), backward scales it."""

    @staticmethod
    def forward(ctx, estimate: torch.Tensor, target: torch.Tensor, eps: float, with_grad: bool) -> torch.Tensor:
        estimate, target = estimate.detach().contiguous(), target.detach().contiguous()
        grad = torch.empty_like(estimate) if with_grad else estimate.new_empty(0)
        total = spectral_distance_kernel(_real_pairs(estimate), _real_pairs(target), eps, _real_pairs(grad))
        ctx.save_for_backward(grad)
        ctx.count = estimate.numel()
        return torch.tensor(total / ctx.count, dtype=estimate.real.dtype)  # both terms are means over the bins

    @staticmethod
    @once_differentiable  # numpy and Numba inside: no graph for second derivatives
    def backward(ctx, grad_total: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad * (grad_total / ctx.count), None, None, None


def _real_pairs(spectrum: torch.Tensor) -> np.ndarray:
    """A contiguous complex tensor as an ``(n, 2)`` real array (a view: writes go through)."""
    return torch.view_as_real(spectrum).numpy().reshape(-1, 2)
