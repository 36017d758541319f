"""Every model for every task: multi-class (3 and 10 classes) and regression fits, stored as arrays
whose decisions equal scikit-learn's own; the Nyström path; the CV splits of each task; and the
variational classifier's stated refusal of a task it cannot learn."""

from __future__ import annotations

import numpy as np
import pytest
from dagster import AssetKey, asset, materialize
from sklearn.datasets import load_diabetes, load_digits, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC, SVR

from hybrid_assets.common.outputs import artifact_output
from hybrid_assets.training.embeddings import EmbeddingTransform
from hybrid_assets.training.models import (
    SVR_EPSILON,
    classical_decision,
    classical_kinds,
    fit_classical,
    fit_precomputed_svm,
    model_holdout,
    precomputed_decision,
    quantum_svm_decision,
    support_decision,
)
from hybrid_assets.training.quantum import fit_quantum_svm, tune_kernel
from hybrid_assets.training.scale import kernel_plan, landmark_indices, stratified_sample
from hybrid_assets.training.tasks import judged_metric
from hybrid_assets.training.tuning import classical_grid, kfold_splits, quantum_score, tune_classical
from hybrid_assets.training.variational import vqc_model
from hybrid_resources.data.artifacts import info_of, with_info
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.nystrom import (
    NystromConfig,
    NystromModel,
    RbfKernel,
    TargetCoding,
    fit_nystrom,
    fit_ridge_blocks,
    nystrom_decision,
)
from tests.conftest import RESOURCES, latest_artifact


def embedded(X: np.ndarray, y: np.ndarray, *, n_test: int = 40, d: int = 6) -> dict:
    """A reduced-embeddings-like split: standardize, PCA to d dims, scale to [0, pi] (fit on train)."""
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[n_test:], order[:n_test]
    transform = EmbeddingTransform.fit(X[train], np.arange(len(train)).astype(str), n_qubits=d)
    return {"X_train": transform.encode(X[train]), "X_test": transform.encode(X[test]),
            "y_train": y[train], "y_test": y[test]}


@pytest.fixture(scope="module")
def wine() -> dict:
    X, y = load_wine(return_X_y=True)
    return embedded(X, y.astype(np.int64))


@pytest.fixture(scope="module")
def digits() -> dict:
    X, y = load_digits(return_X_y=True)
    keep = np.random.default_rng(1).permutation(len(y))[:400]  # ten classes, fewer rows: fast fits
    return embedded(X[keep], y[keep].astype(np.int64), n_test=100)


@pytest.fixture(scope="module")
def diabetes() -> dict:
    X, y = load_diabetes(return_X_y=True)
    return embedded(X, y.astype(np.float64), n_test=80)


def rbf_gram(split: dict, gamma: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    return (rbf_kernel(split["X_train"], gamma=gamma),
            rbf_kernel(split["X_test"], split["X_train"], gamma=gamma))


# ---------------------------------------------------------------------------------------
# The kernel SVM on one precomputed kernel
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["wine", "digits"])
def test_one_vs_rest_svm_on_one_gram_matrix_matches_each_sklearn_binary_svm(name, request):
    split = request.getfixturevalue(name)
    K_train, K_test = rbf_gram(split)
    y = split["y_train"]
    model = fit_precomputed_svm(K_train, y, C=1.0)
    n_classes = int(y.max()) + 1
    assert model["dual_coef"].shape == (n_classes, model["support"].size)
    assert model["intercept"].shape == (n_classes,)
    assert np.all(np.diff(model["support"]) > 0)  # the sorted union of every class's support rows
    decision = precomputed_decision(model, K_test)
    assert decision.shape == (len(K_test), n_classes)
    for k in range(n_classes):
        one = SVC(kernel="precomputed", C=1.0).fit(K_train, y == k)
        np.testing.assert_allclose(decision[:, k], one.decision_function(K_test), atol=1e-8)
        assert set(one.support_) <= set(model["support"])
    # Serving needs only the kernel against the support rows.
    np.testing.assert_allclose(support_decision(model, K_test[:, model["support"]]), decision)
    assert (decision.argmax(axis=1) == split["y_test"]).mean() > 0.5


