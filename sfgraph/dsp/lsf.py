"""Line-spectral-frequency parametrisation of the all-pole vocal tract.

``p + 1`` positive increments are normalised to sum to pi and cumulatively
summed; the first ``p`` partial sums are ``p`` strictly increasing LSFs in
``(0, pi)``.  Interlaced LSFs on the unit circle are exactly the roots of the
symmetric / antisymmetric polynomials

    P(z) = (1 + z^-1) * prod_{i even} (1 - 2 cos(w_i) z^-1 + z^-2)
    Q(z) = (1 - z^-1) * prod_{i odd}  (1 - 2 cos(w_i) z^-1 + z^-2)

(0-based ``i`` over the sorted LSFs ``w``), and ``A(z) = (P(z) + Q(z)) / 2`` is
then minimum phase, so ``1 / A(z)`` is stable by construction.

Two flavours of the same maths live here: Numba kernels (used by the streaming
synthesizer, and by the torch flavour's all-pole filter) and a numpy stability check;
the differentiable, batched torch flavour is ``sfgraph.dsp.lsf_torch`` (apart, so that
the synthesizer runs without importing torch).
All LPC arrays have ``lpc[..., 0] == 1`` and the filter is
``y[n] = x[n] - sum_{i=1}^{p} lpc[i] * y[n - i]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


# Rows filtered together by the all-pole kernels: each block is copied into float64 columns
# (time along the first axis, the rows innermost, so that the recursion vectorises across
# them) small enough to stay in the cache while the recursion runs over it.
FILTER_BLOCK_ROWS = 64


@njit(cache=True, nogil=True)
def all_pole_filter_kernel(lpc: np.ndarray, signal: np.ndarray, filtered_out: np.ndarray) -> None:
    """``y[n] = x[n] - sum_{i=1}^{p} lpc[i] y[n - i]`` from zero state, for every row of
    ``signal`` ``(rows, length)`` with its own coefficients ``lpc`` ``(rows, p + 1)``, into
    ``filtered_out`` ``(rows, length)``; the recursion runs in float64 whatever the arrays' dtype."""
    n_rows, length = signal.shape
    order = lpc.shape[1] - 1
    taps = np.empty((order + 1, FILTER_BLOCK_ROWS))
    filtered = np.empty((length, FILTER_BLOCK_ROWS))
    for first in range(0, n_rows, FILTER_BLOCK_ROWS):
        width = min(FILTER_BLOCK_ROWS, n_rows - first)
        for column in range(width):
            taps[:, column] = lpc[first + column]
            filtered[:, column] = signal[first + column]
        for n in range(1, length):
            for i in range(1, min(n, order) + 1):
                for column in range(width):
                    filtered[n, column] -= taps[i, column] * filtered[n - i, column]
        for column in range(width):
            filtered_out[first + column] = filtered[:, column]


@njit(cache=True, nogil=True)
def all_pole_filter_grad_kernel(lpc: np.ndarray, filtered: np.ndarray, grad_filtered: np.ndarray,
                                grad_signal_out: np.ndarray, grad_lpc_out: np.ndarray) -> None:
    """Gradients of ``all_pole_filter_kernel``'s output (``filtered``, same layouts) with respect
    to its signal and ``lpc``, given ``grad_filtered``; the maths in ``lsf_torch._AllPoleFilter``."""
    n_rows, length = filtered.shape
    order = lpc.shape[1] - 1
    taps = np.empty((order + 1, FILTER_BLOCK_ROWS))
    outputs = np.empty((length, FILTER_BLOCK_ROWS))
    future = np.empty((length, FILTER_BLOCK_ROWS))
    grad_taps = np.empty((order + 1, FILTER_BLOCK_ROWS))
    for first in range(0, n_rows, FILTER_BLOCK_ROWS):
        width = min(FILTER_BLOCK_ROWS, n_rows - first)
        for column in range(width):
            taps[:, column] = lpc[first + column]
            outputs[:, column] = filtered[first + column]
            future[:, column] = grad_filtered[first + column]
        for m in range(length - 2, -1, -1):  # the transposed recursion, from the end
            for j in range(1, min(order, length - 1 - m) + 1):
                for column in range(width):
                    future[m, column] -= taps[j, column] * future[m + j, column]
        grad_taps[:] = 0.0
        for k in range(length):
            for lag in range(1, min(order, length - 1 - k) + 1):
                for column in range(width):
                    grad_taps[lag, column] -= outputs[k, column] * future[k + lag, column]
        for column in range(width):
            grad_signal_out[first + column] = future[:, column]
            grad_lpc_out[first + column] = grad_taps[:, column]


