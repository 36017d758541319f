"""Cardinality-constrained portfolio selection: data -> (mu, cov) -> QUBO, and classical solvers.

The problem: choose exactly ``k`` of ``n`` assets (a bitstring ``x`` in {0, 1}^n) maximising

    f(x) = mu . x - lam * x^T Sigma x

with at most ``sector_cap`` assets per sector when sectors are given. ``mu`` are mean returns
per period and ``Sigma`` their sample covariance.

Its QUBO (minimised) moves the cardinality into a penalty:

    E(x) = -f(x) + A * (sum(x) - k)^2

so ``E(x) == -f(x)`` on every bitstring of weight ``k``. The sector cap is an inequality, which a
QUBO can only hold with slack qubits; here it is enforced classically (brute force, annealing,
greedy and the ranking's repair all respect it), and the QUBO carries the cardinality only.

Solvers: :func:`brute_force` enumerates every weight-``k`` bitstring (n <= 20);
:func:`simulated_annealing` swaps one chosen asset for an unchosen one (cardinality kept) within
an evaluation budget (the loop is :func:`anneal`, which max-cut shares); :func:`greedy` adds the
asset with the best marginal gain ``k`` times. :func:`repair` makes a sampled bitstring feasible,
greedily and deterministically: while too many assets (or a sector over its cap, or an excluded
asset), drop the held asset whose removal costs least; while too few, add the allowed asset that
gains most.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_BRUTE_FORCE_ASSETS = 20


@dataclass(frozen=True)
class Qubo:
    """``E(x) = offset + linear . x + sum_{i<j} quadratic[i, j] x_i x_j`` (``quadratic`` strictly
    upper triangular), minimised."""

    linear: np.ndarray
    quadratic: np.ndarray
    offset: float = 0.0

    @property
    def n(self) -> int:
        return int(self.linear.shape[0])

    def energies(self, X: np.ndarray) -> np.ndarray:
        """Energies of the rows of ``X`` (m, n) in {0, 1}; shape (m,)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return self.offset + X @ self.linear + np.einsum("mi,ij,mj->m", X, self.quadratic, X)

    def to_dict(self) -> dict[str, Any]:
        return {"linear": self.linear.tolist(), "quadratic": self.quadratic.tolist(), "offset": self.offset}


