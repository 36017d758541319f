"""Thresholds of the stage gates, editable in the launchpad like any resource."""

from dagster import ConfigurableResource
from pydantic import Field


class GatePolicy(ConfigurableResource):
    """What "production-ready" means for the quantum stage. Every gate reports its figures."""

    metric: str = Field(default="accuracy", description="Holdout metric the margin gate compares: accuracy | f1 | roc_auc")
    min_margin: float = Field(default=0.0, description="Quantum must beat classical by more than this on the holdout")
    symmetry_tolerance: float = Field(default=1e-8, ge=0.0, description="max |K - K^T| allowed")
    psd_tolerance: float = Field(default=1e-8, ge=0.0, description="smallest eigenvalue >= -this (exact kernels)")
    psd_shot_factor: float = Field(default=1.5, ge=0.0,
                                   description="extra eigenvalue slack for shot kernels: factor * sqrt(n / shots)")
    max_width: int = Field(default=20, ge=1, description="Ceiling on qubits")
    max_depth: int = Field(default=400, ge=1, description="Ceiling on circuit depth after decomposition")
    max_two_qubit_gates: int = Field(default=1000, ge=0, description="Ceiling on two-qubit gates after decomposition")
    reproducibility_seeds: int = Field(default=3, ge=2, description="Repeated kernel runs with different seeds")
    reproducibility_samples: int = Field(default=40, ge=8, description="Train rows re-computed per repeat (test rows: half)")
    reproducibility_tolerance: float = Field(default=0.05, ge=0.0,
                                             description="Max std of the holdout metric and max kernel spread across seeds")
