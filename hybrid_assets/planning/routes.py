"""What each kernel route would submit for the current data, before anything runs (``hybrid-plan``,
asset ``kernel_route_plan``).

For the latest ``reduced_embeddings`` (train and test rows) and ``circuit_artifact`` (the feature
map), on the configured device (``HYBRID_QUANTUM_DEVICE``, ``HYBRID_QUANTUM_SHOTS``, or
``--device``/``--shots``), it prints the circuits, billed tasks, dollars and estimated wall time
of the pairwise fidelity, projected and Nyström routes, and which of them the cost policy's time
budget (``HYBRID_TIME_BUDGET_S``) would refuse. For the current data it also gives each route's
expected holdout accuracy (R² for a regression), computed on the exact simulator
(``--no-accuracy`` to skip). It submits nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from hybrid_assets.training.models import fit_precomputed_svm, precomputed_decision
from hybrid_assets.training.scale import sample_note, stratified_sample
from hybrid_assets.training.tasks import holdout_metric, task_of
from hybrid_assets.training.tuning import cross_validate_Cs, kfold_splits
from hybrid_resources.cost_policy import CostPolicy, SubmissionRefused
from hybrid_resources.data.artifacts import ArtifactStore
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from hybrid_resources.quantum.nystrom import (
    EngineKernel,
    NystromConfig,
    fit_nystrom,
    nystrom_decision,
)
from hybrid_resources.quantum.planning import (
    PlanRequest,
    RoutePlan,
    nystrom_landmarks,
    plan_routes,
    refuse_over_time_budget,
)
from hybrid_resources.quantum.projected_kernel import (
    ProjectedKernelSpec,
    projected_train_test,
    tune_gamma,
)


def current_data(store: ArtifactStore) -> tuple[dict, dict]:
    """The latest ``reduced_embeddings`` and ``kernel_tuning`` (run ``make demo`` first)."""
    try:
        return store.read(["reduced_embeddings"]), store.read(["kernel_tuning"])
    except FileNotFoundError as error:
        raise SystemExit(f"hybrid-plan: {error}. Materialize the pipeline first (make demo), or plan for a size "
                         "with --train-rows and --qubits") from None


def expected_accuracy(embeddings: dict, spec: FeatureMapSpec, C: float, landmarks: int, *, folds: int = 5,
                      seed: int = 0, projected: dict | None = None) -> dict[str, float]:
    """Holdout figure of each route's model on the exact simulator (nothing submitted): accuracy
    for classification, R² for regression (:func:`expected_metric`).

    pairwise: an SVM on the fidelity kernel with the tuned ``C``; projected: an SVM on the
    projected kernel with ``projected``'s (gamma, C, bandwidth, reps) when kernel_tuning
    cross-validated the projected family (:func:`projected_choice`), else with the tuned ``C``
    and gamma chosen by ``folds``-fold CV on the train split; nystrom: the least-squares model on
    ``landmarks`` Nyström features of the fidelity kernel (capped at the train rows, as the plan
    caps them).
    """
    X, y, X_test, y_test = (np.asarray(embeddings[k]) for k in ("X_train", "y_train", "X_test", "y_test"))
    task, metric = task_of(embeddings), expected_metric(embeddings)

    def figure(decision: np.ndarray) -> float:
        return holdout_metric(y_test, decision, metric, task=task)

    pairwise = fit_precomputed_svm(quantum_kernel(X, spec=spec).matrix, y, C=C)
    accuracy = {"pairwise": figure(precomputed_decision(pairwise, quantum_kernel(X_test, X, spec=spec).matrix))}
    if projected is None:  # kernel_tuning tuned the fidelity kernel only: gamma at its C
        projected = tune_gamma(X, y, kfold_splits(y, folds=folds, seed=seed), spec, Cs=[C],
                               score=lambda kernel, splits, Cs: cross_validate_Cs(kernel, y, splits, Cs, metric)
                               )[0].params
    projected_map = replace(spec, bandwidth=projected["bandwidth"], reps=int(projected["reps"]))
    train, test = projected_train_test(X, X_test, spec=ProjectedKernelSpec(projected_map, gamma=projected["gamma"]))
    accuracy["projected"] = figure(precomputed_decision(fit_precomputed_svm(train.matrix, y, C=projected["C"]),
                                                        test.matrix))
    nystrom = NystromConfig(m=nystrom_landmarks(landmarks, len(X)), C=C, seed=seed)
    model = fit_nystrom(X, y, EngineKernel(spec), nystrom)
    accuracy["nystrom"] = figure(nystrom_decision(model, X_test, EngineKernel(spec)))
    return accuracy


def projected_choice(tuning: dict) -> dict | None:
    """The best projected-kernel candidate's params (gamma, C, bandwidth, reps) kernel_tuning
    cross-validated (its ``kernel`` was projected or best), so the route plan does not fit them
    again; None when it tuned the fidelity kernel only."""
    projected = [c for c in tuning.get("candidates", []) if c.get("kernel") == "projected"]
    return max(projected, key=lambda c: c["cv_mean"])["params"] if projected else None


def expected_metric(embeddings: dict) -> str:
    """The figure :func:`expected_accuracy` gives for these embeddings' task."""
    return "r2" if task_of(embeddings) == "regression" else "accuracy"


