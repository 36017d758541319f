"""Classical ranking of quantum candidates, and the ROI figures of the quantum stage.

Ranking, for any problem type (:class:`~hybrid_resources.optimization.problem.QuboProblem`): every
sampled bitstring is repaired to feasibility by the problem (a portfolio: exactly ``k`` assets,
sector caps, excluded assets never held; max-cut: every bitstring is a cut), duplicates merged
(their counts added), scored by the true objective, and the best ``top`` kept.

ROI figures: approximation ratio of the best candidate, probability of
sampling the optimum, recall of the true top-m, novelty (ranked candidates in no heuristic's own
top-m list) and cost per successful run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hybrid_resources.optimization.portfolio import (
    SolverResult,
    approximation_ratio,
    bits_to_str,
    str_to_bits,
)
from hybrid_resources.optimization.problem import QuboProblem


@dataclass(frozen=True)
class RankingRules:
    """Business rules of the ranking: ``top`` candidates kept; ``excluded`` labels whose bit stays 0
    (assets never held; nodes kept on side 0); ``min_objective`` drops candidates below it (None =
    keep all)."""

    top: int = 10
    excluded: tuple[str, ...] = ()
    min_objective: float | None = None


def rank_candidates(problem: QuboProblem, counts: dict[str, int], rules: RankingRules = RankingRules()) -> list[dict[str, Any]]:
    """Repaired, merged, filtered and scored candidates, best first (ties by bitstring), at most
    ``rules.top``: each ``{"bitstring", "chosen", "objective", "count", "sampled_feasible"}``
    (``chosen``: the labels of the bits set; ``sampled_feasible``: some sample was already this
    bitstring, no repair needed)."""
    labels = list(problem.labels)
    unknown = set(rules.excluded) - set(labels)
    if unknown:
        raise ValueError(f"excluded {sorted(unknown)} are not in the problem ({labels})")
    excluded = tuple(labels.index(name) for name in rules.excluded)
    merged: dict[str, dict[str, Any]] = {}
    for bitstring, count in counts.items():
        sampled = str_to_bits([bitstring])[0]
        fixed = problem.repair(sampled, excluded)
        key = bits_to_str(fixed)[0]
        entry = merged.setdefault(key, {"bitstring": key, "count": 0, "sampled_feasible": False})
        entry["count"] += int(count)
        entry["sampled_feasible"] |= key == bitstring
    rows = []
    for key, entry in merged.items():
        x = str_to_bits([key])
        value = float(problem.objective(x)[0])
        if rules.min_objective is not None and value < rules.min_objective:
            continue
        rows.append({**entry, "objective": value, "chosen": [labels[i] for i in np.flatnonzero(x[0])]})
    rows.sort(key=lambda r: (-r["objective"], r["bitstring"]))
    return rows[: rules.top]


@dataclass(frozen=True)
class RoiRequest:
    """What the ROI figures compare: the ranked quantum candidates, the heuristics' results, the true
    top list (best first), the feasible set's (best, worst) objective, the exact probability of
    sampling an optimum (every optimal bitstring: max-cut's come in complementary pairs) and that of
    uniform sampling over the feasible set, the spend, the wall time of one run and its shots."""

    problem: QuboProblem
    ranked: list[dict[str, Any]]
    heuristics: dict[str, SolverResult]
    true_top: list[str]
    bounds: tuple[float, float]
    p_optimum: float
    p_uniform: float
    cost_usd: float
    quantum_wall_s: float
    shots: int


def time_to_solution(wall_s: float, p_success: float, target: float = 0.99) -> float:
    """Expected wall time to find the optimum with probability ``target`` by repeating a run that
    takes ``wall_s`` and succeeds with ``p_success``: ``wall_s * ln(1 - target) / ln(1 - p_success)``
    (one run when p_success >= target; inf when it never succeeds)."""
    if p_success <= 0:
        return math.inf
    if p_success >= target:
        return wall_s
    return wall_s * math.log(1 - target) / math.log(1 - p_success)


def _top_list(problem: QuboProblem, result: SolverResult, top_m: int) -> set[str]:
    """A heuristic's own top-m list: its best answer and the best feasible bitstrings it evaluated."""
    seen = sorted(set(result.seen) | set(bits_to_str(result.best)))
    values = problem.objective(str_to_bits(seen))
    order = np.lexsort((np.arange(len(seen)), -values))[:top_m]
    return {seen[i] for i in order} | set(bits_to_str(result.best))


def roi_figures(request: RoiRequest, *, top_m: int) -> dict[str, Any]:
    """Approximation ratios (quantum best candidate and each heuristic), probability of the optimum
    (per shot, and of a run of ``shots`` shots), recall of the true top-``top_m`` (the ranked list's,
    and each heuristic's own top-``top_m`` list of what it evaluated), novelty (ranked candidates in
    no heuristic's top list), cost per successful run."""
    best, worst = request.bounds
    quantum_best = request.ranked[0]["objective"] if request.ranked else worst
    ranked_bits = {row["bitstring"] for row in request.ranked}
    true_top = set(request.true_top[:top_m])
    heuristic_lists = {name: _top_list(request.problem, r, top_m) for name, r in request.heuristics.items()}
    novel = sorted(ranked_bits - set().union(*heuristic_lists.values()))
    p_run = 1.0 - (1.0 - request.p_optimum) ** request.shots
    return {
        "optimum": best,
        "quantum_approximation_ratio": approximation_ratio(quantum_best, best, worst),
        "heuristic_approximation_ratio": {name: approximation_ratio(r.best_value, best, worst)
                                          for name, r in request.heuristics.items()},
        "p_optimum_per_shot": request.p_optimum,
        "p_optimum_uniform_feasible": request.p_uniform,
        "p_optimum_per_run": p_run,
        "found_optimum": bool(request.ranked) and math.isclose(quantum_best, best, rel_tol=1e-9, abs_tol=1e-12),
        "recall_top_m": len(ranked_bits & true_top) / max(len(true_top), 1),
        "heuristic_recall_top_m": {name: len(bits & true_top) / max(len(true_top), 1)
                                   for name, bits in heuristic_lists.items()},
        "top_m": top_m,
        "novelty": len(novel) / max(len(ranked_bits), 1),
        "novel_candidates": novel,
        "cost_usd": request.cost_usd,
        "cost_per_successful_run_usd": request.cost_usd / p_run if p_run > 0 else math.inf,
        "quantum_time_to_solution_s": time_to_solution(request.quantum_wall_s, p_run),
    }
