"""Features -> reduced embeddings -> circuit artifact -> quantum kernels -> quantum SVM."""

import numpy as np
from dagster import AutomationCondition, AssetExecutionContext, Config, MetadataValue, Output, asset
from pydantic import Field

from hybrid_assets.assets.landing import features
from hybrid_assets.data_prep import ENCODING_RANGE, reduce_embeddings
from hybrid_assets.modeling import fit_precomputed_svm, holdout_metrics, precomputed_decision
from hybrid_assets.outputs import artifact_output
from hybrid_resources.feature_maps import FEATURE_MAPS, FeatureMapSpec, circuit_resources, to_openqasm
from hybrid_resources.kernel_cache import KernelCache
from hybrid_resources.kernel_engine import KernelResult, quantum_kernel
from hybrid_resources.paths import DataLayout
from hybrid_resources.quantum_backend import QuantumBackend
from hybrid_resources.warehouse import Warehouse

# The circuit artifact's code version is the registry's feature-map versions: bumping a map's
# semantic version marks the circuit and everything downstream stale.
FEATURE_MAP_VERSIONS = ",".join(f"{name}@{fm.version}" for name, fm in sorted(FEATURE_MAPS.items()))


class EmbeddingConfig(Config):
    n_qubits: int = Field(default=6, ge=1, le=20, description="Reduced dimensions = qubits of the feature map")


@asset(automation_condition=AutomationCondition.eager(), deps=[features], code_version="1", group_name="quantum", kinds={"numpy"})
def reduced_embeddings(context: AssetExecutionContext, config: EmbeddingConfig, warehouse: Warehouse) -> Output:
    """PCA (fit on train only) of the features to n_qubits dims, scaled into the encoding range."""
    with warehouse.connect(read_only=True) as connection:
        table = connection.execute("SELECT sample_id, label, features, split FROM features ORDER BY sample_id").pl()
    bundle = reduce_embeddings(table, n_qubits=config.n_qubits)
    return artifact_output(bundle, {
        "train_shape": list(bundle["X_train"].shape),
        "test_shape": list(bundle["X_test"].shape),
        "n_qubits": int(bundle["X_train"].shape[1]),
        "classes": MetadataValue.json(bundle["classes"].tolist()),
        "encoding_range": list(ENCODING_RANGE),
    })


class CircuitConfig(Config):
    feature_map: str = Field(default="iqp", description=f"One of: {', '.join(sorted(FEATURE_MAPS))}")
    reps: int = Field(default=2, ge=1, le=10, description="Repetitions of the feature-map layer")
    entanglement: str = Field(default="linear", description="linear | circular | full (IQP map)")


@asset(automation_condition=AutomationCondition.eager(), code_version=FEATURE_MAP_VERSIONS, group_name="quantum", kinds={"pennylane"})
def circuit_artifact(context: AssetExecutionContext, config: CircuitConfig, reduced_embeddings: dict) -> Output:
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
    return artifact_output(artifact, {
        "feature_map": spec.name,
        "circuit_version": spec.to_dict()["version"],
        "spec_hash": spec.spec_hash,
        "width": resources["width"],
        "depth": resources["depth"],
        "two_qubit_gates": resources["two_qubit_gates"],
        "gate_counts": MetadataValue.json(resources["gate_counts"]),
        "openqasm_path": str(qasm_path),
    })


def _kernel(X: np.ndarray, Y: np.ndarray | None, circuit: dict, backend: QuantumBackend) -> KernelResult:
    return quantum_kernel(X, Y, spec=FeatureMapSpec.from_dict(circuit["spec"]), backend=backend.backend_config(),
                          cache=KernelCache(DataLayout.from_env().kernel_cache))


def _kernel_output(result: KernelResult, backend: QuantumBackend, circuit: dict) -> Output:
    return artifact_output(result.matrix, {
        "shape": list(result.matrix.shape),
        "backend": MetadataValue.json(backend.describe()),
        "spec_hash": circuit["spec_hash"],
        **{key: value for key, value in result.stats.to_dict().items() if value is not None},
    })


@asset(automation_condition=AutomationCondition.eager(), code_version="1", group_name="quantum", pool="quantum", kinds={"pennylane", "numpy"})
def quantum_kernel_train(reduced_embeddings: dict, circuit_artifact: dict, quantum_backend: QuantumBackend) -> Output:
    """Gram matrix of the train embeddings, (n_train, n_train), entries in [0, 1]."""
    result = _kernel(reduced_embeddings["X_train"], None, circuit_artifact, quantum_backend)
    return _kernel_output(result, quantum_backend, circuit_artifact)


@asset(automation_condition=AutomationCondition.eager(), code_version="1", group_name="quantum", pool="quantum", kinds={"pennylane", "numpy"})
def quantum_kernel_test(reduced_embeddings: dict, circuit_artifact: dict, quantum_backend: QuantumBackend) -> Output:
    """Kernel between test and train embeddings, (n_test, n_train), entries in [0, 1]."""
    result = _kernel(reduced_embeddings["X_test"], reduced_embeddings["X_train"], circuit_artifact, quantum_backend)
    return _kernel_output(result, quantum_backend, circuit_artifact)


class SvmConfig(Config):
    C: float = Field(default=1.0, gt=0.0, description="SVM regularization (larger = less regularized)")


@asset(automation_condition=AutomationCondition.eager(), code_version="1", group_name="models", kinds={"sklearn"})
def quantum_svm(config: SvmConfig, quantum_kernel_train: np.ndarray, reduced_embeddings: dict) -> Output:
    """SVM on the precomputed quantum kernel, stored as arrays (support indices, dual coefficients)."""
    model = fit_precomputed_svm(quantum_kernel_train, reduced_embeddings["y_train"], C=config.C)
    train_metrics = holdout_metrics(reduced_embeddings["y_train"], precomputed_decision(model, quantum_kernel_train))
    return artifact_output(model, {
        "C": config.C,
        "n_support_vectors": int(model["support"].size),
        "train_accuracy": train_metrics["accuracy"],
    })
