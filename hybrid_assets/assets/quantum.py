"""Features -> reduced embeddings -> circuit artifact -> quantum kernels -> quantum SVM."""

from collections.abc import Iterator
from dataclasses import replace
from typing import Optional

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MetadataValue,
    Output,
    asset,
)
from pydantic import Field

from hybrid_assets.assets.landing import features
from hybrid_assets.automation import ON_NEW_DATA
from hybrid_assets.data_prep import (
    ENCODING_RANGE,
    EmbeddingTransform,
    reduce_embeddings,
    refit_reason,
)
from hybrid_assets.gates import circuit_ceilings, kernel_health
from hybrid_assets.modeling import (
    code_block,
    comparison_table,
    fit_precomputed_svm,
    holdout_metrics,
    markdown_image,
    model_holdout,
    precomputed_decision,
    shot_plan_png,
)
from hybrid_assets.outputs import artifact_output, latest_metadata, recorded_artifact
from hybrid_assets.shot_planner import (
    SHOT_LADDER,
    ShotRung,
    holdout_score,
    recommend,
    shot_ladder,
)
from hybrid_assets.tuning import kfold_splits, tune_quantum
from hybrid_resources.cost_policy import CostPolicy, UnknownPriceError, device_identity
from hybrid_resources.data.artifacts import (
    content_hash,
    info_of,
    telemetry_of,
    with_info,
)
from hybrid_resources.data.paths import DataLayout
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import BackendUnavailableError, QuantumBackend
from hybrid_resources.quantum.feature_maps import (
    FEATURE_MAPS,
    FeatureMapSpec,
    circuit_resources,
    to_openqasm,
)
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.kernel_engine import planned_circuits, quantum_kernel

# The circuit artifact's code version is the registry's feature-map versions: bumping a map's
# semantic version marks the circuit and everything downstream stale.
FEATURE_MAP_VERSIONS = ",".join(f"{name}@{fm.version}" for name, fm in sorted(FEATURE_MAPS.items()))


class EmbeddingConfig(Config):
    n_qubits: int = Field(default=6, ge=1, le=20, description="Reduced dimensions = qubits of the feature map")
    refit_growth: float = Field(
        default=0.2, ge=0.0,
        description="Keep the fitted PCA until the train split has grown by more than this fraction since "
                    "the fit, so old samples keep their embeddings and cached kernel entries; 0 re-fits on any growth")


@asset(automation_condition=ON_NEW_DATA, deps=[features], code_version="2", group_name="quantum", kinds={"numpy"})
def reduced_embeddings(context: AssetExecutionContext, config: EmbeddingConfig, warehouse: Warehouse) -> Output:
    """PCA (fit on train only) of the features to n_qubits dims, scaled into the encoding range.

    The fitted transform is kept across materializations while the train split grows by at
    most ``refit_growth`` (see :func:`refit_reason`); the metadata says which happened.
    """
    # Arrival order: as data grows, new samples come after the old ones, so the kernel cache
    # serves the old block in one copy.
    table = warehouse.features_in_arrival_order()
    recorded = latest_metadata(context.instance, "reduced_embeddings")
    previous_bundle = recorded_artifact("reduced_embeddings", recorded)
    previous = EmbeddingTransform.from_bundle(previous_bundle) if isinstance(previous_bundle, dict) else None
    reason = refit_reason(previous, table, n_qubits=config.n_qubits, refit_growth=config.refit_growth)
    bundle = reduce_embeddings(table, n_qubits=config.n_qubits, transform=None if reason else previous)
    n_fit = len(bundle["fit_ids"])
    # The run that fit the transform in use: a kept transform's lineage is not an edge of the graph.
    fit_run = context.run_id if reason else recorded.get("transform_fit_run", "unknown")
    return artifact_output(bundle, {
        "train_shape": list(bundle["X_train"].shape),
        "test_shape": list(bundle["X_test"].shape),
        "n_qubits": int(bundle["X_train"].shape[1]),
        "classes": MetadataValue.json(bundle["classes"].tolist()),
        "encoding_range": list(ENCODING_RANGE),
        "transform": f"fit on {n_fit} train rows: {reason}" if reason else
                     f"kept (fit on {n_fit} train rows, the train split now has {len(bundle['ids_train'])})",
        "transform_fit_rows": n_fit,
        "transform_fit_run": fit_run,
    })


