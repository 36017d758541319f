"""The steps of pattern 3 as plain functions, shared by the assets and the benchmark:
returns table -> problem -> QAOA circuit; the classical heuristics on the same instance (any
:class:`~hybrid_resources.optimization.problem.QuboProblem`: a portfolio, a max-cut)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hybrid_resources.optimization.portfolio import (
    PortfolioProblem,
    SolverResult,
    returns_statistics,
)
from hybrid_resources.optimization.problem import QuboProblem
from hybrid_resources.optimization.qaoa import QaoaCircuit
from hybrid_resources.optimization.ranking import time_to_solution

PERIODS_PER_YEAR = 252


@dataclass(frozen=True)
class ProblemSettings:
    """How a returns table becomes a problem: choose ``k`` assets; ``risk_aversion`` lambda; returns
    and covariance annualised by ``periods_per_year``; ``sectors`` maps asset name -> sector name
    (assets not named are each a sector of their own) and ``sector_cap`` caps each sector (0 = none)."""

    k: int = 4
    risk_aversion: float = 1.0
    periods_per_year: int = PERIODS_PER_YEAR
    sectors: dict[str, str] = field(default_factory=dict)
    sector_cap: int = 0


def build_problem(frame, settings: ProblemSettings) -> PortfolioProblem:
    """The portfolio problem of a returns table (``date`` + one column per asset)."""
    mu, cov, assets = returns_statistics(frame)
    labels: tuple[int, ...] = ()
    if settings.sectors and settings.sector_cap:
        names = sorted({settings.sectors.get(a, f"__{a}") for a in assets})
        labels = tuple(names.index(settings.sectors.get(a, f"__{a}")) for a in assets)
    return PortfolioProblem(mu * settings.periods_per_year, cov * settings.periods_per_year, settings.k,
                            settings.risk_aversion, 0.0, assets, labels, settings.sector_cap if labels else 0)


def qaoa_circuit(problem: PortfolioProblem, *, mixer: str, p: int, mixer_graph: str = "ring") -> QaoaCircuit:
    """The QAOA circuit of ``problem``: the X mixer minimises the penalised QUBO; the XY mixer keeps
    the cardinality, so its QUBO carries no penalty."""
    return QaoaCircuit(problem.qubo(penalty=0.0 if mixer == "xy" else None), mixer, p, problem.k, mixer_graph)


def run_heuristics(problem: QuboProblem, *, evaluations: int, seeds: int, optimum: float) -> dict[str, Any]:
    """Greedy once and simulated annealing with ``evaluations`` objective evaluations per run, over
    ``seeds`` seeds: the best of each (SolverResult), and per heuristic the approximation inputs, the
    success rate (runs reaching ``optimum``), the mean wall time per run and the time to solution."""
    started = time.perf_counter()
    greedy_result = problem.greedy()
    greedy_s = time.perf_counter() - started
    runs: list[SolverResult] = []
    walls: list[float] = []
    for seed in range(seeds):
        started = time.perf_counter()
        runs.append(problem.anneal(evaluations=evaluations, seed=seed))
        walls.append(time.perf_counter() - started)
    best_run = max(runs, key=lambda r: r.best_value)
    seen = tuple(sorted(set().union(*(set(r.seen) for r in runs))))
    annealing = SolverResult("simulated_annealing", best_run.best, best_run.best_value, evaluations, seen)
    success = {"greedy": float(np.isclose(greedy_result.best_value, optimum)),
               "simulated_annealing": float(np.mean([np.isclose(r.best_value, optimum) for r in runs]))}
    wall = {"greedy": greedy_s, "simulated_annealing": float(np.mean(walls))}
    return {
        "results": {"greedy": greedy_result, "simulated_annealing": annealing},
        "success_rate": success,
        "wall_s_per_run": wall,
        "time_to_solution_s": {name: time_to_solution(wall[name], success[name]) for name in wall},
        "annealing_values_per_seed": [r.best_value for r in runs],
    }
