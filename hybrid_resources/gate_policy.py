"""Thresholds of the stage gates, and the one protocol both sides are tuned and judged by;
editable in the launchpad like any resource."""

from dagster import ConfigurableResource
from pydantic import Field

from hybrid_resources.quantum.nystrom import DEFAULT_MAX_EXACT_TRAIN, NystromConfig
from hybrid_resources.quantum.transpilation import TranspileSettings


class GatePolicy(ConfigurableResource):
    """What "production-ready" means for the quantum stage. Every gate reports its figures."""

    metric: str = Field(
        default="accuracy",
        description="Metric the tuning and the verdict compare for classification: accuracy | f1 | roc_auc (f1 is "
                    "macro-F1 for more than two classes); a regression target is always judged on r2, whatever "
                    "this says (set r2 to say so)")
    min_margin: float = Field(
        default=0.0,
        description="The business-value trigger: quantum must beat the tuned classical baseline by more than this "
                    "(the lower bound of the verdict's confidence interval must clear it)")
    cv_folds: int = Field(default=5, ge=2, description="Folds of the cross-validation that tunes both sides (train split)")
    cv_seed: int = Field(default=0, description="Seed of the tuning folds and of gradient boosting")
    verdict_repeats: int = Field(default=5, ge=1, description="Repeats of the stratified k-fold the verdict uses")
    verdict_folds: int = Field(default=5, ge=2, description="Folds per repeat of the verdict's splits")
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0, description="Confidence of the verdict's interval")
    verdict_ci_width: float = Field(
        default=0.0, ge=0.0,
        description="Widest interval the verdict needs, in the judged metric's units: above 0 it runs on the fewest "
                    "labelled rows (a seeded stratified sample, grown by the 1/sqrt(rows) rule) whose interval is "
                    "this narrow, stated in verdict_sample; 0 uses every row the kernel path allows")
    latency_ceiling_s: float = Field(default=1.0, gt=0.0, description="Max per-sample inference latency (s) to promote")
    reference_shots: int = Field(default=1000, ge=1, description="Shots the concentration check assumes when the "
                                                                  "backend is exact")
    geometric_difference_ratio: float = Field(
        default=0.1, gt=0.0, description="g below this fraction of sqrt(N): no room for a quantum advantage")
    shadow_min_labelled_rows: int = Field(default=50, ge=1, description="Labelled rows a shadow challenger needs "
                                                                       "before shadow_ready can pass")
    symmetry_tolerance: float = Field(default=1e-8, ge=0.0, description="max |K - K^T| allowed")
    psd_tolerance: float = Field(default=1e-8, ge=0.0, description="smallest eigenvalue >= -this (exact kernels)")
    psd_shot_factor: float = Field(default=1.5, ge=0.0,
                                   description="extra eigenvalue slack for shot kernels: factor * sqrt(n / shots)")
    max_width: int = Field(default=20, ge=1, description="Ceiling on qubits")
    max_depth: int = Field(default=400, ge=1, description="Ceiling on circuit depth after decomposition")
    max_two_qubit_gates: int = Field(default=1000, ge=0, description="Ceiling on two-qubit gates after decomposition")
    target_devices: str = Field(
        default="",
        description="Devices the circuit ceilings also judge after transpilation to their coupling map and native "
                    "gates, comma-separated: snapshot names (iqm_garnet, rigetti_ankaa_3, ionq_forte_1), Braket ARNs "
                    "or IBM backend names (ibm_torino); every known device is transpiled and reported either way")
    transpile_optimization_level: int = Field(default=1, ge=0, le=3, description="Qiskit preset pass manager level "
                                                                                 "of the per-device transpilation")
    transpile_seed: int = Field(default=7, description="Seed of the SABRE layout and routing (same seed, same circuit)")
    reproducibility_seeds: int = Field(default=3, ge=2, description="Repeated kernel runs with different seeds")
    reproducibility_samples: int = Field(default=40, ge=8, description="Train rows re-computed per repeat (test rows: half)")
    reproducibility_tolerance: float = Field(default=0.05, ge=0.0,
                                             description="Max std of the holdout metric and max kernel spread across seeds")
    kernel_path: str = Field(
        default="auto",
        description="auto | exact | nystrom: the exact Gram matrix and a kernel SVM, or Nyström features (landmark "
                    "kernel columns) and a least-squares SVM; auto takes Nyström above max_exact_train train rows")
    max_exact_train: int = Field(
        default=DEFAULT_MAX_EXACT_TRAIN, ge=10,
        description="Train rows up to which auto keeps the exact Gram matrix; above it the exact-kernel work that "
                    "stays (tuning, the verdict's splits, diagnostics, the shot plan) runs on a seeded stratified "
                    "sample of this many rows")
    nystrom_landmarks: int = Field(default=NystromConfig.m, ge=2, description="Landmarks m of the Nyström path (capped at the "
                                                                  "train rows)")
    landmark_rule: str = Field(default=NystromConfig.rule, description="kmeans++ | uniform: how landmarks are drawn "
                                                               "(seeded by cv_seed)")
    kernel_ram_budget_mb: float = Field(
        default=1024.0, gt=0.0,
        description="A Nyström kernel (rows x landmarks, float64) larger than this is streamed to disk in row blocks "
                    "and stored as a memory-mapped .npy (exact simulators; on the dask resource when enabled)")
    nystrom_eps: float = Field(default=NystromConfig.eps, ge=0.0, description="Eigenvalues of K_mm below eps * the largest are "
                                                                  "dropped from the Nyström map")

    def transpile_settings(self) -> TranspileSettings:
        """The settings every per-device transpilation uses (the circuit artifact, tuning's
        ceilings, the noise prediction and the scorecard)."""
        return TranspileSettings(optimization_level=self.transpile_optimization_level, seed=self.transpile_seed)
