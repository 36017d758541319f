"""The kernel path in the asset graph: above ``gate_policy.max_exact_train`` train rows the kernels
hold landmark columns, the quantum model is a Nyström least-squares SVM, the exact-kernel work runs
on a stated sample, and scoring, promotion and the audit's rescore still work."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from dagster import materialize

from hybrid_assets.cli.audit import rescore
from hybrid_assets.definitions import all_assets
from hybrid_assets.training.models import (
    fit_rbf_nystrom,
    quantum_svm_decision,
    rbf_decision,
)
from hybrid_assets.training.scale import (
    kernel_plan,
    landmark_indices,
    stratified_sample,
)
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.artifacts import ArtifactStore, info_of
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import QuantumBackend
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from hybrid_resources.quantum.nystrom import RbfKernel
from tests.bad_files import good_frame, write_good_csv
from tests.conftest import RESOURCES, SMALL_RUN_CONFIG, ingest, refresh
from tests.devices import DeviceBoundary

SMALL_THRESHOLD = 20


def ls_svm_dual(K: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    """The least-squares SVM on a full kernel (Suykens & Vandewalle): [[K + I/C, 1], [1^T, 0]]
    [alpha; b] = [t; 0], t = +-1; decision k(x)^T alpha + b."""
    n = len(y)
    system = np.zeros((n + 1, n + 1))
    system[:n, :n] = K + np.eye(n) / C
    system[:n, n] = system[n, :n] = 1.0
    solution = np.linalg.solve(system, np.append(np.where(y > 0, 1.0, -1.0), 0.0))
    return solution[:n], float(solution[n])


# ---------------------------------------------------------------------------------------
# Plain functions
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_train, policy, path", [
    (36, GatePolicy(), "exact"),
    (5000, GatePolicy(), "exact"),
    (5001, GatePolicy(), "nystrom"),
    (36, GatePolicy(max_exact_train=SMALL_THRESHOLD), "nystrom"),
    (36, GatePolicy(kernel_path="nystrom"), "nystrom"),
    (9000, GatePolicy(kernel_path="exact"), "exact"),
])
def test_the_kernel_path_is_chosen_by_config_and_by_train_size_and_says_why(n_train, policy, path):
    plan = kernel_plan(n_train, policy)
    assert plan.path == path
    assert plan.reason.startswith("configured" if policy.kernel_path != "auto" else "auto")
    assert plan.landmarks == min(policy.nystrom_landmarks, n_train)


def test_the_vqc_trains_on_all_rows_up_to_its_limit_and_on_a_stated_sample_above():
    from hybrid_assets.training.variational import vqc_train_rows

    y = np.array([0, 1] * 30)
    rows, note = vqc_train_rows(y, 100, seed=0)
    assert rows.size == 60 and not note["sampled"]
    rows, note = vqc_train_rows(y, 20, seed=0)
    assert rows.size == 20 and np.bincount(y[rows]).tolist() == [10, 10]
    assert note == {"what": "vqc_model training rows", "rows": 20, "of": 60, "sampled": True,
                    "rule": "stratified by class, uniform within a class, without replacement", "seed": 0}


def test_the_stratified_sample_is_seeded_keeps_class_shares_and_takes_all_rows_when_small():
    y = np.array([0] * 300 + [1] * 100 + [2] * 7)
    sample = stratified_sample(y, 100, seed=3)
    assert sample.size == 100 and np.all(np.diff(sample) > 0)
    assert np.array_equal(sample, stratified_sample(y, 100, seed=3))
    assert not np.array_equal(sample, stratified_sample(y, 100, seed=4))
    assert np.bincount(y[sample]).tolist() == [74, 24, 2]  # 300/407, 100/407, 7/407 of 100
    assert np.array_equal(stratified_sample(y, 1000, seed=0), np.arange(len(y)))


def test_the_rbf_nystrom_counterpart_with_m_equal_n_is_the_least_squares_svm_on_the_full_kernel():
    rng = np.random.default_rng(0)
    X, X_new = rng.normal(size=(40, 3)), rng.normal(size=(15, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=40) > 0).astype(np.int64)
    model = fit_rbf_nystrom(X, y, C=2.0, gamma=0.5, m=40, rule="uniform", seed=0, eps=1e-12)
    alpha, b = ls_svm_dual(RbfKernel(0.5)(X), y, 2.0)
    assert np.allclose(rbf_decision(model, X_new), RbfKernel(0.5)(X_new, X) @ alpha + b, atol=1e-6)


# ---------------------------------------------------------------------------------------
# The asset graph
# ---------------------------------------------------------------------------------------


@pytest.fixture
def nystrom_trained(data_layout, instance):
    """48 landed rows (36 train), max_exact_train 20: the refresh takes the Nyström path with m = N."""
    write_good_csv(data_layout.landing, n_rows=48, n_features=5, seed=4, name="train.csv")
    ingest(instance, "train.csv")
    run_config = {"ops": {**SMALL_RUN_CONFIG["ops"], "vqc_model": {"config": {"max_train_rows": SMALL_THRESHOLD}}}}
    result = refresh(instance, run_config,
                     gate_policy=GatePolicy(min_margin=-1.0, max_exact_train=SMALL_THRESHOLD))
    assert result.success
    return data_layout, result


def _metadata(result, asset: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(asset)
    return {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}


def test_above_max_exact_train_the_refresh_takes_nystrom_says_why_promotes_scores_and_rescores(
        nystrom_trained, instance, monkeypatch, signers):
    layout, result = nystrom_trained
    store = ArtifactStore(layout.artifacts)
    embeddings = store.read(["reduced_embeddings"])
    X_train, y_train, X_test = embeddings["X_train"], embeddings["y_train"], embeddings["X_test"]
    n_train = len(y_train)
    expected_reason = f"auto: {n_train} train rows > max_exact_train {SMALL_THRESHOLD}"

    # The kernels: landmark columns instead of the N x N Gram matrix, and the reason.
    for asset in ("quantum_kernel_train", "quantum_kernel_test"):
        metadata = _metadata(result, asset)
        assert metadata["kernel_path"] == "nystrom" and metadata["kernel_path_reason"].startswith(expected_reason)
        assert metadata["landmarks"] == n_train
    train_kernel, test_kernel = store.read(["quantum_kernel_train"]), store.read(["quantum_kernel_test"])
    assert "matrix" not in train_kernel
    assert train_kernel["K_mm"].shape == (n_train, n_train) and train_kernel["K_nm"].shape == (n_train, n_train)
    assert test_kernel["matrix"].shape == (len(X_test), n_train)
    assert np.array_equal(train_kernel["landmark_indices"], test_kernel["landmark_indices"])
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert checks[("quantum_kernel_train", "kernel_well_formed")].passed
    assert "K_mm/min_eigenvalue" in checks[("quantum_kernel_train", "kernel_well_formed")].metadata

    # The model: a Nyström least-squares SVM whose decisions (m = N) are the LS-SVM's on the exact kernel.
    model = store.read(["quantum_svm"])
    info = info_of(model)
    assert info["kernel_path"]["path"] == "nystrom" and info["landmarks"] == n_train
    assert _metadata(result, "quantum_svm")["model_kind"] == "Nyström least-squares SVM"
    spec = FeatureMapSpec.from_dict(store.read(["circuit_artifact"])["spec"])
    indices = train_kernel["landmark_indices"]
    K, K_test = quantum_kernel(X_train, spec=spec).matrix, quantum_kernel(X_test, X_train, spec=spec).matrix
    alpha, b = ls_svm_dual(K, y_train, float(info["C"]))
    nystrom = quantum_svm_decision(model, K_test[:, indices])
    exact = K_test @ alpha + b
    # K is low-rank on 3 qubits: the map drops K_mm's null directions, and K K^+ K = K still holds.
    assert info["rank"] + info["clipped_eigenvalues"] == n_train
    assert np.allclose(nystrom, exact, atol=1e-5 * max(1.0, np.abs(exact).max()))
    assert np.array_equal(nystrom > 0, exact > 0)

    # Exact-kernel work on a stated, seeded, stratified sample of max_exact_train rows.
    tuning = _metadata(result, "kernel_tuning")
    assert tuning["kernel_path"] == "nystrom" and tuning["cv_sample"]["rows"] == SMALL_THRESHOLD
    assert tuning["cv_sample"]["sampled"] and "stratified" in tuning["cv_sample"]["rule"]
    evaluation = _metadata(result, "model_evaluation")
    assert evaluation["kernel_path"] == "nystrom" and evaluation["kernel_path_reason"].startswith(expected_reason)
    assert evaluation["verdict_sample"]["rows"] == SMALL_THRESHOLD and evaluation["verdict_sample"]["sampled"]
    assert "kernel_heatmap" in evaluation
    classical = _metadata(result, "classical_baseline")
    assert classical["cv_sample"]["rows"] == SMALL_THRESHOLD and "tuned on a stratified sample" in classical["fit"]
    assert _metadata(result, "shot_plan")["ladder_sample"]["train_sample"]["rows"] == SMALL_THRESHOLD
    vqc_sample = _metadata(result, "vqc_model")["train_sample"]
    assert vqc_sample["rows"] == SMALL_THRESHOLD and vqc_sample["of"] == n_train and vqc_sample["seed"] == 0
    assert info_of(store.read(["vqc_model"]))["train_sample"] == vqc_sample
    report = store.read(["model_evaluation"])
    assert report["promotable"] and result.asset_materializations_for_node("promoted_model")

    # The audit rescores the Nyström model from its stored arrays.
    assert rescore(instance, "quantum_svm")["reproduced"] is True

    # Scoring: a new row costs one circuit per landmark (m entries), nothing more.
    with Warehouse().session(read_only=True) as session:
        (quantum,) = [m["version_id"] for m in session.models() if m["version_id"].startswith("quantum_svm")]
    signers.approve_and_promote(quantum)
    boundary = DeviceBoundary(monkeypatch)
    name = "uncertain.csv"
    good_frame(n_rows=20, seed=9, id_offset=5000).drop("label").write_csv(layout.scoring / name)
    instance.add_dynamic_partitions("scoring_files", [name])
    quota = CostPolicy(warehouse=RESOURCES["warehouse"], quantum_rows_per_day=5)
    scored = materialize(all_assets, selection=["scoring_batches", "predictions"], partition_key=name,
                         instance=instance, run_config={"ops": {"predictions": {"config": {"uncertainty_band": 1e9}}}},
                         resources={**RESOURCES, "quantum_backend": QuantumBackend(shots=100), "cost_policy": quota})
    assert scored.success
    with Warehouse().session(read_only=True) as session:
        champion = session.predictions().filter((pl.col("source") == name) & (pl.col("role") == "champion"))
    assert champion.filter(pl.col("decided_by") == quantum).height == 5
    assert boundary.circuits == 5 * n_train  # m = n_train landmarks per row


def test_landmarks_are_the_same_rows_for_every_asset_that_asks():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(200, 4))
    plan = kernel_plan(200, GatePolicy(max_exact_train=50, nystrom_landmarks=30))
    assert plan.nystrom and plan.landmarks == 30
    first = landmark_indices(X, plan)
    assert first.size == 30 and len(set(first.tolist())) == 30
    assert np.array_equal(first, landmark_indices(X, plan))


@pytest.fixture(params=["local blocks", "dask scheduler from the environment"])
def blocks_engine(request, monkeypatch):
    """The dask resource as ``resources_from_env`` builds it: off, or pointed at a running
    2-worker LocalCluster by HYBRID_DASK_SCHEDULER; and the engine the kernel assets should name."""
    from hybrid_assets.resources import dask_from_env

    if request.param == "local blocks":
        yield dask_from_env(), {"engine": "local blocks in the step's process"}, None
        return
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        monkeypatch.setenv("HYBRID_DASK_SCHEDULER", cluster.scheduler_address)
        yield dask_from_env(), {"engine": "dask", "scheduler_address": cluster.scheduler_address}, cluster


def test_a_nystrom_kernel_over_the_ram_budget_is_streamed_to_a_memory_map_and_the_graph_runs_on_it(
        data_layout, instance, blocks_engine):
    from hybrid_assets.training.quantum import fit_nystrom_svm

    dask, engine, cluster = blocks_engine
    write_good_csv(data_layout.landing, n_rows=48, n_features=5, seed=4, name="train.csv")
    ingest(instance, "train.csv")
    run_config = {"ops": {**SMALL_RUN_CONFIG["ops"], "vqc_model": {"config": {"max_train_rows": SMALL_THRESHOLD}}}}
    # 36 x 36 float64 landmark columns are 10 KiB: over a 1 KiB budget.
    result = refresh(instance, run_config, gate_policy=GatePolicy(min_margin=-1.0, max_exact_train=SMALL_THRESHOLD,
                                                                  kernel_ram_budget_mb=1 / 1024), dask=dask)
    assert result.success
    store = ArtifactStore(data_layout.artifacts)
    embeddings = store.read(["reduced_embeddings"])
    train_kernel, test_kernel = store.read(["quantum_kernel_train"]), store.read(["quantum_kernel_test"])
    assert isinstance(train_kernel["K_nm"], np.memmap) and isinstance(test_kernel["matrix"], np.memmap)
    assert not isinstance(train_kernel["K_mm"], np.memmap)  # the landmarks' own kernel stays in the bundle
    for asset in ("quantum_kernel_train", "quantum_kernel_test"):
        metadata = _metadata(result, asset)
        assert "kernel_ram_budget_mb" in metadata["streamed_to_disk"]
        assert metadata["blocks_engine"] == engine
    assert not list(data_layout.scratch.iterdir())  # every scratch file became an artifact
    if cluster is not None:  # the blocks ran as tasks on that cluster's workers
        assert {"states", "gram_task"} <= set(cluster.scheduler.task_prefixes)  # key prefixes drop the "_"

    # The same entries as the engine, and the same model as the in-memory arrays give.
    spec = FeatureMapSpec.from_dict(store.read(["circuit_artifact"])["spec"])
    landmarks = embeddings["X_train"][train_kernel["landmark_indices"]]
    np.testing.assert_allclose(train_kernel["K_nm"], quantum_kernel(embeddings["X_train"], landmarks, spec=spec).matrix,
                               atol=1e-12, rtol=0)
    np.testing.assert_allclose(test_kernel["matrix"], quantum_kernel(embeddings["X_test"], landmarks, spec=spec).matrix,
                               atol=1e-12, rtol=0)
    model = store.read(["quantum_svm"])
    in_memory = [{name: np.array(value) for name, value in kernel.items()} for kernel in (train_kernel, test_kernel)]
    refit, _ = fit_nystrom_svm(*in_memory, embeddings, C=float(info_of(model)["C"]),
                               kernel={"kind": "quantum", "spec_hash": info_of(model)["spec_hash"]})
    for name in ("projection", "coef", "intercept"):
        np.testing.assert_allclose(model[name], refit[name], atol=1e-12, rtol=0)
    assert _metadata(result, "model_evaluation")["kernel_path"] == "nystrom"
    assert rescore(instance, "quantum_svm")["reproduced"] is True


def test_the_shot_ladder_refits_on_at_most_max_train_rows_a_stated_stratified_sample():
    from hybrid_assets.training.quantum import ladder_split
    from hybrid_assets.training.scale import kernel_plan
    from hybrid_resources.gate_policy import GatePolicy

    rng = np.random.default_rng(1)
    y_train, y_test = (np.arange(900) % 3 == 0).astype(int), np.arange(200) % 2
    embeddings = {"X_train": rng.normal(size=(900, 3)), "y_train": y_train,
                  "X_test": rng.normal(size=(200, 3)), "y_test": y_test}
    plan = kernel_plan(900, GatePolicy())  # the exact path: every row before the ladder's cut
    split, samples = ladder_split(embeddings, plan, 300)
    assert len(split["y_train"]) == 300 and len(split["y_test"]) == 200
    assert abs(split["y_train"].mean() - y_train.mean()) < 0.01  # each class keeps its share
    note = samples["train_sample"]
    assert (note["rows"], note["of"], note["sampled"], note["seed"]) == (300, 900, True, plan.seed)
    again, _ = ladder_split(embeddings, plan, 300)
    assert np.array_equal(again["X_train"], split["X_train"])  # seeded: the same rows every time
    whole, whole_samples = ladder_split(embeddings, plan, 2000)
    assert len(whole["y_train"]) == 900 and not whole_samples["train_sample"]["sampled"]