class KernelTuningConfig(Config):
    feature_map: str = Field(default="iqp", description=f"One of: {', '.join(sorted(FEATURE_MAPS))}")
    entanglement: str = Field(default="linear", description="linear | circular | full (IQP map)")
    bandwidths: list[float] = Field(default=[0.1, 0.3, 1.0], description="Input scale factors to try")
    reps: list[int] = Field(default=[1, 2], description="Repetitions of the feature-map layer to try")
    Cs: list[float] = Field(default=[0.1, 1.0, 10.0, 100.0], description="SVM regularizations to try")
    retune_growth: float = Field(
        default=0.2, ge=0.0,
        description="Keep the tuned choice until the train split has grown by more than this fraction since the "
                    "tuning, so a refresh keeps the circuit and its cached kernel entries; 0 re-tunes on any growth")


@asset(automation_condition=ON_NEW_DATA, code_version=FEATURE_MAP_VERSIONS, group_name="quantum",
       kinds={"sklearn", "numpy"})
def kernel_tuning(context: AssetExecutionContext, config: KernelTuningConfig, reduced_embeddings: dict,
                  gate_policy: GatePolicy) -> Output:
    """The quantum kernel SVM tuned like the classical baseline: k-fold CV on the train split over
    bandwidth x reps x C (a one-value list pins a value), on the exact simulator whatever the
    device, so only the chosen configuration is ever sent to one. Candidates over the circuit
    ceilings are not tried. Holds the chosen ``spec``, ``C`` and every candidate's CV score.

    The choice is kept while the train split grows by at most ``retune_growth`` under the same
    grids and protocol (see :func:`retune_reason`): a new circuit would recompute every kernel
    entry, on a paid device too."""
    X, y = reduced_embeddings["X_train"], reduced_embeddings["y_train"]
    grid = {"feature_map": config.feature_map, "entanglement": config.entanglement, "bandwidths": config.bandwidths,
            "reps": config.reps, "Cs": config.Cs, "n_qubits": int(X.shape[1]), "metric": gate_policy.metric,
            "folds": gate_policy.cv_folds, "seed": gate_policy.cv_seed}
    previous = recorded_artifact("kernel_tuning", latest_metadata(context.instance, "kernel_tuning"))
    reason = retune_reason(previous, grid, len(y), config.retune_growth)
    # The same choice keeps the same content, hence the same data version: nothing downstream changes.
    tuning = previous if reason is None else tune_kernel(X, y, grid, gate_policy)
    decision = (f"kept (tuned on {previous['n_train']} train rows, the split now has {len(y)})" if reason is None
                else f"tuned on {len(y)} train rows: {reason}")
    rows = {str(c["params"]): {"cv_mean": c["cv_mean"], "cv_std": c["cv_std"]} for c in tuning["candidates"]}
    return artifact_output(tuning, {
        "bandwidth": tuning["spec"]["bandwidth"], "reps": tuning["spec"]["reps"], "C": tuning["C"],
        f"cv_{gate_policy.metric}": tuning["cv_mean"], "tuning": decision,
        "candidates": MetadataValue.md(comparison_table(rows, ["cv_mean", "cv_std"])),
    })


def tune_kernel(X: np.ndarray, y: np.ndarray, grid: dict, gates: GatePolicy) -> dict:
    """The best (bandwidth, reps, C) by CV on (X, y), and every candidate's score."""
    base = FeatureMapSpec(name=grid["feature_map"], n_qubits=grid["n_qubits"], entanglement=grid["entanglement"])
    reps = [r for r in grid["reps"] if _within_ceilings(replace(base, reps=r), gates)] or [min(grid["reps"])]
    splits = kfold_splits(y, folds=gates.cv_folds, seed=gates.cv_seed)
    candidates = tune_quantum(X, y, splits, base, metric=gates.metric, bandwidths=grid["bandwidths"], reps=reps,
                              Cs=grid["Cs"])
    best = candidates[0]
    spec = replace(base, bandwidth=best.params["bandwidth"], reps=best.params["reps"])
    return {"spec": spec.to_dict(), "C": best.params["C"], "grid": grid, "n_train": int(len(y)),
            "cv_metric": gates.metric, "cv_folds": len(splits), "cv_seed": gates.cv_seed, "cv_mean": best.cv_mean,
            "cv_std": best.cv_std, "candidates": [c.to_dict() for c in candidates]}


def retune_reason(previous: dict | None, grid: dict, n_train: int, retune_growth: float) -> str | None:
    """Why the kernel must be tuned again, or None to keep ``previous`` (a tuning artifact)."""
    if not isinstance(previous, dict) or "grid" not in previous:
        return "no tuning yet"
    if previous["grid"] != grid:
        return "the grids, the protocol or the embedding dimensions changed"
    growth = n_train / previous["n_train"] - 1.0
    if not 0.0 <= growth <= retune_growth:
        return f"the train split changed by {growth:+.1%} since the tuning (retune_growth {retune_growth:.0%})"
    return None


