"""model_evaluation per learning task (issue 25): the verdict's splits for a regression target, the
judged metric, kernel-target alignment per task, the holdout table and plots per task, the shot
planner's metric for regression, and the variational classifier refused for a task.

Decisions in the unit tests come from scikit-learn directly. The tests marked "needs the training
helper" (``*_after_training_generalized``) fit our own multi-class / regression models
(``fit_precomputed_svm``, ``classical_decision``, the assets up from ``reduced_embeddings``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.svm import SVR

from hybrid_assets.common.reporting import (
    confusion_counts,
    confusion_figure,
    heatmap_png,
    prediction_scatter_figure,
)
from hybrid_assets.evaluation.assets import (
    Evidence,
    holdout_of,
    plots_metadata,
    refused_reason,
    vqc_gates,
)
from hybrid_assets.evaluation.gates import (
    alignment_gate,
    latency_gate,
    margin_gate,
    not_applicable,
    scorable,
)
from hybrid_assets.evaluation.report import (
    METRICS,
    holdout_columns,
    holdout_plot,
    holdout_table,
)
from hybrid_assets.evaluation.verdict import compare, judge, repeated_splits
from hybrid_assets.training.shot_planner import ShotRung, holdout_score, ladder_metric, recommend, shot_ladder
from hybrid_assets.training.tasks import holdout_metrics
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.kernel_diagnostics import (
    concentration,
    geometric_difference,
    label_task,
    target_alignment,
    target_kernel,
)

PNG = b"\x89PNG\r\n\x1a\n"


def ticks(axis, which: str) -> list[str]:
    return [label.get_text() for label in getattr(axis, f"get_{which}ticklabels")()]


# --- the verdict's splits and metric -------------------------------------------------------------

def test_a_regression_target_gets_repeated_shuffled_kfold_splits():
    y = np.linspace(-3.0, 7.0, 23)  # float: a regression target, every value distinct (no classes)
    splits = repeated_splits(y, repeats=3, folds=5, seed=0)
    assert len(splits) == 15
    for repeat in range(3):
        tests = np.concatenate([test for _, test in splits[repeat * 5:(repeat + 1) * 5]])
        assert np.array_equal(np.sort(tests), np.arange(23))  # each repeat's folds partition the rows
    assert all(len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 23 for train, test in splits)
    assert not np.array_equal(splits[0][1], splits[5][1])  # repeats reshuffle
    assert len(repeated_splits(y[:3], repeats=1, folds=5, seed=0)) == 3  # folds capped at the rows


def test_class_indices_keep_stratified_splits_capped_at_the_smallest_class():
    y = np.array([0] * 10 + [1] * 10 + [2] * 3)
    splits = repeated_splits(y, repeats=2, folds=5, seed=0)
    assert len(splits) == 2 * 3  # 3 rows of class 2: 3 folds
    assert all(np.count_nonzero(y[test] == 2) == 1 for _, test in splits)


def test_the_regression_verdict_is_judged_and_named_on_r2():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, np.pi, size=(60, 2))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + rng.normal(scale=0.05, size=60)
    kernel = np.exp(-np.sum((X[:, None] - X[None]) ** 2, axis=-1))

    def svr(train, test):
        fitted = SVR(kernel="precomputed", C=10.0).fit(kernel[np.ix_(train, train)], y[train])
        return holdout_metrics(y[test], fitted.predict(kernel[np.ix_(test, train)]), task="regression")["r2"]

    def mean_only(train, test):  # predicts the train mean: R² at most about 0
        return holdout_metrics(y[test], np.full(len(test), y[train].mean()), task="regression")["r2"]

    verdict = compare(svr, mean_only, repeated_splits(y, repeats=2, folds=5, seed=0), metric="r2", min_margin=0.0)
    assert verdict.outcome == "won" and verdict.low > 0.5, verdict.message()
    assert " on r2: won by +" in verdict.message() and verdict.to_dict()["metric"] == "r2"
    lost = judge([-0.2, -0.1, -0.3], [0.5, 0.6, 0.55], metric="r2", min_margin=0.0, test_to_train=0.25)
    assert lost.outcome == "lost" and "on r2: lost by" in lost.message()


# --- gates are task-agnostic given the judged metric ---------------------------------------------

def test_margin_and_latency_gates_judge_whatever_metric_they_are_given():
    metrics = {"quantum_svm": {"r2": 0.81, "rmse": 0.3}, "classical_baseline": {"r2": 0.74, "rmse": 0.4}}
    won = margin_gate(metrics, metric="r2", min_margin=0.05)
    assert won.passed and won.figures["difference"] == pytest.approx(0.07) and "r2 0.8100" in won.message
    assert not margin_gate(metrics, metric="r2", min_margin=0.1).passed
    assert latency_gate({"quantum_svm": 0.002}, ceiling_s=0.01).passed
    assert not latency_gate({"quantum_svm": 0.02}, ceiling_s=0.01).passed


def test_a_reproducibility_subsample_is_scored_only_when_its_classes_line_up():
    assert scorable(np.array([0, 1, 2, 0]), np.array([2, 1]), "multiclass")
    assert not scorable(np.array([0, 2, 0]), np.array([0]), "multiclass")  # class 1 missing: columns shift
    assert not scorable(np.array([0, 1, 0]), np.array([2]), "multiclass")  # a test class never trained on
    assert scorable(np.array([0, 1]), np.array([1, 1]), "binary")
    assert not scorable(np.array([1, 1]), np.array([1]), "binary")
    assert scorable(np.array([0.5, 1.5]), np.array([3.0]), "regression")
    assert not scorable(np.array([2.0, 2.0]), np.array([1.0]), "regression")


# --- kernel-target alignment per task; the label-free diagnostics ----------------------------------

def test_label_task_reads_the_labels():
    assert label_task(np.array([0, 1, 1])) == "binary"
    assert label_task(np.array([-1, 1])) == "binary"
    assert label_task(np.array([0, 2, 1])) == "multiclass"
    assert label_task(np.array([0.0, 1.0])) == "regression"


def test_multiclass_alignment_uses_the_centered_one_hot_label_kernel():
    labels = np.array([0, 0, 1, 2, 2, 2, 1])
    onehot = np.eye(3)[labels]
    centering = np.eye(7) - np.ones((7, 7)) / 7
    assert np.allclose(target_kernel(labels, task="multiclass", rescale_class_labels=False),
                       centering @ onehot @ onehot.T @ centering)
    scaled = onehot / onehot.sum(axis=0)
    assert np.allclose(target_kernel(labels), centering @ scaled @ scaled.T @ centering)  # inferred: multiclass
    rng = np.random.default_rng(0)
    labels = np.arange(45) % 3
    onehot = np.eye(3)[labels]
    ideal = onehot @ onehot.T  # 1 within a class, 0 across
    points = rng.normal(size=(45, 3))
    unrelated = np.exp(-np.sum((points[:, None] - points[None]) ** 2, axis=-1))
    assert target_alignment(ideal, labels) == pytest.approx(1.0)  # centered, the ideal kernel is the target
    assert target_alignment(unrelated, labels) < 0.3
    # Adding a constant to every entry (a fidelity kernel's common offset) changes nothing once centered.
    assert target_alignment(unrelated + 5.0, labels) == pytest.approx(target_alignment(unrelated, labels))
    gate = alignment_gate(unrelated, ideal, labels, task="multiclass")
    assert gate.passed and gate.figures["task"] == "multiclass"
    assert not alignment_gate(ideal, unrelated, labels, task="multiclass").passed


def test_regression_alignment_uses_the_centered_target_kernel():
    y = np.array([0.5, 2.0, -1.0, 3.5, 1.0])
    centered = y - y.mean()
    assert np.allclose(target_kernel(y), np.outer(centered, centered))
    assert target_alignment(np.outer(centered, centered), y) == pytest.approx(1.0)
    # A kernel of similar targets scores well above one that ignores them; a constant target has no alignment.
    targets = np.random.default_rng(0).normal(size=40)
    similar = np.exp(-(targets[:, None] - targets[None]) ** 2 / 4)
    assert target_alignment(similar, targets) > 0.8 > 0.2 > target_alignment(np.eye(40), targets)
    assert math.isnan(target_alignment(similar, np.full(40, 2.0)))


def test_binary_alignment_is_unchanged_by_tasks():
    labels = np.array([0, 1, 1, 0, 1])
    kernel = np.exp(-np.subtract.outer(np.arange(5.0), np.arange(5.0)) ** 2)
    y = np.where(labels > 0, 1.0, -1.0) / np.where(labels > 0, 3, 2)
    expected = np.sum(kernel * np.outer(y, y)) / (np.linalg.norm(kernel) * np.linalg.norm(np.outer(y, y)))
    assert target_alignment(kernel, labels) == target_alignment(kernel, labels, task="binary") == pytest.approx(expected)


def test_concentration_and_geometric_difference_take_no_labels():
    # Their signatures have no labels at all: the same kernels give the same figures for any task.
    kernel = np.array([[1.0, 0.4, 0.2], [0.4, 1.0, 0.6], [0.2, 0.6, 1.0]])
    assert concentration(kernel, shots=100).mean == pytest.approx(0.4)
    assert geometric_difference(kernel, kernel, regularization=1e-9) == pytest.approx(1.0, rel=1e-4)


# --- the holdout table and plots per task --------------------------------------------------------

def test_holdout_columns_per_task_and_binary_unchanged():
    assert holdout_columns("binary") == METRICS == ["accuracy", "f1", "roc_auc"]
    assert holdout_columns("multiclass") == ["accuracy", "f1", "balanced_accuracy", "roc_auc"]
    assert holdout_columns("regression") == ["r2", "rmse", "mae"]


def test_the_regression_holdout_table_and_a_refused_model_row():
    info = {"holdout": {"r2": 0.7, "rmse": 0.5, "mae": 0.4}}
    refused = {"model": "vqc_model", "refused": "the variational classifier is binary only", "degraded": True}
    metrics = {"quantum_svm": holdout_of(info, "regression"), "vqc_model": holdout_of(refused, "regression")}
    assert metrics["quantum_svm"] == {"r2": 0.7, "rmse": 0.5, "mae": 0.4}
    assert all(math.isnan(v) for v in metrics["vqc_model"].values()) and set(metrics["vqc_model"]) == {"r2", "rmse", "mae"}
    table = holdout_table(metrics, holdout_columns("regression"), {"vqc_model": refused_reason(refused)})
    lines = table.splitlines()
    assert lines[0] == "| model | r2 | rmse | mae | note |"
    assert lines[2] == "| quantum_svm | 0.7000 | 0.5000 | 0.4000 |  |"
    assert lines[3].startswith("| vqc_model | nan | nan | nan | refused: the variational classifier is binary only")
    # Without a refused model, the binary table is what it always was: no note column.
    binary = {"quantum_svm": holdout_of({"holdout": {"accuracy": 0.9, "f1": 0.8, "roc_auc": 0.95}})}
    assert holdout_table(binary, METRICS, {}).splitlines()[0] == "| model | accuracy | f1 | roc_auc |"


def test_multiclass_holdout_keeps_every_metric_the_model_reported():
    info = {"holdout": {"accuracy": 0.8, "f1": 0.7, "balanced_accuracy": 0.75, "roc_auc": 0.9, "log_loss": 0.5}}
    assert list(holdout_of(info, "multiclass")) == ["accuracy", "f1", "balanced_accuracy", "roc_auc", "log_loss"]
    assert list(holdout_of({"holdout": {**info["holdout"]}}, "binary")) == METRICS


def test_the_confusion_matrix_is_k_by_k_with_the_class_names():
    classes = ["setosa", "versicolor", "virginica"]
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    predictions = {"quantum_svm": np.array([0, 1, 1, 1, 2, 2, 0]), "classical_baseline": y.copy()}
    assert confusion_counts(y, predictions["quantum_svm"], 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    figure = confusion_figure(y, predictions, classes, "holdout")
    first, second = figure.axes[:2]
    assert ticks(first, "x") == classes and ticks(first, "y") == classes
    assert (first.get_xlabel(), first.get_ylabel()) == ("predicted class", "true class")
    assert first.get_title() == "quantum_svm\naccuracy 0.714" and second.get_title() == "classical_baseline\naccuracy 1.000"
    assert first.images[0].get_array().shape == (3, 3)
    assert sorted(text.get_text() for text in first.texts) == sorted(["1", "1", "0", "0", "2", "0", "1", "0", "2"])


def test_the_regression_plot_is_predicted_against_actual():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    figure = prediction_scatter_figure(y, {"quantum_svm": np.array([1.1, 1.9, 3.2, 3.8])}, "holdout")
    axis = figure.axes[0]
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("actual", "predicted")
    assert np.allclose(axis.collections[0].get_offsets(), np.column_stack([y, [1.1, 1.9, 3.2, 3.8]]))
    assert axis.get_title().startswith("quantum_svm\nRMSE 0.1")


def test_holdout_plot_per_task_from_decisions():
    y = np.array([0, 1, 2, 1])
    logits = np.eye(3)[[0, 1, 2, 2]] * 3.0  # argmax: 0, 1, 2, 2
    name, png, _ = holdout_plot("multiclass", y, {"classical_baseline": logits}, ["a", "b", "c"])
    assert name == "confusion_matrix" and png.startswith(PNG)
    name, png, _ = holdout_plot("binary", np.array([0, 1, 1]), {"m": np.array([-1.0, 2.0, 0.5])}, ["no", "yes"])
    assert name == "confusion_matrix" and png.startswith(PNG)
    name, png, _ = holdout_plot("regression", np.array([0.5, 1.5]), {"m": np.array([0.4, 1.7])}, [])
    assert name == "predicted_vs_actual" and png.startswith(PNG)
    assert holdout_plot("regression", np.array([0.5]), {}, []) is None


def test_plots_are_written_as_png_files_per_task(data_layout):
    verdict = judge([0.1, 0.2, 0.15], [0.05, 0.1, 0.1], metric="r2", min_margin=0.0, test_to_train=0.25)
    kernel = np.exp(-np.subtract.outer(np.arange(6.0), np.arange(6.0)) ** 2 / 4)
    targets = np.array([2.5, -1.0, 0.3, 4.0, 1.1, 0.0])
    holdout = holdout_plot("regression", targets, {"quantum_svm": targets + 0.1}, [])
    metadata = plots_metadata(verdict, kernel, targets, "quantum kernel, train split", [], holdout)
    folder = data_layout.artifacts / "model_evaluation"
    for name in ("verdict_plot", "kernel_heatmap", "predicted_vs_actual"):
        assert (folder / f"{name}.png").read_bytes().startswith(PNG), name
        assert "data:image/png;base64," in metadata[name].value
    assert "ordered by target value" in metadata["kernel_heatmap"].value
    labels = np.array([0, 2, 1, 1, 0, 2])
    holdout = holdout_plot("multiclass", labels, {"classical_baseline": np.eye(3)[labels]}, ["x", "y", "z"])
    plots_metadata(verdict, kernel, labels, "quantum kernel, train split", ["x", "y", "z"], holdout)
    assert (folder / "confusion_matrix.png").read_bytes().startswith(PNG)


def test_the_regression_heatmap_orders_rows_by_target():
    png = heatmap_png(np.eye(4), np.array([3.0, -1.0, 2.0, 0.5]), [], "regression kernel")
    assert png.startswith(PNG)


# --- the shot planner's metric ---------------------------------------------------------------------

def test_the_shot_ladder_judges_a_regression_target_on_r2():
    assert ladder_metric(np.array([0.2, 1.5]), "accuracy") == "r2"
    assert ladder_metric(np.array([0, 1, 2]), "f1") == "f1"
    assert ladder_metric(np.array([0, 1]), "roc_auc") == "roc_auc"
    with pytest.raises(ValueError, match="does not apply"):
        ladder_metric(np.array([0, 1]), "r2")


def test_the_tolerance_rule_serves_r2_including_negative_values():
    def rung(shots, mean, usd):
        return ShotRung(shots, mean, 0.01, 0.0, 0.0, 10, {"configured": usd})

    rungs = [rung(100, -0.40, 1.0), rung(1000, -0.12, 2.0), rung(10000, -0.10, 3.0)]
    assert recommend(rungs, -0.10, tolerance=0.05, device="configured").shots == 1000
    assert recommend(rungs, 0.30, tolerance=0.05, device="configured") is None
    assert recommend(rungs, math.nan, tolerance=0.05, device="configured") is None


# --- the variational classifier refused for a task -------------------------------------------------

def refused_evidence(task: str, metric: str, vqc_info: dict) -> Evidence:
    """What vqc_gates reads of the evidence: the model infos, their metrics and the judged metric."""
    infos = {"quantum_svm": {"holdout": {}}, "classical_baseline": {"holdout": {}}, "vqc_model": vqc_info}
    metrics = {"quantum_svm": {metric: 0.8}, "classical_baseline": {metric: 0.7},
               "vqc_model": holdout_of(vqc_info, task)}
    return Evidence({}, infos, metrics, None, None, None, None, "", task, metric, [])


@pytest.mark.parametrize("task, metric", [("multiclass", "accuracy"), ("regression", "r2")])
def test_a_refused_variational_classifier_is_not_applicable_not_failed(task, metric):
    reason = f"the variational classifier does not support {task}"
    evidence = refused_evidence(task, metric, {"model": "vqc_model", "refused": reason, "degraded": True,
                                               "degraded_reason": reason})
    assert evidence.refused == {"vqc_model": reason}
    margin, spread = vqc_gates(evidence, GatePolicy())
    assert (margin.name, spread.name) == ("vqc_beats_classical", "vqc_reproducibility")
    for gate in (margin, spread):
        assert gate.passed and gate.message == f"not applicable: {reason}" and gate.figures["not_applicable"]
    assert not_applicable("x", "why").to_dict()["passed"] is True


def test_a_degraded_binary_variational_classifier_still_fails_its_reported_gates():
    evidence = refused_evidence("binary", "accuracy", {"model": "vqc_model", "degraded": True,
                                                       "degraded_reason": "device unavailable"})
    assert evidence.refused == {}
    margin, spread = vqc_gates(evidence, GatePolicy())
    assert not margin.passed and margin.message == "quantum stage degraded: device unavailable"
    assert not spread.passed


# --- needs the training helper's multi-class / regression models (issue 25 merge) -----------------

def test_shot_ladder_on_a_regression_target_after_training_generalized():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, np.pi, size=(40, 2))
    y = np.cos(X[:, 0]) + 0.3 * X[:, 1]
    kernel = np.exp(-np.sum((X[:, None] - X[None]) ** 2, axis=-1) / 2)
    train, test = kernel[:30, :30], kernel[30:, :30]
    exact = holdout_score(train, test, y[:30], y[30:], C=10.0, metric="accuracy")  # judged on r2 anyway
    assert exact > 0.5
    ladder = shot_ladder(train, test, y[:30], y[30:], C=10.0, metric="accuracy", ladder=[100, 10000], seeds=2)
    assert [shots for shots, _, _ in ladder] == [100, 10000]
    assert abs(np.mean(ladder[1][1]) - exact) < 0.1  # many shots: close to the exact R²


MODEL_STEPS = ["kernel_tuning", "circuit_artifact", "quantum_kernel_train", "quantum_kernel_test", "quantum_svm",
               "classical_baseline", "vqc_model", "model_evaluation"]


def embeddings_bundle(task: str, seed: int = 0) -> dict[str, np.ndarray]:
    """A hand-made ``reduced_embeddings`` bundle (the shared interface): 3 dims in [0, pi], 36 train
    and 18 test rows; three separable classes, or a smooth regression target."""
    rng = np.random.default_rng(seed)
    n = 54
    if task == "multiclass":
        y = np.arange(n) % 3
        X = np.clip(0.6 + 0.9 * y[:, None] + rng.normal(scale=0.2, size=(n, 3)), 0, np.pi)
        classes, y = np.array(["high", "low", "mid"]), y.astype(np.int64)
    else:
        X = rng.uniform(0, np.pi, size=(n, 3))
        y, classes = np.sin(X[:, 0]) + 0.5 * X[:, 1] + rng.normal(scale=0.05, size=n), np.array([], dtype=str)
    ids = np.array([f"s{i:03d}" for i in range(n)])
    return {"X_train": X[:36], "X_test": X[36:], "y_train": y[:36], "y_test": y[36:], "ids_train": ids[:36],
            "ids_test": ids[36:], "classes": classes, "task": np.array([task])}


def evaluate(task: str, data_layout, instance) -> dict:
    """Materialize every model and model_evaluation from a stored ``reduced_embeddings`` bundle."""
    from dagster import materialize

    from hybrid_assets.definitions import all_assets
    from hybrid_resources.data.artifacts import ArtifactStore, content_hash
    from tests.conftest import RESOURCES

    bundle = embeddings_bundle(task)
    store = ArtifactStore(data_layout.artifacts)
    store.write(["reduced_embeddings"], bundle, version=content_hash(bundle))
    config = {"ops": {"kernel_tuning": {"config": {"bandwidths": [0.3, 1.0], "reps": [1], "Cs": [1.0, 10.0]}}}}
    result = materialize(all_assets, selection=MODEL_STEPS, instance=instance, resources=RESOURCES,
                         run_config=config, raise_on_error=False)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()
              if e.asset_key.to_user_string() == "model_evaluation"}
    return {"report": store.read(["model_evaluation"]), "checks": checks,
            "plots": data_layout.artifacts / "model_evaluation"}


def test_model_evaluation_of_three_classes_after_training_generalized(data_layout, instance):
    evaluation = evaluate("multiclass", data_layout, instance)
    report, checks = evaluation["report"], evaluation["checks"]
    assert (report["task"], report["judged_metric"], report["classes"]) == ("multiclass", "accuracy",
                                                                            ["high", "low", "mid"])
    assert report["verdict"]["metric"] == "accuracy" and " on accuracy: " in report["gates"]["quantum_beats_classical"]["message"]
    for model in ("quantum_svm", "classical_baseline"):
        assert set(holdout_columns("multiclass")) <= set(report["metrics"][model])
        assert report["metrics"][model]["accuracy"] > 0.8  # separable classes
    vqc = report["gates_other_models"]
    assert vqc["vqc_beats_classical"]["passed"] and vqc["vqc_beats_classical"]["message"].startswith("not applicable: ")
    assert vqc["vqc_reproducibility"]["passed"] and checks["vqc_beats_classical"] and checks["vqc_reproducibility"]
    assert vqc["kernel_target_alignment"]["figures"]["task"] == "multiclass"
    assert (evaluation["plots"] / "confusion_matrix.png").read_bytes().startswith(PNG)
    assert "quantum_minus_classical" in report and set(report["quantum_minus_classical"]) == set(holdout_columns("multiclass"))


def test_model_evaluation_of_a_regression_target_after_training_generalized(data_layout, instance):
    evaluation = evaluate("regression", data_layout, instance)
    report = evaluation["report"]
    assert (report["task"], report["judged_metric"]) == ("regression", "r2") and "classes" not in report
    assert report["verdict"]["metric"] == "r2" and " on r2: " in report["gates"]["quantum_beats_classical"]["message"]
    assert set(report["metrics"]["quantum_svm"]) >= {"r2", "rmse", "mae"}
    assert report["metrics"]["classical_baseline"]["r2"] > 0.5  # a smooth target
    assert report["gates_other_models"]["vqc_beats_classical"]["message"].startswith("not applicable: ")
    assert report["gates_other_models"]["kernel_target_alignment"]["figures"]["task"] == "regression"
    assert "r2_per_seed" in report["gates"]["reproducibility"]["figures"]
    assert (evaluation["plots"] / "predicted_vs_actual.png").read_bytes().startswith(PNG)
    assert not (evaluation["plots"] / "confusion_matrix.png").exists()
