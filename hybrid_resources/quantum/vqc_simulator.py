"""Exact numpy simulation of the variational classifier's circuit, with adjoint gradients.

The circuit (the one :mod:`hybrid_resources.quantum.vqc` builds as a PennyLane QNode):
``RY(x_i)`` on wire ``i``, then ``qml.StronglyEntanglingLayers(weights)`` with its default
ranges and CNOTs, read out as ``<Z0>``. Per layer ``l``: ``Rot(phi, theta, omega) =
RZ(omega) RY(theta) RZ(phi)`` on every wire, then ``CNOT(i, (i + r) mod n)`` for ``i = 0..n-1``
in turn, ``r = (l mod (n - 1)) + 1`` (no CNOTs on one wire). Tested equal to PennyLane's
``default.qubit`` (values and gradients) in ``tests/resources/test_vqc_simulator.py``.

Conventions as in :mod:`hybrid_resources.quantum.simulator`: wire 0 is the most significant bit
of a basis index; states are rows of a ``(B, 2**n)`` complex128 array, one per sample.

Gradients by the adjoint method: one forward pass, then one backward pass that un-applies the
layers to the final state and to the cotangent-weighted bra ``sum_b g_b Z0 |psi_b>`` together.
The Rot gates of a layer act on different wires, so each can be taken as the layer's last one:
its three angle derivatives come from one 2x2 reduction of (state, bra) on its wire, taken after
the layer's Rots, before its CNOTs.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.simulator import simulate_states

# Up to this many wires a layer's Rot gates are applied as one dense (2**n, 2**n) product (16 MiB
# at 10): one matrix product beats n strided 2x2 passes; above it they go one wire at a time.
_DENSE_MAX_QUBITS = 10
# Amplitudes held at once by a forward-only pass (validation, prediction): ~64 MiB of complex128.
_FORWARD_CHUNK_AMPLITUDES = 1 << 22


def layer_ranges(n_qubits: int, layers: int) -> tuple[int, ...]:
    """``StronglyEntanglingLayers``' default CNOT range of each layer: ``(l mod (n-1)) + 1``, or 0 on one wire."""
    if n_qubits < 2:
        return (0,) * layers
    return tuple((layer % (n_qubits - 1)) + 1 for layer in range(layers))


@lru_cache(maxsize=64)
def _cnot_ring_permutation(n_qubits: int, r: int) -> np.ndarray:
    """(2**n,) int64 ``p``: after ``CNOT(i, (i + r) mod n)`` for ``i = 0..n-1`` in turn, the
    amplitude of basis state ``z`` is the old amplitude of ``p[z]`` (``new = old[:, p]``)."""
    dim = 2**n_qubits
    p = np.arange(dim)
    for i in range(n_qubits):
        control = 1 << (n_qubits - 1 - i)
        target = 1 << (n_qubits - 1 - (i + r) % n_qubits)
        # new[z] = old[z ^ target] where control is set; composing: p <- p[cnot]
        cnot = np.where(np.arange(dim) & control, np.arange(dim) ^ target, np.arange(dim))
        p = p[cnot]
    p.setflags(write=False)
    return p


@lru_cache(maxsize=64)
def _cnot_ring_inverse(n_qubits: int, r: int) -> np.ndarray:
    """The inverse of :func:`_cnot_ring_permutation`: ``old = new[:, q]``."""
    q = np.argsort(_cnot_ring_permutation(n_qubits, r))
    q.setflags(write=False)
    return q