def _within_ceilings(spec: FeatureMapSpec, gates: GatePolicy) -> bool:
    return circuit_ceilings(circuit_resources(spec), max_width=gates.max_width, max_depth=gates.max_depth,
                            max_two_qubit_gates=gates.max_two_qubit_gates).passed


@asset(automation_condition=ON_NEW_DATA, code_version=FEATURE_MAP_VERSIONS, group_name="quantum", kinds={"pennylane"},
       check_specs=[AssetCheckSpec("circuit_ceilings", asset="circuit_artifact", blocking=True,
                                   description="Width, depth and two-qubit gates after decomposition under the ceilings")])
def circuit_artifact(kernel_tuning: dict, reduced_embeddings: dict, gate_policy: GatePolicy) -> Iterator:
    """The tuned feature-map spec at the registry's current version, its OpenQASM 2.0 bound to a
    reference input, and its size."""
    spec = FeatureMapSpec.from_dict({**kernel_tuning["spec"], "version": ""})
    reference_input = reduced_embeddings["X_train"][0]
    resources = circuit_resources(spec)
    artifact = {
        "spec": spec.to_dict(),
        "spec_hash": spec.spec_hash,
        "reference_input": reference_input.tolist(),
        "openqasm": to_openqasm(spec, reference_input),
        "resources": resources,
    }
    qasm_path = DataLayout.from_env().artifacts / "circuit_artifact" / "circuit.qasm"
    qasm_path.parent.mkdir(parents=True, exist_ok=True)
    qasm_path.write_text(artifact["openqasm"])
    yield artifact_output(artifact, {
        "feature_map": spec.name,
        "circuit_version": spec.to_dict()["version"],
        "spec_hash": spec.spec_hash,
        "width": resources["width"],
        "depth": resources["depth"],
        "two_qubit_gates": resources["two_qubit_gates"],
        "gate_counts": MetadataValue.json(resources["gate_counts"]),
        "openqasm": MetadataValue.md(code_block(artifact["openqasm"], "qasm", whole=str(qasm_path))),
        "openqasm_path": MetadataValue.path(str(qasm_path)),
    })
    ceilings = circuit_ceilings(resources, max_width=gate_policy.max_width, max_depth=gate_policy.max_depth,
                                max_two_qubit_gates=gate_policy.max_two_qubit_gates)
    yield AssetCheckResult(check_name="circuit_ceilings", passed=ceilings.passed,
                           metadata={"message": ceilings.message, **ceilings.figures})


def _quantum_kernel_asset(context: AssetExecutionContext, X: np.ndarray, Y: np.ndarray | None, circuit: dict,
                          quantum_backend: QuantumBackend, cost_policy: CostPolicy, gates: GatePolicy) -> Iterator:
    """Compute a kernel within budget, record what it ran, gate its shape. Degrade (an empty (0, 0)
    kernel, never a crash) when the backend is disabled or still failing after the engine's retries;
    a plan over budget is refused by the ledger before anything is sent."""
    backend = quantum_backend.backend_config()
    asset = context.asset_key.to_user_string()
    common = {"backend": MetadataValue.json(quantum_backend.describe()), "spec_hash": circuit["spec_hash"]}
    reason = ""
    if not quantum_backend.enabled:
        reason = "quantum backend disabled by configuration (quantum_backend.enabled = false)"
    else:
        with cost_policy.ledger(run_id=context.run_id, asset=asset, backend=backend) as ledger:
            try:
                result = quantum_kernel(X, Y, spec=FeatureMapSpec.from_dict(circuit["spec"]), backend=backend,
                                        cache=KernelCache(DataLayout.from_env().kernel_cache), ledger=ledger)
            except BackendUnavailableError as unavailable:
                reason = str(unavailable)
    if reason:
        context.log.warning(f"{asset}: quantum stage degraded, the classical path carries on: {reason}")
        info = {"degraded": True, "degraded_reason": reason, "spec_hash": circuit["spec_hash"],
                "backend": backend.cache_key()}
        yield artifact_output(with_info({"matrix": np.empty((0, 0))}, info), {**common, "degraded": True,
                                                                             "degraded_reason": reason})
        yield AssetCheckResult(check_name="kernel_well_formed", passed=True,
                               metadata={"degraded": True, "reason": reason})
        return
    stats = {key: value for key, value in result.stats.to_dict().items() if value is not None}
    info = {"degraded": False, "spec_hash": circuit["spec_hash"], "backend": backend.cache_key(),
            "shape": list(result.matrix.shape)}
    telemetry = {**stats, "estimated_cost_usd": ledger.usd}
    yield artifact_output(with_info({"matrix": result.matrix}, info, telemetry), {
        **common,
        "shape": list(result.matrix.shape),
        "degraded": False,
        "estimated_cost_usd": ledger.usd,
        **stats,
    })
    health = kernel_health(result.matrix, shots=backend.shots, symmetry_tolerance=gates.symmetry_tolerance,
                           psd_tolerance=gates.psd_tolerance, psd_shot_factor=gates.psd_shot_factor, square=Y is None)
    yield AssetCheckResult(check_name="kernel_well_formed", passed=health.passed,
                           metadata={"message": health.message, **health.figures})