@njit(cache=True)
def lsf_from_increments_kernel(increments: np.ndarray, min_gap: float, lsf_out: np.ndarray) -> None:
    """Numba twin of ``lsf_torch.lsf_from_increments`` for ``(n, p + 1)`` float64 rows."""
    n_rows, n_increments = increments.shape
    spread = math.pi - n_increments * min_gap
    for row in range(n_rows):
        total = 0.0
        for i in range(n_increments):
            total += increments[row, i]
        scale = spread / total
        running = 0.0
        for i in range(n_increments - 1):
            running += min_gap + increments[row, i] * scale
            lsf_out[row, i] = running


@njit(cache=True)
def lsf_to_lpc_kernel(lsf: np.ndarray, lpc_out: np.ndarray) -> None:
    """Numba twin of ``lsf_torch.lsf_to_lpc`` for ``(n, p)`` float64 rows into ``(n, p + 1)``."""
    n_rows, order = lsf.shape
    p_poly = np.empty(order + 2)
    q_poly = np.empty(order + 2)
    for row in range(n_rows):
        p_poly[:] = 0.0
        q_poly[:] = 0.0
        p_poly[0] = 1.0
        p_poly[1] = 1.0
        q_poly[0] = 1.0
        q_poly[1] = -1.0
        degree = 1
        for section in range(order // 2):
            p_coeff = -2.0 * math.cos(lsf[row, 2 * section])
            q_coeff = -2.0 * math.cos(lsf[row, 2 * section + 1])
            # In-place multiply by (1 + c z^-1 + z^-2), highest power first so that
            # the lower coefficients read are still the old ones.
            for n in range(degree + 2, 1, -1):
                p_poly[n] = p_poly[n] + p_coeff * p_poly[n - 1] + p_poly[n - 2]
                q_poly[n] = q_poly[n] + q_coeff * q_poly[n - 1] + q_poly[n - 2]
            p_poly[1] = p_poly[1] + p_coeff * p_poly[0]
            q_poly[1] = q_poly[1] + q_coeff * q_poly[0]
            degree += 2
        for n in range(order + 1):
            lpc_out[row, n] = 0.5 * (p_poly[n] + q_poly[n])


def lsf_increments_to_lpc_numpy(increments: np.ndarray, min_gap: float = 0.0) -> np.ndarray:
    """LPC coefficients from increments with the Numba kernels (float64).

    Args:
        increments: ``(..., p + 1)`` positive values.
        min_gap: smallest LSF spacing in radians, as in ``lsf_torch.lsf_from_increments``.

    Returns:
        ``(..., p + 1)`` LPC coefficients with ``lpc[..., 0] == 1``.
    """
    increments = np.asarray(increments, dtype=np.float64)
    rows = np.ascontiguousarray(increments.reshape(-1, increments.shape[-1]))
    lsf = np.empty((rows.shape[0], rows.shape[1] - 1))
    lsf_from_increments_kernel(rows, min_gap, lsf)
    lpc = np.empty_like(rows)
    lsf_to_lpc_kernel(lsf, lpc)
    return lpc.reshape(increments.shape)


def reflection_coefficients(lpc: np.ndarray) -> np.ndarray:
    """Reflection coefficients of ``A(z)`` by the step-down recursion (numpy).

    ``1 / A(z)`` is stable iff every returned coefficient has magnitude < 1;
    unlike polynomial root finding this test stays reliable for poles very
    close to the unit circle.

    Args:
        lpc: ``(p + 1,)`` with ``lpc[0] == 1``.

    Returns:
        ``(p,)`` reflection coefficients ``k_1 .. k_p``.  If some ``|k_m| >= 1``
        the recursion stops there and the lower-order entries are left as NaN.
    """
    current = np.asarray(lpc, dtype=np.float64).copy()
    order = current.shape[0] - 1
    reflection = np.full(order, np.nan)
    for m in range(order, 0, -1):
        k = current[m]
        reflection[m - 1] = k
        if abs(k) >= 1.0:
            break
        current[1:m] = (current[1:m] - k * current[m - 1 : 0 : -1]) / (1.0 - k * k)
    return reflection
