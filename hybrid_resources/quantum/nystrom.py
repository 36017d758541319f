"""Nyström features: a linear model on m landmark kernel columns instead of the N x N Gram matrix.

Williams & Seeger, "Using the Nyström method to speed up kernel machines" (NIPS 2000): with m
landmark rows L of the train split, K ~= K_nm K_mm^+ K_mn = Phi Phi^T for the features
Phi = K_nm K_mm^(-1/2). A linear model on Phi then stands in for the kernel machine: m(m-1)/2
entries of K_mm plus (N-m) m of K_nm (the landmarks' own rows of K_nm are rows of K_mm), as many
circuits on a shot device, instead of N(N-1)/2; a new row needs only its m entries against the
landmarks.

- :func:`choose_landmarks`: which train rows are landmarks (k-means++ seeding or uniform), seeded;
- :func:`nystrom_map`: K_mm^(-1/2) on the eigen-directions kept (small eigenvalues dropped);
- :func:`fit_ridge_blocks`: the classifier, a least-squares SVM accumulated block by block;
  :class:`TargetCoding` its targets for each task (+-1, one-hot +-1 columns, a standardized value);
- :func:`fit_nystrom` (kernels computed as it goes: K_mm, then K_nm's non-landmark rows only,
  :func:`train_kernel_blocks`) or :func:`nystrom_model` (from stored K_mm and K_nm),
  :func:`nystrom_decision` and :class:`NystromModel` (arrays, no pickle);
- :func:`non_landmark_rows` and :func:`landmark_columns`: the rows of K_nm that need kernel
  entries, and the whole K_nm (to store) from K_mm and those rows;
- kernels as callables ``kernel(A, B=None)``: :class:`EngineKernel` (the quantum kernel engine,
  so its cache and ledger work unchanged) and :class:`RbfKernel` (the classical counterpart, through
  the same landmarks, map and classifier);
- :func:`choose_kernel_path`: the exact Gram matrix or Nyström, with the reason.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Protocol

import numpy as np

from hybrid_resources.data.big_arrays import map_rows, row_blocks
from hybrid_resources.quantum.backends import BackendConfig, SubmissionLedger
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.kernel_diagnostics import label_task
from hybrid_resources.quantum.kernel_engine import KernelStats, quantum_kernel

LANDMARK_RULES = ("kmeans++", "uniform")
NYSTROM_MODELS = {
    "binary": "least-squares SVM (ridge on +-1 targets, alpha = 1/C)",
    "multiclass": "one-vs-rest least-squares SVM (ridge on one-hot +-1 targets, alpha = 1/C)",
    "regression": "ridge regression on the standardized target (alpha = 1/C)",
}
KERNEL_PATHS = ("auto", "exact", "nystrom")
DEFAULT_MAX_EXACT_TRAIN = 5000


class KernelFunction(Protocol):
    """k(A, B): (len(A), len(B)) float64 kernel entries; B=None means A with itself (symmetric)."""

    def __call__(self, A: np.ndarray, B: np.ndarray | None = None) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]:
        """JSON-safe identity of the kernel (stored with a fitted model)."""


@dataclass
class EngineKernel:
    """The quantum kernel engine as a kernel function; every call's :class:`KernelStats` is kept
    in ``stats`` (circuits, cache hits, wall time: summed by :func:`engine_totals`)."""

    spec: FeatureMapSpec
    backend: BackendConfig = BackendConfig()
    cache: KernelCache | None = None
    ledger: SubmissionLedger | None = None
    stats: list[KernelStats] = field(default_factory=list)

    def __call__(self, A: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
        result = quantum_kernel(A, B, spec=self.spec, backend=self.backend, cache=self.cache, ledger=self.ledger)
        self.stats.append(result.stats)
        return result.matrix

    def describe(self) -> dict[str, Any]:
        return {"kind": "quantum", "spec": self.spec.to_dict(), "backend": self.backend.cache_key()}


def engine_totals(stats: Iterable[KernelStats]) -> dict[str, float]:
    """Sums over kernel calls: entries computed and from cache, circuits, shots, wall time."""
    names = ("entries_computed", "entries_from_cache", "circuits_executed", "shots_executed", "wall_time_s")
    stats = list(stats)
    return {name: sum(getattr(s, name) for s in stats) for name in names} | {"kernel_calls": len(stats)}


@dataclass(frozen=True)
class RbfKernel:
    """exp(-gamma ||a - b||^2), the classical baseline's kernel."""

    gamma: float

    def __call__(self, A: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
        from sklearn.metrics.pairwise import rbf_kernel

        return rbf_kernel(A, B, gamma=self.gamma)

    def describe(self) -> dict[str, Any]:
        return {"kind": "rbf", "gamma": self.gamma}


# ---------------------------------------------------------------------------------------
# Which path
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelPath:
    """``path`` is "exact" (N x N Gram matrix, kernel SVM) or "nystrom"; ``reason`` says why."""

    path: str
    reason: str


def choose_kernel_path(n_train: int, *, mode: str = "auto",
                       max_exact_train: int = DEFAULT_MAX_EXACT_TRAIN) -> KernelPath:
    """Exact kernel SVM or Nyström features, by configuration or by train size.

    ``mode``: "exact" or "nystrom" force a path; "auto" takes Nyström when ``n_train`` exceeds
    ``max_exact_train`` (the exact Gram matrix costs n_train^2 / 2 entries, and the SVM fit on
    it grows faster still).

    >>> choose_kernel_path(12000).reason
    'auto: 12000 train rows > max_exact_train 5000, so Nyström features and a linear model'
    """
    if mode not in KERNEL_PATHS:
        raise ValueError(f"mode must be one of {KERNEL_PATHS}, got {mode!r}")
    if mode != "auto":
        return KernelPath(mode, f"configured: kernel path {mode!r} ({n_train} train rows)")
    if n_train > max_exact_train:
        return KernelPath("nystrom", f"auto: {n_train} train rows > max_exact_train {max_exact_train}, "
                                     "so Nyström features and a linear model")
    return KernelPath("exact", f"auto: {n_train} train rows <= max_exact_train {max_exact_train}, "
                               "so the exact Gram matrix and a kernel SVM")


# ---------------------------------------------------------------------------------------
# Landmarks and the map
# ---------------------------------------------------------------------------------------


def choose_landmarks(X: np.ndarray, m: int, *, rule: str = "kmeans++", seed: int = 0) -> np.ndarray:
    """Indices of ``m`` distinct rows of X (N, d) to serve as landmarks; int64 (m,), reproducible.

    ``rule="kmeans++"``: k-means++ seeding on the inputs (Arthur & Vassilvitskii 2007; scikit-
    learn's ``kmeans_plusplus``): each next landmark is drawn with probability proportional to its
    squared distance from those already chosen, so landmarks cover the data rather than its dense
    parts. ``rule="uniform"``: m rows uniformly without replacement, sorted. Both draw from
    ``seed`` only. Cost of k-means++: O(N m log m d).

    >>> choose_landmarks(np.arange(10.0)[:, None], 3, rule="uniform", seed=0).tolist()
    [5, 6, 9]
    """
    X = np.asarray(X, dtype=np.float64)
    if rule not in LANDMARK_RULES:
        raise ValueError(f"rule must be one of {LANDMARK_RULES}, got {rule!r}")
    if not 1 <= m <= X.shape[0]:
        raise ValueError(f"m must be in [1, {X.shape[0]}] (the train rows), got {m}")
    if rule == "uniform":
        return np.sort(np.random.default_rng(seed).choice(X.shape[0], size=m, replace=False)).astype(np.int64)
    from sklearn.cluster import kmeans_plusplus

    _, indices = kmeans_plusplus(X, n_clusters=m, random_state=seed)
    return indices.astype(np.int64)


def nystrom_map(K_mm: np.ndarray, *, eps: float = 1e-10) -> tuple[np.ndarray, int]:
    """K_mm^(-1/2) restricted to its well-conditioned eigen-directions, and how many were dropped.

    K_mm (m, m) symmetric (a shot-based estimate need not be PSD: it is symmetrised first).
    With K_mm = V diag(lam) V^T, eigenvalues ``lam <= eps * max(lam)`` (negative ones included)
    are dropped, so 1/sqrt(lam) cannot amplify noise without bound. Returns (W, clipped):
    W (m, r) = V_r diag(lam_r^(-1/2)), r = m - clipped, so that Phi = K_nm W gives
    Phi Phi^T = K_nm K_mm^+ K_mn (the pseudo-inverse over the kept directions). When the
    landmarks are all N rows and nothing is dropped that equals K itself.
    """
    K_mm = np.asarray(K_mm, dtype=np.float64)
    lam, V = np.linalg.eigh((K_mm + K_mm.T) / 2)
    if not lam[-1] > 0:
        raise ValueError("the landmark kernel K_mm has no positive eigenvalue")
    keep = lam > eps * lam[-1]
    return V[:, keep] / np.sqrt(lam[keep]), int(np.count_nonzero(~keep))


# ---------------------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetCoding:
    """How a task's labels become least-squares targets, and raw outputs go back to decisions.

    ``binary``: +1 for class index > 0, -1 otherwise (the least-squares SVM); decisions (n,).
    ``multiclass``: one-hot +-1 targets (n, ``n_classes``), all columns solved at once; decisions
    (n, K), one score per class. ``regression``: the target standardized by ``mean`` and
    ``scale`` (a ridge regression), decisions rescaled to target units (n,).
    """

    task: str = "binary"
    n_classes: int = 2
    mean: float = 0.0
    scale: float = 1.0

    @classmethod
    def of(cls, y: np.ndarray, task: str | None = None) -> "TargetCoding":
        """The coding of train labels ``y`` for ``task`` (default: :func:`label_task`)."""
        y = np.asarray(y)
        task = task or label_task(y)
        if task == "regression":
            scale = float(y.std())
            return cls(task, 0, float(y.mean()), scale if scale > 0 else 1.0)
        return cls(task, int(y.max()) + 1 if task == "multiclass" else 2)

    def encode(self, labels: np.ndarray) -> np.ndarray:
        """Least-squares targets of ``labels`` (b,): (b,) or (b, n_classes) for multi-class."""
        labels = np.asarray(labels)
        if self.task == "regression":
            return (labels.astype(np.float64) - self.mean) / self.scale
        if self.task == "multiclass":
            return np.where(labels[:, None] == np.arange(self.n_classes), 1.0, -1.0)
        return np.where(labels > 0, 1.0, -1.0)

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """Decisions from the linear model's outputs: target units for regression, else as they are."""
        return raw * self.scale + self.mean if self.task == "regression" else raw


def fit_ridge_blocks(blocks: Iterable[tuple[np.ndarray, np.ndarray]], *, C: float,
                     coding: TargetCoding = TargetCoding()) -> tuple[np.ndarray, float | np.ndarray]:
    """A least-squares SVM (Suykens & Vandewalle 1999) on features streamed in row blocks.

    Minimises 1/2 ||w||^2 + C/2 sum_i (t_i - w.phi_i - b)^2 with t_i = +1 for label > 0 and -1
    otherwise, the intercept b unpenalised: a ridge regression on +-1 targets (alpha = 1/C), the
    SVM's C with a squared loss. One pass over ``blocks`` of (Phi (rows, r), labels (rows,))
    accumulates the (r+1, r+1) normal equations, so memory is O(r^2) whatever N, and the
    solution is exact and deterministic (no learning rate, no epochs). Returns (coef (r,), b).

    ``coding`` (:class:`TargetCoding`) sets the targets of other tasks: K one-hot +-1 columns
    solved at once from the same normal equations (coef (r, K), b (K,)), or the standardized
    target of a regression (coef (r,), b a float, on the standardized scale).
    """
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C}")
    gram = rhs = None
    for features, labels in blocks:
        design = np.hstack([features, np.ones((features.shape[0], 1))])
        targets = coding.encode(labels)
        if gram is None:
            gram, rhs = np.zeros((design.shape[1],) * 2), np.zeros((design.shape[1], *targets.shape[1:]))
        gram += design.T @ design
        rhs += design.T @ targets
    if gram is None:
        raise ValueError("no training rows")
    penalty = np.full(gram.shape[0], 1.0 / C)
    penalty[-1] = 0.0
    solution = np.linalg.solve(gram + np.diag(penalty), rhs)
    return solution[:-1], (solution[-1] if solution.ndim == 2 else float(solution[-1]))


