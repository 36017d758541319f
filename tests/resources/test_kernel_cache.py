"""Incremental kernel cache: incremental == full, invalidation, atomic files, no pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.kernel_engine import quantum_kernel

SPEC = FeatureMapSpec("iqp", 3, reps=2, entanglement="circular")


@pytest.fixture
def cache(tmp_path: Path) -> KernelCache:
    return KernelCache(tmp_path / "kernel_cache")


def _data(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, size=(n, 3))


@pytest.mark.parametrize("spec", [SPEC, FeatureMapSpec("angle", 3)], ids=["iqp", "angle"])
def test_incremental_rows_equals_full(cache: KernelCache, spec: FeatureMapSpec):
    X = _data(30)
    first = quantum_kernel(X[:24], spec=spec, cache=cache)
    assert first.stats.entries_from_cache == 0
    grown = quantum_kernel(X, spec=spec, cache=cache, block_size=7)
    full = quantum_kernel(X, spec=spec)
    np.testing.assert_allclose(grown.matrix, full.matrix, atol=1e-12)
    np.testing.assert_array_equal(grown.matrix, grown.matrix.T)
    assert grown.stats.entries_from_cache == 24 * 23
    assert grown.stats.entries_computed == 30 * 29 - 24 * 23
    assert grown.stats.states_simulated == 6  # old states come from the cache
    # A full cache hit computes nothing, in any row order.
    perm = np.random.default_rng(1).permutation(30)
    again = quantum_kernel(X[perm], spec=spec, cache=cache)
    assert again.stats.entries_computed == 0 and again.stats.states_simulated == 0
    np.testing.assert_allclose(again.matrix, full.matrix[np.ix_(perm, perm)], atol=1e-12)


def test_incremental_rectangular_and_from_square(cache: KernelCache):
    X, Y = _data(20), _data(8, seed=5)
    quantum_kernel(X, spec=SPEC, cache=cache)
    # Train x train entries from the square panel serve a rectangular request.
    sub = quantum_kernel(X[:5], X[10:], spec=SPEC, cache=cache)
    assert sub.stats.entries_computed == 0
    rect = quantum_kernel(Y[:6], X, spec=SPEC, cache=cache)
    grown = quantum_kernel(Y, X, spec=SPEC, cache=cache)
    assert grown.stats.entries_from_cache == 6 * 20
    np.testing.assert_allclose(grown.matrix, quantum_kernel(Y, X, spec=SPEC).matrix, atol=1e-12)
    # New columns only.
    X2 = np.vstack([X, _data(3, seed=9)])
    more = quantum_kernel(Y, X2, spec=SPEC, cache=cache)
    assert more.stats.entries_computed == 8 * 3
    np.testing.assert_allclose(more.matrix, quantum_kernel(Y, X2, spec=SPEC).matrix, atol=1e-12)
    # k(b, a) is served from k(a, b).
    flipped = quantum_kernel(X, Y, spec=SPEC, cache=cache)
    assert flipped.stats.entries_computed == 0
    np.testing.assert_allclose(flipped.matrix, rect.matrix.T if False else grown.matrix.T, atol=1e-12)


def test_cache_invalidates_on_spec_or_backend_change(cache: KernelCache):
    X = _data(10)
    quantum_kernel(X, spec=SPEC, cache=cache)
    assert quantum_kernel(X, spec=SPEC, cache=cache).stats.entries_computed == 0
    other_spec = FeatureMapSpec("iqp", 3, reps=3, entanglement="circular")
    assert quantum_kernel(X, spec=other_spec, cache=cache).stats.entries_from_cache == 0
    other_backend = BackendConfig(seed=1)
    assert quantum_kernel(X, spec=SPEC, backend=other_backend, cache=cache).stats.entries_from_cache == 0
    assert len(cache.namespaces()) == 3


def test_shot_path_cache_skips_executed_pairs(cache: KernelCache, priced_policy):
    X = _data(7)
    backend = BackendConfig(shots=200, seed=4)
    first = quantum_kernel(X[:5], spec=SPEC, backend=backend, cache=cache)
    assert first.stats.circuits_executed == 10
    with priced_policy.ledger(run_id="r", asset="k", backend=backend) as ledger:
        grown = quantum_kernel(X, spec=SPEC, backend=backend, cache=cache, ledger=ledger)
    # Only pairs involving the 2 new rows: 5*2 + 1.
    assert grown.stats.circuits_executed == ledger.tasks == 11 and ledger.shots == 2200
    np.testing.assert_array_equal(grown.matrix[:5, :5], first.matrix)
    np.testing.assert_array_equal(grown.matrix, grown.matrix.T)
    hit = quantum_kernel(X, spec=SPEC, backend=backend, cache=cache)
    assert hit.stats.circuits_executed == 0
    np.testing.assert_array_equal(hit.matrix, grown.matrix)
    # Exact entries are a different namespace: never mixed with shot estimates.
    assert quantum_kernel(X, spec=SPEC, cache=cache).stats.entries_from_cache == 0


def test_explicit_keys_and_files_are_plain(cache: KernelCache):
    X = _data(6)
    keys = [f"sample-{i}" for i in range(6)]
    quantum_kernel(X, spec=SPEC, cache=cache, x_keys=keys)
    # Same keys => served from the cache even though we pass other numbers (keys are the identity).
    hit = quantum_kernel(X + 0.0, spec=SPEC, cache=cache, x_keys=keys)
    assert hit.stats.entries_computed == 0
    files = [p for p in cache.root.rglob("*") if p.is_file()]
    assert files and all(p.suffix in {".npy", ".json"} for p in files)
    assert not any(p.name.endswith(".tmp") for p in files)
    for p in files:
        if p.suffix == ".npy":
            np.load(p, allow_pickle=False)
    with pytest.raises(ValueError):
        quantum_kernel(X, spec=SPEC, cache=cache, x_keys=keys[:3])


@pytest.mark.parametrize(
    "stored, request_keys, expected",
    [
        ("abc", "abcde", ([0, 1, 2], [0, 1, 2])),  # old rows first, new rows appended
        ("cde", "abcde", ([0, 1, 2], [2, 3, 4])),
        ("abcde", "bcd", ([1, 2, 3], [0, 1, 2])),  # request inside a stored run
        ("abc", "bcd", ([1, 2], [0, 1])),  # partial overlap
        ("dbxa", "abcd", ([0, 1, 3], [3, 1, 0])),  # scattered order
        ("xyz", "abc", ([], [])),
    ],
)
def test_match_finds_every_shared_key(stored: str, request_keys: str, expected: tuple[list[int], list[int]]):
    from hybrid_resources.quantum.kernel_cache import _match

    request = tuple(request_keys)
    src, dst, count = _match(tuple(stored), request, {k: i for i, k in enumerate(request)})
    assert count == len(expected[0])
    assert list(np.arange(len(stored))[src]) == expected[0]
    assert list(np.arange(len(request))[dst]) == expected[1]


def test_many_small_refreshes_are_compacted_and_stay_exact(cache: KernelCache):
    from hybrid_resources.quantum.kernel_cache import MAX_FILES_PER_REQUEST

    X = _data(60, seed=3)
    quantum_kernel(X[:30], spec=SPEC, cache=cache)
    for n in range(32, 61, 2):  # 15 refreshes of 2 new rows each
        grown = quantum_kernel(X[:n], spec=SPEC, cache=cache)
        assert grown.stats.entries_computed == n * (n - 1) - (n - 2) * (n - 3)
        assert grown.stats.states_simulated == 2
        (ns,) = cache.namespaces()
        assert len(list((cache.root / ns / "panels").glob("*.json"))) <= MAX_FILES_PER_REQUEST + 2
        assert len(list((cache.root / ns / "states").glob("*.json"))) <= MAX_FILES_PER_REQUEST + 2
    np.testing.assert_allclose(grown.matrix, quantum_kernel(X, spec=SPEC).matrix, atol=1e-12)
    np.testing.assert_array_equal(grown.matrix, grown.matrix.T)
    # The rectangular (test x train) kernel is compacted the same way.
    Y = _data(20, seed=4)
    for m in range(2, 21, 2):
        rect = quantum_kernel(Y[:m], X, spec=SPEC, cache=cache)
        assert rect.stats.entries_computed == 2 * 60
    # square base + train strip + at most MAX_FILES_PER_REQUEST test panels
    assert len(list((cache.root / ns / "panels").glob("*.json"))) <= MAX_FILES_PER_REQUEST + 3
    np.testing.assert_allclose(rect.matrix, quantum_kernel(Y, X, spec=SPEC).matrix, atol=1e-12)
    assert quantum_kernel(Y, X, spec=SPEC, cache=cache).stats.entries_computed == 0
    assert quantum_kernel(X, spec=SPEC, cache=cache).stats.entries_computed == 0


def test_a_panel_deleted_while_listed_is_skipped_and_recomputed(cache: KernelCache):
    X = _data(12, seed=6)
    quantum_kernel(X, spec=SPEC, cache=cache)
    (ns,) = cache.namespaces()
    for npy in (cache.root / ns / "panels").glob("*.npy"):
        npy.unlink()  # a compaction elsewhere removed it after this reader listed its json
    again = quantum_kernel(X, spec=SPEC, cache=cache)
    assert again.stats.entries_computed == 12 * 11 and again.stats.entries_from_cache == 0
    np.testing.assert_allclose(again.matrix, quantum_kernel(X, spec=SPEC).matrix, atol=1e-12)


def _refresh_many(root: str, seed: int) -> list[float]:
    """One worker process: 25 growing requests on a shared cache; returns each result's max |diff| vs full."""
    X = _data(40, seed=11)
    order = np.random.default_rng(seed).permutation(40)  # each worker grows the data in its own order
    diffs = []
    for n in range(16, 41):
        rows = X[np.sort(order[:n])]
        got = quantum_kernel(rows, spec=SPEC, cache=KernelCache(Path(root)))
        diffs.append(float(np.abs(got.matrix - quantum_kernel(rows, spec=SPEC).matrix).max()))
    return diffs


def test_concurrent_processes_refreshing_and_compacting_one_cache_stay_exact(tmp_path: Path):
    import multiprocessing

    root = tmp_path / "kernel_cache"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_refresh_many, [(str(root), 1), (str(root), 2)])
    assert all(diff <= 1e-12 for diffs in results for diff in diffs)
    assert not list(root.rglob("*.tmp")) and not list(root.rglob(".*.tmp"))
    X = _data(40, seed=11)
    final = quantum_kernel(X, spec=SPEC, cache=KernelCache(root))
    assert final.stats.entries_computed == 0  # both workers' entries ended up served by the cache
    np.testing.assert_allclose(final.matrix, quantum_kernel(X, spec=SPEC).matrix, atol=1e-12)
