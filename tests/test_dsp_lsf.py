"""LSF increments -> LSF -> LPC: ordering, stability, exactness and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from sfgraph.dsp.lsf import lsf_increments_to_lpc_numpy, reflection_coefficients
from sfgraph.dsp.lsf_torch import all_pole_filter, lsf_from_increments, lsf_to_lpc
from sfgraph.dsp.voice_config import VoiceConfig

ORDER = 20
GAP = VoiceConfig().min_lsf_gap


def _increment_sets() -> dict[str, np.ndarray]:
    """(n, 21) increment sets: random and the edge cases that stress stability."""
    rng = np.random.default_rng(1)
    uniform = rng.uniform(0.05, 1.0, (64, ORDER + 1))
    # Increments up to 400 times apart (the range VoiceConfig.min_lsf_gap is made for).
    spread = np.exp(rng.uniform(-6.0, 0.0, (64, ORDER + 1)))
    bunched = rng.uniform(0.5, 1.0, (16, ORDER + 1))
    bunched[:, 4:9] = 1e-4  # six LSFs within ~1e-3 rad of each other
    near_zero = rng.uniform(0.5, 1.0, (16, ORDER + 1))
    near_zero[:, :3] = 1e-5  # first LSFs hug 0 rad
    near_pi = rng.uniform(0.5, 1.0, (16, ORDER + 1))
    near_pi[:, -3:] = 1e-5  # last LSFs hug pi
    all_pairs_tight = np.tile(np.r_[1.0, np.tile([1e-3, 1.0], ORDER // 2)], (4, 1))
    return {
        "uniform": uniform,
        "spread": spread,
        "bunched": bunched,
        "near_zero": near_zero,
        "near_pi": near_pi,
        "pairs": all_pairs_tight,
    }


def test_lsf_from_increments_is_ordered_inside_open_interval():
    for increments in _increment_sets().values():
        for gap in (0.0, GAP):
            lsf = lsf_from_increments(torch.tensor(increments), gap).numpy()
            assert lsf.shape == (increments.shape[0], ORDER)
            assert np.all(np.diff(lsf, axis=-1) >= gap * (1 - 1e-9)) and np.all(np.diff(lsf, axis=-1) > 0)
            assert np.all(lsf >= gap * (1 - 1e-9)) and np.all(lsf > 0)
            assert np.all(lsf <= np.pi - gap * (1 - 1e-9)) and np.all(lsf < np.pi)


@pytest.mark.parametrize("case", list(_increment_sets()))
def test_lpc_is_stable_for_random_and_edge_cases(case):
    increments = _increment_sets()[case]
    lpc_torch = lsf_to_lpc(lsf_from_increments(torch.tensor(increments), GAP)).numpy()
    lpc_numba = lsf_increments_to_lpc_numpy(increments, GAP)
    np.testing.assert_allclose(lpc_numba, lpc_torch, rtol=0, atol=1e-9 * np.abs(lpc_torch).max())
    for lpc in lpc_numba:
        assert lpc[0] == 1.0
        assert np.max(np.abs(np.roots(lpc))) < 1.0
        assert np.all(np.abs(reflection_coefficients(lpc)) < 1.0)


def test_lpc_line_spectrum_pair_has_the_given_lsfs():
    increments = _increment_sets()["uniform"][:8]
    lsf = lsf_from_increments(torch.tensor(increments)).numpy()
    for lpc, expected in zip(lsf_increments_to_lpc_numpy(increments), lsf):
        reversed_lpc = np.r_[0.0, lpc[::-1]]
        padded = np.r_[lpc, 0.0]
        roots = np.concatenate((np.roots(padded + reversed_lpc), np.roots(padded - reversed_lpc)))
        angles = np.sort(np.angle(roots[np.angle(roots) > 1e-6]))
        angles = angles[angles < np.pi - 1e-6]
        np.testing.assert_allclose(np.abs(roots), 1.0, atol=1e-6)
        np.testing.assert_allclose(angles, expected, atol=1e-7)


@pytest.mark.parametrize("case", ["uniform", "bunched", "near_pi", "pairs"])
def test_impulse_response_is_exact_even_for_sharp_resonances(case):
    lpc = lsf_increments_to_lpc_numpy(_increment_sets()[case][:8], GAP)
    impulse = np.zeros(512)
    impulse[0] = 1.0
    expected = np.stack([scipy.signal.lfilter([1.0], row, impulse) for row in lpc])
    response = all_pole_filter(torch.tensor(lpc), torch.tensor(np.tile(impulse, (len(lpc), 1)))).numpy()
    scale = np.abs(expected).max(axis=-1, keepdims=True)
    # Relative to the peak (the float64 reference has rounding errors of its own).
    assert np.max(np.abs(response - expected) / scale) < 1e-9


def test_lsf_chain_gradients_match_finite_differences():
    torch.manual_seed(0)
    increments = (torch.rand(2, 3, ORDER + 1, dtype=torch.float64) + 0.1).requires_grad_()

    signal = torch.randn(2, 3, 48, dtype=torch.float64, requires_grad=True)

    def chain(x, signal):
        return all_pole_filter(lsf_to_lpc(lsf_from_increments(x, GAP)), signal)

    assert torch.autograd.gradcheck(chain, (increments, signal))


def test_all_pole_filter_on_the_cpu_equals_the_other_devices_recursion():
    """The Numba kernels (CPU) against the row-by-row torch recursion that other devices run."""
    from sfgraph.dsp.lsf_torch import _all_pole_filter_grad_rows, _all_pole_filter_rows

    torch.manual_seed(1)
    lpc = lsf_to_lpc(lsf_from_increments(torch.rand(70, ORDER + 1, dtype=torch.float64) + 0.05, GAP))
    signal = torch.randn(70, 40, dtype=torch.float64, requires_grad=True)
    lpc.requires_grad_()
    filtered = all_pole_filter(lpc, signal)
    grad = torch.randn(70, 40, dtype=torch.float64)
    grad_lpc, grad_signal = torch.autograd.grad(filtered, (lpc, signal), grad)
    with torch.no_grad():
        expected = _all_pole_filter_rows(lpc, signal)
        expected_grad_signal, expected_grad_lpc = _all_pole_filter_grad_rows(lpc, expected, grad)
    torch.testing.assert_close(filtered, expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grad_signal, expected_grad_signal, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grad_lpc, expected_grad_lpc, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match=r"lpc \(70, 21\) and signal \(35, 80\) need the same leading shape"):
        all_pole_filter(lpc, signal.detach().reshape(35, 80))
