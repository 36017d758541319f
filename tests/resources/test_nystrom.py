"""Nyström features: exact at m = N, reproducible landmarks, the stored model, the streamed classifier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from hybrid_resources.data.artifacts import read_artifact, write_artifact
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.nystrom import (
    EngineKernel,
    NystromConfig,
    NystromModel,
    RbfKernel,
    choose_kernel_path,
    choose_landmarks,
    engine_totals,
    fit_nystrom,
    fit_ridge_blocks,
    landmark_columns,
    non_landmark_rows,
    nystrom_decision,
    nystrom_features,
    nystrom_map,
    nystrom_model,
    row_blocks,
)
from hybrid_resources.quantum.planning import route_requests


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated clusters in [0, pi]^4, labels 0/1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    centres = np.array([[0.7] * 4, [2.4] * 4])
    return np.clip(centres[y] + rng.normal(scale=0.35, size=(n, 4)), 0, np.pi), y


@pytest.mark.parametrize("name", ["iqp", "angle"])
@pytest.mark.parametrize("rule", ["kmeans++", "uniform"])
def test_features_give_back_the_exact_kernel_when_every_row_is_a_landmark(name, rule):
    X = np.random.default_rng(1).uniform(0, np.pi, size=(40, 4))
    kernel = EngineKernel(FeatureMapSpec(name, 4, bandwidth=0.5))
    model = fit_nystrom(X, (X[:, 0] > 1.5).astype(int), kernel, NystromConfig(m=40, rule=rule))
    phi = nystrom_features(model, X, kernel)
    assert sorted(model.landmark_indices.tolist()) == list(range(40))
    assert model.meta["clipped"] == 0 and model.meta["rank"] == 40
    np.testing.assert_allclose(phi @ phi.T, kernel(X), atol=1e-8, rtol=0)


def test_new_rows_need_only_their_landmark_entries_and_the_model_survives_storage(tmp_path):
    X, y = _blobs(120, seed=2)
    kernel = EngineKernel(FeatureMapSpec("iqp", 4, bandwidth=0.5))
    model = fit_nystrom(X, y, kernel, NystromConfig(m=25, seed=3, block_rows=50))
    # Features of the train rows from the full (symmetric) train kernel...
    phi_train = kernel(X)[:, model.landmark_indices] @ model.projection
    # ...equal the transform, which asks only for rows x landmarks.
    calls = len(kernel.stats)
    np.testing.assert_allclose(nystrom_features(model, X, kernel), phi_train,
                               atol=1e-12, rtol=0)
    assert (kernel.stats[calls].n_rows, kernel.stats[calls].n_cols) == (120, 25)

    path = write_artifact(tmp_path / "model", model.to_arrays())
    assert path.suffix == ".npz"
    loaded = NystromModel.from_arrays(read_artifact(tmp_path / "model"))  # np.load(allow_pickle=False)
    assert loaded.meta == model.meta and loaded.meta["rule"] == "kmeans++" and loaded.meta["seed"] == 3
    np.testing.assert_allclose(nystrom_decision(loaded, X, kernel, block_rows=7),
                               phi_train @ model.coef + model.intercept, atol=1e-12, rtol=0)


def test_a_model_from_stored_kernels_equals_the_one_fit_as_kernels_are_computed(tmp_path):
    X, y = _blobs(150, seed=12)
    kernel = EngineKernel(FeatureMapSpec("iqp", 4, bandwidth=0.5))
    config = NystromConfig(m=20, block_rows=40)
    fitted = fit_nystrom(X, y, kernel, config)
    landmarks = X[fitted.landmark_indices]
    np.save(tmp_path / "k_nm.npy", kernel(X, landmarks))
    k_nm = np.load(tmp_path / "k_nm.npy", mmap_mode="r")  # read block by block from disk
    stored = nystrom_model(kernel(landmarks), ((k_nm[rows], y[rows]) for rows in row_blocks(150, 32)),
                           landmarks=landmarks, indices=fitted.landmark_indices, config=config,
                           kernel=kernel.describe())
    np.testing.assert_allclose(stored.coef, fitted.coef, atol=1e-10)
    assert stored.meta == fitted.meta
    np.testing.assert_allclose(stored.decision(kernel(X[:10], landmarks)), nystrom_decision(fitted, X[:10], kernel),
                               atol=1e-10)


def _old_fit(X, y, kernel, config, indices):
    """The fit before K_nm's landmark rows were taken from K_mm: every train row against the landmarks."""
    landmarks = X[indices]
    blocks = ((kernel(X[rows], landmarks), y[rows]) for rows in row_blocks(len(X), config.block_rows))
    return nystrom_model(kernel(landmarks), blocks, landmarks=landmarks, indices=indices, config=config,
                         kernel=kernel.describe())


