"""Gates of pattern 3 (QAOA candidates ranked classically), as plain functions returning a
:class:`~hybrid_assets.evaluation.gates.GateResult` with the figures behind each verdict."""

from __future__ import annotations

import math

import numpy as np

from hybrid_assets.common.gates import GateResult


def quantum_beats_heuristic(quantum: float, heuristics: dict[str, float], *, margin: float, measure: str,
                            higher_is_better: bool = True, name: str = "quantum_beats_heuristics") -> GateResult:
    """The quantum figure must beat the best heuristic's by more than ``margin`` (on ``measure``:
    an approximation ratio, higher is better; a time to solution, lower is better). A loss says
    which heuristic won and by how much."""
    sign = 1.0 if higher_is_better else -1.0
    best_name = max(heuristics, key=lambda k: sign * heuristics[k])
    best = heuristics[best_name]
    advantage = sign * (quantum - best)
    if not math.isfinite(advantage):
        advantage = -math.inf if not math.isfinite(quantum) else math.inf
    figures = {"measure": measure, "quantum": quantum, "best_heuristic": best_name, "heuristic": best,
               "advantage": advantage, "min_margin": margin, "heuristics": heuristics}
    if advantage > margin:
        return GateResult(name, True, f"quantum {measure} {quantum:.4g} beats {best_name} {best:.4g} by {advantage:.4g}",
                          figures)
    outcome = "a tie" if advantage == 0 else (f"quantum lost by {-advantage:.4g}" if advantage < 0
                                               else f"quantum ahead by only {advantage:.4g}")
    verdict = "the heuristic wins" if advantage < 0 else "not enough"
    return GateResult(name, False, f"quantum {measure} {quantum:.4g} vs {best_name} {best:.4g}: {verdict}, {outcome} "
                                   f"(needs an advantage above {margin:g})", figures)


def optimum_probability_gate(p_optimum: float, uniform: float, *, min_factor: float) -> GateResult:
    """The probability of sampling the optimum must be at least ``min_factor`` times that of
    uniform sampling over the feasible set."""
    factor = p_optimum / uniform if uniform else math.inf
    figures = {"p_optimum": p_optimum, "p_uniform_feasible": uniform, "factor": factor, "min_factor": min_factor}
    passed = factor >= min_factor
    return GateResult("optimum_probability", passed,
                      f"P(optimum) {p_optimum:.4g} per shot is {factor:.2f}x uniform feasible sampling ({uniform:.4g}); "
                      f"{'at least' if passed else 'below'} {min_factor:g}x", figures)


def seed_reproducibility(best_ratio_per_seed: list[float], *, tolerance: float) -> GateResult:
    """The best candidate's approximation ratio across sampling seeds spreads by at most ``tolerance``."""
    spread = float(np.ptp(best_ratio_per_seed)) if best_ratio_per_seed else math.inf
    passed = len(best_ratio_per_seed) >= 2 and spread <= tolerance
    return GateResult("reproducibility", passed,
                      f"best approximation ratio spread {spread:.4g} across {len(best_ratio_per_seed)} seeds "
                      f"({'within' if passed else 'above'} tolerance {tolerance:g})",
                      {"approximation_ratio_per_seed": best_ratio_per_seed, "spread": spread, "tolerance": tolerance})


def cost_gate(spent_usd: float, budget_usd: float) -> GateResult:
    """What the ledger recorded for the quantum stage is within the run budget."""
    passed = spent_usd <= budget_usd + 1e-12
    return GateResult("cost_within_budget", passed,
                      f"${spent_usd:.2f} recorded for the quantum stage of a ${budget_usd:.2f} budget",
                      {"spent_usd": spent_usd, "budget_usd": budget_usd})
