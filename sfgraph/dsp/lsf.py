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
synthesizer, and by the torch flavour's impulse responses) and a numpy stability check;
the differentiable, batched torch flavour is ``sfgraph.dsp.lsf_torch`` (apart, so that
the synthesizer runs without importing torch).
All LPC arrays have ``lpc[..., 0] == 1`` and the filter is
``y[n] = x[n] - sum_{i=1}^{p} lpc[i] * y[n - i]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def all_pole_response_kernel(lpc: np.ndarray, response_out: np.ndarray) -> None:
    """``h[n] = delta[n] - sum_{i=1}^{p} lpc[i] h[n - i]`` for every column of ``lpc`` ``(p + 1, rows)``
    into ``response_out`` ``(length, rows)``, float64 (rows innermost, so the loops vectorise)."""
    order = lpc.shape[0] - 1
    length, n_rows = response_out.shape
    response_out[0] = 1.0
    for n in range(1, length):
        response_out[n] = 0.0
        for i in range(1, min(n, order) + 1):
            for row in range(n_rows):
                response_out[n, row] -= lpc[i, row] * response_out[n - i, row]


@njit(cache=True, nogil=True)
def all_pole_response_grad_kernel(lpc: np.ndarray, response: np.ndarray, grad_response: np.ndarray,
                                  grad_lpc_out: np.ndarray) -> None:
    """Gradient of ``all_pole_response_kernel``'s output with respect to ``lpc`` (same layouts;
    the maths in ``lsf_torch._AllPoleImpulseResponse``)."""
    order = lpc.shape[0] - 1
    length, n_rows = response.shape
    future = np.zeros((length + order, n_rows))
    for m in range(length - 1, -1, -1):
        future[m] = grad_response[m]
        for j in range(1, order + 1):
            for row in range(n_rows):
                future[m, row] -= future[m + j, row] * lpc[j, row]
    grad_lpc_out[0] = 0.0
    for lag in range(1, order + 1):
        grad_lpc_out[lag] = 0.0
        for k in range(length - lag):
            for row in range(n_rows):
                grad_lpc_out[lag, row] -= response[k, row] * future[k + lag, row]


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
