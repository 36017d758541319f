"""Max-cut, a second problem type through the same route (QUBO -> QAOA -> samples -> ranking),
to show the route is not portfolio-specific.

A graph comes from an edge-list file: one edge per line, ``u v`` or ``u v weight`` (whitespace or
comma separated; ``#`` starts a comment), nodes named by any token. The cut of a bitstring ``x`` is
``sum_{(i,j)} w_ij [x_i != x_j]``; its QUBO minimises ``-cut(x) = -sum w_ij (x_i + x_j - 2 x_i x_j)``.
Every bitstring is feasible, so the QAOA uses the X mixer, and ranking is scoring only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_resources.optimization.portfolio import Qubo, bits_to_str, str_to_bits
from hybrid_resources.optimization.qaoa import QaoaCircuit, basis_bits


@dataclass(frozen=True)
class MaxCutProblem:
    nodes: tuple[str, ...]
    edges: tuple[tuple[int, int, float], ...]

    @property
    def n(self) -> int:
        return len(self.nodes)

    def cut(self, X: np.ndarray) -> np.ndarray:
        """Cut value of each row of ``X`` (m, n)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        return sum(w * (X[:, i] != X[:, j]) for i, j, w in self.edges) + np.zeros(len(X))

    def qubo(self) -> Qubo:
        linear, quadratic = np.zeros(self.n), np.zeros((self.n, self.n))
        for i, j, w in self.edges:
            a, b = min(i, j), max(i, j)
            linear[a] -= w
            linear[b] -= w
            quadratic[a, b] += 2 * w
        return Qubo(linear, quadratic, 0.0)

    def circuit(self, p: int) -> QaoaCircuit:
        return QaoaCircuit(self.qubo(), "x", p, 0)

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes), "edges": [list(e) for e in self.edges]}


def read_edge_list(path: Path) -> MaxCutProblem:
    """The graph of an edge-list file (see the module docstring); ValueError on a malformed line."""
    nodes: dict[str, int] = {}
    edges = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        fields = line.split("#", 1)[0].replace(",", " ").split()
        if not fields:
            continue
        if len(fields) not in (2, 3):
            raise ValueError(f"{Path(path).name} line {number}: expected 'u v [weight]', got {line!r}")
        u, v = (nodes.setdefault(name, len(nodes)) for name in fields[:2])
        if u == v:
            raise ValueError(f"{Path(path).name} line {number}: a self-loop cannot be cut")
        edges.append((u, v, float(fields[2]) if len(fields) == 3 else 1.0))
    if len(nodes) < 2:
        raise ValueError(f"{Path(path).name}: no edges")
    return MaxCutProblem(tuple(nodes), tuple(edges))


def brute_force_cuts(problem: MaxCutProblem) -> tuple[np.ndarray, np.ndarray]:
    """Every bitstring (2^n, n) and its cut, best first (n <= 20)."""
    if problem.n > 20:
        raise ValueError(f"brute force enumerates 2^n bitstrings; n={problem.n} > 20")
    X = basis_bits(problem.n)
    cuts = problem.cut(X)
    order = np.lexsort((np.arange(len(cuts)), -cuts))
    return X[order], cuts[order]


def rank_cuts(problem: MaxCutProblem, counts: dict[str, int], top: int = 10) -> list[dict[str, Any]]:
    """Sampled bitstrings scored by their cut, best first (ties by bitstring), at most ``top``."""
    keys = sorted(counts)
    cuts = problem.cut(str_to_bits(keys))
    rows = [{"bitstring": k, "cut": float(c), "count": int(counts[k])} for k, c in zip(keys, cuts)]
    rows.sort(key=lambda r: (-r["cut"], r["bitstring"]))
    return rows[:top]


__all__ = ["MaxCutProblem", "bits_to_str", "brute_force_cuts", "rank_cuts", "read_edge_list"]