def _kernel_check(asset: str) -> AssetCheckSpec:
    return AssetCheckSpec("kernel_well_formed", asset=asset, blocking=True,
                          description="Symmetric, unit diagonal, PSD within tolerance (train); entries in [0, 1]")


@asset(automation_condition=ON_NEW_DATA, code_version="3", group_name="quantum", pool="quantum",
       kinds={"pennylane", "numpy"}, check_specs=[_kernel_check("quantum_kernel_train")])
def quantum_kernel_train(context: AssetExecutionContext, reduced_embeddings: dict, circuit_artifact: dict,
                         quantum_backend: QuantumBackend, cost_policy: CostPolicy, gate_policy: GatePolicy) -> Iterator:
    """Gram matrix of the train embeddings: ``matrix`` (n_train, n_train), entries in [0, 1], (0, 0) when
    degraded; ``info`` what computed it (backend, spec hash, circuits, cache hits, cost, wall time)."""
    yield from _quantum_kernel_asset(context, reduced_embeddings["X_train"], None, circuit_artifact,
                                     quantum_backend, cost_policy, gate_policy)


@asset(automation_condition=ON_NEW_DATA, code_version="3", group_name="quantum", pool="quantum",
       kinds={"pennylane", "numpy"}, check_specs=[_kernel_check("quantum_kernel_test")])
def quantum_kernel_test(context: AssetExecutionContext, reduced_embeddings: dict, circuit_artifact: dict,
                        quantum_backend: QuantumBackend, cost_policy: CostPolicy, gate_policy: GatePolicy) -> Iterator:
    """Kernel between test and train embeddings: ``matrix`` (n_test, n_train), entries in [0, 1], (0, 0)
    when degraded; ``info`` as for the train kernel."""
    yield from _quantum_kernel_asset(context, reduced_embeddings["X_test"], reduced_embeddings["X_train"],
                                     circuit_artifact, quantum_backend, cost_policy, gate_policy)


class SvmConfig(Config):
    C: Optional[float] = Field(default=None, gt=0.0, description="SVM regularization; empty: the tuned C (kernel_tuning)")


@asset(automation_condition=ON_NEW_DATA, code_version="4", group_name="models", kinds={"sklearn"})
def quantum_svm(config: SvmConfig, quantum_kernel_train: dict, quantum_kernel_test: dict, reduced_embeddings: dict,
                kernel_tuning: dict) -> Output:
    """SVM on the precomputed quantum kernel with the tuned C, stored as arrays (support indices,
    dual coefficients, intercept) with ``info`` (C, holdout metrics, both kernels' info and the
    versions of its inputs) and ``telemetry`` (both kernels' circuits, cache hits, cost, wall
    time). A degraded quantum stage gives ``{"degraded": [True]}`` with the reason in ``info``."""
    C = config.C if config.C is not None else float(kernel_tuning["C"])
    kernels = {"train": info_of(quantum_kernel_train), "test": info_of(quantum_kernel_test)}
    telemetry = {"kernels": {"train": telemetry_of(quantum_kernel_train), "test": telemetry_of(quantum_kernel_test)}}
    info = {"model": "quantum_svm", "C": C, "spec_hash": kernels["train"].get("spec_hash"), "kernels": kernels,
            "inputs": {"quantum_kernel_train": content_hash(quantum_kernel_train),
                       "quantum_kernel_test": content_hash(quantum_kernel_test),
                       "reduced_embeddings": content_hash(reduced_embeddings)}}
    degraded = next((k.get("degraded_reason", "") for k in kernels.values() if k.get("degraded")), "")
    if degraded:
        info |= {"degraded": True, "degraded_reason": degraded}
        return artifact_output(with_info({"degraded": np.array([True])}, info, telemetry),
                               {"C": C, "degraded": True})
    y_train = reduced_embeddings["y_train"]
    model = fit_precomputed_svm(quantum_kernel_train["matrix"], y_train, C=C)
    train = holdout_metrics(y_train, precomputed_decision(model, quantum_kernel_train["matrix"]))
    holdout = model_holdout("quantum_svm", model, {"quantum_kernel_test": quantum_kernel_test,
                                                   "reduced_embeddings": reduced_embeddings})
    info |= {"degraded": False, "n_support_vectors": int(model["support"].size), "train_accuracy": train["accuracy"],
             "holdout": holdout}
    return artifact_output(with_info(model, info, telemetry), {
        "C": C,
        "degraded": False,
        "n_support_vectors": info["n_support_vectors"],
        "train_accuracy": train["accuracy"],
        **{f"holdout/{name}": value for name, value in holdout.items()},
    })


