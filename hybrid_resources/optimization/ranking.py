"""Classical ranking of quantum candidates, and the ROI figures of the quantum stage.

Ranking: every sampled bitstring is repaired to feasibility (exactly ``k`` assets, sector caps,
excluded assets never held), duplicates merged (their counts added), scored by the true
objective, and the best ``top`` kept. Repair is greedy and deterministic: while too many assets
(or a sector over its cap, or an excluded asset), drop the held asset whose removal costs least;
while too few, add the allowed asset that gains most.

ROI figures (the seed's measures): approximation ratio of the best candidate, probability of
sampling the optimum, recall of the true top-m, novelty (ranked candidates in no heuristic's own
top-m list) and cost per successful run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hybrid_resources.optimization.portfolio import (
    PortfolioProblem,
    SolverResult,
    approximation_ratio,
    bits_to_str,
    str_to_bits,
)


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


@dataclass(frozen=True)
class RankingRules:
    """Business rules of the ranking: ``top`` candidates kept; ``excluded`` asset names never held;
    ``min_objective`` drops candidates below it (None = keep all)."""

    top: int = 10
    excluded: tuple[str, ...] = ()
    min_objective: float | None = None


def rank_candidates(problem: PortfolioProblem, counts: dict[str, int], rules: RankingRules = RankingRules()) -> list[dict[str, Any]]:
    """Repaired, merged, filtered and scored candidates, best first (ties by bitstring), at most
    ``rules.top``: each ``{"bitstring", "assets", "objective", "count", "sampled_feasible"}``
    (``sampled_feasible``: some sample was already this bitstring, no repair needed)."""
    unknown = set(rules.excluded) - set(problem.assets)
    if unknown:
        raise ValueError(f"excluded assets {sorted(unknown)} are not in the problem ({list(problem.assets)})")
    excluded = tuple(problem.assets.index(name) for name in rules.excluded)
    merged: dict[str, dict[str, Any]] = {}
    for bitstring, count in counts.items():
        sampled = str_to_bits([bitstring])[0]
        fixed = repair(problem, sampled, excluded)
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
        assets = [problem.assets[i] if problem.assets else str(i) for i in np.flatnonzero(x[0])]
        rows.append({**entry, "objective": value, "assets": assets})
    rows.sort(key=lambda r: (-r["objective"], r["bitstring"]))
    return rows[: rules.top]


@dataclass(frozen=True)
class RoiRequest:
    """What the ROI figures compare: the ranked quantum candidates, the exact probability of the
    optimum, the heuristics' results, the feasible set (best first), the spend and wall time."""

    problem: PortfolioProblem
    ranked: list[dict[str, Any]]
    p_optimum: float
    heuristics: dict[str, SolverResult]
    feasible_bits: list[str]
    feasible_values: np.ndarray
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


def _top_list(problem: PortfolioProblem, result: SolverResult, top_m: int) -> set[str]:
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
    best, worst = float(request.feasible_values[0]), float(request.feasible_values[-1])
    quantum_best = request.ranked[0]["objective"] if request.ranked else worst
    ranked_bits = {row["bitstring"] for row in request.ranked}
    true_top = set(request.feasible_bits[:top_m])
    heuristic_lists = {name: _top_list(request.problem, r, top_m) for name, r in request.heuristics.items()}
    novel = sorted(ranked_bits - set().union(*heuristic_lists.values()))
    p_run = 1.0 - (1.0 - request.p_optimum) ** request.shots
    return {
        "optimum": best,
        "quantum_approximation_ratio": approximation_ratio(quantum_best, best, worst),
        "heuristic_approximation_ratio": {name: approximation_ratio(r.best_value, best, worst)
                                          for name, r in request.heuristics.items()},
        "p_optimum_per_shot": request.p_optimum,
        "p_optimum_uniform_feasible": 1.0 / len(request.feasible_bits),
        "p_optimum_per_run": p_run,
        "found_optimum": bool(request.feasible_bits[0] in ranked_bits),
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
