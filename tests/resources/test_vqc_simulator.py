"""The numpy simulation of the VQC's circuit equals PennyLane's: values, gradients, decomposition."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

import hybrid_resources.quantum.vqc_simulator as vqc_simulator
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.vqc import (
    _bce,
    _logits,
    _make_qnode,
    _numpy_loss_and_grad,
)
from hybrid_resources.quantum.vqc_simulator import (
    expval_z0,
    expval_z0_and_vjp,
    layer_ranges,
    rot_matrices,
)

# (n_qubits, layers, batch): one and two wires (no CNOT ring / a ring of two), ranges that wrap, the default 6.
CASES = [(1, 1, 3), (1, 3, 4), (2, 2, 5), (3, 3, 4), (4, 5, 3), (6, 2, 7)]


def _inputs(n: int, layers: int, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.0, np.pi, size=(batch, n)), rng.uniform(0.0, 2 * np.pi, size=(layers, n, 3)),
            np.arange(batch) % 2, float(rng.normal()))


def _pennylane_loss_and_grad(X: np.ndarray, y: np.ndarray, weights: np.ndarray, bias: float) -> tuple[float, np.ndarray]:
    """The trainer's QNode path on default.qubit (backprop): BCE and its gradient in weights and bias."""
    qnode = _make_qnode(BackendConfig(), X.shape[1], None)
    n_w = weights.size

    def cost(theta):
        return _bce(_logits(qnode, X, pnp.reshape(theta[:n_w], weights.shape), theta[n_w]), y)

    grad_fn = qml.grad(cost)
    grad = np.asarray(grad_fn(pnp.array(np.concatenate([weights.ravel(), [bias]]), requires_grad=True)))
    return float(grad_fn.forward), grad


@pytest.mark.parametrize(("n", "layers", "batch"), CASES)
def test_expectations_loss_and_gradient_equal_pennylane_backprop(n: int, layers: int, batch: int) -> None:
    X, weights, y, bias = _inputs(n, layers, batch, seed=10 * n + layers)
    z_pl = np.asarray(_make_qnode(BackendConfig(), n, None)(X, weights)).reshape(-1)
    np.testing.assert_allclose(expval_z0(X, weights), z_pl, rtol=0, atol=1e-10)
    loss, grad = _numpy_loss_and_grad(X, y, weights, bias)
    loss_pl, grad_pl = _pennylane_loss_and_grad(X, y, weights, bias)
    assert abs(loss - loss_pl) <= 1e-10
    assert np.abs(grad_pl).max() > 1e-3  # a gradient worth comparing
    np.testing.assert_allclose(grad, grad_pl, rtol=0, atol=1e-10)


def test_the_vjp_is_the_cotangent_weighted_sum_of_each_rows_gradient() -> None:
    X, weights, _, _ = _inputs(3, 2, 4, seed=1)
    g = np.array([0.5, -1.0, 2.0, 0.0])
    z, total = expval_z0_and_vjp(X, weights, lambda z: g)
    rows = [expval_z0_and_vjp(X[[b]], weights, lambda z: np.ones(1))[1] for b in range(4)]
    np.testing.assert_allclose(total, sum(gb * rb for gb, rb in zip(g, rows)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(z, expval_z0(X, weights), rtol=0, atol=1e-14)


def test_one_wire_at_a_time_above_the_dense_limit_and_chunked_forward_passes(monkeypatch) -> None:
    X, weights, y, bias = _inputs(5, 3, 6, seed=2)
    dense_z, dense = expval_z0(X, weights), _numpy_loss_and_grad(X, y, weights, bias)
    monkeypatch.setattr(vqc_simulator, "_DENSE_MAX_QUBITS", 0)  # wider circuits take this path
    monkeypatch.setattr(vqc_simulator, "_FORWARD_CHUNK_AMPLITUDES", 2**5 * 4)  # chunks of 4 rows: 4 + 2
    np.testing.assert_allclose(expval_z0(X, weights), dense_z, rtol=0, atol=1e-12)
    loss, grad = _numpy_loss_and_grad(X, y, weights, bias)
    assert abs(loss - dense[0]) <= 1e-12
    np.testing.assert_allclose(grad, dense[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(grad, _pennylane_loss_and_grad(X, y, weights, bias)[1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_gates_follow_pennylanes_decomposition(n: int) -> None:
    layers = 5
    weights = np.random.default_rng(n).uniform(0.0, 2 * np.pi, size=(layers, n, 3))
    template = qml.StronglyEntanglingLayers(weights, wires=range(n))
    assert layer_ranges(n, layers) == tuple(template.hyperparameters["ranges"])
    ops = template.decomposition()
    rots, _ = rot_matrices(weights)
    expected_cnots = [(i, (i + r) % n) for r in layer_ranges(n, layers) for i in range(n)] if n > 1 else []
    assert [tuple(op.wires) for op in ops if op.name == "CNOT"] == expected_cnots
    rot_ops = [op for op in ops if op.name == "Rot"]
    assert len(rot_ops) == layers * n and len(ops) == len(rot_ops) + len(expected_cnots)
    for k, op in enumerate(rot_ops):
        np.testing.assert_allclose(rots.reshape(-1, 2, 2)[k], qml.matrix(op), rtol=0, atol=1e-14)


def test_rot_derivatives_are_the_matrix_derivatives() -> None:
    weights = np.array([[[0.3, 1.1, -0.7], [2.0, -0.4, 0.9]]])
    _, d_rots = rot_matrices(weights)
    eps = 1e-6
    for k in range(3):
        shift = np.zeros_like(weights)
        shift[..., k] = eps
        numeric = (rot_matrices(weights + shift)[0] - rot_matrices(weights - shift)[0]) / (2 * eps)
        np.testing.assert_allclose(d_rots[:, :, k], numeric, rtol=0, atol=1e-9)


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="weights"):
        expval_z0(np.zeros((2, 3)), np.zeros((1, 2, 3)))
