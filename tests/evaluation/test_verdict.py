"""Honest verdicts: both sides tuned by one protocol, an interval over repeated splits, diagnostics,
and a shot planner, checked on data where the right answer is known."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pennylane as qml
import pytest

from hybrid_assets.evaluation.gates import geometric_difference_gate, verdict_gate
from hybrid_assets.evaluation.verdict import (
    compare,
    corrected_interval,
    judge,
    narrow_enough,
    repeated_splits,
)
from hybrid_assets.training.models import classical_decision, fit_classical
from hybrid_assets.training.scale import stratified_sample
from hybrid_assets.training.tuning import (
    UNTUNED_CLASSICAL,
    classical_score,
    kfold_splits,
    quantum_score,
    tune_classical,
)
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_diagnostics import (
    concentration,
    emulate_shots,
    geometric_difference,
    target_alignment,
)
from hybrid_resources.quantum.kernel_engine import quantum_kernel

SPEC = FeatureMapSpec("iqp", 4, reps=2, entanglement="full")


def verdict_of(X, y, quantum_kernel_matrix, C=10.0):
    """The tuned classical suite against a kernel SVM, on 5 x 5 repeated splits (the asset's protocol)."""
    best = tune_classical(X, y, kfold_splits(y, folds=5, seed=0), metric="accuracy")[0]
    return compare(quantum_score(quantum_kernel_matrix, y, C, "accuracy"),
                   classical_score(best.model, best.params, X, y, "accuracy", 0),
                   repeated_splits(y, repeats=5, folds=5, seed=0), metric="accuracy", min_margin=0.0)


def test_labels_from_the_quantum_kernel_itself_give_a_quantum_win():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, np.pi, size=(240, 4))
    # The sign of a random function in the quantum kernel's feature space, kept away from its boundary.
    f = quantum_kernel(X, rng.uniform(0, np.pi, size=(20, 4)), spec=SPEC).matrix @ rng.normal(size=20)
    f -= np.median(f)
    keep = np.abs(f) > 0.2 * f.std()
    X, y = X[keep], (f[keep] > 0).astype(int)
    verdict = verdict_of(X, y, quantum_kernel(X, spec=SPEC).matrix)
    assert verdict.outcome == "won" and verdict.low > 0, verdict.message()
    gate = verdict_gate(verdict, holdout={"quantum_svm": {"accuracy": 0.9}, "classical_baseline": {"accuracy": 0.6}})
    assert gate.passed and gate.message.startswith("quantum_svm vs the tuned classical baseline on accuracy: won by +")
    assert "95% CI [+" in gate.message and "over 25 splits" in gate.message


def test_a_kernel_near_the_identity_loses_to_the_tuned_baseline():
    rng = np.random.default_rng(2)
    y = np.arange(160) % 2
    X = np.clip(rng.normal(size=(160, 4)) * 0.4 + np.where(y[:, None] == 1, 2.2, 0.9), 0, np.pi)  # RBF separates
    wide = FeatureMapSpec("iqp", 4, reps=3, entanglement="full", bandwidth=20.0)
    kernel = quantum_kernel(X, spec=wide).matrix
    assert np.mean(kernel[~np.eye(len(X), dtype=bool)]) < 0.1  # nearly orthogonal states: nearly the identity
    verdict = verdict_of(X, y, kernel)
    assert verdict.outcome == "lost" and verdict.high < 0, verdict.message()
    assert "lost by" in verdict.message() and not verdict_gate(verdict, holdout={
        "quantum_svm": {"accuracy": 0.5}, "classical_baseline": {"accuracy": 0.95}}).passed


def test_pure_label_noise_is_inconclusive():
    rng = np.random.default_rng(3)
    X = rng.uniform(0, np.pi, size=(200, 4))
    y = rng.integers(0, 2, size=200)
    verdict = verdict_of(X, y, quantum_kernel(X, spec=FeatureMapSpec("iqp", 4, reps=1, bandwidth=0.3)).matrix)
    assert verdict.outcome == "inconclusive" and verdict.low < 0 < verdict.high, verdict.message()
    assert "inconclusive" in verdict.message()


def test_tuning_never_does_worse_than_the_untuned_default_on_the_same_folds():
    rng = np.random.default_rng(4)
    X = rng.uniform(0, np.pi, size=(150, 3))
    y = (np.sin(2 * X[:, 0]) + 0.3 * rng.normal(size=150) > 0).astype(int)
    splits = kfold_splits(y, folds=5, seed=0)
    ranked = tune_classical(X, y, splits, metric="accuracy")
    untuned = next(c for c in ranked if (c.model, c.params) == UNTUNED_CLASSICAL)
    assert ranked[0].cv_mean >= untuned.cv_mean
    assert ranked[0].cv_mean > untuned.cv_mean  # here the default RBF is not the best candidate
    assert {c.model for c in ranked} == {"rbf_svm", "logistic_regression", "gradient_boosting"}


