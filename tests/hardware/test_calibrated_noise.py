"""The kernel's error on a device predicted from its calibration, against Qiskit Aer's own noise
model of the same fake IBM backend on a density-matrix simulation of the transpiled circuit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hybrid_resources.quantum.calibrated_noise import (
    depolarizing_parameter,
    kernel_circuit,
    predict_kernel_error,
    read_all_zeros,
)
from hybrid_resources.quantum.devices import device_snapshot
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from hybrid_resources.quantum.transpilation import transpile_for

SPEC = FeatureMapSpec("iqp", 4, reps=2, entanglement="linear", bandwidth=0.5)
X = np.random.default_rng(0).uniform(0, np.pi, size=(3, 4))
PAIRS = [(0, 1), (0, 2), (1, 2)]
# The stated tolerance: the prediction's mean |error| within 0.01 of Aer's, every entry within 0.02
# (100,000 shots add a binomial std of at most 0.0016 to Aer's entries).
MEAN_TOLERANCE, ENTRY_TOLERANCE = 0.01, 0.02


def test_depolarizing_parameter_gives_the_calibrated_average_infidelity():
    assert depolarizing_parameter(0.01, 1) == pytest.approx(0.02)
    assert depolarizing_parameter(0.03, 2) == pytest.approx(0.04)


def test_reading_all_zeros_applies_each_qubits_flip():
    # Two qubits: P(00)=0.5, P(01)=0.2 (qubit 0 set), P(10)=0.2, P(11)=0.1; flips 0.1 and 0.3.
    probabilities = np.array([0.5, 0.2, 0.2, 0.1])
    by_hand = 0.5 * 0.9 * 0.7 + 0.2 * 0.1 * 0.7 + 0.2 * 0.9 * 0.3 + 0.1 * 0.1 * 0.3
    assert read_all_zeros(probabilities, [0.1, 0.3]) == pytest.approx(by_hand)
    assert read_all_zeros(probabilities, [0.0, 0.0]) == pytest.approx(0.5)


def test_the_prediction_for_a_fake_ibm_backend_matches_aers_density_matrix_simulation_of_it():
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeTorino

    snapshot = device_snapshot("ibm_torino")
    exact_kernel = quantum_kernel(X, spec=SPEC).matrix
    exact = np.array([exact_kernel[i, j] for i, j in PAIRS])
    predicted = predict_kernel_error(SPEC, [(X[i], X[j]) for i, j in PAIRS], exact, snapshot)
    # Aer's reference: the backend's noise model (depolarizing + thermal relaxation from gate
    # times, asymmetric readout), the same transpiled circuits, measured with many shots.
    simulator = AerSimulator.from_backend(FakeTorino(), method="density_matrix", seed_simulator=11)
    reference = []
    for i, j in PAIRS:
        transpiled = transpile_for(kernel_circuit(SPEC, X[i], X[j]), snapshot)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            counts = simulator.run(transpiled.circuit, shots=100_000).result().get_counts()
        reference.append(sum(n for outcome, n in counts.items() if set(outcome.replace(" ", "")) <= {"0"}) / 100_000)
    reference = np.array(reference)
    reference_error = float(np.mean(np.abs(reference - exact)))
    assert reference_error > 0.01  # the device's noise is visible: the comparison means something
    assert abs(predicted.mean_abs_error - reference_error) <= MEAN_TOLERANCE
    assert np.max(np.abs(predicted.noisy - reference)) <= ENTRY_TOLERANCE
    assert predicted.to_dict()["calibration"].startswith("per qubit and pair")


def test_a_noisier_calibration_predicts_a_larger_error_and_none_cannot_predict():
    from dataclasses import replace

    garnet = device_snapshot("iqm_garnet")
    exact_kernel = quantum_kernel(X, spec=SPEC).matrix
    pairs, exact = [(X[0], X[1])], np.array([exact_kernel[0, 1]])
    quiet = predict_kernel_error(SPEC, pairs, exact, garnet)
    noisy = predict_kernel_error(SPEC, pairs, exact, replace(garnet, calibration=replace(
        garnet.calibration, two_qubit_error=0.05)))
    assert noisy.mean_abs_error > quiet.mean_abs_error > 0
    with pytest.raises(ValueError, match="no calibration"):
        predict_kernel_error(SPEC, pairs, exact, replace(garnet, calibration=None))


def test_a_days_braket_calibration_replaces_a_snapshots_medians(tmp_path, monkeypatch):
    import json

    from hybrid_resources.quantum.noise import EXAMPLE_CALIBRATION

    # The shipped example (a Braket standardized calibration of qubits 0..5) saved as Ankaa-3's day.
    properties = json.loads(EXAMPLE_CALIBRATION.read_text())
    (tmp_path / "rigetti_ankaa_3.json").write_text(json.dumps(properties))
    shipped = device_snapshot("rigetti_ankaa_3")
    monkeypatch.setenv("HYBRID_DEVICE_CALIBRATIONS", str(tmp_path))
    day = device_snapshot("rigetti_ankaa_3")
    assert day.calibration.kind.startswith("per qubit and pair, from the Braket calibration")
    assert day.snapshot_hash != shipped.snapshot_hash and day.coupling_map == shipped.coupling_map
    rb = next(f["fidelity"] for f in properties["oneQubitProperties"]["2"]["oneQubitFidelity"]
              if f["fidelityType"]["name"] == "RANDOMIZED_BENCHMARKING")
    cz = properties["twoQubitProperties"]["0-1"]["twoQubitGateFidelity"][0]["fidelity"]
    assert day.calibration.error_1q(2) == pytest.approx(1 - rb)
    assert day.calibration.error_2q(1, 0) == pytest.approx(1 - cz)
    assert day.calibration.error_2q(70, 71) == day.calibration.two_qubit_error  # unlisted: the day's median
    # IQM numbers its qubits from 1: the same file on Garnet shifts by one.
    (tmp_path / "iqm_garnet.json").write_text(json.dumps(properties))
    assert device_snapshot("iqm_garnet").calibration.error_1q(1) == pytest.approx(1 - rb)
    exact = np.array([quantum_kernel(X, spec=SPEC).matrix[0, 1]])
    assert predict_kernel_error(SPEC, [(X[0], X[1])], exact, day).mean_abs_error != pytest.approx(
        predict_kernel_error(SPEC, [(X[0], X[1])], exact, shipped).mean_abs_error)
