"""Both sides tuned by one protocol: k-fold cross-validation on the train split only, with the
same folds, seed and metric, and grids of about the same size (Bowles, Ahmed & Schuld, "Better
than classical? The subtle art of benchmarking quantum machine learning models", 2024).

- the classical suite: an RBF SVM over a C x gamma grid, logistic regression over C (ridge
  regression over alpha for a regression task), and gradient boosting over learning rate x
  leaves; the best by CV becomes the baseline;
- the quantum kernel SVM: input bandwidth x feature-map repetitions x C, on the exact
  simulator (free, whatever device the chosen configuration later runs on).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import TypeVar

import numpy as np

from hybrid_assets.training.models import (
    classical_decision,
    fit_classical,
    fit_precomputed_svm,
    fits_side_by_side,
    precomputed_decision,
)
from hybrid_assets.training.tasks import holdout_metric, judged_metric
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_diagnostics import label_task
from hybrid_resources.quantum.kernel_engine import quantum_kernel

Split = tuple[np.ndarray, np.ndarray]
T, R = TypeVar("T"), TypeVar("R")

CLASSICAL_GRID: dict[str, list[dict]] = {
    "rbf_svm": [{"C": C, "gamma_scale": g} for C in (0.1, 1.0, 10.0, 100.0) for g in (0.1, 1.0, 10.0)],
    "logistic_regression": [{"C": C} for C in (0.01, 0.1, 1.0, 10.0, 100.0)],
    "gradient_boosting": [{"learning_rate": lr, "max_leaf_nodes": leaves} for lr in (0.05, 0.2) for leaves in (7, 31)],
}
REGRESSION_GRID: dict[str, list[dict]] = {
    "rbf_svm": CLASSICAL_GRID["rbf_svm"],
    "ridge": [{"alpha": alpha} for alpha in (0.01, 0.1, 1.0, 10.0, 100.0)],
    "gradient_boosting": CLASSICAL_GRID["gradient_boosting"],
}
UNTUNED_CLASSICAL = ("rbf_svm", {"C": 1.0, "gamma_scale": 1.0})  # scikit-learn's SVC() defaults


def classical_grid(task: str) -> dict[str, list[dict]]:
    """The classical suite's grid for ``task``: :data:`CLASSICAL_GRID` for classification (binary or
    multi-class), :data:`REGRESSION_GRID` (an RBF SVR, ridge over alpha, gradient boosting) for regression."""
    return REGRESSION_GRID if task == "regression" else CLASSICAL_GRID


@dataclass(frozen=True)
class Candidate:
    """One configuration and its cross-validated score (mean and std over the folds)."""

    model: str
    params: dict
    cv_mean: float = float("nan")
    cv_std: float = float("nan")
    cv_scores: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def kfold_splits(y: np.ndarray, *, folds: int, seed: int) -> list[Split]:
    """Shuffled k-fold (train indices, test indices) over ``y``, seeded: stratified by class for
    class indices, plain k-fold for a regression target (float ``y``). Fewer folds when the
    smallest class (or the row count) cannot fill ``folds``; never fewer than 2."""
    from sklearn.model_selection import KFold, StratifiedKFold

    y = np.asarray(y)
    if label_task(y) == "regression":
        folds = max(2, min(folds, len(y)))
        return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y))))
    folds = max(2, min(folds, int(np.bincount(y).min())))
    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def map_fits(fit: Callable[[T], R], items: Sequence[T], *, side_by_side: bool = True) -> list[R]:
    """``[fit(item) for item in items]``, the items side by side on one thread per core unless
    ``side_by_side`` is False (fits that hold the GIL: :func:`~hybrid_assets.training.models.fits_side_by_side`).

    For independent model fits: libsvm releases the GIL while it fits, and each fit is seeded, so
    the results are those of the loop, in order."""
    workers = min(len(items), os.cpu_count() or 1) if side_by_side else 1
    if workers < 2:
        return [fit(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fit, items))


def cross_validate(fit_and_score: Callable[[np.ndarray, np.ndarray], float], splits: Sequence[Split], *,
                   side_by_side: bool = True) -> tuple[float, float, list[float]]:
    """(mean, std, per-fold scores) of ``fit_and_score(train_idx, test_idx)`` over ``splits``
    (the folds side by side unless ``side_by_side`` is False, :func:`map_fits`)."""
    scores = [float(score) for score in map_fits(lambda split: fit_and_score(*split), list(splits),
                                                 side_by_side=side_by_side)]
    return float(np.mean(scores)), float(np.std(scores)), scores


def classical_score(model: str, params: dict, X: np.ndarray, y: np.ndarray, metric: str, seed: int):
    """``fit_and_score`` of one classical candidate on rows of (X, y), scored by the judged metric of
    y's task (:func:`label_task`) for the configured ``metric`` (R² for a regression target)."""
    task = label_task(y)
    metric = judged_metric(task, metric)

    def fit_and_score(train: np.ndarray, test: np.ndarray) -> float:
        fitted = fit_classical(model, params, X[train], y[train], seed=seed, task=task)
        return holdout_metric(y[test], classical_decision(model, fitted, X[test]), metric, task=task)
    return fit_and_score


