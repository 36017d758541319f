"""The projected quantum kernel as a kernel option of the asset graph: tuned on the same folds as
the fidelity kernel, named by the circuit artifact, computed by the kernel assets (3 circuits per
sample on a shot device, train rows measured once), and served by the model downstream."""

from __future__ import annotations

import numpy as np
from dagster import materialize

from hybrid_assets.definitions import all_assets
from hybrid_resources.data.artifacts import ArtifactStore
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import BackendConfig, QuantumBackend
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.kernels import compute_kernel, kernel_spec, run_circuits
from hybrid_resources.quantum.projected_kernel import (
    ProjectedKernelSpec,
    exact_bloch_vectors,
    kernel_from_distances,
    projected_distances,
)
from tests.bad_files import write_good_csv
from tests.conftest import RESOURCES, SMALL_RUN_CONFIG, ingest, refresh
from tests.devices import DeviceBoundary

KERNEL_STEPS = ["features", "reduced_embeddings", "kernel_tuning", "circuit_artifact", "quantum_kernel_train",
                "quantum_kernel_test"]


def _config(kernel: str) -> dict:
    return {"ops": {**SMALL_RUN_CONFIG["ops"], "kernel_tuning": {"config": {"kernel": kernel, "gammas": [0.3, 1.0],
                                                                            "Cs": [1.0, 10.0]}}}}


def _metadata(result, asset: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(asset)
    return {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}


def test_a_projected_kernel_refresh_tunes_gamma_names_the_family_and_trains_the_model(data_layout, instance):
    write_good_csv(data_layout.landing, n_rows=40, n_features=5, seed=2, name="train.csv")
    ingest(instance, "train.csv")
    result = refresh(instance, _config("projected"), gate_policy=GatePolicy(min_margin=-1.0))
    assert result.success
    store = ArtifactStore(data_layout.artifacts)

    tuning = store.read(["kernel_tuning"])
    assert tuning["kernel"]["family"] == "projected" and tuning["kernel"]["gamma"] in (0.3, 1.0)
    assert {c["kernel"] for c in tuning["candidates"]} == {"projected"}
    circuit = store.read(["circuit_artifact"])
    spec = kernel_spec(circuit["spec"])
    assert isinstance(spec, ProjectedKernelSpec) and spec.gamma == tuning["kernel"]["gamma"]
    assert _metadata(result, "circuit_artifact")["circuit_version"].startswith("projected@1.0.0+iqp@")
    assert "OPENQASM 2.0" in circuit["openqasm"]

    # The stored kernels are the projected kernel, from an independent computation of the formula.
    embeddings = store.read(["reduced_embeddings"])
    X_train, X_test = embeddings["X_train"], embeddings["X_test"]
    bloch = exact_bloch_vectors(np.vstack([X_train, X_test]), spec.feature_map)
    R_train, R_test = bloch[:len(X_train)], bloch[len(X_train):]
    gram = np.exp(-spec.gamma * 0.5 * ((R_train[:, None] - R_train[None]) ** 2).sum(axis=(2, 3)))
    cross = np.exp(-spec.gamma * 0.5 * ((R_test[:, None] - R_train[None]) ** 2).sum(axis=(2, 3)))
    assert np.allclose(store.read(["quantum_kernel_train"])["matrix"], gram, atol=1e-10)
    assert np.allclose(store.read(["quantum_kernel_test"])["matrix"], cross, atol=1e-10)
    assert _metadata(result, "quantum_kernel_train")["method"] == "projected-statevector"

    # The model and the evaluation downstream take it like any precomputed kernel.
    svm = _metadata(result, "quantum_svm")
    assert svm["degraded"] is False and 0.0 <= svm["holdout/accuracy"] <= 1.0
    assert "quantum_svm" in store.read(["model_evaluation"])["metrics"]


def test_best_tunes_both_families_on_the_same_folds_and_keeps_the_better_cv(data_layout, instance):
    write_good_csv(data_layout.landing, n_rows=40, n_features=5, seed=3, name="train.csv")
    ingest(instance, "train.csv")
    result = materialize(all_assets, selection=KERNEL_STEPS[:4], instance=instance, resources=RESOURCES,
                         run_config=_config("best"))
    assert result.success
    tuning = ArtifactStore(data_layout.artifacts).read(["kernel_tuning"])
    families = {c["kernel"] for c in tuning["candidates"]}
    assert families == {"fidelity", "projected"}
    best = max(tuning["candidates"], key=lambda c: c["cv_mean"])
    assert tuning["cv_mean"] == best["cv_mean"] and tuning["kernel"]["family"] == best["kernel"]
    folds = {len(c["cv_scores"]) for c in tuning["candidates"]}
    assert folds == {tuning["cv_folds"]}


def test_on_a_shot_device_the_kernel_assets_run_three_circuits_per_sample_measuring_train_rows_once(
        data_layout, instance, monkeypatch):
    write_good_csv(data_layout.landing, n_rows=24, n_features=5, seed=5, name="train.csv")
    ingest(instance, "train.csv")
    boundary = DeviceBoundary(monkeypatch)
    result = materialize(all_assets, selection=KERNEL_STEPS, instance=instance, run_config=_config("projected"),
                         resources={**RESOURCES, "quantum_backend": QuantumBackend(shots=2000, seed=7)})
    assert result.success
    store = ArtifactStore(data_layout.artifacts)
    embeddings = store.read(["reduced_embeddings"])
    n_train, n_test = len(embeddings["y_train"]), len(embeddings["y_test"])
    spec = kernel_spec(store.read(["circuit_artifact"])["spec"])
    assert boundary.circuits == 3 * (n_train + n_test) == run_circuits(spec, n_train, n_test)
    # Whichever kernel asset runs first measures the train rows; the other takes them from the cache.
    executed = [_metadata(result, asset)["circuits_executed"] for asset in KERNEL_STEPS[-2:]]
    assert sum(executed) == 3 * (n_train + n_test) and sorted(executed)[0] in (0, 3 * n_test)

    # Within shot noise of the exact kernel, and the test kernel uses the train rows' own measurement.
    exact = compute_kernel(embeddings["X_test"], embeddings["X_train"], spec=spec).matrix
    measured = store.read(["quantum_kernel_test"])["matrix"]
    assert np.max(np.abs(measured - exact)) < 0.1
    assert not np.allclose(measured, exact, atol=1e-6)


def test_the_bloch_cache_serves_rows_already_measured_and_only_those():
    fm = FeatureMapSpec("iqp", n_qubits=2, reps=1)
    spec = ProjectedKernelSpec(fm, gamma=0.7)
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(size=(6, 2)), rng.uniform(size=(3, 2))
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as root:
        cache = KernelCache(Path(root))
        backend = BackendConfig(shots=500, seed=1, shot_emulation=True)
        first = compute_kernel(X, spec=spec, backend=backend, cache=cache)
        again = compute_kernel(X, spec=spec, backend=backend, cache=cache)
        assert np.array_equal(first.matrix, again.matrix) and again.stats.shots_emulated == 0
        cross = compute_kernel(Y, X, spec=spec, backend=backend, cache=cache)
        assert cross.stats.shots_emulated == 3 * len(Y) * 500  # X's rows came from the cache
    exact = exact_bloch_vectors(X, fm)
    assert np.allclose(compute_kernel(X, spec=spec).matrix,
                       kernel_from_distances(projected_distances(exact), 0.7), atol=1e-12)
