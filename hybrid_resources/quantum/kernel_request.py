"""What one kernel computation is asked for: rows of X against rows of Y, a feature map, a backend,
and the per-row content keys that identify samples in the kernel cache."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.feature_maps import FeatureMapSpec

__all__ = ["KernelRequest", "sample_keys"]


def sample_keys(X: np.ndarray) -> list[str]:
    """Content hash per row: blake2b-128 hex of the row's float64 bytes."""
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    return [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in X]


@dataclass(frozen=True)
class KernelRequest:
    """One kernel matrix to compute: rows of ``X`` against rows of ``Y``.

    ``X`` (R, n) and ``Y`` (C, n) float64 radians; ``symmetric`` when Y is X itself (then the
    result is symmetric with a unit diagonal). ``row_keys``/``col_keys`` are per-row content
    keys, the identity of a sample in the cache (empty without a cache; for a symmetric
    request ``col_keys is row_keys``).
    """

    X: np.ndarray
    Y: np.ndarray
    spec: FeatureMapSpec
    backend: BackendConfig
    symmetric: bool
    row_keys: tuple[str, ...] = ()
    col_keys: tuple[str, ...] = ()

    @classmethod
    def of(cls, X: np.ndarray, Y: np.ndarray | None, *, spec: FeatureMapSpec, backend: BackendConfig,
           keyed: bool = False, x_keys: Sequence[str] | None = None,
           y_keys: Sequence[str] | None = None) -> "KernelRequest":
        """Validate the inputs; with ``keyed``, take or compute the per-row cache keys."""
        X = np.asarray(X, dtype=np.float64)
        symmetric = Y is None
        Y = X if symmetric else np.asarray(Y, dtype=np.float64)
        for name, arr in (("X", X), ("Y", Y)):
            if arr.ndim != 2 or arr.shape[1] != spec.n_qubits:
                raise ValueError(f"{name} must be (N, {spec.n_qubits}), got {arr.shape}")
        row_keys = col_keys = ()
        if keyed:
            row_keys = tuple(x_keys) if x_keys is not None else tuple(sample_keys(X))
            col_keys = row_keys if symmetric else (tuple(y_keys) if y_keys is not None else tuple(sample_keys(Y)))
            if len(row_keys) != len(X) or len(col_keys) != len(Y):
                raise ValueError("x_keys/y_keys must have one key per row")
        return cls(X, Y, spec, backend, symmetric, row_keys, col_keys)

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape[0], self.Y.shape[0]
