"""The line-spectral-frequency maths of ``sfgraph.dsp.lsf`` in torch: differentiable and
batched, for training (``sfgraph.dsp.voice_torch``).

All LPC arrays have ``lpc[..., 0] == 1`` and the filter is
``y[n] = x[n] - sum_{i=1}^{p} lpc[i] * y[n - i]``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from sfgraph.dsp.lsf import all_pole_response_grad_kernel, all_pole_response_kernel


def lsf_from_increments(increments: torch.Tensor, min_gap: float = 0.0) -> torch.Tensor:
    """Ordered LSFs from positive increments.

    Args:
        increments: ``(..., p + 1)`` positive values (any scale; normalised here).
        min_gap: smallest LSF spacing in radians (see ``VoiceConfig.min_lsf_gap``):
            increment ``i`` becomes ``min_gap + (pi - (p + 1) min_gap) x_i / sum(x)``.

    Returns:
        ``(..., p)`` LSFs in radians, strictly increasing in ``(0, pi)``.
    """
    spread = math.pi - increments.shape[-1] * min_gap
    normalised = min_gap + increments * (spread / increments.sum(dim=-1, keepdim=True))
    return torch.cumsum(normalised, dim=-1)[..., :-1]


def lsf_to_lpc(lsf: torch.Tensor) -> torch.Tensor:
    """LPC polynomial ``A(z)`` from sorted LSFs (differentiable).

    Args:
        lsf: ``(..., p)`` sorted LSFs in radians, ``p`` even.

    Returns:
        ``(..., p + 1)`` coefficients of ``A(z)``, ``lpc[..., 0] == 1``.
        Computed in the dtype of ``lsf``; pass float64 for sharp resonances,
        whose coefficients need more than float32 precision.
    """
    order = lsf.shape[-1]
    minus_two_cos = -2.0 * torch.cos(lsf)
    # Row 0 builds P (even-indexed LSFs, root at z = -1), row 1 builds Q (root at z = +1).
    section_coeffs = torch.stack((minus_two_cos[..., 0::2], minus_two_cos[..., 1::2]), dim=-2)
    first_factor = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=lsf.dtype, device=lsf.device)
    poly = first_factor.expand(*lsf.shape[:-1], 2, 2)
    for section in range(order // 2):
        coeff = section_coeffs[..., section : section + 1]
        poly = F.pad(poly, (0, 2)) + coeff * F.pad(poly, (1, 1)) + F.pad(poly, (2, 0))
    return 0.5 * (poly[..., 0, : order + 1] + poly[..., 1, : order + 1])


def truncated_convolution(x: torch.Tensor, y: torch.Tensor, n_out: int) -> torch.Tensor:
    """First ``n_out`` samples of the linear convolution of ``x`` and ``y`` (last dim).

    Uses a power-of-two FFT at least as long as the linear convolution of the
    parts that reach the first ``n_out`` outputs, so there is no circular wrap.
    """
    x = x[..., :n_out]
    y = y[..., :n_out]
    fft_len = 1 << (x.shape[-1] + y.shape[-1] - 2).bit_length()
    spectrum = torch.fft.rfft(x, n=fft_len) * torch.fft.rfft(y, n=fft_len)
    return torch.fft.irfft(spectrum, n=fft_len)[..., :n_out]


class _AllPoleImpulseResponse(torch.autograd.Function):
    """Impulse response of ``1 / A(z)`` by the direct recursion, with analytic backward.

    The recursion is the numerically robust way to get the response of sharp
    resonances (block or FFT shortcuts lose many digits to cancellation there).
    Forward runs it without building an autograd graph.  Backward
    uses ``d h[n] / d a_i = -(h * h)[n - i]`` (``*``: convolution):
    ``grad a_i = -sum_k h[k] r[k + i]`` with ``r[m] = sum_n grad[n] h[n - m]``,
    and ``r`` is the transposed (time-reversed) recursion of the same filter.
    On the CPU both recursions run as Numba loops (a step of the vectorised torch
    recursion costs more in dispatch than in arithmetic: 8000 rows of a training
    batch took 0.2 s forward and 0.9 s backward that way, issue 16); on other devices
    the rows advance together, one torch op per sample.
    """

    @staticmethod
    def forward(ctx, lpc: torch.Tensor, length: int) -> torch.Tensor:
        order = lpc.shape[-1] - 1
        rows = lpc.reshape(-1, order + 1)
        if rows.device.type == "cpu":
            response = torch.empty(length, rows.shape[0], dtype=torch.float64)
            all_pole_response_kernel(_columns(rows), response.numpy())
            response = response.T.to(rows.dtype).contiguous()
        else:
            taps_oldest_first = rows[:, 1:].flip(-1)
            history = rows.new_zeros(rows.shape[0], order + length)
            history[:, order] = 1.0
            for n in range(1, length):
                history[:, order + n] = -torch.linalg.vecdot(history[:, n : n + order], taps_oldest_first)
            response = history[:, order:].contiguous()
        ctx.save_for_backward(rows, response)
        return response.reshape(*lpc.shape[:-1], length)

    @staticmethod
    def backward(ctx, grad_response: torch.Tensor):
        rows, response = ctx.saved_tensors
        order = rows.shape[-1] - 1
        length = response.shape[-1]
        grad_rows = grad_response.reshape(-1, length)
        if rows.device.type == "cpu":
            grad_lpc = torch.empty(order + 1, rows.shape[0], dtype=torch.float64)
            all_pole_response_grad_kernel(_columns(rows), _columns(response), _columns(grad_rows), grad_lpc.numpy())
            grad_lpc = grad_lpc.T.to(rows.dtype)
        else:
            taps = rows[:, 1:]
            # future[:, m] = r[m] for m < length, zero beyond (truncation of the response).
            future = rows.new_zeros(rows.shape[0], length + order)
            for m in range(length - 1, -1, -1):
                future[:, m] = grad_rows[:, m] - torch.linalg.vecdot(future[:, m + 1 : m + 1 + order], taps)
            grad_lpc = torch.zeros_like(rows)
            for lag in range(1, order + 1):
                grad_lpc[:, lag] = -torch.linalg.vecdot(response[:, : length - lag], future[:, lag:length])
        return grad_lpc.reshape(grad_response.shape[:-1] + (order + 1,)), None


def _columns(rows: torch.Tensor) -> np.ndarray:
    """``(rows, n)`` tensor → contiguous float64 ``(n, rows)`` array for the Numba kernels."""
    return rows.detach().T.to(torch.float64).contiguous().numpy()


def lpc_impulse_response(lpc: torch.Tensor, length: int) -> torch.Tensor:
    """First ``length`` samples of the impulse response of ``1 / A(z)`` (differentiable).

    Args:
        lpc: ``(..., p + 1)`` with ``lpc[..., 0] == 1`` (float64 recommended).
        length: number of samples.

    Returns:
        ``(..., length)`` impulse response, same dtype and device as ``lpc``.
    """
    return _AllPoleImpulseResponse.apply(lpc, length)
