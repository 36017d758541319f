"""Kernel diagnostics: can this kernel help at all on this data, and how many shots does it need?

Small pure functions on precomputed Gram matrices (float arrays, entries in [0, 1] for fidelity
kernels), in the manner of PennyLane's ``qml.kernels`` module:

- :func:`concentration`: mean and variance of the off-diagonal entries (Thanasilp et al.,
  "Exponential concentration in quantum kernel methods", arXiv:2208.11060): when the variance is
  below the shot noise of an entry, a shot-based estimate cannot tell samples apart;
- :func:`geometric_difference`: g(K_C || K_Q) of Huang et al., "Power of data in quantum
  machine learning" (Nat. Commun. 12, 2631, 2021); a g far below sqrt(N) leaves no room for a
  quantum advantage on the given data;
- :func:`target_alignment`: kernel-target alignment (Cristianini et al. 2001), for binary labels
  the same quantity as ``qml.kernels.target_alignment`` computed from a precomputed matrix; for
  K classes the centered alignment with the one-hot label kernel, for regression with the
  target kernel (concentration and geometric difference need no labels);
- :func:`emulate_shots`: a noiseless compute-uncompute estimate with ``shots`` shots, sampled
  from the exact entries: each entry is Binomial(shots, p) / shots;
- :func:`binomial_abs_error` and :func:`expected_shot_errors`: what that estimate's error is on
  average, in closed form (de Moivre's mean absolute deviation of a binomial), with no draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Concentration:
    """Off-diagonal statistics of a kernel, and whether ``shots`` shots can resolve them."""

    mean: float
    variance: float
    shot_noise_variance: float  # mean p(1-p)/shots over the off-diagonal entries
    shots: int
    shots_to_resolve: int  # shots at which the shot noise variance equals the spread of the entries

    @property
    def resolvable(self) -> bool:
        return self.variance > self.shot_noise_variance


def concentration(kernel: np.ndarray, *, shots: int) -> Concentration:
    """Mean and variance of the off-diagonal entries of a square kernel, against the shot noise
    variance p(1-p)/shots an estimate of each entry from ``shots`` shots would carry.

    >>> c = concentration(np.array([[1.0, 0.5], [0.5, 1.0]]), shots=100)
    >>> (c.mean, c.variance, c.shot_noise_variance)
    (0.5, 0.0, 0.0025)
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    off = kernel[~np.eye(kernel.shape[0], dtype=bool)] if kernel.shape[0] > 1 else np.zeros(1)
    noise_per_shot = float(np.mean(off * (1.0 - off)))
    variance = float(np.var(off))
    to_resolve = math.ceil(noise_per_shot / variance) if variance > 0 else -1
    return Concentration(float(np.mean(off)), variance, noise_per_shot / shots, shots, to_resolve)


_DENSE_EIGEN_MAX = 64  # below this a dense eigensolve is simplest


def _normalized(kernel: np.ndarray) -> np.ndarray:
    """The kernel scaled to trace N, as Huang et al. compare kernels."""
    kernel = np.asarray(kernel, dtype=np.float64)
    return kernel * (kernel.shape[0] / np.trace(kernel))


def geometric_difference(classical: np.ndarray, quantum: np.ndarray, *, regularization: float = 0.0) -> float:
    """g(K_C || K_Q) = sqrt(|| sqrt(K_Q) (K_C + reg I)^-1 sqrt(K_Q) ||_2), both kernels scaled to trace N.

    Huang et al. (2021): the prediction error of the classical model is bounded by g^2 times the
    quantum model's, so when g is small compared with sqrt(N) the classical kernel does at least
    as well on this data, whatever the labels. ``regularization`` keeps a near-singular K_C
    invertible (K_C + reg I must be positive definite: ``numpy.linalg.LinAlgError`` otherwise).

    That norm is the largest eigenvalue of K_C^-1 K_Q, so g^2 is the top eigenvalue of
    L^-1 K_Q L^-T with L the Cholesky factor of K_C + reg I: one factorisation and a few
    O(N^2) Lanczos products, where square roots, a solve and a 2-norm cost an SVD of an N x N
    matrix (minutes at N = 4,000). K_Q is taken as given: an exact kernel is positive
    semi-definite, and for one with negative eigenvalues this is a lower bound.

    >>> round(geometric_difference(np.array([[1, .5, 0], [.5, 1, 0], [0, 0, 1.]]), np.eye(3)), 6)
    1.414214
    """
    from scipy.linalg import solve_triangular
    from scipy.sparse.linalg import LinearOperator, eigsh

    k_c, k_q = _normalized(classical), _normalized(quantum)
    n = len(k_c)
    lower = np.linalg.cholesky(k_c + regularization * np.eye(n))

    def whitened(v: np.ndarray) -> np.ndarray:  # L^-1 K_Q L^-T v
        return solve_triangular(lower, k_q @ solve_triangular(lower, v, lower=True, trans="T"), lower=True)

    if n <= _DENSE_EIGEN_MAX:
        top = float(np.linalg.eigvalsh(whitened(np.eye(n)))[-1])
    else:
        operator = LinearOperator((n, n), matvec=whitened, dtype=np.float64)
        # A fixed start vector keeps the figure identical from run to run.
        top = float(eigsh(operator, k=1, which="LA", v0=np.full(n, 1.0 / math.sqrt(n)),
                          return_eigenvectors=False)[0])
    return float(math.sqrt(max(top, 0.0)))


