"""Shot emulation: kernel entries drawn as Binomial(shots, p) / shots instead of running circuits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.kernel_engine import quantum_kernel

SPEC = FeatureMapSpec("angle", 2)


def _emulated(shots: int, seed: int = 0, device: str = "default.qubit") -> BackendConfig:
    return BackendConfig(device_name=device, shots=shots, seed=seed, shot_emulation=True)


class RecordingLedger:
    """Implements the SubmissionLedger protocol and remembers every call."""

    def __init__(self):
        self.calls = []

    def admit(self, circuits, shots_per_circuit, **sizing):
        self.calls.append(("admit", circuits, shots_per_circuit))

    def watch(self, device):
        self.calls.append(("watch", device))

    def failed(self, error):
        self.calls.append(("failed", error))


def test_emulation_is_seeded_symmetric_with_a_unit_diagonal_and_sends_nothing():
    X = np.random.default_rng(0).uniform(0, np.pi, size=(30, 2))
    ledger = RecordingLedger()
    first = quantum_kernel(X, spec=SPEC, backend=_emulated(1000, seed=3), ledger=ledger)
    again = quantum_kernel(X, spec=SPEC, backend=_emulated(1000, seed=3))
    other = quantum_kernel(X, spec=SPEC, backend=_emulated(1000, seed=4))
    exact = quantum_kernel(X, spec=SPEC).matrix
    K = first.matrix
    np.testing.assert_array_equal(K, again.matrix)
    assert not np.array_equal(K, other.matrix)
    assert np.array_equal(K, K.T) and np.all(np.diag(K) == 1.0)
    off = ~np.eye(30, dtype=bool)
    assert not np.allclose(K[off], exact[off]) and np.all(np.abs(K - exact) < 0.1)
    assert np.array_equal(np.round(K * 1000), K * 1000)  # whole counts out of 1000 shots
    s = first.stats
    assert (s.method, s.circuits_executed, s.shots_executed) == ("shot-emulation", 0, 0)
    assert s.shots_emulated == 30 * 29 // 2 * 1000 and ledger.calls == []

    rect = quantum_kernel(X[:5], X, spec=SPEC, backend=_emulated(1000, seed=3))
    assert rect.matrix.shape == (5, 30) and rect.stats.shots_emulated == 5 * 30 * 1000
    assert not np.array_equal(rect.matrix, K[:5])  # another request on other inputs draws anew


@pytest.mark.parametrize("device, shots", [("braket.local.qubit", 100), ("default.qubit", None),
                                           ("lightning.qubit", None), ("default.mixed", 100)])
def test_emulation_is_refused_where_circuits_must_run(device, shots):
    with pytest.raises(ValueError, match="shot_emulation needs shots on a noiseless simulator"):
        BackendConfig(device_name=device, shots=shots, shot_emulation=True)


def test_emulated_results_live_in_their_own_cache_namespace():
    assert "shot_emulation" not in BackendConfig(shots=100).cache_key()
    assert _emulated(100).cache_key() == {**BackendConfig(shots=100).cache_key(), "shot_emulation": True}
    assert _emulated(100, device="lightning.qubit").cache_key()["shot_emulation"] is True


def test_the_mean_over_seeds_converges_to_the_exact_entry():
    X = np.random.default_rng(1).uniform(0, np.pi, size=(5, 2))
    exact = quantum_kernel(X, spec=SPEC).matrix
    draws = np.stack([quantum_kernel(X, spec=SPEC, backend=_emulated(100, seed=s)).matrix for s in range(400)])
    sd = np.sqrt(exact * (1 - exact) / 100)
    assert np.all(np.abs(draws.mean(axis=0) - exact) <= 4 * sd / np.sqrt(400) + 1e-12)
    np.testing.assert_allclose(draws.std(axis=0)[sd > 0.01], sd[sd > 0.01], rtol=0.2)


def test_counts_of_one_pair_follow_the_binomial_distribution():
    a, b = np.array([[0.4, 1.9]]), np.array([[1.3, 0.8]])
    p = float(quantum_kernel(a, b, spec=SPEC).matrix[0, 0])
    # 50 copies of a against 40 copies of b: 2,000 independent draws of the same entry.
    counts = quantum_kernel(np.repeat(a, 50, axis=0), np.repeat(b, 40, axis=0), spec=SPEC,
                            backend=_emulated(1000, seed=11)).matrix.ravel() * 1000
    # Ten bins of equal Binomial(1000, p) probability.
    edges = np.unique(stats.binom.ppf(np.linspace(0, 1, 11)[1:-1], 1000, p))
    observed = np.bincount(np.searchsorted(edges, np.round(counts), side="left"), minlength=len(edges) + 1)
    cdf = stats.binom.cdf(edges, 1000, p)
    expected = np.diff(np.concatenate([[0.0], cdf, [1.0]])) * counts.size
    assert stats.chisquare(observed, expected).pvalue > 0.01


def test_emulated_and_circuit_estimates_have_the_same_standardised_residuals():
    X = np.random.default_rng(12).uniform(0, 1.6, size=(16, 2))
    exact = quantum_kernel(X, spec=SPEC).matrix
    circuits = quantum_kernel(X, spec=SPEC, backend=BackendConfig(shots=1000, seed=5))
    assert circuits.stats.circuits_executed == 120  # the real compute-uncompute path ran
    emulated = [quantum_kernel(X, spec=SPEC, backend=_emulated(1000, seed=s)).matrix for s in range(4)]
    upper = np.triu_indices(16, 1)
    p = exact[upper]
    usable = 1000 * p * (1 - p) >= 5  # where the binomial is close enough to normal

    def residuals(K: np.ndarray) -> np.ndarray:
        return ((K[upper] - p) / np.sqrt(p * (1 - p) / 1000))[usable]

    from_circuits = residuals(circuits.matrix)
    from_emulation = np.concatenate([residuals(K) for K in emulated])
    assert from_circuits.size >= 60
    for z in (from_circuits, from_emulation):
        assert stats.kstest(z, "norm").pvalue > 0.01
        assert 0.005 < stats.chi2.sf(np.sum(z**2), z.size) < 0.995
    assert stats.ks_2samp(from_circuits, from_emulation).pvalue > 0.01


def test_a_cached_refresh_keeps_earlier_draws_and_draws_only_the_new_entries(tmp_path):
    X = np.random.default_rng(13).uniform(0, np.pi, size=(9, 2))
    cache, backend = KernelCache(tmp_path), _emulated(500, seed=2)
    head = quantum_kernel(X[:6], spec=SPEC, backend=backend, cache=cache).matrix
    tail = quantum_kernel(X[3:], spec=SPEC, backend=backend, cache=cache).matrix
    # The gaps (rows 0-2 x cols 6-8) are covered by one rectangle that also spans cached entries.
    grown = quantum_kernel(X, spec=SPEC, backend=backend, cache=cache)
    K, exact = grown.matrix, quantum_kernel(X, spec=SPEC).matrix
    np.testing.assert_array_equal(K[:6, :6], head)
    np.testing.assert_array_equal(K[3:, 3:], tail)
    assert np.array_equal(K, K.T) and np.all(np.diag(K) == 1.0)
    new = K[:3, 6:]
    assert not np.allclose(new, exact[:3, 6:]) and np.array_equal(np.round(new * 500), new * 500)
    assert grown.stats.shots_emulated == 9 * 500