def rot_matrices(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Rot`` matrices of ``weights`` (layers, n, 3) = (phi, theta, omega) radians, and their
    derivatives: ``(R (layers, n, 2, 2), dR (layers, n, 3, 2, 2))`` complex128,
    ``R = RZ(omega) RY(theta) RZ(phi)``, ``dR[..., k, :, :] = dR / d weights[..., k]``."""
    phi, theta, omega = (weights[..., k] for k in range(3))
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    plus, minus = np.exp(-0.5j * (phi + omega)), np.exp(0.5j * (phi - omega))
    R = np.stack([np.stack([plus * c, -minus * s], -1),
                  np.stack([np.conj(minus) * s, np.conj(plus) * c], -1)], -2)
    z = np.array([1.0, -1.0])
    # d/dphi multiplies column j by -i z_j / 2; d/domega row j likewise; d/dtheta: the RY derivative.
    d_phi = R * (-0.5j * z)[None, :]
    d_omega = R * (-0.5j * z)[:, None]
    d_theta = np.stack([np.stack([-0.5 * plus * s, -0.5 * minus * c], -1),
                        np.stack([0.5 * np.conj(minus) * c, -0.5 * np.conj(plus) * s], -1)], -2)
    return R, np.stack([d_phi, d_theta, d_omega], axis=-3)


def _apply_1q(states: np.ndarray, u: np.ndarray, wire: int, n_qubits: int) -> np.ndarray:
    """``u`` (2, 2) on ``wire`` of each row of ``states`` (M, 2**n); returns a new (M, 2**n) array."""
    v = states.reshape(-1, 2, 2 ** (n_qubits - 1 - wire))
    return np.matmul(u, v).reshape(states.shape)


def _rot_layer_matrix(rots: np.ndarray) -> np.ndarray | None:
    """``Rot_0 (x) ... (x) Rot_{n-1}`` (2**n, 2**n) of one layer's ``rots`` (n, 2, 2), or None above
    :data:`_DENSE_MAX_QUBITS` wires (the gates are then applied one wire at a time)."""
    if rots.shape[0] > _DENSE_MAX_QUBITS:
        return None
    out = rots[0]
    for u in rots[1:]:  # kron(out, u), wire 0 most significant
        out = (out[:, None, :, None] * u[None, :, None, :]).reshape(2 * out.shape[0], 2 * out.shape[1])
    return out


def _apply_rots(states: np.ndarray, rots: np.ndarray, dense: np.ndarray | None, *, inverse: bool = False) -> np.ndarray:
    """Each wire's ``rots[i]`` (n, 2, 2) (their inverses with ``inverse``) on the rows of ``states``
    (M, 2**n); ``dense`` is their product from :func:`_rot_layer_matrix`. Returns a new array."""
    if dense is not None:  # rows: psi^T K^T forward, psi^T conj(K) = (K^dagger psi)^T inverse
        return states @ (np.conj(dense) if inverse else dense.T)
    n = rots.shape[0]
    for wire in range(n):
        states = _apply_1q(states, np.conj(rots[wire].T) if inverse else rots[wire], wire, n)
    return states


def _final_states(X: np.ndarray, rots: np.ndarray, ranges: tuple[int, ...],
                  dense: list[np.ndarray | None]) -> np.ndarray:
    """``U(weights) RY(X)|0>`` for each row of ``X`` (B, n) radians: (B, 2**n) complex128.
    ``rots`` (layers, n, 2, 2) and ``dense`` (per layer) from :func:`rot_matrices` / :func:`_rot_layer_matrix`."""
    n = X.shape[1]
    states = simulate_states(FeatureMapSpec("angle", n), X).astype(np.complex128)
    for layer, r in enumerate(ranges):
        states = _apply_rots(states, rots[layer], dense[layer])
        if r:
            states = states[:, _cnot_ring_permutation(n, r)]
    return states


def _z0(states: np.ndarray) -> np.ndarray:
    """``<Z0>`` of each row of ``states`` (M, 2**n): weight of wire 0 = |0> minus wire 0 = |1>."""
    half = states.shape[1] // 2
    prob = states.real**2 + states.imag**2
    return prob[:, :half].sum(axis=1) - prob[:, half:].sum(axis=1)


def _wire_cross(states: np.ndarray, bras: np.ndarray) -> np.ndarray:
    """(n, 2, 2) ``C[i, j, k] = sum over rows and the other wires of states[.., j on wire i, ..] *
    conj(bras[.., k on wire i, ..])``, from ``states`` and ``bras`` (B, 2**n)."""
    n = states.shape[1].bit_length() - 1
    conj = np.conj(bras)
    return np.stack([np.einsum("ajc,akc->jk", states.reshape(-1, 2, 2 ** (n - 1 - wire)),
                               conj.reshape(-1, 2, 2 ** (n - 1 - wire))) for wire in range(n)])


def _check(X: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(X, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if X.ndim != 2 or weights.ndim != 3 or weights.shape[1:] != (X.shape[1], 3):
        raise ValueError(f"X must be (B, n) and weights (layers, n, 3); got {X.shape} and {weights.shape}")
    return X, weights


def expval_z0(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``<Z0>`` of the circuit for each row of ``X`` (B, n) radians, ``weights`` (layers, n, 3):
    float64 (B,) in [-1, 1]. Rows are simulated in chunks of bounded memory."""
    X, weights = _check(X, weights)
    rots, _ = rot_matrices(weights)
    ranges = layer_ranges(X.shape[1], weights.shape[0])
    dense = [_rot_layer_matrix(layer) for layer in rots]
    chunk = max(1, _FORWARD_CHUNK_AMPLITUDES >> X.shape[1])
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], chunk):
        out[start:start + chunk] = _z0(_final_states(X[start:start + chunk], rots, ranges, dense))
    return out


def expval_z0_and_vjp(X: np.ndarray, weights: np.ndarray,
                      cotangent: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``z = <Z0>`` (B,) for each row of ``X`` (B, n) radians and ``sum_b g_b dz_b/dweights``
    (layers, n, 3), where ``g = cotangent(z)`` (B,) (e.g. dLoss/dz): one forward and one
    adjoint pass over the gates, batched over the rows. Memory ~ 3 * B * 2**n * 16 bytes."""
    X, weights = _check(X, weights)
    n, layers = X.shape[1], weights.shape[0]
    rots, d_rots = rot_matrices(weights)
    ranges = layer_ranges(n, layers)
    dense = [_rot_layer_matrix(layer) for layer in rots]
    psi = _final_states(X, rots, ranges, dense)
    z = _z0(psi)
    g = np.asarray(cotangent(z), dtype=np.float64)
    bra = psi * g[:, None]
    bra[:, psi.shape[1] // 2:] *= -1.0  # Z0
    pair = np.concatenate([psi, bra])  # states and bras un-applied together
    B = psi.shape[0]
    # dz/dw = 2 Re <bra| dR R^dagger |psi> at the point after the layer's Rots: Tr(dR R^dagger C).
    d_then_undo = np.matmul(d_rots, np.conj(np.swapaxes(rots, -1, -2))[..., None, :, :])
    grad = np.empty(weights.shape)
    for layer in range(layers - 1, -1, -1):
        if ranges[layer]:
            pair = pair[:, _cnot_ring_inverse(n, ranges[layer])]
        grad[layer] = 2.0 * np.einsum("wkij,wji->wk", d_then_undo[layer], _wire_cross(pair[:B], pair[B:])).real
        pair = _apply_rots(pair, rots[layer], dense[layer], inverse=True)
    return z, grad
