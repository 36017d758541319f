"""Features -> reduced embeddings -> circuit artifact -> quantum kernels -> quantum SVM."""

from collections.abc import Iterator

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
    fit_precomputed_svm,
    holdout_metrics,
    model_holdout,
    precomputed_decision,
)
from hybrid_assets.outputs import artifact_output, latest_metadata, recorded_artifact
from hybrid_resources.cost_policy import CostPolicy
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
from hybrid_resources.quantum.kernel_engine import quantum_kernel

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
    previous_bundle = recorded_artifact(recorded)
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


class CircuitConfig(Config):
    feature_map: str = Field(default="iqp", description=f"One of: {', '.join(sorted(FEATURE_MAPS))}")
    reps: int = Field(default=2, ge=1, le=10, description="Repetitions of the feature-map layer")
    entanglement: str = Field(default="linear", description="linear | circular | full (IQP map)")


@asset(automation_condition=ON_NEW_DATA, code_version=FEATURE_MAP_VERSIONS, group_name="quantum", kinds={"pennylane"},
       check_specs=[AssetCheckSpec("circuit_ceilings", asset="circuit_artifact", blocking=True,
                                   description="Width, depth and two-qubit gates after decomposition under the ceilings")])
def circuit_artifact(config: CircuitConfig, reduced_embeddings: dict, gate_policy: GatePolicy) -> Iterator:
    """The versioned feature-map spec, its OpenQASM 2.0 bound to a reference input, and its size."""
    spec = FeatureMapSpec(name=config.feature_map, n_qubits=int(reduced_embeddings["X_train"].shape[1]),
                          reps=config.reps, entanglement=config.entanglement)
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
        "openqasm_path": str(qasm_path),
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
    C: float = Field(default=1.0, gt=0.0, description="SVM regularization (larger = less regularized)")


@asset(automation_condition=ON_NEW_DATA, code_version="3", group_name="models", kinds={"sklearn"})
def quantum_svm(config: SvmConfig, quantum_kernel_train: dict, quantum_kernel_test: dict,
                reduced_embeddings: dict) -> Output:
    """SVM on the precomputed quantum kernel, stored as arrays (support indices, dual coefficients,
    intercept) with ``info`` (C, holdout metrics, both kernels' info and the versions of its
    inputs) and ``telemetry`` (both kernels' circuits, cache hits, cost, wall time). A degraded
    quantum stage gives ``{"degraded": [True]}`` with the reason in ``info``."""
    kernels = {"train": info_of(quantum_kernel_train), "test": info_of(quantum_kernel_test)}
    telemetry = {"kernels": {"train": telemetry_of(quantum_kernel_train), "test": telemetry_of(quantum_kernel_test)}}
    info = {"model": "quantum_svm", "C": config.C, "spec_hash": kernels["train"].get("spec_hash"), "kernels": kernels,
            "inputs": {"quantum_kernel_train": content_hash(quantum_kernel_train),
                       "quantum_kernel_test": content_hash(quantum_kernel_test),
                       "reduced_embeddings": content_hash(reduced_embeddings)}}
    degraded = next((k.get("degraded_reason", "") for k in kernels.values() if k.get("degraded")), "")
    if degraded:
        info |= {"degraded": True, "degraded_reason": degraded}
        return artifact_output(with_info({"degraded": np.array([True])}, info, telemetry),
                               {"C": config.C, "degraded": True})
    y_train = reduced_embeddings["y_train"]
    model = fit_precomputed_svm(quantum_kernel_train["matrix"], y_train, C=config.C)
    train = holdout_metrics(y_train, precomputed_decision(model, quantum_kernel_train["matrix"]))
    holdout = model_holdout("quantum_svm", model, {"quantum_kernel_test": quantum_kernel_test,
                                                   "reduced_embeddings": reduced_embeddings})
    info |= {"degraded": False, "n_support_vectors": int(model["support"].size), "train_accuracy": train["accuracy"],
             "holdout": holdout}
    return artifact_output(with_info(model, info, telemetry), {
        "C": config.C,
        "degraded": False,
        "n_support_vectors": info["n_support_vectors"],
        "train_accuracy": train["accuracy"],
        **{f"holdout/{name}": value for name, value in holdout.items()},
    })
