"""Kernel engine: exact == PennyLane pairwise kernels, shot path, cost hook, retries, Braket."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest

from hybrid_resources.cost_policy import SubmissionRefused
from hybrid_resources.quantum.backends import (
    BackendConfig,
    BackendUnavailableError,
    TransientBackendError,
    call_with_retries,
    make_device,
)
from hybrid_resources.quantum.feature_maps import (
    ENTANGLEMENTS,
    FeatureMapSpec,
    apply_feature_map,
)
from hybrid_resources.quantum.kernel_engine import planned_circuits, quantum_kernel
from tests.devices import DeviceBoundary

SPECS = [FeatureMapSpec("angle", 3)] + [FeatureMapSpec("iqp", 3, reps=2, entanglement=e) for e in ENTANGLEMENTS]


def _pairwise_kernel(spec: FeatureMapSpec):
    """PennyLane's own compute-uncompute kernel on default.qubit (the reference)."""
    n = spec.n_qubits
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev)
    def circuit(a, b):
        apply_feature_map(spec, a, range(n))
        qml.adjoint(apply_feature_map)(spec, b, range(n))
        return qml.probs(wires=range(n))

    return lambda a, b: circuit(a, b)[0]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.name}-{s.entanglement}")
def test_exact_matches_pennylane_square_and_rect(spec: FeatureMapSpec):
    rng = np.random.default_rng(3)
    X = rng.uniform(-np.pi, np.pi, size=(6, spec.n_qubits))
    Y = rng.uniform(-np.pi, np.pi, size=(4, spec.n_qubits))
    k = _pairwise_kernel(spec)
    square = quantum_kernel(X, spec=spec)
    np.testing.assert_allclose(square.matrix, qml.kernels.square_kernel_matrix(X, k), atol=1e-10)
    rect = quantum_kernel(X, Y, spec=spec, block_size=3)  # several blocks, ragged edges
    np.testing.assert_allclose(rect.matrix, qml.kernels.kernel_matrix(X, Y, k), atol=1e-10)
    assert rect.matrix.shape == (6, 4) and rect.matrix.dtype == np.float64
    assert square.stats.method == "statevector" and square.stats.circuits_executed == 0


@pytest.mark.parametrize("name", ["angle", "iqp"])
def test_exact_properties_and_blocking(name: str):
    spec = FeatureMapSpec(name, 4, reps=2, entanglement="full")
    X = np.random.default_rng(5).normal(size=(37, 4)) * 2
    K = quantum_kernel(X, spec=spec).matrix
    np.testing.assert_array_equal(np.diag(K), 1.0)
    np.testing.assert_array_equal(K, K.T)
    assert np.linalg.eigvalsh(K).min() > -1e-10
    assert K.min() >= 0 and K.max() <= 1 + 1e-12
    # Blocked symmetric computation (upper blocks mirrored) == one block.
    np.testing.assert_allclose(quantum_kernel(X, spec=spec, block_size=8).matrix, K, atol=1e-13)
    # lightning.qubit is also exact.
    assert BackendConfig("lightning.qubit").is_exact


def test_shot_kernel_close_to_exact_and_deterministic():
    spec = FeatureMapSpec("iqp", 3, reps=2, entanglement="linear")
    X = np.random.default_rng(7).uniform(-1, 1, size=(6, 3))
    exact = quantum_kernel(X, spec=spec).matrix
    shots = 4000
    backend = BackendConfig(shots=shots, seed=11, batch_size=4)
    res = quantum_kernel(X, spec=spec, backend=backend)
    K = res.matrix
    se = np.sqrt(np.clip(exact * (1 - exact), 1e-4, None) / shots)
    assert np.all(np.abs(K - exact) <= 5 * se + 1e-12)
    np.testing.assert_array_equal(np.diag(K), 1.0)
    np.testing.assert_array_equal(K, K.T)
    assert res.stats.method == "compute-uncompute"
    assert res.stats.circuits_executed == planned_circuits(6, None) == 15
    assert res.stats.shots_executed == 15 * shots
    # Same seed => same numbers, also when batches run on threads.
    again = quantum_kernel(X, spec=spec, backend=BackendConfig(shots=shots, seed=11, batch_size=4, max_parallel=3))
    np.testing.assert_array_equal(again.matrix, K)
    other = quantum_kernel(X, spec=spec, backend=BackendConfig(shots=shots, seed=12, batch_size=4))
    assert not np.array_equal(other.matrix, K)


