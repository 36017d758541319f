"""Which kernel path a train split gets, and the stated samples the exact-kernel work runs on above it.

Up to ``GatePolicy.max_exact_train`` train rows (``kernel_path: auto``) the quantum kernel is the
exact N x N Gram matrix and the model a kernel SVM. Above it the kernel assets store only the
landmark columns (K_mm, K_nm and test x landmarks) and the model is a Nyström least-squares SVM
(:mod:`hybrid_resources.quantum.nystrom`). What still needs a square kernel (the tuning, the
verdict's repeated splits, the diagnostics, the shot plan) runs on a seeded, stratified sample of
at most ``max_exact_train`` rows, and says so in its metadata (:func:`sample_note`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.nystrom import (
    NystromConfig,
    choose_kernel_path,
    choose_landmarks,
)


TARGET_STRATA = 10
"""A regression target is stratified on this many quantile bins (deciles)."""


def strata(y: np.ndarray) -> np.ndarray:
    """The stratum of each row: its class index, or for a regression target (float ``y``) its
    quantile bin (0..TARGET_STRATA-1), so a sample keeps the target's distribution.

    >>> strata(np.arange(20.0))[[0, 19]].tolist()
    [0, 9]
    """
    y = np.asarray(y)
    if y.dtype.kind != "f":
        return y
    edges = np.quantile(y, np.linspace(0.0, 1.0, TARGET_STRATA + 1)[1:-1])
    return np.searchsorted(edges, y, side="right").astype(np.int64)


def stratified_sample(y: np.ndarray, size: int, *, seed: int) -> np.ndarray:
    """Sorted indices of at most ``size`` rows of ``y``, each class keeping its share (largest
    remainders, at least one row of every class when size allows), drawn from ``seed`` only.
    All rows (0..n-1) when ``len(y) <= size``. A regression target (float ``y``) is stratified on
    its quantile bins (:func:`strata`).

    >>> stratified_sample(np.array([0] * 8 + [1] * 2), 5, seed=0).size
    5
    """
    y = strata(y)
    n = len(y)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if n <= size:
        return np.arange(n, dtype=np.int64)
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * size / n
    take = np.floor(exact).astype(np.int64)
    take = np.maximum(take, np.minimum(1, counts)) if size >= len(classes) else take
    for index in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if take.sum() >= size:
            break
        if take[index] < counts[index]:
            take[index] += 1
    while take.sum() > size:  # the one-per-class floor overshot: trim the largest class
        take[np.argmax(take)] -= 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(y == label), size=int(k), replace=False)
              for label, k in zip(classes, take) if k > 0]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def sample_note(n_rows: int, sample: np.ndarray, *, seed: int, what: str) -> dict:
    """Metadata of a sample: how many of how many rows, the rule and the seed (JSON-safe). For a
    regression target the "classes" are its deciles (:func:`strata`)."""
    if len(sample) == n_rows:
        return {"what": what, "rows": int(n_rows), "of": int(n_rows), "sampled": False}
    return {"what": what, "rows": int(len(sample)), "of": int(n_rows), "sampled": True,
            "rule": "stratified by class, uniform within a class, without replacement", "seed": int(seed)}


@dataclass(frozen=True)
class KernelPlan:
    """The path for one train split: ``path`` "exact" or "nystrom", ``reason`` (from
    :func:`choose_kernel_path`), the Nyström settings, and the sample size of exact-kernel work."""

    path: str
    reason: str
    n_train: int
    landmarks: int
    landmark_rule: str
    seed: int
    eps: float
    max_exact_train: int

    @property
    def nystrom(self) -> bool:
        return self.path == "nystrom"

    def to_dict(self) -> dict:
        return asdict(self)

    def nystrom_config(self, C: float) -> NystromConfig:
        return NystromConfig(m=self.landmarks, rule=self.landmark_rule, seed=self.seed, eps=self.eps, C=C)

    def exact_sample(self, y: np.ndarray) -> np.ndarray:
        """Rows of ``y`` the exact-kernel work uses: all of them on the exact path, else a seeded
        stratified sample of at most ``max_exact_train``."""
        if not self.nystrom:
            return np.arange(len(y), dtype=np.int64)
        return stratified_sample(y, self.max_exact_train, seed=self.seed)


def kernel_plan(n_train: int, policy: GatePolicy) -> KernelPlan:
    """The kernel path of a train split of ``n_train`` rows under ``policy`` (kernel_path,
    max_exact_train, nystrom_landmarks, landmark_rule, nystrom_eps; seeded by cv_seed)."""
    choice = choose_kernel_path(n_train, mode=policy.kernel_path, max_exact_train=policy.max_exact_train)
    return KernelPlan(path=choice.path, reason=choice.reason, n_train=int(n_train),
                      landmarks=int(min(policy.nystrom_landmarks, n_train)), landmark_rule=policy.landmark_rule,
                      seed=policy.cv_seed, eps=policy.nystrom_eps, max_exact_train=policy.max_exact_train)


def landmark_indices(X_train: np.ndarray, plan: KernelPlan) -> np.ndarray:
    """The train rows that are landmarks (int64, (m,)): the same rows for every asset that asks,
    since the rule draws from the plan's seed only."""
    return choose_landmarks(X_train, plan.landmarks, rule=plan.landmark_rule, seed=plan.seed)


def is_nystrom(bundle: dict) -> bool:
    """Whether a kernel or model artifact was made on the Nyström path."""
    return "landmark_indices" in bundle
