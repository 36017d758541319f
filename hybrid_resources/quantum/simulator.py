"""A fast numpy statevector simulation of the feature maps' gates (tested equal to PennyLane).

The kernel engine's exact path uses it: exact statevectors do not depend on the device, and
one vectorised pass over a chunk of samples is far cheaper than a circuit per sample.
Conventions as in :mod:`hybrid_resources.quantum.feature_maps`: wire 0 is the most
significant bit of a basis index.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hybrid_resources.quantum.feature_maps import FeatureMapSpec, entangling_pairs


@lru_cache(maxsize=32)
def _z_signs(n_qubits: int) -> np.ndarray:
    """(2**n, n) float64: s[z, i] = +1 if wire i is |0> in basis state z, else -1."""
    z = np.arange(2**n_qubits)[:, None]
    bits = (z >> (n_qubits - 1 - np.arange(n_qubits))[None, :]) & 1
    return (1 - 2 * bits).astype(np.float64)


@lru_cache(maxsize=64)
def _iqp_sign_matrix(n_qubits: int, entanglement: str) -> np.ndarray:
    """(n + n_pairs, 2**n): rows s_i and s_i*s_j, so phase angles are one real matmul."""
    s = _z_signs(n_qubits)
    pairs = entangling_pairs(n_qubits, entanglement) if n_qubits > 1 else []
    cols = [s[:, i] for i in range(n_qubits)] + [s[:, i] * s[:, j] for i, j in pairs]
    return np.ascontiguousarray(np.stack(cols, axis=0))


_DENSE_H_MAX_QUBITS = 11


@lru_cache(maxsize=16)
def _hadamard_matrix(n_qubits: int) -> np.ndarray:
    """(2**n, 2**n) normalised H^{(x)n}, symmetric and real."""
    h1 = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2.0)
    h = np.ones((1, 1))
    for _ in range(n_qubits):
        h = np.kron(h, h1)
    return h


def _fwht_inplace(re: np.ndarray, im: np.ndarray, n_qubits: int) -> None:
    """Unnormalised Walsh-Hadamard transform along axis 1 of (B, 2**n) arrays, in place."""
    b = re.shape[0]
    for k in range(n_qubits):
        for arr in (re, im):
            v = arr.reshape(b, 2**k, 2, 2 ** (n_qubits - k - 1))
            lo = v[:, :, 0, :].copy()
            hi = v[:, :, 1, :]
            v[:, :, 0, :] += hi
            np.subtract(lo, hi, out=hi)


def simulate_states(spec: FeatureMapSpec, X: np.ndarray) -> np.ndarray:
    """Statevectors U(x)|0...0> for each row of X, by direct numpy simulation.

    X: (N, n_qubits) real. Returns (N, 2**n) float64 for maps with real amplitudes
    (angle) or complex128 otherwise (iqp). Memory ~ N * 2**n * 16 bytes; the caller chunks.
    """
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    if X.ndim != 2 or X.shape[1] != spec.n_qubits:
        raise ValueError(f"X must be (N, {spec.n_qubits}), got {X.shape}")
    if spec.bandwidth != 1.0:
        X = X * spec.bandwidth
    n = spec.n_qubits
    N = X.shape[0]
    if spec.name == "angle":
        # Product state: kron of (cos(x/2), sin(x/2)) with wire 0 most significant.
        c, s = np.cos(X / 2), np.sin(X / 2)
        out = np.ones((N, 1))
        for i in range(n):
            q = np.stack([c[:, i], s[:, i]], axis=1)  # (N, 2)
            out = (out[:, :, None] * q[:, None, :]).reshape(N, -1)
        return out
    if spec.name == "iqp":
        pairs = entangling_pairs(n, spec.entanglement) if n > 1 else []
        feats = np.concatenate([X] + ([np.stack([X[:, i] * X[:, j] for i, j in pairs], axis=1)] if pairs else []), axis=1)
        # RZ(t) = diag(e^{-it/2}, e^{it/2}), MultiRZ(t) = exp(-i t Z Z / 2): the diagonal
        # layer multiplies basis state z by exp(-i/2 * sum_k feats_k * sign_k(z)).
        angle = feats @ _iqp_sign_matrix(n, spec.entanglement)
        angle *= -0.5
        ph_re, ph_im = np.cos(angle), np.sin(angle)
        # First rep: H|0..0> is uniform, so the state is just the phase / sqrt(2^n).
        norm = 1.0 / np.sqrt(2.0**n)
        re = ph_re * norm
        im = ph_im * norm
        for _ in range(spec.reps - 1):
            if n <= _DENSE_H_MAX_QUBITS:
                # A dense real Hadamard product is BLAS-bound and beats the strided FWHT.
                h = _hadamard_matrix(n)
                re, im = re @ h, im @ h
            else:
                _fwht_inplace(re, im, n)
                re *= norm
                im *= norm
            # (re + i im) * (ph_re + i ph_im)
            new_re = re * ph_re - im * ph_im
            im = re * ph_im + im * ph_re
            re = new_re
        out = np.empty((N, 2**n), dtype=np.complex128)
        out.real = re
        out.imag = im
        return out
    raise ValueError(f"no numpy simulation for feature map {spec.name!r}")