def test_kernel_svr_fits_the_standardized_target_and_decides_in_target_units(diabetes):
    K_train, K_test = rbf_gram(diabetes)
    y = diabetes["y_train"]
    model = fit_precomputed_svm(K_train, y, C=10.0)
    assert model["dual_coef"].ndim == 1 and model["intercept"].shape == (1,)
    mean, scale = y.mean(), y.std()
    np.testing.assert_allclose([model["target_mean"][0], model["target_scale"][0]], [mean, scale])
    svr = SVR(kernel="precomputed", C=10.0, epsilon=SVR_EPSILON).fit(K_train, (y - mean) / scale)
    decision = precomputed_decision(model, K_test)
    np.testing.assert_allclose(decision, svr.predict(K_test) * scale + mean, rtol=1e-9)
    np.testing.assert_allclose(support_decision(model, K_test[:, model["support"]]), decision)
    assert np.corrcoef(decision, diabetes["y_test"])[0, 1] > 0.3


def test_the_binary_svm_arrays_are_as_before(wine):
    K_train, K_test = rbf_gram(wine)
    y = (wine["y_train"] == 1).astype(np.int64)
    model = fit_precomputed_svm(K_train, y, C=1.0)
    sklearn = SVC(kernel="precomputed", C=1.0).fit(K_train, y)
    assert set(model) == {"support", "dual_coef", "intercept"}
    np.testing.assert_array_equal(model["support"], sklearn.support_)
    np.testing.assert_array_equal(model["dual_coef"], sklearn.dual_coef_[0])
    assert model["intercept"].shape == (1,)
    np.testing.assert_allclose(precomputed_decision(model, K_test), sklearn.decision_function(K_test), atol=1e-10)


def test_the_task_can_be_stated_over_the_labels(wine):
    K_train, _ = rbf_gram(wine)
    as_regression = fit_precomputed_svm(K_train, wine["y_train"], C=1.0, task="regression")
    assert "target_mean" in as_regression and as_regression["dual_coef"].ndim == 1


# ---------------------------------------------------------------------------------------
# The classical suite
# ---------------------------------------------------------------------------------------


def sklearn_counterpart(kind: str, params: dict, split: dict, task: str):
    """scikit-learn's own model for a candidate and its decision on the test rows."""
    X, y, X_test = split["X_train"], split["y_train"], split["X_test"]
    if kind == "logistic_regression":
        return LogisticRegression(C=params["C"], max_iter=2000).fit(X, y).decision_function(X_test)
    if kind == "ridge":
        return Ridge(alpha=params["alpha"]).fit(X, y).predict(X_test)
    booster = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    model = booster(learning_rate=params["learning_rate"], max_leaf_nodes=params["max_leaf_nodes"], max_iter=100,
                    early_stopping=False, random_state=0).fit(X, y)
    return model.predict(X_test) if task == "regression" else model.decision_function(X_test)


@pytest.mark.parametrize("name, task", [("wine", "multiclass"), ("digits", "multiclass"),
                                        ("diabetes", "regression")])
def test_every_classical_kind_round_trips_through_its_arrays(name, task, request):
    split = request.getfixturevalue(name)
    for kind in classical_kinds(task):
        params = classical_grid(task)[kind][0]
        model = fit_classical(kind, params, split["X_train"], split["y_train"])
        decision = classical_decision(kind, model, split["X_test"])
        K = int(split["y_train"].max()) + 1
        assert decision.shape == ((len(split["X_test"]), K) if task == "multiclass" else (len(split["X_test"]),))
        if kind != "rbf_svm":
            np.testing.assert_allclose(decision, sklearn_counterpart(kind, params, split, task), rtol=1e-7, atol=1e-7)


def test_the_multiclass_rbf_svm_is_one_vs_rest_over_its_support_union(wine):
    model = fit_classical("rbf_svm", {"C": 10.0, "gamma_scale": 1.0}, wine["X_train"], wine["y_train"])
    gamma = float(model["gamma"][0])
    for k in range(3):
        one = SVC(kernel="rbf", C=10.0, gamma=gamma).fit(wine["X_train"], wine["y_train"] == k)
        np.testing.assert_allclose(classical_decision("rbf_svm", model, wine["X_test"])[:, k],
                                   one.decision_function(wine["X_test"]), atol=1e-8)
    assert model["support_vectors"].shape[0] == model["dual_coef"].shape[1]


