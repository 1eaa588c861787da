"""The line-spectral-frequency maths of ``sfgraph.dsp.lsf`` in torch: differentiable and
batched, for training (``sfgraph.dsp.voice_torch``).

All LPC arrays have ``lpc[..., 0] == 1`` and the filter is
``y[n] = x[n] - sum_{i=1}^{p} lpc[i] * y[n - i]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from sfgraph.dsp.lsf import all_pole_filter_grad_kernel, all_pole_filter_kernel


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


class _AllPoleFilter(torch.autograd.Function):
    """``y = x / A(z)`` from zero state by the direct recursion, with analytic backward.

    The recursion is the numerically robust way to filter by sharp resonances (block or
    FFT shortcuts lose many digits to cancellation there); it runs in float64 without
    building an autograd graph. Backward: ``grad x = u``, the transposed (time-reversed)
    recursion of the same filter on the output's gradient ``g``,
    ``u[m] = g[m] - sum_j a_j u[m + j]``, and, from ``d y[n] / d a_i = -(y / A)[n - i]``,
    ``grad a_i = -sum_k y[k] u[k + i]``. On the CPU both recursions run as Numba loops (a
    step of the vectorised torch recursion costs more in dispatch than in arithmetic: 8000
    rows of a training batch took 0.2 s forward and 0.9 s backward that way, issue 16); on
    other devices the rows advance together, one torch op per sample.
    """

    @staticmethod
    def forward(ctx, lpc: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        rows = lpc.detach().reshape(-1, lpc.shape[-1]).contiguous()
        signal_rows = signal.detach().reshape(rows.shape[0], -1)
        if signal.device.type == "cpu":
            filtered = torch.empty_like(signal_rows, memory_format=torch.contiguous_format)
            all_pole_filter_kernel(rows.to(torch.float64).numpy(), signal_rows.contiguous().numpy(), filtered.numpy())
        else:
            filtered = _all_pole_filter_rows(rows.to(torch.float64), signal_rows.to(torch.float64)).to(signal.dtype)
        ctx.save_for_backward(rows, filtered)  # in the signal's dtype: the gradients need no more
        ctx.shapes = lpc.shape, signal.shape
        return filtered.reshape(signal.shape)

    @staticmethod
    @once_differentiable  # numpy and Numba inside: no graph for second derivatives
    def backward(ctx, grad_filtered: torch.Tensor):
        rows, filtered = ctx.saved_tensors
        lpc_shape, signal_shape = ctx.shapes
        grad_rows = grad_filtered.reshape(filtered.shape)
        if grad_filtered.device.type == "cpu":
            grad_signal = torch.empty_like(filtered)
            grad_lpc = torch.empty(rows.shape, dtype=torch.float64)
            all_pole_filter_grad_kernel(rows.to(torch.float64).numpy(), filtered.numpy(), grad_rows.contiguous().numpy(),
                                        grad_signal.numpy(), grad_lpc.numpy())
        else:
            grad_signal, grad_lpc = _all_pole_filter_grad_rows(rows.to(torch.float64), filtered.to(torch.float64),
                                                               grad_rows.to(torch.float64))
        return grad_lpc.to(rows.dtype).reshape(lpc_shape), grad_signal.to(filtered.dtype).reshape(signal_shape)


def _all_pole_filter_rows(rows: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
    """``_AllPoleFilter``'s forward on any device: the rows ``(n, p + 1)``, ``(n, length)``
    advance together, one sample at a time."""
    order, length = rows.shape[-1] - 1, signal.shape[-1]
    taps_oldest_first = rows[:, 1:].flip(-1)
    history = rows.new_zeros(rows.shape[0], order + length)
    for n in range(length):
        history[:, order + n] = signal[:, n] - torch.linalg.vecdot(history[:, n : n + order], taps_oldest_first)
    return history[:, order:].contiguous()


def _all_pole_filter_grad_rows(rows: torch.Tensor, filtered: torch.Tensor, grad_filtered: torch.Tensor
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``_AllPoleFilter``'s backward on any device (rows as ``_all_pole_filter_rows``): the
    gradients with respect to the signal and the coefficients."""
    order, length = rows.shape[-1] - 1, filtered.shape[-1]
    taps = rows[:, 1:]
    # future[:, m] = u[m] for m < length, zero beyond (the filter's output ends there)
    future = rows.new_zeros(rows.shape[0], length + order)
    for m in range(length - 1, -1, -1):
        future[:, m] = grad_filtered[:, m] - torch.linalg.vecdot(future[:, m + 1 : m + 1 + order], taps)
    grad_lpc = torch.zeros_like(rows)
    for lag in range(1, order + 1):
        grad_lpc[:, lag] = -torch.linalg.vecdot(filtered[:, : length - lag], future[:, lag:length])
    return future[:, :length], grad_lpc


def all_pole_filter(lpc: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
    """``signal`` filtered by ``1 / A(z)`` from zero state (differentiable in both).

    Args:
        lpc: ``(..., p + 1)`` with ``lpc[..., 0] == 1`` (float64 recommended; the
            recursion runs in float64).
        signal: ``(..., length)``, the same leading shape.

    Returns:
        ``(..., length)`` in the dtype of ``signal``.
    """
    if signal.shape[:-1] != lpc.shape[:-1]:
        raise ValueError(f"all_pole_filter: lpc {tuple(lpc.shape)} and signal {tuple(signal.shape)} "
                         "need the same leading shape")
    return _AllPoleFilter.apply(lpc, signal)
