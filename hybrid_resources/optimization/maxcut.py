"""Max-cut, a second problem type through the same route (graph file -> QUBO -> QAOA -> samples ->
ranking, beside brute force, annealing and greedy), to show the route is not portfolio-specific.

A graph file is an edge list (CSV or text, UTF-8): one edge per line, ``u,v`` or ``u,v,weight``
(commas or whitespace; ``#`` starts a comment; an optional header ``u,v[,weight]``), nodes named by
any token. The contract (:func:`read_graph_file`) refuses, with the check's name and a reason, as a
returns or training file is refused: an unreadable file (``parse``), a line that is not an edge or
a weight that is not a number (``edge_format``), a self-loop (``self_loop``), a weight that is not
finite (``finite_values``), the same pair twice (``duplicate_edges``), no edge (``edge_count``), and
fewer than 2 or more than 20 nodes (``node_count``: brute force and the exact simulator stay within
2^20 states).

The cut of a bitstring ``x`` (bit ``i``: the side of node ``i``) is
``sum_{(i,j)} w_ij [x_i != x_j]``; its QUBO minimises ``-cut(x) = -sum w_ij (x_i + x_j - 2 x_i x_j)``.
Every bitstring is feasible, so the QAOA uses the X mixer; a bitstring and its complement are the
same cut, so the optimum is sampled through either. Ranking only scores (the ``excluded`` rule keeps
the named nodes on side 0).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_resources.data.contract import ContractViolation, redact_message, sample
from hybrid_resources.optimization.portfolio import (
    AnnealingRun,
    Qubo,
    SolverResult,
    anneal,
    bits_to_str,
)
from hybrid_resources.optimization.qaoa import QaoaCircuit, basis_bits

GRAPH_SUFFIXES = (".csv", ".txt")
MAX_NODES = 20
# Beyond this the cut values lose precision long before they overflow (|w| sums in float64).
MAX_TOTAL_WEIGHT = 1e12
HEADERS = (("u", "v"), ("u", "v", "weight"))


@dataclass(frozen=True)
class MaxCutProblem:
    nodes: tuple[str, ...]
    edges: tuple[tuple[int, int, float], ...]

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.nodes

    @cached_property
    def weights(self) -> np.ndarray:
        """The symmetric weight matrix (n, n)."""
        W = np.zeros((self.n, self.n))
        for i, j, w in self.edges:
            W[i, j] = W[j, i] = w
        return W

    @cached_property
    def _edge_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The edges as three arrays (E,): first nodes, second nodes, weights."""
        i, j, w = zip(*self.edges) if self.edges else ((), (), ())
        return np.array(i, dtype=np.int64), np.array(j, dtype=np.int64), np.array(w, dtype=np.float64)

    def cut(self, X: np.ndarray) -> np.ndarray:
        """Cut value of each row of ``X`` (m, n). The edges' weights are added in edge order (a
        running sum, as a loop over the edges would): annealing compares cuts bit for bit."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        i, j, w = self._edge_columns
        if not len(w):
            return np.zeros(len(X))
        terms = w[:, None] * (X[:, i] != X[:, j]).T  # (E, m)
        return np.cumsum(terms, axis=0)[-1] + np.zeros(len(X))

    objective = cut

    def feasible(self, X: np.ndarray) -> np.ndarray:
        return np.ones(len(np.atleast_2d(X)), dtype=bool)

    def qubo(self) -> Qubo:
        linear, quadratic = np.zeros(self.n), np.zeros((self.n, self.n))
        for i, j, w in self.edges:
            a, b = min(i, j), max(i, j)
            linear[a] -= w
            linear[b] -= w
            quadratic[a, b] += 2 * w
        return Qubo(linear, quadratic, 0.0)

    def solutions(self) -> tuple[np.ndarray, np.ndarray]:
        """Every bitstring (2^n, n) and its cut, best first (ties by bitstring; n <= 20)."""
        if self.n > MAX_NODES:
            raise ValueError(f"brute force enumerates 2^n bitstrings; n={self.n} > {MAX_NODES}")
        X = basis_bits(self.n)
        cuts = self.cut(X)
        order = np.lexsort((np.arange(len(cuts)), -cuts))
        return X[order], cuts[order]

    def greedy(self) -> SolverResult:
        """Place the nodes in order, each on the side that cuts more weight to the nodes placed before it."""
        x, placed = np.zeros(self.n, dtype=np.int8), np.zeros(self.n, dtype=bool)
        for i in range(self.n):
            x[i] = int(self.weights[i, placed & (x == 0)].sum() > self.weights[i, placed & (x == 1)].sum())
            placed[i] = True
        return SolverResult("greedy", x, float(self.cut(x)[0]), self.n, tuple(bits_to_str(x)))

    def anneal(self, *, evaluations: int, seed: int) -> SolverResult:
        """Simulated annealing with single-node flips from a random cut, ``evaluations`` cuts evaluated,
        temperatures from the largest weighted degree down to a thousandth of it."""
        rng = np.random.default_rng(seed)
        scale = float(np.abs(self.weights).sum(axis=1).max()) or 1.0

        def flip(x: np.ndarray) -> np.ndarray:
            trial = x.copy()
            trial[rng.integers(self.n)] ^= 1
            return trial

        start = rng.integers(0, 2, self.n).astype(np.int8)
        return anneal(AnnealingRun(self.cut, start, flip, evaluations, (scale, scale * 1e-3)), rng)

    def repair(self, x: np.ndarray, excluded: tuple[int, ...] = ()) -> np.ndarray:
        """Every bitstring is a cut; the ``excluded`` nodes are put on side 0."""
        x = np.array(x, dtype=np.int8)
        x[list(excluded)] = 0
        return x

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes), "edges": [list(e) for e in self.edges]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MaxCutProblem:
        return cls(tuple(d["nodes"]), tuple((int(u), int(v), float(w)) for u, v, w in d["edges"]))

    def problem_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def qaoa_circuit(problem: MaxCutProblem, *, mixer: str = "x", p: int, mixer_graph: str = "ring") -> QaoaCircuit:
    """The QAOA circuit of a max-cut: the X mixer over ``|+>^n`` (no cardinality to keep)."""
    if mixer != "x":
        raise ValueError(f"max-cut has no cardinality for the {mixer!r} mixer to keep: use mixer 'x'")
    return QaoaCircuit(problem.qubo(), "x", p, 0, mixer_graph)


def _edge(fields: list[str], where: str) -> tuple[str, str, float]:
    if len(fields) not in (2, 3):
        raise ContractViolation("edge_format", f"{where}: expected 'u,v' or 'u,v,weight', got {len(fields)} fields")
    try:
        weight = float(fields[2]) if len(fields) == 3 else 1.0
    except ValueError:
        raise ContractViolation("edge_format", f"{where}: weight {sample(fields[2])!r} is not a number") from None
    if fields[0] == fields[1]:
        raise ContractViolation("self_loop", f"{where}: {sample(fields[0])!r} to itself cannot be cut")
    if not math.isfinite(weight):
        raise ContractViolation("finite_values", f"{where}: weight {sample(fields[2])!r} is not finite")
    return fields[0], fields[1], weight


def read_graph_file(path: Path) -> MaxCutProblem:
    """The graph of an edge-list file (see the module docstring), or :class:`ContractViolation`."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ContractViolation("parse", f"{path.name} cannot be read as UTF-8 text: {redact_message(error)}") from error
    nodes: dict[str, int] = {}
    edges: dict[frozenset[int], tuple[int, int, float]] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split("#", 1)[0].replace(",", " ").split()
        if not fields or (not nodes and tuple(f.lower() for f in fields) in HEADERS):
            continue
        u, v, weight = _edge(fields, f"line {number}")
        i, j = (nodes.setdefault(name, len(nodes)) for name in (u, v))
        if frozenset((i, j)) in edges:
            raise ContractViolation("duplicate_edges", f"line {number}: the edge {sample(u)}-{sample(v)} is listed twice",
                                    {"line": number})
        edges[frozenset((i, j))] = (i, j, weight)
    if not edges:
        raise ContractViolation("edge_count", f"{path.name} lists no edge")
    total = sum(abs(weight) for _, _, weight in edges.values())  # inf on overflow, never an error
    if not total <= MAX_TOTAL_WEIGHT:
        raise ContractViolation("value_range", f"the edge weights sum to {total:.3g} in absolute value; the contract "
                                f"allows at most {MAX_TOTAL_WEIGHT:g} (rescale the weights: a cut keeps its optimum)")
    if not 2 <= len(nodes) <= MAX_NODES:
        raise ContractViolation("node_count", f"{len(nodes)} nodes; the contract allows 2 to {MAX_NODES} "
                                              "(one qubit each on the exact simulator)")
    return MaxCutProblem(tuple(nodes), tuple(edges.values()))