def test_the_corrected_interval_widens_the_plain_one_by_the_train_overlap():
    d = np.array([0.02, 0.04, 0.01, 0.03, 0.05, 0.00, 0.02, 0.03])
    mean, std, low, high = corrected_interval(d, test_to_train=0.25)
    assert mean == pytest.approx(d.mean())
    assert std == pytest.approx(math.sqrt((1 / 8 + 0.25) * d.var(ddof=1)))
    half = 2.3646242510102993 * std  # t(0.975, 7)
    assert (low, high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    naive = math.sqrt(d.var(ddof=1) / 8)
    assert std > naive  # the splits share training rows: the naive std is too small
    assert judge([0.9] * 8, [0.9 - x for x in d], metric="accuracy", min_margin=0.0, test_to_train=0.25).outcome == "won"


def test_geometric_difference_equals_a_hand_computation_on_3x3():
    classical = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # K_Q = I: g^2 = ||K_C^-1||_2 = 1 / (smallest eigenvalue of K_C = 0.5) = 2.
    assert geometric_difference(classical, np.eye(3)) == pytest.approx(math.sqrt(2.0))
    # Both traces are 3, so nothing is rescaled; K_Q = diag(1.5, 1.5, 0): g^2 = ||sqrt(K_Q) K_C^-1 sqrt(K_Q)||_2.
    quantum = np.diag([1.5, 1.5, 0.0])
    inverse = np.linalg.inv(classical)
    expected = math.sqrt(np.linalg.norm(np.sqrt(quantum) @ inverse @ np.sqrt(quantum), ord=2))
    assert geometric_difference(classical, quantum) == pytest.approx(expected)
    assert expected == pytest.approx(math.sqrt(1.5 * 4 / 3 + 1.5 * 2 / 3))  # eigenvalues of the 2x2 block: 3 and 1
    gate = geometric_difference_gate(classical, quantum, ratio=1.0)
    assert not gate.passed and "no room for an advantage" in gate.message
    assert gate.figures["sqrt_n"] == pytest.approx(math.sqrt(3))


def test_target_alignment_equals_pennylane_on_a_precomputed_kernel():
    rng = np.random.default_rng(5)
    X = rng.uniform(0, np.pi, size=(9, 2))
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1])
    spec = FeatureMapSpec("angle", 2)
    kernel = quantum_kernel(X, spec=spec).matrix
    index = {tuple(x): i for i, x in enumerate(X)}
    expected = qml.kernels.target_alignment(X, np.where(labels > 0, 1, -1),
                                            lambda a, b: kernel[index[tuple(a)], index[tuple(b)]])
    assert target_alignment(kernel, labels) == pytest.approx(float(expected), rel=1e-12)


def test_emulated_shots_have_the_binomial_standard_deviation():
    rng = np.random.default_rng(6)
    p = np.array([[0.05, 0.3, 0.5, 0.9]])
    for shots in (100, 1000, 10000):
        draws = np.stack([emulate_shots(p, shots, rng, symmetric=False)[0] for _ in range(4000)])
        expected = np.sqrt(p[0] * (1 - p[0]) / shots)
        assert np.all(np.abs(draws.std(axis=0) / expected - 1) < 0.2), (shots, draws.std(axis=0), expected)
        assert np.all(np.abs(draws.mean(axis=0) - p[0]) < 4 * expected / np.sqrt(4000))
    square = emulate_shots(np.full((5, 5), 0.4) + 0.6 * np.eye(5), 50, rng, symmetric=True)
    assert np.array_equal(square, square.T) and np.all(np.diag(square) == 1.0)


def test_concentration_compares_the_spread_with_the_shot_noise():
    spread = np.array([[1.0, 0.2, 0.8], [0.2, 1.0, 0.5], [0.8, 0.5, 1.0]])
    wide = concentration(spread, shots=1000)
    assert wide.resolvable and wide.variance == pytest.approx(np.var([0.2, 0.8, 0.5, 0.2, 0.8, 0.5]))
    flat = concentration(np.full((4, 4), 0.5) + 1e-4 * np.random.default_rng(7).normal(size=(4, 4)), shots=1000)
    assert not flat.resolvable and flat.shots_to_resolve > 1000


def test_gradient_boosting_kept_as_arrays_decides_like_scikit_learn():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(8)
    X = rng.uniform(0, np.pi, size=(300, 5))
    y = ((X[:, 0] + np.sin(2 * X[:, 1])) > 2).astype(int)
    params = {"learning_rate": 0.1, "max_leaf_nodes": 15}
    reference = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0, **params).fit(X, y)
    stored = fit_classical("gradient_boosting", params, X, y)
    X_new = rng.uniform(0, np.pi, size=(100, 5))
    np.testing.assert_allclose(classical_decision("gradient_boosting", stored, X_new),
                               reference.decision_function(X_new), atol=1e-10)
    assert all(array.dtype != object for array in stored.values())