def test_the_regression_rbf_svm_is_an_svr_in_target_units(diabetes):
    model = fit_classical("rbf_svm", {"C": 10.0, "gamma_scale": 1.0}, diabetes["X_train"], diabetes["y_train"])
    y = diabetes["y_train"]
    svr = SVR(kernel="rbf", C=10.0, gamma=float(model["gamma"][0]), epsilon=SVR_EPSILON).fit(
        diabetes["X_train"], (y - y.mean()) / y.std())
    np.testing.assert_allclose(classical_decision("rbf_svm", model, diabetes["X_test"]),
                               svr.predict(diabetes["X_test"]) * y.std() + y.mean(), rtol=1e-9)


def test_a_kind_of_another_task_is_refused(diabetes, wine):
    with pytest.raises(ValueError, match="regression"):
        fit_classical("logistic_regression", {"C": 1.0}, diabetes["X_train"], diabetes["y_train"])
    with pytest.raises(ValueError, match="multiclass"):
        fit_classical("ridge", {"alpha": 1.0}, wine["X_train"], wine["y_train"])


def test_tuning_ranks_regressors_by_r2_on_shuffled_folds(diabetes):
    X, y = diabetes["X_train"], diabetes["y_train"]
    splits = kfold_splits(y, folds=3, seed=0)
    grid = {"ridge": [{"alpha": 0.1}, {"alpha": 1e6}], "rbf_svm": [{"C": 10.0, "gamma_scale": 1.0}]}
    ranked = tune_classical(X, y, splits, metric="accuracy", grid=grid)  # accuracy is judged as r2 here
    assert [c.cv_mean for c in ranked] == sorted((c.cv_mean for c in ranked), reverse=True)
    assert ranked[-1].params == {"alpha": 1e6}  # a ridge that predicts the mean: R² ~ 0
    assert ranked[0].cv_mean > 0.2 and abs(ranked[-1].cv_mean) < 0.05


def test_the_multiclass_quantum_score_uses_the_same_protocol(wine):
    K_train, _ = rbf_gram(wine)
    splits = kfold_splits(wine["y_train"], folds=3, seed=0)
    scores = [quantum_score(K_train, wine["y_train"], 1.0, "f1")(train, test) for train, test in splits]
    assert all(0.5 < score <= 1.0 for score in scores)


# ---------------------------------------------------------------------------------------
# Nyström
# ---------------------------------------------------------------------------------------


def test_nystrom_multiclass_solves_one_hot_targets_at_once(digits):
    kernel = RbfKernel(0.5)
    X, y = digits["X_train"], digits["y_train"]
    model = fit_nystrom(X, y, kernel, NystromConfig(m=120, block_rows=64, C=10.0))
    assert model.coef.shape == (model.projection.shape[1], 10) and model.intercept.shape == (10,)
    decision = nystrom_decision(model, digits["X_test"], kernel)
    assert decision.shape == (len(digits["X_test"]), 10)
    # Each class column is the binary least-squares SVM of that class against the rest.
    phi = kernel(X, model.landmarks) @ model.projection
    for k in (0, 7):
        coef, intercept = fit_ridge_blocks([(phi, (y == k).astype(np.int64))], C=10.0)
        np.testing.assert_allclose(model.coef[:, k], coef, atol=1e-8)
        np.testing.assert_allclose(model.intercept[k], intercept, atol=1e-8)
    stored = NystromModel.from_arrays(model.to_arrays())
    np.testing.assert_allclose(stored.decision(kernel(digits["X_test"], stored.landmarks)), decision)
    assert (decision.argmax(axis=1) == digits["y_test"]).mean() > 0.5


