"""Plain functions behind the stage gates. Each returns a verdict with the figures behind it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hybrid_assets.modeling import (
    fit_precomputed_svm,
    holdout_metrics,
    precomputed_decision,
)
from hybrid_resources.quantum.backends import BackendConfig, SubmissionLedger
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import quantum_kernel


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kernel_health(matrix: np.ndarray, *, shots: int | None, symmetry_tolerance: float, psd_tolerance: float,
                  psd_shot_factor: float, square: bool) -> GateResult:
    """Symmetric, unit diagonal (within shot tolerance), PSD within tolerance; entries in [0, 1].

    For a rectangular (test x train) kernel only the entry range is checked.
    """
    in_range = bool(np.all((matrix >= -1e-12) & (matrix <= 1 + 1e-12)))
    figures: dict[str, Any] = {"shape": list(matrix.shape), "entries_in_unit_interval": in_range}
    problems = [] if in_range else ["entries outside [0, 1]"]
    if square:
        n = matrix.shape[0]
        asymmetry = float(np.max(np.abs(matrix - matrix.T))) if n else 0.0
        diagonal_error = float(np.max(np.abs(np.diag(matrix) - 1.0))) if n else 0.0
        diagonal_tolerance = 1e-9 if shots is None else 3.0 / math.sqrt(shots)
        tolerance = psd_tolerance + (psd_shot_factor * math.sqrt(n / shots) if shots else 0.0)
        min_eigenvalue = float(np.linalg.eigvalsh((matrix + matrix.T) / 2)[0]) if n else 0.0
        figures |= {"max_asymmetry": asymmetry, "max_diagonal_error": diagonal_error,
                    "min_eigenvalue": min_eigenvalue, "psd_tolerance": tolerance}
        if asymmetry > symmetry_tolerance:
            problems.append(f"asymmetric by {asymmetry:.3g} > {symmetry_tolerance:g}")
        if diagonal_error > diagonal_tolerance:
            problems.append(f"diagonal off 1 by {diagonal_error:.3g} > {diagonal_tolerance:.3g}")
        if min_eigenvalue < -tolerance:
            problems.append(f"not PSD: smallest eigenvalue {min_eigenvalue:.3g} < -{tolerance:.3g}")
    message = "well-formed" if not problems else "; ".join(problems)
    return GateResult("kernel_well_formed", not problems, message, figures)


def circuit_ceilings(resources: dict[str, Any], *, max_width: int, max_depth: int,
                     max_two_qubit_gates: int) -> GateResult:
    """Width, depth and two-qubit gate count (after decomposition) under the configured ceilings."""
    limits = {"width": max_width, "depth": max_depth, "two_qubit_gates": max_two_qubit_gates}
    over = [f"{name} {resources[name]} > {limit}" for name, limit in limits.items() if resources[name] > limit]
    figures = {name: resources[name] for name in limits} | {f"max_{name}": limit for name, limit in limits.items()}
    return GateResult("circuit_ceilings", not over, "within ceilings" if not over else "; ".join(over), figures)


def margin_gate(metrics: dict[str, dict[str, float]], *, metric: str, min_margin: float,
                candidate: str = "quantum_svm", name: str = "quantum_beats_classical",
                degraded_reason: str = "") -> GateResult:
    """``candidate`` must beat ``classical_svm`` by more than ``min_margin`` on the same holdout."""
    if degraded_reason:
        return GateResult(name, False, f"quantum stage degraded: {degraded_reason}", {"metric": metric})
    quantum, classical = metrics[candidate][metric], metrics["classical_svm"][metric]
    difference = quantum - classical
    figures = {"metric": metric, "candidate": candidate, "quantum": quantum, "classical": classical,
               "difference": difference, "min_margin": min_margin}
    if difference > min_margin:
        return GateResult(name, True,
                          f"{candidate} {metric} {quantum:.4f} beats classical {classical:.4f} by {difference:+.4f}", figures)
    return GateResult(name, False,
                      f"{candidate} {metric} {quantum:.4f} vs classical {classical:.4f}: lost by {-difference:.4f} "
                      f"(needs a margin above {min_margin:+.4f}); promotion blocked", figures)


def reproducibility_study(embeddings: dict[str, np.ndarray], spec: FeatureMapSpec, backend: BackendConfig, *,
                          seeds: int, samples: int, C: float, metric: str, tolerance: float,
                          ledger: SubmissionLedger | None = None) -> GateResult:
    """Re-run the quantum kernel on a fixed subsample with ``seeds`` different seeds.

    Reports the spread of kernel entries and the std of the holdout metric across repeats
    (exact simulators: zero by construction; shot devices: the shot noise). Every repeat is
    admitted and recorded by ``ledger`` like any other device work.
    """
    n_train = min(samples, len(embeddings["y_train"]))
    n_test = min(max(samples // 2, 4), len(embeddings["y_test"]))
    X_train, y_train = embeddings["X_train"][:n_train], embeddings["y_train"][:n_train]
    X_test, y_test = embeddings["X_test"][:n_test], embeddings["y_test"][:n_test]
    kernels, scores = [], []
    for repeat in range(seeds):
        repeat_backend = BackendConfig(**{**asdict(backend), "seed": backend.seed + repeat})
        k_train = quantum_kernel(X_train, spec=spec, backend=repeat_backend, ledger=ledger).matrix
        k_test = quantum_kernel(X_test, X_train, spec=spec, backend=repeat_backend, ledger=ledger).matrix
        kernels.append(k_test)
        if len(np.unique(y_train)) == 2:
            model = fit_precomputed_svm(k_train, y_train, C=C)
            scores.append(holdout_metrics(y_test, precomputed_decision(model, k_test))[metric])
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