@pytest.mark.parametrize("kernel", [EngineKernel(FeatureMapSpec("iqp", 4, bandwidth=0.5)), RbfKernel(0.5)],
                         ids=["quantum", "rbf"])
@pytest.mark.parametrize("m, block_rows", [(20, 40), (150, 64), (60, 1000)])
def test_landmark_rows_of_k_nm_from_k_mm_give_the_model_of_every_row_computed(kernel, m, block_rows):
    rng = np.random.default_rng(12)
    X, X_new = rng.uniform(0, np.pi, size=(150, 4)), rng.uniform(0, np.pi, size=(30, 4))
    y = (X[:, 0] + X[:, 1] > np.pi).astype(int)
    config = NystromConfig(m=m, C=2.0, block_rows=block_rows)
    new = fit_nystrom(X, y, kernel, config)
    old = _old_fit(X, y, kernel, config, new.landmark_indices)
    assert new.meta == old.meta
    np.testing.assert_array_equal(new.projection, old.projection)
    np.testing.assert_allclose(new.coef, old.coef, atol=1e-10, rtol=0)
    assert new.intercept == pytest.approx(old.intercept, abs=1e-12)
    np.testing.assert_allclose(nystrom_decision(new, X_new, kernel), nystrom_decision(old, X_new, kernel),
                               atol=1e-9, rtol=0)
    np.testing.assert_allclose(new.decision(kernel(X, X[new.landmark_indices])),
                               old.decision(kernel(X, X[new.landmark_indices])), atol=1e-9, rtol=0)


def test_the_fit_asks_the_kernel_only_for_the_non_landmark_rows_and_runs_the_planned_circuits():
    X = np.random.default_rng(13).uniform(0, np.pi, size=(12, 2))
    y = (X[:, 0] > 1.5).astype(int)
    for m in (5, 12):
        shots = EngineKernel(FeatureMapSpec("angle", 2), backend=BackendConfig(shots=50))
        model = fit_nystrom(X, y, shots, NystromConfig(m=m, block_rows=64))
        # K_mm, then the other rows only: no request at all at m = N.
        assert [(s.n_rows, s.n_cols) for s in shots.stats] == [(m, m)] + ([(12 - m, m)] if m < 12 else [])
        # A shot device runs what the planner counts: m(m-1)/2, then (N-m) m.
        assert [s.circuits_executed for s in shots.stats] == route_requests("nystrom", 12, 0, m)
        assert engine_totals(shots.stats)["circuits_executed"] == m * (m - 1) // 2 + (12 - m) * m
        assert len(set(model.landmark_indices.tolist())) == m


def test_the_whole_k_nm_is_k_mm_at_the_landmarks_and_the_other_rows_elsewhere(tmp_path):
    X = np.random.default_rng(14).uniform(0, np.pi, size=(50, 3))
    kernel = RbfKernel(0.7)
    indices = np.array([31, 4, 17, 45, 0])
    others = non_landmark_rows(50, indices)
    assert others.dtype == np.int64 and len(others) == 45 and not set(others) & set(indices.tolist())
    assert np.all(np.diff(others) > 0)
    out = np.lib.format.open_memmap(tmp_path / "k_nm.npy", mode="w+", dtype=np.float64, shape=(50, 5))
    whole = landmark_columns(kernel(X[indices]), kernel(X[others], X[indices]), indices, out=out, block_rows=7)
    assert whole is out
    np.testing.assert_allclose(whole, kernel(X, X[indices]), atol=1e-12, rtol=0)
    np.testing.assert_array_equal(np.diag(whole[indices]), np.ones(5))


def test_landmark_choice_is_reproducible_for_a_seed_and_a_rule():
    X = np.random.default_rng(4).uniform(0, np.pi, size=(300, 4))
    for rule in ("kmeans++", "uniform"):
        first = choose_landmarks(X, 30, rule=rule, seed=5)
        assert first.dtype == np.int64 and len(np.unique(first)) == 30
        np.testing.assert_array_equal(first, choose_landmarks(X, 30, rule=rule, seed=5))
        assert not np.array_equal(np.sort(first), np.sort(choose_landmarks(X, 30, rule=rule, seed=6)))
    with pytest.raises(ValueError, match=r"kmeans\+\+.*uniform"):
        choose_landmarks(X, 30, rule="random")
    with pytest.raises(ValueError, match="m must be in"):
        choose_landmarks(X, 301)


