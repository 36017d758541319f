"""Noisy kernels on real density-matrix simulators (default.mixed, Braket's braket_dm) and their
mitigation by PennyLane's qml.kernels post-processing."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from hybrid_resources.quantum.noise import (
    NoiseModel,
    depolarizing_rate,
    kernel_error,
    mitigate_kernel,
    mitigate_rectangular,
    mitigation_steps,
    noise_spread_report,
    noisy_kernel,
)

SPEC = FeatureMapSpec("iqp", 3, reps=1)
X = np.random.default_rng(5).uniform(0, np.pi, size=(8, 3))


def test_mitigation_lowers_the_error_of_a_noisy_kernel():
    exact = quantum_kernel(X, spec=SPEC).matrix
    noise = NoiseModel(depolarizing=0.02)
    noisy = noisy_kernel(X, spec=SPEC, noise=noise)
    assert noisy.stats.circuits_executed == 8 * 9 // 2  # upper triangle with the diagonal
    assert np.all(np.diag(noisy.matrix) < 1.0)  # measured, not set
    raw = kernel_error(exact, noisy.matrix)
    assert raw["max_abs_error"] > 0.03
    for method in ("depolarizing_average", "depolarizing_split_channel", "depolarizing_single+threshold"):
        mitigated = kernel_error(exact, mitigate_kernel(noisy.matrix, 3, method))
        assert mitigated["max_abs_error"] < raw["max_abs_error"] / 3
        assert mitigated["mean_abs_error"] < raw["mean_abs_error"] / 3
    report = noise_spread_report(exact, noisy.matrix, mitigate_kernel(noisy.matrix, 3, "depolarizing_average"),
                                 tolerance=0.01, noise=noise, mitigation="depolarizing_average")
    assert report["passed"] and report["noisy_max_abs_error"] == raw["max_abs_error"]

    # The test x train kernel with the rate read off the train kernel's diagonal.
    rate = depolarizing_rate(np.diag(noisy.matrix), 3)
    test = noisy_kernel(X[:2], X, spec=SPEC, noise=noise).matrix
    assert kernel_error(exact[:2], mitigate_rectangular(test, rate, 3))["max_abs_error"] < raw["max_abs_error"] / 3


def test_gate_and_readout_noise_from_a_calibration_and_the_psd_repairs():
    noise = NoiseModel.from_calibration()  # the shipped example
    assert noise.source == "calibration_example.json"
    assert 0.001 < noise.gate_error_1q < 0.005 and 0.003 < noise.gate_error_2q < 0.01 and 0.02 < noise.readout < 0.05
    noisy = noisy_kernel(X[:5], spec=SPEC, noise=noise, shots=200, seed=3).matrix
    assert np.array_equal(noisy, noisy_kernel(X[:5], spec=SPEC, noise=noise, shots=200, seed=3).matrix)
    for method in ("threshold", "displace", "flip", "closest_psd"):
        repaired = mitigate_kernel(noisy, 3, method)
        assert np.linalg.eigvalsh(repaired).min() > -1e-10


def test_braket_density_matrix_simulator_agrees_with_default_mixed():
    noise = NoiseModel(depolarizing=0.05, readout=0.02)
    pennylane = noisy_kernel(X[:3], spec=SPEC, noise=noise).matrix
    braket = noisy_kernel(X[:3], spec=SPEC, noise=noise, device="braket_dm").matrix
    assert np.max(np.abs(pennylane - braket)) < 1e-9


def test_broadcast_tapes_give_the_circuit_by_circuit_kernel_and_the_ledger_counts_each_circuit(monkeypatch, priced_policy):
    from hybrid_resources.quantum import noise as noise_module
    from hybrid_resources.quantum.backends import BackendConfig

    noise = NoiseModel(depolarizing=0.03, gate_error_2q=0.01, readout=0.02)
    with priced_policy.ledger(run_id="broadcast", asset="noisy", backend=BackendConfig()) as ledger:
        broadcast = noisy_kernel(X[:6], X[:4], spec=SPEC, noise=noise, ledger=ledger)
    assert ledger.circuits == 24 and broadcast.stats.circuits_executed == 24
    # A tape per circuit; tapes of 5 circuits, the last of 4 (24 pairs) or of 1 (the 21 pairs of 6 rows).
    for size in (1, 5):
        monkeypatch.setattr(noise_module, "broadcast_size", lambda device, n_qubits, size=size: size)
        assert np.allclose(noisy_kernel(X[:6], X[:4], spec=SPEC, noise=noise).matrix, broadcast.matrix, atol=1e-12)
        symmetric = noisy_kernel(X[:6], spec=SPEC, noise=noise).matrix
        assert np.allclose(symmetric, symmetric.T) and np.allclose(symmetric[:, :4], broadcast.matrix, atol=1e-12)


def test_bad_names_fail_with_the_choices():
    with pytest.raises(ValueError, match="depolarizing_average"):
        mitigation_steps("depolarising")
    with pytest.raises(ValueError, match="default.mixed"):
        noisy_kernel(X[:2], spec=SPEC, noise=NoiseModel(), device="qiskit.aer")
    with pytest.raises(ValueError, match="readout"):
        NoiseModel(readout=1.5)
    assert mitigation_steps("none") == ()


# ---------------------------------------------------------------------------------------
# The noisy_kernel_spread asset and its check
# ---------------------------------------------------------------------------------------


def _materialize_spread(instance, layout, kernel: str, spread_config: dict):
    from dagster import materialize

    from hybrid_assets.definitions import all_assets
    from tests.bad_files import write_good_csv
    from tests.conftest import RESOURCES, SMALL_RUN_CONFIG, ingest

    write_good_csv(layout.landing, n_rows=30, n_features=5, seed=1, name="train.csv")
    ingest(instance, "train.csv")
    config = {"ops": {**SMALL_RUN_CONFIG["ops"], "kernel_tuning": {"config": {"kernel": kernel, "Cs": [1.0]}},
                      "noisy_kernel_spread": {"config": spread_config}}}
    return materialize(all_assets, selection=["features", "reduced_embeddings", "kernel_tuning", "circuit_artifact",
                                              "noisy_kernel_spread"],
                       instance=instance, resources=RESOURCES, run_config=config, raise_on_error=False)


def test_the_noise_spread_asset_mitigates_and_its_check_reports_the_spread(data_layout, instance):
    from hybrid_resources.data.artifacts import ArtifactStore, info_of

    result = _materialize_spread(instance, data_layout, "fidelity", {"rows": 10, "depolarizing": 0.02})
    assert result.success
    stored = ArtifactStore(data_layout.artifacts).read(["noisy_kernel_spread"])
    info = info_of(stored)
    assert stored["exact"].shape == stored["noisy"].shape == stored["mitigated"].shape == (10, 10)
    assert info["mitigation"] == "depolarizing_average" and info["circuits"] == 10 * 11 // 2
    assert info["mitigated_max_abs_error"] < info["noisy_max_abs_error"]
    assert np.isclose(info["noisy_max_abs_error"], np.abs(stored["noisy"] - stored["exact"]).max())
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "noise_spread"]
    assert check.passed == (info["mitigated_max_abs_error"] <= 0.01)

    # A tolerance the mitigated kernel cannot meet fails the check (a warning), with the figure.
    strict = _materialize_spread(instance, data_layout, "fidelity", {"rows": 10, "depolarizing": 0.05,
                                                                     "tolerance": 1e-9})
    (check,) = [c for c in strict.get_asset_check_evaluations() if c.check_name == "noise_spread"]
    assert not check.passed and "above 1e-09" in check.metadata["message"].value


def test_the_noise_spread_predicts_each_devices_error_from_its_calibration_and_names_those_within(
        data_layout, instance):
    from hybrid_resources.data.artifacts import ArtifactStore, info_of

    devices = "iqm_garnet,ibm_torino"
    loose = _materialize_spread(instance, data_layout, "fidelity", {"rows": 4, "devices": devices, "device_pairs": 3,
                                                                    "device_tolerance": 1.0})
    assert loose.success
    predicted = info_of(ArtifactStore(data_layout.artifacts).read(["noisy_kernel_spread"]))["devices"]
    assert [entry["device"] for entry in predicted] == ["iqm_garnet", "ibm_torino"]
    for entry in predicted:
        assert entry["pairs"] == 3 and 0 < entry["predicted_mean_abs_error"] <= entry["predicted_max_abs_error"] < 1
        assert entry["kernel_circuit_depth"] > 0
    (check,) = [c for c in loose.get_asset_check_evaluations() if c.check_name == "device_noise"]
    assert check.passed and check.metadata["within_tolerance"].value == ["iqm_garnet", "ibm_torino"]

    # Between the two predictions: one device keeps the kernel, the other does not, and the check says which.
    low, high = sorted(entry["predicted_mean_abs_error"] for entry in predicted)
    split = _materialize_spread(instance, data_layout, "fidelity", {"rows": 4, "devices": devices, "device_pairs": 3,
                                                                    "device_tolerance": (low + high) / 2})
    (check,) = [c for c in split.get_asset_check_evaluations() if c.check_name == "device_noise"]
    best = min(predicted, key=lambda entry: entry["predicted_mean_abs_error"])["device"]
    assert check.passed and check.metadata["within_tolerance"].value == [best]
    none = _materialize_spread(instance, data_layout, "fidelity", {"rows": 4, "devices": devices, "device_pairs": 3,
                                                                   "device_tolerance": 0.0})
    (check,) = [c for c in none.get_asset_check_evaluations() if c.check_name == "device_noise"]
    assert not check.passed and check.metadata["message"].value.startswith("within 0.0: none")


def test_a_projected_kernel_refuses_a_diagonal_based_mitigation_with_the_choices(data_layout, instance):
    result = _materialize_spread(instance, data_layout, "projected", {"rows": 6, "mitigation": "depolarizing_average"})
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "projected kernel's diagonal is 1" in str(failure.event_specific_data.error)