@dataclass(frozen=True)
class PortfolioProblem:
    """Choose ``k`` of ``len(mu)`` assets maximising ``mu.x - risk_aversion * x^T cov x``.

    ``sectors``: one integer label per asset (empty = no sectors); ``sector_cap``: at most this many
    chosen assets per sector (0 = no cap). ``penalty``: the QUBO's cardinality weight ``A``; 0 picks
    one large enough that breaking the cardinality never pays (:meth:`default_penalty`).
    """

    mu: np.ndarray
    cov: np.ndarray
    k: int
    risk_aversion: float = 1.0
    penalty: float = 0.0
    assets: tuple[str, ...] = ()
    sectors: tuple[int, ...] = ()
    sector_cap: int = 0

    def __post_init__(self) -> None:
        n = self.mu.shape[0]
        if self.cov.shape != (n, n):
            raise ValueError(f"cov must be ({n}, {n}), got {self.cov.shape}")
        if not 1 <= self.k < n:
            raise ValueError(f"k must be in [1, {n - 1}], got {self.k}")
        if self.sectors and len(self.sectors) != n:
            raise ValueError(f"sectors needs one label per asset ({n}), got {len(self.sectors)}")
        if self.sector_cap and self.sectors and self._max_pickable() < self.k:
            raise ValueError(f"sector_cap {self.sector_cap} leaves fewer than k={self.k} pickable assets")

    def _max_pickable(self) -> int:
        _, counts = np.unique(self.sectors, return_counts=True)
        return int(np.minimum(counts, self.sector_cap).sum())

    @property
    def n(self) -> int:
        return int(self.mu.shape[0])

    def objective(self, X: np.ndarray) -> np.ndarray:
        """``f(x)`` of each row of ``X`` (m, n) (or of one bitstring); higher is better."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return X @ self.mu - self.risk_aversion * np.einsum("mi,ij,mj->m", X, self.cov, X)

    def feasible(self, X: np.ndarray) -> np.ndarray:
        """Rows with exactly ``k`` ones and no sector over its cap; shape (m,) bool."""
        X = np.atleast_2d(np.asarray(X)).astype(np.int64)
        ok = X.sum(axis=1) == self.k
        if self.sectors and self.sector_cap:
            labels = np.asarray(self.sectors)
            for sector in np.unique(labels):
                ok &= X[:, labels == sector].sum(axis=1) <= self.sector_cap
        return ok

    def default_penalty(self) -> float:
        """An ``A`` at least the largest change one bit flip can make to ``f``, plus one: then a
        bitstring one asset off ``k`` never has a lower energy than its best feasible neighbour."""
        spread = np.abs(self.mu) + self.risk_aversion * (np.abs(self.cov).sum(axis=1) * 2)
        return float(spread.max() + 1.0) if self.penalty <= 0 else self.penalty

    def qubo(self, *, penalty: float | None = None) -> Qubo:
        """The QUBO ``-f(x) + A (sum x - k)^2`` (``penalty`` overrides ``A``; 0 drops the term)."""
        A = self.default_penalty() if penalty is None else float(penalty)
        n, lam = self.n, self.risk_aversion
        # -f: -mu_i x_i + lam * (cov_ii x_i + 2 sum_{i<j} cov_ij x_i x_j);  x_i^2 = x_i.
        # A (sum x - k)^2 = A (sum x_i (1 - 2k) + 2 sum_{i<j} x_i x_j + k^2)
        linear = -self.mu + lam * np.diag(self.cov) + A * (1 - 2 * self.k)
        upper = np.triu(np.ones((n, n)), k=1)
        quadratic = (2 * lam * self.cov + 2 * A) * upper
        return Qubo(linear.astype(np.float64), quadratic.astype(np.float64), float(A * self.k**2))

    def to_dict(self) -> dict[str, Any]:
        return {"mu": self.mu.tolist(), "cov": self.cov.tolist(), "k": self.k, "risk_aversion": self.risk_aversion,
                "penalty": self.default_penalty(), "assets": list(self.assets), "sectors": list(self.sectors),
                "sector_cap": self.sector_cap}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PortfolioProblem:
        return cls(np.asarray(d["mu"], dtype=np.float64), np.asarray(d["cov"], dtype=np.float64), int(d["k"]),
                   float(d["risk_aversion"]), float(d["penalty"]), tuple(d.get("assets", ())),
                   tuple(int(s) for s in d.get("sectors", ())), int(d.get("sector_cap", 0)))

    def problem_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    # The route's protocol (hybrid_resources.optimization.problem.QuboProblem), by the functions below.
    @property
    def labels(self) -> tuple[str, ...]:
        return self.assets or tuple(str(i) for i in range(self.n))

    def solutions(self) -> tuple[np.ndarray, np.ndarray]:
        return feasible_solutions(self)

    def greedy(self) -> SolverResult:
        return greedy(self)

    def anneal(self, *, evaluations: int, seed: int) -> SolverResult:
        return simulated_annealing(self, evaluations=evaluations, seed=seed)

    def repair(self, x: np.ndarray, excluded: tuple[int, ...] = ()) -> np.ndarray:
        return repair(self, x, excluded)


def returns_statistics(frame, *, date_column: str = "date") -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Mean returns ``mu`` (n,), sample covariance ``cov`` (n, n) and asset names from a returns
    table (a polars DataFrame: ``date_column`` and one numeric column per asset, one row per period).
    Rows are sorted by date first; rows with a missing value are dropped."""
    import polars as pl

    assets = tuple(c for c in frame.columns if c != date_column)
    data = frame.sort(date_column).select([pl.col(c).cast(pl.Float64) for c in assets]).drop_nulls().to_numpy()
    if data.shape[0] < 2:
        raise ValueError(f"need at least 2 complete periods of returns, got {data.shape[0]}")
    return data.mean(axis=0), np.cov(data, rowvar=False), assets


def bits_to_str(X: np.ndarray) -> list[str]:
    """Bitstrings as '0101...' (asset 0 first), one per row."""
    return ["".join("1" if b else "0" for b in row) for row in np.atleast_2d(X).astype(bool)]