def refusals(plans: list[RoutePlan], time_budget_s: float) -> dict[str, str]:
    """Route -> the refusal message, for every route over the time budget."""
    refused = {}
    for plan in plans:
        try:
            refuse_over_time_budget(plan, time_budget_s)
        except SubmissionRefused as refusal:
            refused[plan.route] = refusal.description or str(refusal)
    return refused


def route_report(request: PlanRequest, backend: BackendConfig, cost_policy: CostPolicy,
                 accuracy: dict[str, float]) -> tuple[list[RoutePlan], dict[str, Any]]:
    """Every route's plan for ``request`` on ``backend`` (program sets where the device has them,
    priced by the cost policy's table) and the report the command prints and the
    ``kernel_route_plan`` asset stores: routes, which ones the time budget refuses and why, and
    ``accuracy`` (route -> expected holdout accuracy, may be empty). Submits nothing."""
    backend = cost_policy.with_program_sets(backend)
    plans = plan_routes(request, backend, cost_policy.price_table(), latency=cost_policy.recorded_latency(backend))
    refused = refusals(plans, cost_policy.time_budget_s)
    return plans, {
        "device": backend.device_name, "shots": backend.shots, "train_rows": request.n_train,
        "test_rows": request.n_test, "qubits": request.spec.n_qubits, "landmarks": request.nystrom_m,
        "time_budget_s": cost_policy.time_budget_s, "routes": [plan.to_dict() for plan in plans], "refused": refused,
        "expected_accuracy": accuracy,
    }


def accuracy_sample(embeddings: dict, max_rows: int, *, seed: int = 0) -> tuple[dict, dict]:
    """The embeddings the expected accuracy runs on: at most ``max_rows`` train and ``max_rows``
    test rows, each a seeded stratified sample (the pairwise route needs the square train
    kernel), and the samples' notes for the report."""
    sampled, notes = dict(embeddings), {}
    for split in ("train", "test"):
        y = np.asarray(embeddings[f"y_{split}"])
        rows = stratified_sample(y, max_rows, seed=seed)
        sampled[f"X_{split}"], sampled[f"y_{split}"] = np.asarray(embeddings[f"X_{split}"])[rows], y[rows]
        notes[split] = sample_note(len(y), rows, seed=seed, what=f"{split} rows of the expected accuracy")
    return sampled, notes


def plan_current_data(embeddings: dict, tuning: dict, backend: BackendConfig, cost_policy: CostPolicy, *,
                      landmarks: int = NystromConfig().m, with_accuracy: bool = True, max_accuracy_rows: int = 5000,
                      ) -> tuple[list[RoutePlan], dict[str, Any]]:
    """:func:`route_report` for the rows of ``reduced_embeddings`` and the tuned feature map. The
    expected accuracy runs on at most ``max_accuracy_rows`` train and test rows (stated in the
    report's ``expected_accuracy_sample``); the plan itself counts every row."""
    spec = FeatureMapSpec.from_dict(tuning["spec"])
    request = PlanRequest(len(embeddings["X_train"]), len(embeddings["X_test"]), spec, landmarks)
    accuracy, notes = {}, {}
    if with_accuracy:
        sample, notes = accuracy_sample(embeddings, max_accuracy_rows)
        accuracy = expected_accuracy(sample, spec, tuning["C"], landmarks, projected=projected_choice(tuning))
    plans, report = route_report(request, backend, cost_policy, accuracy)
    return plans, {**report, "expected_metric": expected_metric(embeddings),
                   **({"expected_accuracy_sample": notes} if notes else {})}
