"""What the pattern-3 route needs of a problem type (portfolio selection, max-cut, ...).

The assets, the ranking, the heuristics and the ROI figures are written against this protocol
only, so a new problem type is a class with these members plus its landing file's reader.
Bitstrings are rows of 0/1 (bit ``i`` is ``labels[i]``), and the objective is maximised.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from hybrid_resources.optimization.portfolio import Qubo, SolverResult


class QuboProblem(Protocol):
    @property
    def n(self) -> int: ...

    @property
    def labels(self) -> tuple[str, ...]:
        """One name per bit (an asset, a node)."""

    def objective(self, X: np.ndarray) -> np.ndarray:
        """The true objective of each row of ``X`` (m, n); higher is better."""

    def feasible(self, X: np.ndarray) -> np.ndarray:
        """Which rows of ``X`` satisfy the constraints; (m,) bool."""

    def qubo(self) -> Qubo: ...

    def solutions(self) -> tuple[np.ndarray, np.ndarray]:
        """Every feasible bitstring and its objective, best first (exact brute force, n <= 20)."""

    def greedy(self) -> SolverResult: ...

    def anneal(self, *, evaluations: int, seed: int) -> SolverResult:
        """Simulated annealing within ``evaluations`` objective evaluations, seeded."""

    def repair(self, x: np.ndarray, excluded: tuple[int, ...] = ()) -> np.ndarray:
        """The bitstring made feasible, the ``excluded`` bits left at 0."""

    def to_dict(self) -> dict[str, Any]: ...

    def problem_hash(self) -> str: ...
