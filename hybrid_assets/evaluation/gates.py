"""Plain functions behind the stage gates. Each returns a verdict with the figures behind it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hybrid_assets.common.gates import GateResult
from hybrid_assets.evaluation.verdict import Verdict
from hybrid_assets.training.shot_planner import holdout_score
from hybrid_resources.quantum.backends import BackendConfig, SubmissionLedger
from hybrid_resources.quantum.kernel_diagnostics import (
    concentration,
    geometric_difference,
    target_alignment,
)
from hybrid_resources.quantum.kernels import KernelSpec, compute_kernel


@dataclass(frozen=True)
class EvaluationGates:
    """model_evaluation's gates: the four promotion gates (quantum_beats_classical,
    reproducibility, cost_within_budget, latency_ceiling, in that order), the checks reported
    beside them (never blocking), and the per-sample latency (s) per model the latency gate measured."""

    promotion: tuple[GateResult, ...]
    reported: tuple[GateResult, ...]
    latency_s: dict[str, float]

    @property
    def every(self) -> list[GateResult]:
        """The promotion gates, then the reported checks."""
        return [*self.promotion, *self.reported]

    @property
    def verdict(self) -> GateResult:
        """The ``quantum_beats_classical`` gate: its message is the verdict with its interval."""
        return next(gate for gate in self.promotion if gate.name == "quantum_beats_classical")

    @property
    def promotable(self) -> bool:
        """Every promotion gate passed."""
        return all(gate.passed for gate in self.promotion)


def margin_gate(metrics: dict[str, dict[str, float]], *, metric: str, min_margin: float,
                candidate: str = "quantum_svm", name: str = "quantum_beats_classical",
                degraded_reason: str = "", consequence: str = "promotion blocked") -> GateResult:
    """``candidate`` must beat ``classical_baseline`` by more than ``min_margin`` on the same holdout;
    ``consequence`` says what a loss means (a reported check says it blocks nothing)."""
    if degraded_reason:
        return GateResult(name, False, f"quantum stage degraded: {degraded_reason}", {"metric": metric})
    quantum, classical = metrics[candidate][metric], metrics["classical_baseline"][metric]
    difference = quantum - classical
    figures = {"metric": metric, "candidate": candidate, "quantum": quantum, "classical": classical,
               "difference": difference, "min_margin": min_margin}
    if difference > min_margin:
        return GateResult(name, True,
                          f"{candidate} {metric} {quantum:.4f} beats classical {classical:.4f} by {difference:+.4f}", figures)
    return GateResult(name, False,
                      f"{candidate} {metric} {quantum:.4f} vs classical {classical:.4f}: lost by {-difference:.4f} "
                      f"(needs a margin above {min_margin:+.4f}); {consequence}", figures)


def not_applicable(name: str, reason: str, **figures: Any) -> GateResult:
    """A reported check that does not apply (the model it judges was refused for this task): it
    passes, says why, and is marked ``not_applicable`` in its figures."""
    return GateResult(name, True, f"not applicable: {reason}", {"not_applicable": True, "reason": reason, **figures})


def scorable(y_train: np.ndarray, y_test: np.ndarray, task: str) -> bool:
    """Whether a model fit on ``y_train`` can be scored on ``y_test``: a regression target that
    varies, or class indices 0..k-1 (k >= 2, none missing, so decision columns are class indices)
    covering every test class."""
    if task == "regression":
        return len(y_train) > 1 and float(np.ptp(y_train)) > 0
    present = np.unique(y_train)
    return present.size >= 2 and np.array_equal(present, np.arange(present.size)) and bool(
        np.isin(y_test, present).all())


def reproducibility_study(embeddings: dict[str, np.ndarray], spec: KernelSpec, backend: BackendConfig, *,
                          seeds: int, samples: int, C: float, metric: str, tolerance: float,
                          ledger: SubmissionLedger | None = None, task: str = "binary") -> GateResult:
    """Re-run the quantum kernel on a fixed subsample with ``seeds`` different seeds.

    Reports the spread of kernel entries and the std of ``metric`` (the judged metric of
    ``task``) on the subsample's test rows across repeats (exact simulators: zero by construction;
    shot devices: the shot noise); the metric only when the subsample is :func:`scorable`. Every
    repeat is admitted and recorded by ``ledger`` like any other device work.
    """
    n_train = min(samples, len(embeddings["y_train"]))
    n_test = min(max(samples // 2, 4), len(embeddings["y_test"]))
    X_train, y_train = embeddings["X_train"][:n_train], embeddings["y_train"][:n_train]
    X_test, y_test = embeddings["X_test"][:n_test], embeddings["y_test"][:n_test]
    kernels, scores = [], []
    for repeat in range(seeds):
        repeat_backend = BackendConfig(**{**asdict(backend), "seed": backend.seed + repeat})
        k_train = compute_kernel(X_train, spec=spec, backend=repeat_backend, ledger=ledger).matrix
        k_test = compute_kernel(X_test, X_train, spec=spec, backend=repeat_backend, ledger=ledger).matrix
        kernels.append(k_test)
        if scorable(y_train, y_test, task):
            scores.append(holdout_score(k_train, k_test, y_train, y_test, C=C, metric=metric, task=task))
    spread = float(np.max(np.ptp(np.stack(kernels), axis=0))) if kernels else 0.0
    std = float(np.std(scores)) if scores else 0.0
    figures = {"seeds": seeds, "train_rows": n_train, "test_rows": n_test, f"{metric}_per_seed": scores,
               f"{metric}_std": std, f"{metric}_variance": std**2, "max_kernel_spread": spread, "tolerance": tolerance}
    passed = std <= tolerance and spread <= tolerance
    message = (f"{metric} std {std:.4f}, kernel spread {spread:.3g} across {seeds} seeds "
               f"({'within' if passed else 'above'} tolerance {tolerance:g})")
    return GateResult("reproducibility", passed, message, figures)


def restart_spread(values: list[float], *, metric: str, tolerance: float,
                   name: str = "vqc_reproducibility") -> GateResult:
    """Spread of a validation metric across seeded training restarts (needs at least two)."""
    if len(values) < 2:
        return GateResult(name, False, f"needs at least 2 seeded restarts to measure, got {len(values)}",
                          {f"{metric}_per_restart": values})
    std = float(np.std(values))
    figures = {f"{metric}_per_restart": values, f"{metric}_std": std, f"{metric}_variance": std**2,
               "tolerance": tolerance}
    passed = std <= tolerance
    return GateResult(name, passed, f"validation {metric} std {std:.4f} across {len(values)} seeded restarts "
                                    f"({'within' if passed else 'above'} tolerance {tolerance:g})", figures)


def verdict_gate(verdict: Verdict, *, holdout: dict[str, dict[str, float]], degraded_reason: str = "") -> GateResult:
    """``quantum_beats_classical``: passes only when the verdict's lower bound clears the margin.
    The fixed-holdout difference is reported beside it."""
    if degraded_reason:
        return GateResult("quantum_beats_classical", False, f"quantum stage degraded: {degraded_reason}",
                          {"metric": verdict.metric if verdict else None})
    metric = verdict.metric
    figures = {**{k: v for k, v in verdict.to_dict().items() if k != "passed"},
               "holdout_quantum": holdout["quantum_svm"][metric], "holdout_classical": holdout["classical_baseline"][metric],
               "holdout_difference": holdout["quantum_svm"][metric] - holdout["classical_baseline"][metric]}
    message = verdict.message("quantum_svm", "the tuned classical baseline")
    return GateResult("quantum_beats_classical", verdict.passed,
                      message + ("" if verdict.passed else "; promotion blocked"), figures)


def budget_gate(*, spent_usd: float, run_budget_usd: float, spent_today_usd: float,
                daily_budget_usd: float) -> GateResult:
    """``cost_within_budget``: this run's estimated quantum spend within the run budget (the day's
    spend and budget are reported beside it)."""
    return GateResult("cost_within_budget", spent_usd <= run_budget_usd,
                      f"estimated ${spent_usd:.2f} spent this run of a ${run_budget_usd:.2f} budget",
                      {"spent_usd": spent_usd, "run_budget_usd": run_budget_usd,
                       "spent_today_usd": spent_today_usd, "daily_budget_usd": daily_budget_usd})


def concentration_gate(kernel: np.ndarray, *, shots: int, configured_shots: int | None) -> GateResult:
    """``kernel_concentration``: can ``shots`` shots tell the off-diagonal entries apart?"""
    result = concentration(kernel, shots=shots)
    where = f"the configured {shots} shots" if configured_shots else f"{shots} shots (the backend is exact; reference)"
    figures = {"offdiagonal_mean": result.mean, "offdiagonal_variance": result.variance,
               "shot_noise_variance": result.shot_noise_variance, "shots": shots,
               "shots_to_resolve": result.shots_to_resolve}
    if result.resolvable:
        return GateResult("kernel_concentration", True,
                          f"off-diagonal variance {result.variance:.3g} above the shot noise {result.shot_noise_variance:.3g}"
                          f" of {where}", figures)
    return GateResult("kernel_concentration", False,
                      f"concentrated: off-diagonal variance {result.variance:.3g} is below the shot noise "
                      f"{result.shot_noise_variance:.3g} of {where}; about {result.shots_to_resolve} shots per entry "
                      "would be needed to resolve it", figures)


def geometric_difference_gate(classical: np.ndarray, quantum: np.ndarray, *, ratio: float) -> GateResult:
    """``geometric_difference``: g(K_C || K_Q) against sqrt(N) (Huang et al. 2021)."""
    n = classical.shape[0]
    g = geometric_difference(classical, quantum, regularization=1e-6 * n)
    threshold = ratio * math.sqrt(n)
    figures = {"g": g, "sqrt_n": math.sqrt(n), "threshold": threshold, "ratio": ratio, "n": n}
    if g < threshold:
        return GateResult("geometric_difference", False,
                          f"g = {g:.3f} < {ratio:g} x sqrt(N) = {threshold:.3f}: no room for an advantage on this data "
                          "(the tuned classical kernel can match the quantum one whatever the labels)", figures)
    return GateResult("geometric_difference", True,
                      f"g = {g:.3f} >= {ratio:g} x sqrt(N) = {threshold:.3f}: room for the quantum kernel to differ",
                      figures)


def alignment_gate(classical: np.ndarray, quantum: np.ndarray, labels: np.ndarray, *,
                   task: str = "binary") -> GateResult:
    """``kernel_target_alignment``: the quantum kernel aligns with the labels at least as well as
    the classical one (against the task's target kernel: ±1 labels, the centered one-hot label
    kernel for K classes, the centered target kernel for regression)."""
    a_q, a_c = target_alignment(quantum, labels, task=task), target_alignment(classical, labels, task=task)
    figures = {"quantum": a_q, "classical": a_c, "difference": a_q - a_c}
    if task != "binary":
        figures["task"] = task
    comparison = "at least as well with the labels ({:.4f}) as" if a_q >= a_c else "less well with the labels ({:.4f}) than"
    return GateResult("kernel_target_alignment", a_q >= a_c,
                      f"quantum kernel aligns {comparison.format(a_q)} the tuned classical one ({a_c:.4f})", figures)


def latency_gate(latency_s: dict[str, float], *, ceiling_s: float) -> GateResult:
    """``latency_ceiling``: the quantum model's measured per-sample inference latency under the ceiling."""
    quantum = latency_s.get("quantum_svm", math.nan)
    passed = quantum <= ceiling_s
    return GateResult("latency_ceiling", passed,
                      f"quantum_svm {'within' if passed else 'over'} the {ceiling_s * 1e3:.0f} ms per-sample ceiling",
                      {"ceiling_s": ceiling_s}, measured={"per_sample_s": latency_s},
                      reading=f"{quantum * 1e3:.3f} ms per sample")
