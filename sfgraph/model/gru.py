"""The parameter network's GRU layers on the CPU: forward and backward as Numba kernels.

torch's GRU on the CPU runs a dozen small ops per frame forward and some thirty backward;
at the network's size (width 192, batches of 8, 250 frames) their dispatch cost more than
their arithmetic: the five GRUs took 0.57 s of a 1.4-s training step (issue 16). Here the
input half of every gate runs as one batched matrix product over all the frames (torch,
differentiated by autograd), and the recurrence runs frame by frame in a Numba kernel,
several GRUs of the same width in one call: per frame one BLAS product for the recurrent
half and one loop over the gates. Backward is the hand-written backpropagation through
time of the same equations; the recurrent weights' gradient is again one product over all
the frames. The equations are ``torch.nn.GRU``'s (gates r, z, n; ``b_hn`` inside
``r * (W_hn h + b_hn)``), on its parameters, so checkpoints are unchanged; values and
gradients equal torch's within float32 rounding (tested).
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit
from torch import nn
from torch.autograd.function import once_differentiable

from sfgraph.threads import numpy_blas_threads


@njit(cache=True, nogil=True)
def gru_forward_kernel(input_gates: np.ndarray, recurrent_weights_t: np.ndarray, recurrent_bias: np.ndarray,
                       state: np.ndarray, hidden_out: np.ndarray, gates_out: np.ndarray,
                       recurrent_candidate_out: np.ndarray) -> None:
    """Runs ``G`` GRUs over ``T`` frames of a batch of ``B`` (time-major, so that each frame's
    rows are one contiguous block for the BLAS product).

    ``input_gates`` (G, T, B, 3H): each frame's input times the input weights, plus their bias;
    ``recurrent_weights_t`` (G, H, 3H): the recurrent weights transposed; ``recurrent_bias``
    (G, 3H); ``state`` (G, B, H): the state before the first frame, updated in place to the
    state after the last. Out: ``hidden_out`` (G, T, B, H) each frame's state; for the backward
    pass, ``gates_out`` (G, T, B, 3H) the gates r, z, n after their nonlinearities and
    ``recurrent_candidate_out`` (G, T, B, H) ``W_hn h + b_hn``.
    """
    n_grus, frames, batch, gates = input_gates.shape
    width = gates // 3
    # float32 throughout, and tanh as 2 sigmoid(2x) - 1: the gates' exponentials were most of
    # the kernel's time, and the C library's tanhf takes seven times its expf
    one, two = np.float32(1.0), np.float32(2.0)
    for g in range(n_grus):
        bias = recurrent_bias[g]
        for t in range(frames):
            recurrent = np.dot(state[g], recurrent_weights_t[g])  # (B, 3H)
            for b in range(batch):
                inputs, recurrent_row, previous = input_gates[g, t, b], recurrent[b], state[g, b]
                gates_row, candidate_recurrent_row = gates_out[g, t, b], recurrent_candidate_out[g, t, b]
                for j in range(width):
                    reset = one / (one + np.exp(-(inputs[j] + recurrent_row[j] + bias[j])))
                    update = one / (one + np.exp(-(inputs[width + j] + recurrent_row[width + j] + bias[width + j])))
                    candidate_recurrent = recurrent_row[2 * width + j] + bias[2 * width + j]
                    candidate = two / (one + np.exp(-two * (inputs[2 * width + j] + reset * candidate_recurrent))) - one
                    previous[j] = (one - update) * candidate + update * previous[j]
                    gates_row[j] = reset
                    gates_row[width + j] = update
                    gates_row[2 * width + j] = candidate
                    candidate_recurrent_row[j] = candidate_recurrent
                hidden_out[g, t, b] = previous


@njit(cache=True, nogil=True)
def gru_backward_kernel(grad_hidden: np.ndarray, grad_state: np.ndarray, recurrent_weights: np.ndarray,
                        hidden: np.ndarray, initial_state: np.ndarray, gates: np.ndarray,
                        recurrent_candidate: np.ndarray, grad_input_gates_out: np.ndarray,
                        grad_recurrent_out: np.ndarray) -> None:
    """Backpropagation through time of ``gru_forward_kernel`` (same layouts).

    ``grad_hidden`` (G, T, B, H): the loss's gradient with respect to each frame's state;
    ``grad_state`` (G, B, H): with respect to the state after the last frame, updated in place
    to the gradient with respect to ``initial_state``. ``recurrent_weights`` (G, 3H, H)
    untransposed; ``hidden``, ``gates`` and ``recurrent_candidate`` as the forward pass wrote
    them. Out: ``grad_input_gates_out`` (G, T, B, 3H), the gradient with respect to
    ``input_gates``, and ``grad_recurrent_out`` (G, T, B, 3H), with respect to each frame's
    recurrent product plus bias (``W_h h + b_h``), from which the caller forms the recurrent
    weights' and bias's gradients.
    """
    n_grus, frames, batch, n_gates = gates.shape
    width = n_gates // 3
    for g in range(n_grus):
        for t in range(frames - 1, -1, -1):
            for b in range(batch):
                for j in range(width):
                    grad = grad_hidden[g, t, b, j] + grad_state[g, b, j]
                    previous = hidden[g, t - 1, b, j] if t > 0 else initial_state[g, b, j]
                    reset = gates[g, t, b, j]
                    update = gates[g, t, b, width + j]
                    candidate = gates[g, t, b, 2 * width + j]
                    grad_candidate = grad * (1.0 - update) * (1.0 - candidate * candidate)
                    grad_update = grad * (previous - candidate) * update * (1.0 - update)
                    grad_reset = grad_candidate * recurrent_candidate[g, t, b, j] * reset * (1.0 - reset)
                    grad_input_gates_out[g, t, b, j] = grad_reset
                    grad_input_gates_out[g, t, b, width + j] = grad_update
                    grad_input_gates_out[g, t, b, 2 * width + j] = grad_candidate
                    grad_recurrent_out[g, t, b, j] = grad_reset
                    grad_recurrent_out[g, t, b, width + j] = grad_update
                    grad_recurrent_out[g, t, b, 2 * width + j] = grad_candidate * reset
                    grad_state[g, b, j] = grad * update  # through h = (1 - z) n + z h_prev
            grad_state[g] += np.dot(grad_recurrent_out[g, t], recurrent_weights[g])


class _GRUSequences(torch.autograd.Function):
    """``G`` GRUs over a sequence by the Numba kernels: ``(input_gates (G, T, B, 3H),
    recurrent_weights (G, 3H, H), recurrent_bias (G, 3H), initial_state (G, B, H))`` →
    ``(hidden (G, T, B, H), last state (G, B, H))``, differentiable in all four."""

    @staticmethod
    def forward(ctx, input_gates, recurrent_weights, recurrent_bias, initial_state):
        n_grus, frames, batch, _ = input_gates.shape
        width = recurrent_weights.shape[-1]
        state = initial_state.detach().clone().contiguous()
        hidden = input_gates.new_empty(n_grus, frames, batch, width)
        gates = input_gates.new_empty(input_gates.shape)  # contiguous whatever the input's strides
        recurrent_candidate = torch.empty_like(hidden)
        with numpy_blas_threads(1):  # the per-frame products are small: a team only waits for its threads
            gru_forward_kernel(_array(input_gates), _array(recurrent_weights.transpose(1, 2)),
                               _array(recurrent_bias), state.numpy(), hidden.numpy(), gates.numpy(),
                               recurrent_candidate.numpy())
        ctx.save_for_backward(recurrent_weights, initial_state, hidden, gates, recurrent_candidate)
        return hidden, state

    @staticmethod
    @once_differentiable  # numpy and Numba inside: no graph for second derivatives
    def backward(ctx, grad_hidden, grad_last_state):
        recurrent_weights, initial_state, hidden, gates, recurrent_candidate = ctx.saved_tensors
        n_grus, frames, batch, width = hidden.shape
        grad_state = grad_last_state.detach().clone().contiguous()
        grad_input_gates = torch.empty_like(gates)
        grad_recurrent = torch.empty_like(gates)
        with numpy_blas_threads(1):
            gru_backward_kernel(_array(grad_hidden), grad_state.numpy(), _array(recurrent_weights), hidden.numpy(),
                                _array(initial_state), gates.numpy(), recurrent_candidate.numpy(),
                                grad_input_gates.numpy(), grad_recurrent.numpy())
        previous = torch.cat([initial_state.detach()[:, None], hidden[:, :-1]], dim=1)  # h_{t-1} of every frame
        rows = grad_recurrent.reshape(n_grus, frames * batch, -1)
        grad_weights = torch.bmm(rows.transpose(1, 2), previous.reshape(n_grus, frames * batch, width))
        return grad_input_gates, grad_weights, rows.sum(dim=1), grad_state


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


def run_grus(grus: list[nn.GRU], inputs: list[torch.Tensor], states: list[torch.Tensor | None]
             ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each single-layer, batch-first ``nn.GRU`` of ``grus`` over its input (B, T, I) from its
    state ((1, B, H), or None for zeros), as ``gru(input, state)`` gives them: the hidden
    states (B, T, H) and the last state (1, B, H) of each. On the CPU all of them in one call
    of the Numba kernels (their input widths may differ, their hidden widths not); elsewhere
    torch's GRU, one after the other."""
    if any(gru.num_layers != 1 or gru.bidirectional or not gru.batch_first for gru in grus):
        raise ValueError("run_grus runs single-layer, unidirectional, batch-first GRUs only")
    if inputs[0].device.type != "cpu":
        results = [gru(x, state) for gru, x, state in zip(grus, inputs, states, strict=True)]
        return [hidden for hidden, _ in results], [last for _, last in results]
    batch, width = inputs[0].shape[0], grus[0].hidden_size
    # the input half of the gates, time-major, for all frames at once
    input_gates = torch.stack([torch.nn.functional.linear(x.transpose(0, 1), gru.weight_ih_l0, gru.bias_ih_l0)
                               for gru, x in zip(grus, inputs, strict=True)])
    initial = torch.stack([inputs[0].new_zeros(batch, width) if state is None else state[0] for state in states])
    hidden, last = _GRUSequences.apply(input_gates, torch.stack([gru.weight_hh_l0 for gru in grus]),
                                       torch.stack([gru.bias_hh_l0 for gru in grus]), initial)
    return list(hidden.transpose(1, 2).unbind(0)), [state[None] for state in last.unbind(0)]