def label_task(labels: np.ndarray) -> str:
    """The task labels imply when none is given: float targets are regression, class indices
    above 1 multi-class, otherwise binary (labels 0/1 or -1/+1).

    >>> label_task(np.array([0, 2, 1])), label_task(np.array([0.5, 1.0])), label_task(np.array([1, 0]))
    ('multiclass', 'regression', 'binary')
    """
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":
        return "regression"
    return "multiclass" if labels.size and labels.max() > 1 else "binary"


def target_kernel(labels: np.ndarray, *, task: str | None = None, rescale_class_labels: bool = True) -> np.ndarray:
    """The ideal (n, n) kernel of the labels that :func:`target_alignment` compares a kernel with.

    - ``binary``: y y^T with y in {-1, +1}, each divided by its class size when
      ``rescale_class_labels`` (as ``qml.kernels.target_alignment``); not centered, as PennyLane.
    - ``multiclass``: the one-hot label kernel Y Y^T (class indices 0..K-1; each column divided by
      its class size when ``rescale_class_labels``), centered: Y's column means subtracted, so a
      kernel gains nothing from the all-ones direction every class shares.
    - ``regression``: the centered target kernel (y - mean y)(y - mean y)^T.
    """
    labels = np.asarray(labels)
    task = task or label_task(labels)
    if task == "regression":
        centered = labels.astype(np.float64) - labels.astype(np.float64).mean()
        return np.outer(centered, centered)
    if task == "multiclass":
        onehot = (labels.astype(np.int64)[:, None] == np.arange(int(labels.max()) + 1)[None, :]).astype(np.float64)
        if rescale_class_labels:
            onehot = onehot / np.maximum(onehot.sum(axis=0), 1.0)
        centered = onehot - onehot.mean(axis=0)
        return centered @ centered.T
    y = np.where(labels > 0, 1.0, -1.0)
    if rescale_class_labels:
        y = y / np.where(y > 0, np.count_nonzero(y > 0), np.count_nonzero(y < 0))
    return np.outer(y, y)


def _centered(matrix: np.ndarray) -> np.ndarray:
    """H M H with H = I - 11^T / n: the matrix with its row and column means removed."""
    return matrix - matrix.mean(axis=0, keepdims=True) - matrix.mean(axis=1, keepdims=True) + matrix.mean()


def target_alignment(kernel: np.ndarray, labels: np.ndarray, *, task: str | None = None,
                     rescale_class_labels: bool = True) -> float:
    """Kernel-target alignment <K, T>_F / (||K||_F ||T||_F), T the labels' :func:`target_kernel`.

    ``task`` (binary | multiclass | regression) defaults to :func:`label_task` of ``labels``. For
    binary labels in {0, 1} (or -1, +1) with ``rescale_class_labels`` it equals
    ``qml.kernels.target_alignment`` from a precomputed matrix. For multi-class and regression
    the target is centered, and so is K (centered kernel alignment, Cortes, Mohri & Rostamizadeh,
    JMLR 13, 2012): a fidelity kernel's entries are all positive, and uncentered its norm would be
    mostly that common offset, not how it orders the samples. In [-1, 1]; NaN when either
    (centered) matrix is zero, as for a constant regression target.
    """
    task = task or label_task(labels)
    target = target_kernel(labels, task=task, rescale_class_labels=rescale_class_labels)
    kernel = np.asarray(kernel, dtype=np.float64)
    if task != "binary":
        kernel = _centered(kernel)
    norms = np.linalg.norm(kernel) * np.linalg.norm(target)
    return float(np.sum(kernel * target) / norms) if norms > 1e-300 else float("nan")