def str_to_bits(strings: list[str]) -> np.ndarray:
    """The inverse of :func:`bits_to_str`: (m, n) int8."""
    return np.array([[c == "1" for c in s] for s in strings], dtype=np.int8).reshape(len(strings), -1)


@dataclass(frozen=True)
class SolverResult:
    """Best bitstring, its objective, objective evaluations used, and every distinct bitstring seen."""

    name: str
    best: np.ndarray
    best_value: float
    evaluations: int
    seen: tuple[str, ...] = field(default=())
    wall_s: float = 0.0


def feasible_solutions(problem: PortfolioProblem) -> tuple[np.ndarray, np.ndarray]:
    """Every feasible bitstring (m, n) and its objective (m,), best first (ties by bitstring)."""
    n = problem.n
    if n > MAX_BRUTE_FORCE_ASSETS:
        raise ValueError(f"brute force enumerates C(n, k) bitstrings; n={n} > {MAX_BRUTE_FORCE_ASSETS}")
    combos = np.array(list(itertools.combinations(range(n), problem.k)), dtype=np.int64)
    X = np.zeros((len(combos), n), dtype=np.int8)
    np.put_along_axis(X, combos, 1, axis=1)
    X = X[problem.feasible(X)]
    values = problem.objective(X)
    order = np.lexsort((np.arange(len(values)), -values))
    return X[order], values[order]


def brute_force(problem: PortfolioProblem) -> SolverResult:
    """The exact optimum by enumeration (n <= 20)."""
    X, values = feasible_solutions(problem)
    return SolverResult("brute_force", X[0], float(values[0]), len(values))


def greedy(problem: PortfolioProblem) -> SolverResult:
    """Add, ``k`` times, the asset whose addition raises ``f`` most without breaking a sector cap."""
    x = np.zeros(problem.n, dtype=np.int8)
    evaluations = 0
    for _ in range(problem.k):
        best_i, best_v = -1, -math.inf
        for i in np.flatnonzero(x == 0):
            trial = x.copy()
            trial[i] = 1
            if not _within_caps(problem, trial):
                continue
            value = float(problem.objective(trial)[0])
            evaluations += 1
            if value > best_v:
                best_i, best_v = int(i), value
        x[best_i] = 1
    return SolverResult("greedy", x, float(problem.objective(x)[0]), evaluations, tuple(bits_to_str(x)))


def _within_caps(problem: PortfolioProblem, x: np.ndarray) -> bool:
    if not (problem.sectors and problem.sector_cap):
        return True
    labels = np.asarray(problem.sectors)
    return all(x[labels == s].sum() <= problem.sector_cap for s in np.unique(labels))


def simulated_annealing(problem: PortfolioProblem, *, evaluations: int, seed: int = 0,
                        t_start: float | None = None, t_end: float | None = None) -> SolverResult:
    """Simulated annealing over feasible bitstrings with swap moves, ``evaluations`` objective
    evaluations in all (the budget to compare with the quantum samples), a geometric temperature
    schedule from ``t_start`` to ``t_end`` (default: from the objective's scale), seeded."""
    rng = np.random.default_rng(seed)
    start = greedy_start(problem, rng)
    scale = float(np.abs(problem.mu).max() + problem.risk_aversion * np.abs(problem.cov).max()) or 1.0
    return anneal(AnnealingRun(problem.objective, start, lambda x: _swap(problem, x, rng), evaluations,
                               (t_start or scale, t_end or scale * 1e-3)), rng)