def kernel_block(kernel: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 buffers: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``kernel[rows][:, cols]`` as a (len(rows), len(cols)) array: two ``np.take`` passes, about
    4x faster than ``np.ix_`` fancy indexing on a 4,000-row kernel. A new array, or, with
    ``buffers`` (flat arrays of the kernel's dtype: at least len(rows) * kernel.shape[1] entries for
    the rows, len(rows) * len(cols) for the block), written into them (:func:`fold_blocks`)."""
    if buffers is None:
        return np.take(np.take(kernel, rows, axis=0), cols, axis=1)
    scratch, out = buffers
    picked = scratch[:len(rows) * kernel.shape[1]].reshape(len(rows), kernel.shape[1])
    np.take(kernel, rows, axis=0, out=picked, mode="clip")  # "raise" would buffer the output again
    block = out[:len(rows) * len(cols)].reshape(len(rows), len(cols))
    np.take(picked, cols, axis=1, out=block, mode="clip")
    return block


def fold_blocks(kernel: np.ndarray, splits: Sequence[Split]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each split's (train, train) and (test, train) blocks of the square ``kernel``, equal to
    :func:`kernel_block`'s, written into three buffers allocated once for all the splits: a block
    is valid until the next split's are yielded. On a 5,000-row kernel a fresh 4,000-row block
    took longer to allocate and first touch than to fill: five folds' blocks took 0.3 to 1.5 s
    as new arrays, 0.2 s in the buffers."""
    n, longest = len(kernel), max(max(len(train), len(test)) for train, test in splits)
    widest = max(len(train) for train, _ in splits)
    scratch, train_out = np.empty(longest * n, kernel.dtype), np.empty(widest * widest, kernel.dtype)
    test_out = np.empty(max(len(test) for _, test in splits) * widest, kernel.dtype)
    for train, test in splits:
        if any(len(index) and not 0 <= index.min() <= index.max() < n for index in (train, test)):
            raise IndexError(f"a split indexes rows outside the {n}-row kernel")  # "clip" would not say so
        yield (kernel_block(kernel, train, train, (scratch, train_out)),
               kernel_block(kernel, test, train, (scratch, test_out)))


def precomputed_score(train_block: np.ndarray, test_block: np.ndarray, y_train: np.ndarray, y_test: np.ndarray,
                      *, C: float, metric: str, task: str) -> float:
    """``metric`` of a kernel SVM with ``C`` fitted on a (n_train, n_train) kernel block and scored
    on the (n_test, n_train) block (an SVC, one-vs-rest SVCs or an SVR by ``task``)."""
    model = fit_precomputed_svm(train_block, y_train, C=C, task=task)
    return holdout_metric(y_test, precomputed_decision(model, test_block), metric, task=task)


def quantum_score(kernel: np.ndarray, y: np.ndarray, C: float, metric: str):
    """``fit_and_score`` of a kernel SVM with ``C`` on a precomputed kernel over the same rows as y
    (an SVC, one-vs-rest SVCs or an SVR by y's task), scored like :func:`classical_score`."""
    task = label_task(y)
    metric = judged_metric(task, metric)

    def fit_and_score(train: np.ndarray, test: np.ndarray) -> float:
        return precomputed_score(kernel_block(kernel, train, train), kernel_block(kernel, test, train), y[train],
                                 y[test], C=C, metric=metric, task=task)
    return fit_and_score


def cross_validate_Cs(kernel: np.ndarray, y: np.ndarray, splits: Sequence[Split], Cs: Sequence[float],
                      metric: str) -> dict[float, list[float]]:
    """Per-fold scores of the kernel SVM for every C in ``Cs`` on ``splits``: each fold's kernel
    blocks are sliced once and serve every C (the same scores as :func:`quantum_score` per C)."""
    task = label_task(y)
    metric = judged_metric(task, metric)
    scores: dict[float, list[float]] = {float(C): [] for C in Cs}
    for (train, test), (train_block, test_block) in zip(splits, fold_blocks(kernel, splits), strict=True):
        # The largest C takes the most iterations: started first, the fits end closer together.
        by_cost = sorted(scores, reverse=True)
        fold = map_fits(lambda C: precomputed_score(train_block, test_block, y[train], y[test], C=C, metric=metric,
                                                    task=task), by_cost)
        for C, score in zip(by_cost, fold, strict=True):
            scores[C].append(float(score))
    return scores


def ranked(candidates: list[Candidate]) -> list[Candidate]:
    """Best CV mean first (ties: the earlier, simpler grid point)."""
    return sorted(candidates, key=lambda c: -c.cv_mean)


def tune_classical(X: np.ndarray, y: np.ndarray, splits: Sequence[Split], *, metric: str, seed: int = 0,
                   grid: dict[str, list[dict]] | None = None) -> list[Candidate]:
    """Every classical candidate scored on the same ``splits``; best first. ``grid`` defaults to
    :func:`classical_grid` of y's task; ``metric`` is judged as in :func:`classical_score`."""
    scored = []
    for model, params_list in (grid if grid is not None else classical_grid(label_task(y))).items():
        for params in params_list:
            mean, std, scores = cross_validate(classical_score(model, params, X, y, metric, seed), splits,
                                               side_by_side=fits_side_by_side(model))
            scored.append(Candidate(model, params, mean, std, scores))
    return ranked(scored)


def tune_quantum(X: np.ndarray, y: np.ndarray, splits: Sequence[Split], base: FeatureMapSpec, *, metric: str,
                 bandwidths: Sequence[float], reps: Sequence[int], Cs: Sequence[float]) -> list[Candidate]:
    """Every (bandwidth, reps, C) of the kernel SVM scored on the same ``splits``, each kernel
    computed once on the exact simulator and each fold's blocks sliced once for every C; best first. The angle map has no repetitions to tune."""
    scored = []
    for bandwidth in bandwidths:
        for rep in (reps if base.name != "angle" else [base.reps]):
            spec = replace(base, bandwidth=float(bandwidth), reps=int(rep))
            kernel = quantum_kernel(X, spec=spec).matrix
            for C, scores in cross_validate_Cs(kernel, y, splits, Cs, metric).items():
                scored.append(Candidate("quantum_svm", {"bandwidth": float(bandwidth), "reps": int(rep), "C": C},
                                        float(np.mean(scores)), float(np.std(scores)), scores))
    return ranked(scored)