def test_nystrom_regression_is_a_ridge_on_the_standardized_target(diabetes):
    kernel = RbfKernel(0.5)
    X, y = diabetes["X_train"], diabetes["y_train"]
    model = fit_nystrom(X, y, kernel, NystromConfig(m=80, C=1.0))
    phi = kernel(X, model.landmarks) @ model.projection
    ridge = Ridge(alpha=1.0).fit(phi, (y - y.mean()) / y.std())
    decision = nystrom_decision(model, diabetes["X_test"], kernel)
    expected = ridge.predict(kernel(diabetes["X_test"], model.landmarks) @ model.projection) * y.std() + y.mean()
    np.testing.assert_allclose(decision, expected, rtol=1e-6)
    arrays = model.to_arrays()
    assert arrays["target_mean"].shape == (1,) and NystromModel.from_arrays(arrays).target == model.target


def test_the_binary_nystrom_arrays_are_as_before(wine):
    y = (wine["y_train"] == 2).astype(np.int64)
    model = fit_nystrom(wine["X_train"], y, RbfKernel(0.5), NystromConfig(m=30))
    arrays = model.to_arrays()
    assert set(arrays) == {"landmarks", "landmark_indices", "projection", "coef", "intercept", "nystrom_meta"}
    assert arrays["coef"].ndim == 1 and arrays["intercept"].shape == (1,) and "task" not in model.meta
    assert TargetCoding.of(y).encode(y).tolist() == np.where(y > 0, 1.0, -1.0).tolist()


@pytest.mark.parametrize("name", ["wine", "diabetes"])
def test_the_classical_nystrom_path_serves_every_task(name, request):
    split = request.getfixturevalue(name)
    nystrom = {"m": 50, "rule": "kmeans++", "seed": 0, "eps": 1e-10}
    model = fit_classical("rbf_svm", {"C": 10.0, "gamma_scale": 1.0}, split["X_train"], split["y_train"],
                          nystrom=nystrom)
    decision = classical_decision("rbf_svm", model, split["X_test"])
    assert decision.shape[0] == len(split["X_test"]) and ("projection" in model)
    if name == "wine":
        assert decision.shape == (len(split["X_test"]), 3) and (decision.argmax(1) == split["y_test"]).mean() > 0.7
    else:
        assert decision.ndim == 1 and np.corrcoef(decision, split["y_test"])[0, 1] > 0.3


# ---------------------------------------------------------------------------------------
# Splits and samples per task
# ---------------------------------------------------------------------------------------


def test_classification_folds_are_stratified_and_regression_folds_shuffled(wine, diabetes):
    for train, test in kfold_splits(wine["y_train"], folds=5, seed=0):
        assert set(wine["y_train"][test]) == {0, 1, 2} and set(wine["y_train"][train]) == {0, 1, 2}
    splits = kfold_splits(diabetes["y_train"], folds=5, seed=0)
    assert len(splits) == 5
    tests = np.concatenate([test for _, test in splits])
    assert sorted(tests.tolist()) == list(range(len(diabetes["y_train"])))
    assert not np.array_equal(splits[0][1], np.arange(len(splits[0][1])))  # shuffled, not the first block
    again = kfold_splits(diabetes["y_train"], folds=5, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))


def test_a_sample_of_a_regression_target_keeps_its_distribution(diabetes):
    y = diabetes["y_train"]
    rows = stratified_sample(y, 100, seed=3)
    assert rows.size == 100 and np.array_equal(rows, stratified_sample(y, 100, seed=3))
    deciles = np.quantile(y, np.linspace(0, 1, 11)[1:-1])
    counts = np.bincount(np.searchsorted(deciles, y[rows], side="right"), minlength=10)
    assert counts.min() >= 8 and counts.max() <= 12


def test_a_multiclass_sample_keeps_every_class(digits):
    rows = stratified_sample(digits["y_train"], 50, seed=0)
    assert rows.size == 50 and set(digits["y_train"][rows]) == set(range(10))