class ShotPlanConfig(Config):
    ladder: list[int] = Field(default=list(SHOT_LADDER), description="Shots per circuit to try")
    seeds: int = Field(default=5, ge=2, description="Emulated repeats per rung (the std is across them)")
    tolerance: float = Field(default=0.01, ge=0.0, description="How far below the exact metric a rung may score")


@asset(automation_condition=ON_NEW_DATA, code_version="1", group_name="quantum", kinds={"numpy"})
def shot_plan(config: ShotPlanConfig, circuit_artifact: dict, kernel_tuning: dict, reduced_embeddings: dict,
              quantum_backend: QuantumBackend, hardware_backend: QuantumBackend, cost_policy: CostPolicy,
              gate_policy: GatePolicy) -> Output:
    """Before paying for a shot-based device: how the holdout metric and the kernel error change
    with shots (emulated from the exact kernels of the tuned spec), each rung's planned cost on the
    configured device (and on the hardware device, when one is set), and the cheapest rung within
    ``tolerance`` of exact. Nothing is sent to a device."""
    spec, C = FeatureMapSpec.from_dict(circuit_artifact["spec"]), float(kernel_tuning["C"])
    X_train, X_test = reduced_embeddings["X_train"], reduced_embeddings["X_test"]
    y_train, y_test = reduced_embeddings["y_train"], reduced_embeddings["y_test"]
    cache = KernelCache(DataLayout.from_env().kernel_cache)
    train = quantum_kernel(X_train, spec=spec, cache=cache).matrix
    test = quantum_kernel(X_test, X_train, spec=spec, cache=cache).matrix
    exact = holdout_score(train, test, y_train, y_test, C=C, metric=gate_policy.metric)
    circuits = planned_circuits(len(X_train), None) + planned_circuits(len(X_test), len(X_train))
    devices = {"configured": quantum_backend.backend_config()}
    if hardware_backend.device_arn:
        devices["hardware"] = hardware_backend.backend_config()
    rungs = []
    for shots, scores, errors in shot_ladder(train, test, y_train, y_test, C=C, metric=gate_policy.metric,
                                             ladder=config.ladder, seeds=config.seeds, seed=gate_policy.cv_seed):
        usd = {}
        for name, backend in devices.items():
            try:
                usd[name] = cost_policy.estimate(replace(backend, shots=shots), circuits, shots).usd
            except UnknownPriceError:
                usd[name] = None
        rungs.append(ShotRung(shots, float(np.mean(scores)), float(np.std(scores)), float(np.mean(errors)),
                              float(np.max(errors)), circuits, usd))
    best = recommend(rungs, exact, tolerance=config.tolerance, device="configured")
    plan = {"metric": gate_policy.metric, "exact": exact, "tolerance": config.tolerance, "circuits": circuits,
            "devices": {name: device_identity(backend) for name, backend in devices.items()},
            "rungs": [rung.to_dict() for rung in rungs], "recommended_shots": best.shots if best else None}
    table = {f"{r.shots} shots": {"mean": r.metric_mean, "std": r.metric_std, "kernel_error": r.kernel_mean_abs_error,
                                  **{f"usd_{name}": r.usd[name] if r.usd[name] is not None else "no price"
                                     for name in devices}} for r in rungs}
    png = shot_plan_png([r.shots for r in rungs], [r.metric_mean for r in rungs], [r.metric_std for r in rungs],
                        [r.kernel_mean_abs_error for r in rungs], exact, gate_policy.metric)
    return artifact_output(plan, {
        "recommended_shots": best.shots if best else "none within tolerance",
        f"exact_{gate_policy.metric}": exact,
        "circuits_per_run": circuits,
        "ladder": MetadataValue.md(comparison_table(table, ["mean", "std", "kernel_error",
                                                            *[f"usd_{name}" for name in devices]])),
        "plot": MetadataValue.md(markdown_image(png, "metric and kernel error against shots")),
    })