# ---------------------------------------------------------------------------------------
# The fitted model
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NystromConfig:
    """How to fit: ``m`` landmarks chosen by ``rule`` from ``seed``; eigenvalues of K_mm below
    ``eps`` times the largest dropped; the least-squares SVM's ``C``; ``block_rows`` rows of K_nm
    computed at once (memory ~ block_rows * m * 8 bytes, times the kernel's own temporaries).

    m = 1000 kept the holdout accuracy within 0.01 of the exact kernel SVM at 5,000 train rows
    (8-qubit IQP, bandwidth 0.3 and 1.0; ``bench/scale_bench.py``); m = 500 did not at bandwidth 1.0.
    A shot-based K_mm wants a larger ``eps``, above its noise floor: with 1,000 shots, m = 500,
    bandwidth 0.3, eps = 1e-3 scored 0.811 where 1e-10 scored 0.794."""

    m: int = 1000
    rule: str = "kmeans++"
    seed: int = 0
    eps: float = 1e-10
    C: float = 1.0
    block_rows: int = 4096


@dataclass(frozen=True)
class NystromModel:
    """A fitted Nyström classifier: everything the decision on new rows needs, as arrays.

    ``landmarks`` (m, d) inputs; ``landmark_indices`` (m,) their train rows; ``projection``
    (m, r) the K_mm^(-1/2) map of :func:`nystrom_map`; ``coef`` (r,) and ``intercept`` of the
    linear model on Phi; ``meta``: rule, m, eps, clipped, seed, C and the kernel's description.
    Multi-class: ``coef`` (r, K) and ``intercept`` (K,). Regression: ``target`` (mean, scale) of
    the standardized target the model was fitted on (stored as ``target_mean``, ``target_scale``).
    """

    landmarks: np.ndarray
    landmark_indices: np.ndarray
    projection: np.ndarray
    coef: np.ndarray
    intercept: float | np.ndarray
    meta: dict[str, Any]
    target: tuple[float, float] | None = None

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (``meta`` as one JSON text array) for ``np.savez`` / an artifact bundle."""
        target = {} if self.target is None else {"target_mean": np.array([self.target[0]]),
                                                 "target_scale": np.array([self.target[1]])}
        return {"landmarks": self.landmarks, "landmark_indices": self.landmark_indices,
                "projection": self.projection, "coef": self.coef,
                "intercept": np.atleast_1d(np.asarray(self.intercept, dtype=np.float64)),
                "nystrom_meta": np.array(json.dumps(self.meta, sort_keys=True)), **target}

    def decision(self, landmark_kernel: np.ndarray) -> np.ndarray:
        """Decision values from rows' kernel entries against the landmarks (n, m) (e.g. a stored
        test x landmarks kernel): (n,) positive meaning class index 1; (n, K) for multi-class;
        (n,) in target units for regression."""
        weights = self.projection @ self.coef  # (m,) or (m, K): never the (n, r) features at once
        raw = map_rows(lambda block: block @ weights, landmark_kernel) + self.intercept
        return raw if self.target is None else raw * self.target[1] + self.target[0]

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "NystromModel":
        coef = arrays["coef"]
        target = (float(arrays["target_mean"][0]), float(arrays["target_scale"][0])) if "target_mean" in arrays else None
        return cls(landmarks=arrays["landmarks"], landmark_indices=arrays["landmark_indices"],
                   projection=arrays["projection"], coef=coef,
                   intercept=arrays["intercept"] if coef.ndim == 2 else float(arrays["intercept"][0]),
                   meta=json.loads(str(arrays["nystrom_meta"])), target=target)


def nystrom_features(model: NystromModel, X: np.ndarray, kernel: KernelFunction) -> np.ndarray:
    """The transform: Phi = K(X, landmarks) @ projection, (len(X), r). New rows need only their m
    kernel entries against the landmarks."""
    return kernel(X, model.landmarks) @ model.projection


def fit_nystrom(X: np.ndarray, y: np.ndarray, kernel: KernelFunction, config: NystromConfig, *,
                task: str | None = None) -> NystromModel:
    """Fit a Nyström classifier on train rows X (N, d), labels y (N,) (class index; > 0 is positive).
    ``task`` (default: from y, :meth:`TargetCoding.of`): multi-class labels give one-hot targets
    and (n, K) decisions; a float target a regression on it, standardized.

    Landmarks by :func:`choose_landmarks` (m = ``config.m`` capped at N), K_mm = kernel(L) (m, m)
    (one symmetric request: m(m-1)/2 entries), then the rows of K_nm (N, m) from
    :func:`train_kernel_blocks`: a landmark's row is its row of K_mm, only the N - m other rows
    are computed, ``config.block_rows`` at a time; each block is folded into
    :func:`nystrom_model` as it comes. m(m-1)/2 + (N-m) m kernel entries in all (at m = N the
    exact kernel's N(N-1)/2), never N x N, and never all of K_nm or Phi in memory.

    On an exact simulator the model equals the one from every row of K_nm computed (to rounding,
    ~1e-12). On a shot device it differs, for the better: a landmark's row now has K_mm's exact
    unit diagonal and the same estimates as K_mm, instead of a second noisy estimate of each.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    indices = choose_landmarks(X, min(config.m, len(X)), rule=config.rule, seed=config.seed)
    landmarks = X[indices]
    K_mm = kernel(landmarks)
    blocks = train_kernel_blocks(X, y, kernel, K_mm, indices, config.block_rows)
    return nystrom_model(K_mm, blocks, landmarks=landmarks, indices=indices, config=config,
                         kernel=kernel.describe(), coding=TargetCoding.of(y, task))


def train_kernel_blocks(X: np.ndarray, y: np.ndarray, kernel: KernelFunction, K_mm: np.ndarray, indices: np.ndarray,
                        block_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every train row of K_nm once, as blocks of (K_nm rows (b, m), their labels (b,)), b <= ``block_rows``.

    X (N, d) and y (N,) the train split, ``indices`` (m,) the landmarks' rows of X and K_mm (m, m)
    their kernel, so that row i of K_mm is the K_nm row of train row ``indices[i]``. The m landmark
    rows come first, as slices of K_mm (labels ``y[indices]``), no kernel call; then the N - m
    other rows, in train order, from ``kernel(X[rows], X[indices])``, one call per block. The
    row order differs from X's, which the least-squares fit (a sum over rows) does not see.
    """
    for rows in row_blocks(len(indices), block_rows):
        yield K_mm[rows], y[indices[rows]]
    others = non_landmark_rows(len(X), indices)
    landmarks = X[indices]
    for rows in row_blocks(len(others), block_rows):
        yield kernel(X[others[rows]], landmarks), y[others[rows]]


def non_landmark_rows(n_rows: int, indices: np.ndarray) -> np.ndarray:
    """The train rows that are not landmarks: int64 (n_rows - m,), ascending, for landmark
    ``indices`` (m,) distinct rows of range(n_rows). Only these rows of K_nm need kernel entries.

    >>> non_landmark_rows(6, np.array([4, 1])).tolist()
    [0, 2, 3, 5]
    """
    return np.setdiff1d(np.arange(n_rows, dtype=np.int64), np.asarray(indices, dtype=np.int64))


def landmark_columns(K_mm: np.ndarray, others_kernel: np.ndarray, indices: np.ndarray, *,
                     out: np.ndarray | None = None, block_rows: int = 4096) -> np.ndarray:
    """The whole K_nm (N, m) of the train rows, with N = m + len(others_kernel), from what the
    route computes: K_mm (m, m) for the landmark rows ``indices`` (m,) and ``others_kernel``
    (N - m, m) for the :func:`non_landmark_rows`, in that (ascending) order.

    Row ``indices[i]`` of the result is row i of K_mm; the other rows are copied ``block_rows`` at a
    time, so ``out`` (float64 (N, m), e.g. a memory map) and ``others_kernel`` may be larger than
    memory. Returns ``out`` (a new array when None).

    >>> landmark_columns(np.eye(2), np.array([[0.5, 0.25]]), np.array([2, 0])).tolist()
    [[0.0, 1.0], [0.5, 0.25], [1.0, 0.0]]
    """
    n_rows = len(indices) + len(others_kernel)
    out = np.empty((n_rows, len(indices))) if out is None else out
    out[np.asarray(indices)] = K_mm
    others = non_landmark_rows(n_rows, indices)
    for rows in row_blocks(len(others), block_rows):
        out[others[rows]] = others_kernel[rows]
    return out


def nystrom_model(K_mm: np.ndarray, blocks: Iterable[tuple[np.ndarray, np.ndarray]], *, landmarks: np.ndarray,
                  indices: np.ndarray, config: NystromConfig, kernel: dict[str, Any],
                  coding: TargetCoding = TargetCoding()) -> NystromModel:
    """The fitted model from precomputed kernels: K_mm (m, m) and row ``blocks`` of
    (K_nm rows (b, m), their labels (b,)) covering each train row once, in any order, e.g. slices
    of a K_nm stored as a .npy memmap, or :func:`train_kernel_blocks`.

    The map from :func:`nystrom_map` (``config.eps``), then :func:`fit_ridge_blocks` (``config.C``)
    on each block's features K_nm @ projection. ``landmarks`` (m, d) / ``indices`` (m,) and the
    ``kernel`` description are stored with the model, as in :func:`fit_nystrom`; ``coding`` the
    task's targets (:class:`TargetCoding`; binary by default).
    """
    projection, clipped = nystrom_map(K_mm, eps=config.eps)
    coef, intercept = fit_ridge_blocks(((rows @ projection, labels) for rows, labels in blocks), C=config.C,
                                       coding=coding)
    meta = {**asdict(config), "m": int(len(indices)), "clipped": clipped, "rank": int(projection.shape[1]),
            "classifier": NYSTROM_MODELS[coding.task], "kernel": kernel}
    if coding.task != "binary":  # binary metadata stays as it was stored before tasks existed
        meta["task"] = coding.task
    target = (coding.mean, coding.scale) if coding.task == "regression" else None
    return NystromModel(np.asarray(landmarks), np.asarray(indices, dtype=np.int64), projection, coef, intercept, meta,
                        target)


def nystrom_decision(model: NystromModel, X: np.ndarray, kernel: KernelFunction, *,
                     block_rows: int = 4096) -> np.ndarray:
    """Decision values (len(X),) of a fitted model, positive meaning class index 1 ((len(X), K) for
    a multi-class model, target units for a regression); rows go to the kernel ``block_rows`` at a
    time (each needs only its m entries against the landmarks)."""
    X = np.asarray(X, dtype=np.float64)
    out = np.empty((len(X), *np.shape(model.intercept)))
    for rows in row_blocks(len(X), block_rows):
        out[rows] = model.decision(kernel(X[rows], model.landmarks))
    return out