def emulate_shots(kernel: np.ndarray, shots: int, rng: np.random.Generator, *, symmetric: bool) -> np.ndarray:
    """A ``shots``-shot estimate of each entry: Binomial(shots, p) / shots, p the exact entry.

    That is exactly how the all-zeros count of a noiseless compute-uncompute circuit is
    distributed. A symmetric kernel is sampled once per pair (the upper triangle, row by row) and
    keeps its unit diagonal.
    """
    exact = np.clip(np.asarray(kernel, dtype=np.float64), 0.0, 1.0)
    if not symmetric:
        return rng.binomial(shots, exact) / shots
    n = exact.shape[0]
    noisy = np.zeros((n, n))
    # Row by row in row-major order: the same draws as one call on the upper triangle's entries,
    # without building its index arrays (most of the time at a few thousand rows).
    for row in range(n - 1):
        noisy[row, row + 1:] = rng.binomial(shots, exact[row, row + 1:]) / shots
    noisy += noisy.T.copy()
    np.fill_diagonal(noisy, 1.0)
    return noisy


def estimated_entries(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The entries a device estimates of a symmetric (n, n) train kernel with a unit diagonal and
    a (m, n) test kernel: each off-diagonal train pair once (the upper triangle, row-major), then
    every test entry; shape (n (n - 1) / 2 + m n,)."""
    train = np.asarray(train, dtype=np.float64)
    return np.concatenate([train[np.triu_indices(train.shape[0], 1)], np.asarray(test, dtype=np.float64).ravel()])


def binomial_abs_error(p: np.ndarray, shots: int) -> np.ndarray:
    """E|Binomial(shots, p) / shots - p| for each entry p of ``p`` (clipped to [0, 1]), exactly.

    De Moivre's mean absolute deviation of a binomial: E|X - np| = 2 v q P(X = v), v = floor(np) + 1,
    q = 1 - p (0 where p is 0 or 1). Of the order sqrt(2 p q / (pi shots)) when shots p q is large.

    >>> float(binomial_abs_error(np.array([0.5]), 2)[0])  # |0 - .5|/4 + 0/2 + |1 - .5|/4
    0.25
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    error = np.zeros_like(p)
    inside = (p > 0.0) & (p < 1.0)
    error[inside] = _InteriorEntries.of(p[inside]).abs_error(int(shots))
    return error


@dataclass(frozen=True)
class _InteriorEntries:
    """Entries strictly between 0 and 1 with what every shot count's error reuses."""

    p: np.ndarray
    q: np.ndarray  # 1 - p
    log_q: np.ndarray
    logit: np.ndarray  # log p - log q

    @classmethod
    def of(cls, p: np.ndarray) -> "_InteriorEntries":
        log_q = np.log1p(-p)
        return cls(p, 1.0 - p, log_q, np.log(p) - log_q)

    def abs_error(self, shots: int) -> np.ndarray:
        """:func:`binomial_abs_error` of these entries (in place, one array: millions of them)."""
        from scipy import special

        k = np.arange(shots + 1, dtype=np.float64)
        log_choose = special.gammaln(shots + 1.0) - special.gammaln(k + 1.0) - special.gammaln(shots - k + 1.0)
        v = (shots * self.p).astype(np.int64) + 1  # floor(np) + 1 <= shots, as p < 1
        # log P(X = v) = log C(shots, v) + shots log q + v (log p - log q)
        error = log_choose[v]
        error += shots * self.log_q
        v = v.astype(np.float64)
        error += v * self.logit
        np.exp(error, out=error)
        error *= v
        error *= self.q
        error *= 2.0 / shots
        return error


def expected_shot_errors(entries: np.ndarray, ladder: Sequence[int]) -> list[tuple[float, float]]:
    """For each shot count of ``ladder``: the mean over ``entries`` (exact kernel values, e.g.
    :func:`estimated_entries`) of :func:`binomial_abs_error`, i.e. the expected mean |error| of
    an emulated or device estimate of them all, and its largest value (the worst entry's expected
    |error|). No draw: the same figures every time."""
    p = np.clip(np.asarray(entries, dtype=np.float64).ravel(), 0.0, 1.0)
    interior = _InteriorEntries.of(p[(p > 0.0) & (p < 1.0)])  # the ends have no error
    summary = []
    for shots in ladder:
        error = interior.abs_error(int(shots))
        summary.append((float(np.sum(error)) / p.size if p.size else 0.0, float(np.max(error, initial=0.0))))
    return summary
