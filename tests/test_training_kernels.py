"""The training step's CPU kernels against the torch ops they stand for: the GRUs (Numba
forward and backpropagation through time), the spectral loss, and the whole network's loss
and gradients with either GRU."""
from __future__ import annotations

import pytest
import torch

from sfgraph.dsp.fft_torch import real_fft
from sfgraph.dsp.voice_torch import synthesize_voices, unit_harmonic_sines
from sfgraph.model import network as network_module
from sfgraph.model.gru import run_grus
from sfgraph.model.loss import FFT_SIZES, spectral_loss, spectrum, torch_spectral_distance
from sfgraph.model.network import NetworkConfig, ParamNet


def torch_grus(grus, inputs, states):
    """``run_grus`` by torch's GRU (its path off the CPU)."""
    results = [gru(x, state) for gru, x, state in zip(grus, inputs, states, strict=True)]
    return [hidden for hidden, _ in results], [last for _, last in results]


def assert_relatively_close(actual, expected, tolerance=1e-4, name=""):
    scale = expected.detach().abs().max().clamp(min=1e-12)
    assert float((actual - expected).detach().abs().max() / scale) < tolerance, name


def weighted_sum(tensors):
    """A loss that weighs every value differently, so that every gradient path counts."""
    generator = torch.Generator().manual_seed(7)
    return sum((t * torch.randn(t.shape, generator=generator)).sum() for t in tensors)


def test_grus_equal_torchs_gru_in_values_and_gradients_with_initial_states():
    torch.manual_seed(0)
    grus = [torch.nn.GRU(width, 12, batch_first=True) for width in (5, 7, 5)]  # input widths may differ
    inputs = [torch.randn(3, 11, gru.input_size, requires_grad=True) for gru in grus]
    states = [None, torch.randn(1, 3, 12, requires_grad=True), 0.5 * torch.randn(1, 3, 12, requires_grad=True)]
    leaves = [p for gru in grus for p in gru.parameters()] + inputs + [s for s in states if s is not None]
    expected_hidden, expected_last = torch_grus(grus, inputs, states)
    expected_grads = torch.autograd.grad(weighted_sum(expected_hidden + expected_last), leaves)
    hidden, last = run_grus(grus, inputs, states)
    for actual, expected in zip(hidden + last, expected_hidden + expected_last, strict=True):
        assert actual.shape == expected.shape
        assert_relatively_close(actual, expected, 1e-5)
    grads = torch.autograd.grad(weighted_sum(hidden + last), leaves)
    for actual, expected in zip(grads, expected_grads, strict=True):
        assert_relatively_close(actual, expected)


def test_a_sequence_in_pieces_with_the_state_carried_equals_the_whole():
    torch.manual_seed(1)
    gru = torch.nn.GRU(6, 10, batch_first=True)
    x = torch.randn(2, 17, 6, requires_grad=True)
    (whole,), (whole_last,) = torch_grus([gru], [x], [None])
    expected_grads = torch.autograd.grad(weighted_sum([whole, whole_last]), [x, *gru.parameters()])
    pieces, state = [], None
    for start, stop in ((0, 5), (5, 6), (6, 17)):
        (hidden,), (state,) = run_grus([gru], [x[:, start:stop]], [state])
        pieces.append(hidden)
    joined = torch.cat(pieces, dim=1)
    assert_relatively_close(joined, whole, 1e-5)
    assert_relatively_close(state, whole_last, 1e-5)
    grads = torch.autograd.grad(weighted_sum([joined, state]), [x, *gru.parameters()])
    for actual, expected in zip(grads, expected_grads, strict=True):
        assert_relatively_close(actual, expected)


def test_spectral_loss_equals_the_torch_ops_in_value_and_gradient():
    torch.manual_seed(2)
    estimate = torch.randn(2, 3, 3000)
    estimate[0, 1, :2000] = 0.0  # silent stretches: zero bins, whose gradient is 0 as torch's abs gives it
    estimate.requires_grad_()
    target = torch.randn(2, 3, 3000)
    target[1, 2] = 0.0
    expected = sum(torch_spectral_distance(spectrum(estimate, n), spectrum(target, n), 1e-7) for n in FFT_SIZES)
    (expected_grad,) = torch.autograd.grad(expected, estimate)
    loss = spectral_loss(estimate, target)
    (grad,) = torch.autograd.grad(loss, estimate)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert_relatively_close(grad, expected_grad, 1e-5)
    with torch.no_grad():
        assert spectral_loss(estimate, target).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("n", [16, 15, 8])  # 8: x truncated, as rfft does
def test_real_fft_gradient(n):
    x = torch.randn(3, 11, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: real_fft(t, n), (x,))


def test_run_grus_refuses_the_grus_it_does_not_run():
    for gru in (torch.nn.GRU(4, 3, num_layers=2, batch_first=True), torch.nn.GRU(4, 3, batch_first=True,
                                                                                 bidirectional=True),
                torch.nn.GRU(4, 3)):
        with pytest.raises(ValueError, match="single-layer, unidirectional, batch-first GRUs only"):
            run_grus([gru], [torch.randn(2, 5, 4)], [None])


def test_the_training_loss_and_gradients_equal_those_with_torchs_gru(monkeypatch):
    """The network with the Numba GRUs against torch's, through the synthesizer and the loss,
    as ``training_step`` runs them. In float64: the loss's absolute values make its gradient
    jump where a bin's two magnitudes cross, so float32 rounding alone moves it by percents."""
    torch.manual_seed(3)
    config = NetworkConfig(hidden=24, causal_frames=True)
    network = ParamNet(config).double()
    frames, hop = 20, config.voice.hop
    mix = 0.1 * torch.randn(2, frames * hop, dtype=torch.float64)
    f0 = 110.0 * 2 ** torch.rand(2, len(config.voices), frames) * (torch.rand(2, len(config.voices), frames) > 0.2)
    sines = unit_harmonic_sines(f0, config.voice, torch.float64)

    def loss_and_grads():
        voices = synthesize_voices(f0, network(mix, f0), config=config.voice,
                                   generator=torch.Generator().manual_seed(4), harmonic_sines=sines)
        loss = spectral_loss(voices.sum(dim=1), mix)
        return loss, torch.autograd.grad(loss, list(network.parameters()))

    loss, grads = loss_and_grads()
    monkeypatch.setattr(network_module, "run_grus", torch_grus)
    expected_loss, expected_grads = loss_and_grads()
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-9)
    for (name, _), actual, expected in zip(network.named_parameters(), grads, expected_grads, strict=True):
        assert_relatively_close(actual, expected, 1e-6, name)