def test_the_ledger_admits_the_plan_first_and_records_what_ran(monkeypatch: pytest.MonkeyPatch, priced_policy):
    counter = DeviceBoundary(monkeypatch)
    spec = FeatureMapSpec("angle", 2)
    X = np.random.default_rng(0).normal(size=(5, 2))
    Y = np.random.default_rng(1).normal(size=(3, 2))
    backend = BackendConfig(shots=100)
    tight = priced_policy.model_copy(update={"run_budget_usd": 1.0})
    for args, plan in (((X,), "10 tasks x 100 shots"), ((X, Y), "15 tasks x 100 shots")):
        with tight.ledger(run_id="refused", asset="k", backend=backend) as ledger:
            with pytest.raises(SubmissionRefused, match=plan):
                quantum_kernel(*args, spec=spec, backend=backend, ledger=ledger)
        assert ledger.tasks == 0
    assert counter.circuits == 0
    # Admitted: exactly the planned circuits run, and the ledger records each of them.
    with priced_policy.ledger(run_id="ok", asset="k", backend=backend) as ledger:
        res = quantum_kernel(X, spec=spec, backend=backend, ledger=ledger)
    assert counter.circuits == res.stats.circuits_executed == ledger.tasks == 10
    assert ledger.shots == 1000 and ledger.usd == pytest.approx(10 * (0.30 + 100 * 0.08))
    assert priced_policy.warehouse.spent_usd(run_id="ok") == pytest.approx(ledger.usd)
    # The exact path submits nothing: nothing to admit or record.
    with tight.ledger(run_id="exact", asset="k", backend=BackendConfig()) as ledger:
        quantum_kernel(X, spec=spec, ledger=ledger)
    assert counter.circuits == 10 and ledger.tasks == 0


def test_engine_retries_transient_device_error(monkeypatch: pytest.MonkeyPatch):
    counter = DeviceBoundary(monkeypatch, fail_first=1, error=TransientBackendError)
    spec = FeatureMapSpec("angle", 2)
    X = np.random.default_rng(0).normal(size=(3, 2))
    res = quantum_kernel(X, spec=spec, backend=BackendConfig(shots=50, backoff_s=0.0))
    assert res.stats.retries == 1 and res.stats.circuits_executed == 3 == counter.circuits


def test_engine_gives_up(monkeypatch: pytest.MonkeyPatch):
    DeviceBoundary(monkeypatch, fail_first=100, error=TransientBackendError)
    spec = FeatureMapSpec("angle", 2)
    X = np.random.default_rng(0).normal(size=(3, 2))
    with pytest.raises(BackendUnavailableError):
        quantum_kernel(X, spec=spec, backend=BackendConfig(shots=50, max_retries=2, backoff_s=0.0))


def test_call_with_retries_backoff_then_success():
    sleeps: list[float] = []
    attempts = {"n": 0}

    def flaky() -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise TransientBackendError("throttled")
        return "ok"

    assert call_with_retries(flaky, max_retries=3, backoff_s=0.5, seed=1, sleep=sleeps.append) == "ok"
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] < 1.0 and 1.0 <= sleeps[1] < 2.0  # exponential with jitter


def test_call_with_retries_gives_up_and_passes_through():
    sleeps: list[float] = []

    def always() -> None:
        raise ConnectionError("down")

    with pytest.raises(BackendUnavailableError, match="after 2 retries") as info:
        call_with_retries(always, max_retries=2, backoff_s=0.1, sleep=sleeps.append)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert len(sleeps) == 2

    def broken() -> None:
        raise ValueError("a bug, not a fault")

    with pytest.raises(ValueError):
        call_with_retries(broken, max_retries=5, backoff_s=0.1, sleep=sleeps.append)
    assert len(sleeps) == 2


def test_backend_config_contract():
    assert BackendConfig().is_exact
    assert not BackendConfig(shots=10).is_exact
    assert not BackendConfig("braket.local.qubit").is_exact
    key = BackendConfig(shots=10, seed=3, device_options=(("device_arn", "arn:x"),)).cache_key()
    assert key == {"device_name": "default.qubit", "shots": 10, "seed": 3, "device_options": {"device_arn": "arn:x"}}
    with pytest.raises(ValueError):
        BackendConfig(device_options=(("aws_secret_access_key", "x"),))
    dev = make_device(BackendConfig(), 2)
    assert dev.name == "default.qubit"


def test_braket_local_shots_small_matrix():
    spec = FeatureMapSpec("iqp", 2, reps=1)
    X = np.random.default_rng(2).uniform(-1, 1, size=(3, 2))
    exact = quantum_kernel(X, spec=spec).matrix
    res = quantum_kernel(X, spec=spec, backend=BackendConfig("braket.local.qubit", shots=100, batch_size=8))
    assert res.stats.method == "compute-uncompute" and res.stats.device_name == "braket.local.qubit"
    assert res.stats.circuits_executed == 3 and res.stats.shots_executed == 300
    np.testing.assert_array_equal(np.diag(res.matrix), 1.0)
    assert np.abs(res.matrix - exact).max() < 0.3  # 100 shots: se <= 0.05
