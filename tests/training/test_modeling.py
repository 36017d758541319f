import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC

from hybrid_assets.common.reporting import code_block, comparison_table, heatmap_png
from hybrid_assets.training.models import (
    fit_precomputed_svm,
    fit_rbf_svm,
    precomputed_decision,
    rbf_decision,
)
from hybrid_assets.training.tasks import holdout_metric, holdout_metrics


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    y = np.arange(80) % 2
    X = rng.normal(size=(80, 3)) + 1.2 * y[:, None]
    return X[:60], y[:60], X[60:], y[60:]


def test_precomputed_svm_as_arrays_matches_sklearn(data):
    X_train, y_train, X_test, _ = data
    K_train, K_test = rbf_kernel(X_train, X_train, gamma=0.5), rbf_kernel(X_test, X_train, gamma=0.5)
    model = fit_precomputed_svm(K_train, y_train, C=2.0)
    reference = SVC(kernel="precomputed", C=2.0).fit(K_train, y_train)
    np.testing.assert_allclose(precomputed_decision(model, K_test), reference.decision_function(K_test), atol=1e-10)
    assert all(value.dtype != object for value in model.values())


def test_rbf_svm_as_arrays_matches_sklearn(data):
    X_train, y_train, X_test, _ = data
    model = fit_rbf_svm(X_train, y_train, C=1.0)
    reference = SVC(kernel="rbf", C=1.0, gamma="scale").fit(X_train, y_train)
    np.testing.assert_allclose(rbf_decision(model, X_test), reference.decision_function(X_test), atol=1e-10)


def test_metrics_follow_the_decision_sign():
    y = np.array([0, 0, 1, 1])
    perfect = holdout_metrics(y, np.array([-2.0, -1.0, 1.0, 2.0]))
    assert perfect == {"accuracy": 1.0, "f1": 1.0, "balanced_accuracy": 1.0, "roc_auc": 1.0}
    inverted = holdout_metrics(y, np.array([2.0, 1.0, -1.0, -2.0]))
    assert inverted["accuracy"] == 0.0 and inverted["roc_auc"] == 0.0


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_one_metric_alone_is_the_same_figure_as_among_all(task):
    rng = np.random.default_rng(3)
    if task == "regression":
        y, decision = rng.normal(size=12), rng.normal(size=12)
    elif task == "multiclass":
        y, decision = np.arange(12) % 3, rng.normal(size=(12, 3))
    else:
        y, decision = np.arange(12) % 2, rng.normal(size=12)
    every = holdout_metrics(y, decision, task=task)
    assert every and all(holdout_metric(y, decision, name, task=task) == value for name, value in every.items())
    with pytest.raises(KeyError):
        holdout_metric(y, decision, "no_such_metric", task=task)


def test_comparison_table_lists_every_model_and_metric():
    table = comparison_table({"q": {"accuracy": 0.5, "f1": 0.25}, "c": {"accuracy": 1.0, "f1": 1.0}}, ["accuracy", "f1"])
    lines = table.splitlines()
    assert lines[0] == "| model | accuracy | f1 |"
    assert "| q | 0.5000 | 0.2500 |" in lines and "| c | 1.0000 | 1.0000 |" in lines


def test_heatmap_is_a_large_png_of_any_kernel():
    labels = np.array([1, 0, 1, 0, 0])
    png = heatmap_png(np.eye(5), labels, ["benign", "malignant"], "eye")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = (int.from_bytes(png[16 + 4 * i:20 + 4 * i], "big") for i in range(2))  # the IHDR chunk
    assert (width, height) == (800, 680)
    # A constant kernel (no spread to scale colours by) and a single class still draw.
    assert heatmap_png(np.ones((3, 3)), np.zeros(3, dtype=int), ["a", "b"], "flat")[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_code_block_is_cut_with_a_note_of_what_was_left_out():
    text = "\n".join(f"line {i}" for i in range(10))
    assert code_block(text, "qasm") == "```qasm\n" + text + "\n```"
    cut = code_block(text, "qasm", max_lines=3, whole="/tmp/circuit.qasm")
    assert cut.startswith("```qasm\nline 0\nline 1\nline 2\n```") and "line 3" not in cut
    assert cut.endswith("7 more lines in `/tmp/circuit.qasm`")


def test_fold_blocks_are_each_splits_kernel_blocks_in_reused_buffers():
    from hybrid_assets.training.tuning import cross_validate_Cs, fold_blocks, kernel_block, kfold_splits, quantum_score

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(203, 4)), rng.integers(0, 3, 203)  # folds of unequal sizes, three classes
    kernel = rbf_kernel(X, gamma=0.3)
    splits = kfold_splits(y, folds=5, seed=2)
    seen = []
    for (train, test), (train_block, test_block) in zip(splits, fold_blocks(kernel, splits), strict=True):
        assert np.array_equal(train_block, kernel_block(kernel, train, train))
        assert np.array_equal(test_block, kernel_block(kernel, test, train))
        assert train_block.flags["C_CONTIGUOUS"] and test_block.flags["C_CONTIGUOUS"]
        seen.append(train_block.__array_interface__["data"][0])
    assert len(set(seen)) == 1  # one buffer, refilled for every split
    # The scores are those of a fresh pair of blocks per fit.
    scores = cross_validate_Cs(kernel, y, splits, [0.5, 4.0], "accuracy")
    for C in (0.5, 4.0):
        assert scores[C] == [quantum_score(kernel, y, C, "accuracy")(*split) for split in splits]
    with pytest.raises(IndexError, match="outside the 203-row kernel"):
        next(fold_blocks(kernel, [(np.arange(10), np.array([203]))]))