# ---------------------------------------------------------------------------------------
# The variational classifier refuses what it cannot learn
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_the_vqc_refuses_a_non_binary_task_and_the_run_succeeds(task, wine, diabetes, data_layout, instance):
    split = wine if task == "multiclass" else diabetes
    bundle = {**split, "task": np.array([task]),
              "classes": np.array(["a", "b", "c"]) if task == "multiclass" else np.array([], dtype=str)}

    @asset(name="reduced_embeddings", group_name="quantum")
    def given_embeddings():
        return artifact_output(bundle, {})

    result = materialize([given_embeddings, vqc_model], instance=instance, resources=RESOURCES)
    assert result.success
    metadata = instance.get_latest_materialization_event(AssetKey("vqc_model")).asset_materialization.metadata
    stored = latest_artifact(data_layout.artifacts, "vqc_model")
    info = info_of(stored)
    expected = "3-class task" if task == "multiclass" else "regression task"
    assert info["refused"].endswith(f"this dataset is a {expected}") and "binary classification only" in info["refused"]
    assert info["degraded"] is True and info["degraded_reason"] == info["refused"]
    assert metadata["refused"].value == info["refused"] and metadata["circuits_executed"].value == 0
    assert "params" not in stored
    with pytest.raises(ValueError, match="refused"):
        model_holdout("vqc_model", stored, {"reduced_embeddings": bundle})


# ---------------------------------------------------------------------------------------
# The quantum SVM asset's fit and the kernel tuning, for every task
# ---------------------------------------------------------------------------------------


def nystrom_kernels(split: dict, m: int) -> tuple[dict, dict]:
    """Kernel artifacts as the Nyström path stores them (RBF entries stand in for circuits)."""
    plan = kernel_plan(len(split["y_train"]), GatePolicy(kernel_path="nystrom", nystrom_landmarks=m))
    indices = landmark_indices(split["X_train"], plan)
    landmarks = split["X_train"][indices]
    identity = {"kernel_path": plan.to_dict()}
    train = with_info({"landmark_indices": indices, "K_mm": rbf_kernel(landmarks, gamma=0.5),
                       "K_nm": rbf_kernel(split["X_train"], landmarks, gamma=0.5)}, identity)
    test = with_info({"landmark_indices": indices, "matrix": rbf_kernel(split["X_test"], landmarks, gamma=0.5)},
                     identity)
    return train, test


@pytest.mark.parametrize("name, task", [("wine", "multiclass"), ("diabetes", "regression")])
def test_the_quantum_svm_fits_each_task_on_either_path(name, task, request):
    split = {**request.getfixturevalue(name), "task": np.array([task])}
    K_train, K_test = rbf_gram(split)
    exact, size, train = fit_quantum_svm({"matrix": K_train}, {"matrix": K_test}, split, C=1.0, spec_hash="h")
    score = "train_r2" if task == "regression" else "train_accuracy"
    assert set(train) == {score} and train[score] > 0.3 and size["n_support_vectors"] == exact["support"].size
    holdout = model_holdout("quantum_svm", exact, {"quantum_kernel_test": {"matrix": K_test}, "reduced_embeddings": split})
    assert ("r2" in holdout) == (task == "regression")
    kernel_train, kernel_test = nystrom_kernels(split, m=40)
    model, size, train = fit_quantum_svm(kernel_train, kernel_test, split, C=1.0, spec_hash="h")
    decision = quantum_svm_decision(model, kernel_test["matrix"])
    assert decision.shape == ((len(K_test), 3) if task == "multiclass" else (len(K_test),))
    assert size["landmarks"] == 40 and size["kernel_path"]["path"] == "nystrom" and train[score] > 0.3


@pytest.mark.parametrize("name, task", [("wine", "multiclass"), ("diabetes", "regression")])
def test_kernel_tuning_ranks_by_the_task_metric(name, task, request):
    split = request.getfixturevalue(name)
    X, y = split["X_train"][:90, :3], split["y_train"][:90]
    metric = judged_metric(task, "accuracy")
    grid = {"feature_map": "iqp", "entanglement": "linear", "bandwidths": [0.3], "reps": [1], "Cs": [0.1, 10.0],
            "n_qubits": 3, "metric": metric, "folds": 3, "seed": 0}
    tuning = tune_kernel(X, y, grid, GatePolicy(cv_folds=3))
    assert tuning["cv_metric"] == ("r2" if task == "regression" else "accuracy")
    assert [c["cv_mean"] for c in tuning["candidates"]] == sorted((c["cv_mean"] for c in tuning["candidates"]),
                                                                  reverse=True)
    assert tuning["C"] in (0.1, 10.0) and np.isfinite(tuning["cv_mean"])