def test_a_small_boosting_fit_runs_on_one_openmp_thread_and_gives_the_others_back(monkeypatch):
    """The fit caps scikit-learn's OpenMP at one thread through one ThreadpoolController, taken
    after scikit-learn loaded its OpenMP (else the cap would reach nothing), and restores it."""
    import sklearn.ensemble._hist_gradient_boosting.gradient_boosting as boosting

    from hybrid_assets.training.models import thread_pools

    seen = []
    original_fit = boosting.BaseHistGradientBoosting.fit

    def spying_fit(self, X, y, *args, **kwargs):
        seen.append(threads())
        return original_fit(self, X, y, *args, **kwargs)

    threads = lambda: [pool["num_threads"] for pool in thread_pools().select(user_api="openmp").info()]  # noqa: E731
    rng = np.random.default_rng(8)
    X, y = rng.uniform(0, np.pi, size=(60, 3)), rng.integers(0, 2, 60)
    before = threads()
    monkeypatch.setattr(boosting.BaseHistGradientBoosting, "fit", spying_fit)
    fit_classical("gradient_boosting", {"learning_rate": 0.1, "max_leaf_nodes": 7}, X, y)
    assert thread_pools() is thread_pools()
    assert before and seen == [[1] * len(before)]  # scikit-learn's OpenMP is among those capped
    assert threads() == before


def test_gradient_boosting_folds_are_fitted_one_after_another_with_the_scores_of_the_loop(monkeypatch):
    """Gradient boosting holds the GIL while it grows trees: its folds are fitted on the calling
    thread; the other kinds side by side. Either way the scores are those of a plain loop."""
    import threading

    import hybrid_assets.training.tuning as tuning

    rng = np.random.default_rng(4)
    X, y = rng.uniform(0, np.pi, size=(80, 3)), rng.integers(0, 2, 80)
    splits = kfold_splits(y, folds=4, seed=0)
    fitted_on, fit = [], tuning.fit_classical

    def recording_fit(kind, *args, **kwargs):
        fitted_on.append((kind, threading.get_ident()))
        return fit(kind, *args, **kwargs)

    monkeypatch.setattr(tuning, "fit_classical", recording_fit)
    side_by_side = tune_classical(X, y, splits, metric="accuracy")
    assert {thread for kind, thread in fitted_on if kind == "gradient_boosting"} == {threading.get_ident()}
    assert len(fitted_on) == 4 * sum(len(grid) for grid in tuning.CLASSICAL_GRID.values())
    monkeypatch.setattr(tuning, "map_fits", lambda fit_one, items, **_: [fit_one(item) for item in items])
    assert tune_classical(X, y, splits, metric="accuracy") == side_by_side


def test_geometric_difference_by_lanczos_equals_the_definition_on_a_larger_kernel():
    """Above the dense size the top eigenvalue comes from Lanczos on L^-1 K_Q L^-T: the same g as
    square roots, a solve and a 2-norm, on kernels of real data."""
    rng = np.random.default_rng(3)
    X = rng.uniform(0, np.pi, size=(150, 4))
    classical = np.exp(-0.5 * ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    quantum = quantum_kernel(X, spec=SPEC).matrix
    scale = lambda k: k * (len(k) / np.trace(k))  # noqa: E731
    k_c, k_q = scale(classical), scale(quantum)
    values, vectors = np.linalg.eigh(k_q)
    root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    regularization = 1e-6 * len(X)
    inner = root @ np.linalg.solve(k_c + regularization * np.eye(len(X)), root)
    expected = math.sqrt(np.linalg.norm((inner + inner.T) / 2, ord=2))
    assert geometric_difference(classical, quantum, regularization=regularization) == pytest.approx(expected, rel=1e-9)


def test_an_adaptive_verdict_stops_at_the_fewest_rows_whose_interval_is_narrow_enough():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, np.pi, size=(1600, 4))
    y = (np.sin(X[:, 0]) + 0.3 * rng.normal(size=1600) > 0.6).astype(int)
    kernel = quantum_kernel(X, spec=replace(SPEC, reps=1, bandwidth=0.3)).matrix

    def verdict_on(rows):
        return compare(quantum_score(kernel[np.ix_(rows, rows)], y[rows], 10.0, "accuracy"),
                       classical_score("logistic_regression", {"C": 1.0}, X[rows], y[rows], "accuracy", 0),
                       repeated_splits(y[rows], repeats=5, folds=5, seed=0), metric="accuracy", min_margin=0.0)

    whole = verdict_on(np.arange(len(y)))
    target = 2.0 * (whole.high - whole.low)  # reachable with fewer rows than all of them
    verdict, note = narrow_enough(verdict_on, y, width=target, seed=0, min_rows=200)
    assert note["ci_width"] == pytest.approx(verdict.high - verdict.low) and note["ci_width"] <= target
    assert note["sampled"] and 200 <= note["rows"] < len(y) and note["of"] == len(y)
    assert [t["rows"] for t in note["tried"]] == sorted({t["rows"] for t in note["tried"]})  # grows, never repeats
    assert all(t["ci_width"] > target for t in note["tried"][:-1])  # each smaller sample was too wide
    rows = stratified_sample(y, note["rows"], seed=0)  # the stated sample reproduces the verdict
    assert verdict_on(rows).differences == verdict.differences
    # A width no sample reaches: every row, stated as such.
    verdict, note = narrow_enough(verdict_on, y, width=1e-6, seed=0, min_rows=200)
    assert note["rows"] == len(y) and not note["sampled"] and verdict.differences == whole.differences