def test_kmeans_plus_plus_covers_a_small_cluster_that_uniform_sampling_misses():
    rng = np.random.default_rng(7)
    X = np.vstack([rng.normal(0.5, 0.05, size=(990, 2)), rng.normal(2.5, 0.05, size=(10, 2))])
    far = [np.count_nonzero(X[choose_landmarks(X, 5, rule="kmeans++", seed=s), 0] > 1.5) for s in range(10)]
    assert min(far) >= 1  # the second landmark is drawn by squared distance: the far cluster wins


def test_small_and_negative_eigenvalues_are_dropped_and_counted():
    X = np.random.default_rng(8).uniform(0, np.pi, size=(6, 3))
    K = EngineKernel(FeatureMapSpec("angle", 3))(np.vstack([X, X[:2]]))  # two duplicate landmarks: rank 6
    projection, clipped = nystrom_map(K, eps=1e-10)
    assert clipped == 2 and projection.shape == (8, 6)
    noisy = K - 0.01 * np.eye(8)  # a shot estimate need not be PSD: two eigenvalues of -0.01
    projection, clipped = nystrom_map(noisy, eps=1e-10)
    assert clipped == 2 and np.all(np.isfinite(projection))
    with pytest.raises(ValueError, match="no positive eigenvalue"):
        nystrom_map(-np.eye(3))


def test_the_streamed_classifier_is_ridge_on_plus_minus_one_targets_whatever_the_blocks():
    rng = np.random.default_rng(9)
    phi, y = rng.normal(size=(500, 12)), rng.integers(0, 2, size=500)
    whole = fit_ridge_blocks([(phi, y)], C=2.0)
    streamed = fit_ridge_blocks(((phi[rows], y[rows]) for rows in row_blocks(500, 64)), C=2.0)
    reference = Ridge(alpha=0.5).fit(phi, np.where(y > 0, 1.0, -1.0))  # alpha = 1/C, intercept not penalised
    np.testing.assert_allclose(streamed[0], whole[0], atol=1e-10)
    np.testing.assert_allclose(streamed[0], reference.coef_, atol=1e-10)
    assert streamed[1] == pytest.approx(reference.intercept_, abs=1e-10)


def test_quantum_and_rbf_nystrom_classify_a_separable_set_and_use_the_kernel_cache(tmp_path):
    X, y = _blobs(400, seed=10)
    X_new, y_new = _blobs(200, seed=11)
    cache = KernelCache(tmp_path)
    spec = FeatureMapSpec("iqp", 4, bandwidth=0.5)
    config = NystromConfig(m=40, C=10.0, block_rows=128)
    quantum = EngineKernel(spec, cache=cache)
    model = fit_nystrom(X, y, quantum, config)
    assert np.mean((nystrom_decision(model, X_new, quantum) > 0) == y_new) >= 0.95
    rbf = RbfKernel(gamma=0.5)
    classical = fit_nystrom(X, y, rbf, config)
    assert classical.meta["kernel"] == {"kind": "rbf", "gamma": 0.5}
    assert np.mean((nystrom_decision(classical, X_new, rbf) > 0) == y_new) >= 0.95

    again = EngineKernel(spec, cache=cache)  # a re-run computes nothing: every entry is cached
    refit = fit_nystrom(X, y, again, config)
    totals = engine_totals(again.stats)
    # K_mm, then K_nm's 360 non-landmark rows only (the landmarks' rows are K_mm's).
    assert totals["entries_computed"] == 0 and totals["entries_from_cache"] == 40 * 39 + 360 * 40
    np.testing.assert_allclose(refit.coef, model.coef, atol=1e-12)


def test_the_path_is_exact_up_to_the_configured_train_size_and_says_why():
    assert choose_kernel_path(5000).path == "exact"
    auto = choose_kernel_path(5001)
    assert auto.path == "nystrom" and "5001" in auto.reason and "5000" in auto.reason
    assert choose_kernel_path(100, max_exact_train=50).path == "nystrom"
    forced = choose_kernel_path(10**6, mode="exact")
    assert forced.path == "exact" and forced.reason.startswith("configured")
    assert choose_kernel_path(10, mode="nystrom").path == "nystrom"
    with pytest.raises(ValueError, match="auto.*exact.*nystrom"):
        choose_kernel_path(10, mode="fast")
