"""The projected quantum kernel: exact path against a hand computation, shot path against exact,
planned circuits, the circuits reaching the device and the ledger, gamma tuning."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.projected_kernel import (
    ProjectedKernelSpec,
    exact_bloch_vectors,
    kernel_version,
    planned_circuits,
    projected_kernel,
    projected_train_test,
    tune_gamma,
)
from tests.devices import DeviceBoundary

I2 = np.eye(2)
H = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2.0)


def _rz(t: float) -> np.ndarray:
    return np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)])


def _iqp_state_by_hand(x: np.ndarray, reps: int) -> np.ndarray:
    """2-qubit IQP state from explicit matrices: reps x [H (x) H, RZ(x0) (x) RZ(x1), exp(-i x0 x1 ZZ / 2)]."""
    zz = np.diag(np.exp(-0.5j * x[0] * x[1] * np.array([1, -1, -1, 1])))
    layer = zz @ np.kron(_rz(x[0]), _rz(x[1])) @ np.kron(H, H)
    psi = np.array([1, 0, 0, 0], dtype=complex)
    for _ in range(reps):
        psi = layer @ psi
    return psi


def _reduced(psi: np.ndarray, qubit: int) -> np.ndarray:
    """Partial trace of a 2-qubit pure state onto ``qubit`` (0 = most significant)."""
    m = psi.reshape(2, 2)
    return m @ m.conj().T if qubit == 0 else (m.T @ m.conj())


def _kernel_by_hand(X: np.ndarray, gamma: float, reps: int) -> np.ndarray:
    rhos = [[_reduced(_iqp_state_by_hand(x, reps), q) for q in range(2)] for x in X]
    K = np.empty((len(X), len(X)))
    for i, a in enumerate(rhos):
        for j, b in enumerate(rhos):
            K[i, j] = np.exp(-gamma * sum(np.linalg.norm(a[q] - b[q], "fro") ** 2 for q in range(2)))
    return K


def test_exact_path_equals_a_hand_computation_on_two_qubits():
    X = np.random.default_rng(3).uniform(0, np.pi, size=(6, 2))
    spec = ProjectedKernelSpec(FeatureMapSpec("iqp", 2, reps=2), gamma=0.7)
    result = projected_kernel(X, spec=spec)
    expected = _kernel_by_hand(X, 0.7, reps=2)
    assert np.max(np.abs(result.matrix - expected)) < 1e-10
    assert np.array_equal(result.matrix, result.matrix.T) and np.all(np.diag(result.matrix) == 1.0)
    assert result.stats.method == "projected-statevector" and result.stats.circuits_executed == 0
    # test x train: the same entries as the square matrix.
    rect = projected_kernel(X[:2], X, spec=spec).matrix
    assert np.max(np.abs(rect - expected[:2])) < 1e-10
    train, test = projected_train_test(X[2:], X[:2], spec=spec)  # one measurement of every row
    assert np.max(np.abs(train.matrix - expected[2:, 2:])) < 1e-10
    assert np.max(np.abs(test.matrix - expected[:2, 2:])) < 1e-10
    # The IQP reduced states have Y components: the hand check covers r_y too.
    assert np.abs(exact_bloch_vectors(X, spec.feature_map)[..., 1]).max() > 0.1


def test_shot_path_is_within_a_few_standard_errors_of_exact(monkeypatch):
    boundary = DeviceBoundary(monkeypatch)
    X = np.random.default_rng(1).uniform(0, np.pi, size=(5, 3))
    fm = FeatureMapSpec("iqp", 3, reps=1)
    shots = 1000
    backend = BackendConfig(device_name="default.qubit", shots=shots, seed=11)
    measured = projected_kernel(X, spec=ProjectedKernelSpec(fm), backend=backend)
    assert boundary.circuits == measured.stats.circuits_executed == planned_circuits(5) == 15
    again = projected_kernel(X, spec=ProjectedKernelSpec(fm), backend=backend)
    assert np.array_equal(measured.matrix, again.matrix)  # seeded

    exact_r = exact_bloch_vectors(X, fm)
    from hybrid_resources.quantum.projected_kernel import measured_bloch_vectors

    run = measured_bloch_vectors(X, fm, backend)
    se = np.sqrt(np.clip(1.0 - exact_r**2, 1e-3, None) / shots)  # binomial std of a +-1 mean
    assert np.max(np.abs(run.vectors - exact_r) / se) < 4.5

    # Kernel entries by the delta method: dk = -gamma k dD, D = sum_c (a_c - b_c)^2 / 2.
    exact = projected_kernel(X, spec=ProjectedKernelSpec(fm)).matrix
    flat, var = exact_r.reshape(len(X), -1), se.reshape(len(X), -1) ** 2
    diff = flat[:, None, :] - flat[None, :, :]
    sd_D = np.sqrt(np.sum(diff**2 * (var[:, None, :] + var[None, :, :]), axis=-1))
    bias_D = np.sum(var[:, None, :] + var[None, :, :], axis=-1) / 2.0
    bound = exact * (4.5 * sd_D + bias_D) + 1e-12
    assert np.all(np.abs(measured.matrix - exact) <= bound)
    assert measured.stats.shots_executed == 15 * shots and measured.stats.method == "projected-circuits"


def test_planned_circuits_are_three_per_sample():
    assert planned_circuits(100) == 300
    assert planned_circuits(100, 20) == 360
    assert planned_circuits(100) / (100 * 99 // 2) < 0.07


def test_the_ledger_admits_the_plan_first_and_sees_every_circuit(monkeypatch):
    boundary = DeviceBoundary(monkeypatch, fail_first=1)  # one throttle: retried, recorded as a failure

    class Ledger:
        admitted, failures, devices = [], 0, 0

        def admit(self, circuits, shots, **sizing):
            self.admitted.append((circuits, shots, boundary.circuits))

        def watch(self, device):
            self.devices += 1

        def failed(self, error):
            self.failures += 1

    ledger = Ledger()
    X = np.random.default_rng(2).uniform(0, np.pi, size=(4, 2))
    backend = BackendConfig(device_name="default.qubit", shots=50, batch_size=5, backoff_s=0.0)
    result = projected_kernel(X[:3], X, spec=ProjectedKernelSpec(FeatureMapSpec("angle", 2)), backend=backend,
                              ledger=ledger)
    assert ledger.admitted == [(21, 50, 0)]  # 3 x (3 + 4), before anything ran
    assert boundary.circuits == result.stats.circuits_executed == 21 and result.stats.retries == 1
    assert ledger.failures == 1 and ledger.devices >= 5  # one device per call (5 calls + the retried one)


def test_shot_emulation_draws_without_circuits(monkeypatch):
    boundary = DeviceBoundary(monkeypatch)
    X = np.random.default_rng(4).uniform(0, np.pi, size=(6, 2))
    spec = ProjectedKernelSpec(FeatureMapSpec("iqp", 2))
    backend = BackendConfig(device_name="default.qubit", shots=4000, shot_emulation=True)
    emulated = projected_kernel(X, spec=spec, backend=backend)
    assert boundary.circuits == 0 and emulated.stats.shots_emulated == 18 * 4000
    assert np.max(np.abs(emulated.matrix - projected_kernel(X, spec=spec).matrix)) < 0.05


def test_versions_and_gamma_tuning():
    spec = ProjectedKernelSpec(FeatureMapSpec("angle", 2), gamma=0.5)
    assert kernel_version() == "projected@1.0.0" and spec.code_version == "projected@1.0.0+angle@1.0.0"
    again = ProjectedKernelSpec.from_dict(spec.to_dict())
    assert again.spec_hash == spec.spec_hash and again.version == "1.0.0"
    assert spec.spec_hash != ProjectedKernelSpec(FeatureMapSpec("angle", 2), gamma=1.0).spec_hash
    with pytest.raises(ValueError, match="version"):
        ProjectedKernelSpec(FeatureMapSpec("angle", 2), version="0.9.0")

    rng = np.random.default_rng(0)
    X = rng.uniform(0, np.pi, size=(40, 2))
    y = (np.cos(X[:, 0]) * np.cos(X[:, 1]) > 0).astype(int)  # separable by the reduced states
    idx = np.arange(40)
    splits = [(np.setdiff1d(idx, idx[k::4]), idx[k::4]) for k in range(4)]
    ranked = tune_gamma(X, y, splits, FeatureMapSpec("angle", 2), gammas=[0.01, 1.0, 10.0], Cs=[1.0, 100.0])
    assert len(ranked) == 6 and ranked[0].cv_mean >= ranked[-1].cv_mean
    assert set(ranked[0].params) == {"gamma", "C", "bandwidth", "reps"}
    assert ranked[0].cv_mean > 0.8
