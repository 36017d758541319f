"""The kernel's error on a device, predicted before paying, from the device's calibration.

Each kernel entry K(x, y) = |<0|U(y)^dagger U(x)|0>|^2 is the probability of reading all zeros
after the compute-uncompute circuit. Here that circuit is transpiled to the device
(:mod:`~hybrid_resources.quantum.transpilation`) and run on Qiskit Aer's density-matrix simulator
with a noise model built from the device's :class:`~hybrid_resources.quantum.devices.Calibration`:

- after every native gate that is not virtual, a depolarizing channel on its qubits whose average
  gate infidelity equals the calibrated error (depolarizing parameter r * d / (d - 1), d = 2**k);
- at readout, each measured qubit's calibrated misassignment as a symmetric bit flip, applied to
  the exact outcome probabilities (no shot noise).

Only the physical qubits the transpiled circuit touches are simulated (2**(2 * active) reals).
The prediction is checked against Aer's own ``NoiseModel.from_backend`` (which adds thermal
relaxation from the gate times) in ``tests/quantum/test_calibrated_noise.py``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from hybrid_resources.quantum.devices import DeviceSnapshot
from hybrid_resources.quantum.feature_maps import FeatureMapSpec, to_openqasm
from hybrid_resources.quantum.transpilation import (
    NON_GATES,
    TranspiledCircuit,
    TranspileSettings,
    parse_openqasm,
    transpile_for,
)

# Above this many active qubits the density matrix (4**active complex entries) is not simulated.
MAX_SIMULATED_QUBITS = 12


def kernel_circuit(spec: FeatureMapSpec, x: np.ndarray, y: np.ndarray) -> Any:
    """The compute-uncompute circuit U(y)^dagger U(x) on ``spec.n_qubits`` qubits, every qubit
    measured at the end (a Qiskit QuantumCircuit, qelib1 gates)."""
    compute = parse_openqasm(to_openqasm(spec, np.asarray(x, dtype=float))).remove_final_measurements(inplace=False)
    uncompute = parse_openqasm(to_openqasm(spec, np.asarray(y, dtype=float))).remove_final_measurements(inplace=False)
    circuit = compute.compose(uncompute.inverse())
    circuit.measure_all()
    return circuit


def depolarizing_parameter(error: float, qubits: int) -> float:
    """The depolarizing parameter p of E(rho) = (1 - p) rho + p I/d whose average gate infidelity
    is ``error`` (d = 2**qubits): p = error * d / (d - 1)."""
    d = 2 ** qubits
    return min(error * d / (d - 1), 1.0)


def _compact(transpiled: TranspiledCircuit) -> tuple[Any, list[int]]:
    """The transpiled circuit on its active qubits only (measurements dropped), and the physical
    qubit behind each of its qubits."""
    from qiskit import QuantumCircuit

    circuit = transpiled.circuit
    active = sorted(set(transpiled.active_qubits) | set(transpiled.final_layout))
    position = {physical: index for index, physical in enumerate(active)}
    compact = QuantumCircuit(len(active))
    for instruction in circuit.data:
        if instruction.operation.name in NON_GATES:
            continue
        compact.append(instruction.operation, [position[circuit.find_bit(qubit).index] for qubit in instruction.qubits])
    return compact, active


def _noise_model(snapshot: DeviceSnapshot, compact: Any, physical: list[int]) -> Any:
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    calibration = snapshot.calibration
    model = NoiseModel(basis_gates=list(snapshot.native_gates))
    seen: set[tuple[str, tuple[int, ...]]] = set()
    for instruction in compact.data:
        name = instruction.operation.name
        qubits = tuple(compact.find_bit(qubit).index for qubit in instruction.qubits)
        if name not in snapshot.native_gates or name in snapshot.virtual_gates or (name, qubits) in seen:
            continue
        seen.add((name, qubits))
        on_device = [physical[q] for q in qubits]
        error = calibration.error_1q(on_device[0]) if len(qubits) == 1 else calibration.error_2q(*on_device)
        if error > 0:
            model.add_quantum_error(depolarizing_error(depolarizing_parameter(error, len(qubits)), len(qubits)),
                                    name, list(qubits))
    return model


def read_all_zeros(probabilities: np.ndarray, flip: list[float]) -> float:
    """P(reading 0...0) from the exact outcome ``probabilities`` (Qiskit order, 2**k) when qubit
    ``i`` is misread with probability ``flip[i]`` (symmetric)."""
    remaining = np.asarray(probabilities, dtype=np.float64)
    # Qiskit's order: the most significant bit is the last qubit; contract it first.
    for error in reversed(flip):
        remaining = np.array([1.0 - error, error]) @ remaining.reshape(2, -1)
    return float(remaining.sum())


def simulate_noisy_entry(transpiled: TranspiledCircuit, snapshot: DeviceSnapshot) -> float:
    """One kernel entry as the calibrated device would return it with infinitely many shots."""
    from qiskit_aer import AerSimulator

    compact, physical = _compact(transpiled)
    if len(physical) > MAX_SIMULATED_QUBITS:
        raise ValueError(f"{len(physical)} active qubits on {snapshot.name}: above {MAX_SIMULATED_QUBITS}, the "
                         "density matrix is not simulated")
    measured = [physical.index(q) for q in transpiled.final_layout]
    compact.save_probabilities(measured)
    simulator = AerSimulator(method="density_matrix", noise_model=_noise_model(snapshot, compact, physical))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probabilities = simulator.run(compact).result().data()["probabilities"]
    # save_probabilities orders outcomes with the first listed qubit as the least significant bit.
    flips = [snapshot.calibration.readout(q) for q in transpiled.final_layout]
    return read_all_zeros(np.asarray(probabilities), flips)


@dataclass(frozen=True)
class PredictedKernelError:
    """The kernel on a device as predicted from its calibration, over ``pairs`` entries."""

    device: str
    exact: np.ndarray  # (pairs,) exact entries
    noisy: np.ndarray  # (pairs,) predicted device entries
    transpiled_depth: int  # of the deepest kernel circuit
    two_qubit_gates: int  # of that circuit
    calibration_kind: str

    @property
    def mean_abs_error(self) -> float:
        return float(np.mean(np.abs(self.noisy - self.exact)))

    @property
    def max_abs_error(self) -> float:
        return float(np.max(np.abs(self.noisy - self.exact)))

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "pairs": int(self.exact.size), "predicted_mean_abs_error": self.mean_abs_error,
                "predicted_max_abs_error": self.max_abs_error, "kernel_circuit_depth": self.transpiled_depth,
                "kernel_circuit_two_qubit_gates": self.two_qubit_gates, "calibration": self.calibration_kind}


def predict_kernel_error(spec: FeatureMapSpec, pairs: list[tuple[np.ndarray, np.ndarray]], exact: np.ndarray,
                         snapshot: DeviceSnapshot,
                         settings: TranspileSettings = TranspileSettings()) -> PredictedKernelError:
    """Predict each entry of ``pairs`` (their exact values ``exact``) on ``snapshot`` from its
    calibration. Raises ValueError for a device without a calibration or too wide to simulate."""
    if snapshot.calibration is None:
        raise ValueError(f"{snapshot.name} has no calibration to predict from")
    noisy, depth, two_qubit = [], 0, 0
    for x, y in pairs:
        transpiled = transpile_for(kernel_circuit(spec, x, y), snapshot, settings)
        noisy.append(simulate_noisy_entry(transpiled, snapshot))
        if transpiled.depth > depth:
            depth, two_qubit = transpiled.depth, transpiled.two_qubit_gates
    return PredictedKernelError(snapshot.name, np.asarray(exact, dtype=np.float64), np.asarray(noisy), depth,
                                two_qubit, snapshot.calibration.kind)