def _swap(problem: PortfolioProblem, x: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """One chosen asset swapped for an unchosen one (the cardinality kept); None over a sector cap."""
    i, j = rng.choice(np.flatnonzero(x == 1)), rng.choice(np.flatnonzero(x == 0))
    trial = x.copy()
    trial[i], trial[j] = 0, 1
    return trial if _within_caps(problem, trial) else None


@dataclass(frozen=True)
class AnnealingRun:
    """What :func:`anneal` needs of a problem: its objective (higher is better) over rows of bitstrings,
    a start, a move (a neighbour of ``x``, or None for a move refused without evaluating it: it still
    spends one of the ``evaluations``), the budget and the (start, end) temperatures."""

    objective: Callable[[np.ndarray], np.ndarray]
    start: np.ndarray
    move: Callable[[np.ndarray], np.ndarray | None]
    evaluations: int
    temperatures: tuple[float, float]


def anneal(run: AnnealingRun, rng: np.random.Generator) -> SolverResult:
    """Simulated annealing (Metropolis acceptance, geometric schedule) within ``run.evaluations``
    objective evaluations; every problem type's annealer is this loop with its own start and move."""
    x = np.array(run.start)
    value = float(run.objective(x)[0])
    best, best_value, seen = x.copy(), value, {bits_to_str(x)[0]}
    t0, t1 = run.temperatures
    used = 1
    while used < run.evaluations:
        temperature = t0 * (t1 / t0) ** (used / max(run.evaluations - 1, 1))
        trial = run.move(x)
        used += 1
        if trial is None:
            continue
        trial_value = float(run.objective(trial)[0])
        seen.add(bits_to_str(trial)[0])
        if trial_value >= value or rng.random() < math.exp((trial_value - value) / temperature):
            x, value = trial, trial_value
            if value > best_value:
                best, best_value = x.copy(), value
    return SolverResult("simulated_annealing", best, best_value, used, tuple(sorted(seen)))


def greedy_start(problem: PortfolioProblem, rng: np.random.Generator) -> np.ndarray:
    """A random feasible bitstring (random order, sector caps respected)."""
    x = np.zeros(problem.n, dtype=np.int8)
    for i in rng.permutation(problem.n):
        if x.sum() == problem.k:
            break
        x[i] = 1
        if not _within_caps(problem, x):
            x[i] = 0
    return x


def _over_cap(problem: PortfolioProblem, x: np.ndarray) -> np.ndarray:
    """Per asset: it is held and its sector is over the cap."""
    if not (problem.sectors and problem.sector_cap):
        return np.zeros(problem.n, dtype=bool)
    labels = np.asarray(problem.sectors)
    counts = {s: int(x[labels == s].sum()) for s in np.unique(labels)}
    return np.array([bool(x[i]) and counts[labels[i]] > problem.sector_cap for i in range(problem.n)])


def _allowed_to_add(problem: PortfolioProblem, x: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    allowed = (x == 0) & ~excluded
    if problem.sectors and problem.sector_cap:
        labels = np.asarray(problem.sectors)
        full = {s for s in np.unique(labels) if x[labels == s].sum() >= problem.sector_cap}
        allowed &= np.array([labels[i] not in full for i in range(problem.n)])
    return allowed


def repair(problem: PortfolioProblem, x: np.ndarray, excluded: tuple[int, ...] = ()) -> np.ndarray:
    """The bitstring made feasible (see the module docstring); ``excluded``: asset indices never held."""
    x = np.array(x, dtype=np.int8)
    banned = np.zeros(problem.n, dtype=bool)
    banned[list(excluded)] = True
    while True:
        must_drop = (x == 1) & (banned | _over_cap(problem, x))
        if must_drop.any() or x.sum() > problem.k:
            pool = np.flatnonzero(must_drop) if must_drop.any() else np.flatnonzero(x == 1)
            trials = np.repeat(x[None, :], len(pool), axis=0)
            trials[np.arange(len(pool)), pool] = 0
            x = trials[int(np.argmax(problem.objective(trials)))]
        elif x.sum() < problem.k:
            pool = np.flatnonzero(_allowed_to_add(problem, x, banned))
            if not len(pool):
                raise ValueError("no asset can be added within the sector caps and exclusions")
            trials = np.repeat(x[None, :], len(pool), axis=0)
            trials[np.arange(len(pool)), pool] = 1
            x = trials[int(np.argmax(problem.objective(trials)))]
        else:
            return x


def approximation_ratio(value: float, best: float, worst: float) -> float:
    """``(value - worst) / (best - worst)`` over the feasible set: 1 at the optimum, 0 at the worst
    feasible choice (the objective can be negative, so ``value / best`` would mislead)."""
    return 1.0 if best == worst else float((value - worst) / (best - worst))
