"""The kernel's error on a device, predicted before paying, from the device's calibration.

Each kernel entry K(x, y) = |<0|U(y)^dagger U(x)|0>|^2 is the probability of reading all zeros
after the compute-uncompute circuit. Here that circuit is transpiled to the device
(:mod:`~hybrid_resources.quantum.transpilation`) and run on Qiskit Aer's density-matrix simulator
with noise channels built from the device's :class:`~hybrid_resources.quantum.devices.Calibration`:

- after every native gate that is not virtual, a depolarizing channel on its qubits whose average
  gate infidelity equals the calibrated error (depolarizing parameter r * d / (d - 1), d = 2**k);
- at readout, each measured qubit's calibrated misassignment as a symmetric bit flip, applied to
  the exact outcome probabilities (no shot noise).

Only the physical qubits the transpiled circuit touches are simulated (2**(2 * active) reals).
The prediction is checked against Aer's own ``NoiseModel.from_backend`` (which adds thermal
relaxation from the gate times) in ``tests/hardware/test_calibrated_noise.py``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from hybrid_resources.quantum.devices import DeviceSnapshot
from hybrid_resources.quantum.feature_maps import FeatureMapSpec, to_openqasm
from hybrid_resources.quantum.transpilation import (
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


@lru_cache(maxsize=1)
def _aer_gates() -> frozenset[str]:
    from qiskit_aer import AerSimulator

    return frozenset(AerSimulator(method="density_matrix").configuration().basis_gates)


@lru_cache(maxsize=4096)
def _depolarizing(parameter: float, qubits: int) -> Any:
    from qiskit_aer.noise import depolarizing_error

    return depolarizing_error(parameter, qubits).to_instruction()


def _noisy_compact(transpiled: TranspiledCircuit, snapshot: DeviceSnapshot) -> tuple[Any, list[int]]:
    """The transpiled circuit on its active qubits only, measurements dropped, each non-virtual
    gate followed by its calibrated depolarizing channel; and the physical qubit behind each qubit.
    Gates Aer does not know (ISWAP) go in as their unitary."""
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import UnitaryGate
    from qiskit.quantum_info import Operator
    calibration, known, active = snapshot.calibration, _aer_gates(), list(transpiled.simulated_qubits)
    noisy = QuantumCircuit(len(active))
    for operation, physical, qubits in transpiled.gates():
        noisy.append(operation if operation.name in known else UnitaryGate(Operator(operation)), qubits)
        if operation.name in snapshot.virtual_gates:
            continue
        error = calibration.error_1q(physical[0]) if len(physical) == 1 else calibration.error_2q(*physical)
        if error > 0:
            noisy.append(_depolarizing(depolarizing_parameter(error, len(qubits)), len(qubits)), qubits)
    return noisy, active


def read_all_zeros(probabilities: np.ndarray, flip: list[float]) -> float:
    """P(reading 0...0) from the exact outcome ``probabilities`` (Qiskit order, 2**k) when qubit
    ``i`` is misread with probability ``flip[i]`` (symmetric)."""
    remaining = np.asarray(probabilities, dtype=np.float64)
    # Qiskit's order: the most significant bit is the last qubit; contract it first.
    for error in reversed(flip):
        remaining = np.array([1.0 - error, error]) @ remaining.reshape(2, -1)
    return float(remaining.sum())


def simulate_noisy_entries(transpiled: Sequence[TranspiledCircuit], snapshot: DeviceSnapshot) -> list[float]:
    """Kernel entries (one per transpiled kernel circuit) as the calibrated device would return
    them with infinitely many shots; the circuits run as one batch on Aer's density matrix."""
    from qiskit_aer import AerSimulator

    circuits, flips = [], []
    for circuit in transpiled:
        compact, physical = _noisy_compact(circuit, snapshot)
        if len(physical) > MAX_SIMULATED_QUBITS:
            raise ValueError(f"{len(physical)} active qubits on {snapshot.name}: above {MAX_SIMULATED_QUBITS}, the "
                             "density matrix is not simulated")
        compact.save_probabilities([physical.index(q) for q in circuit.final_layout])
        circuits.append(compact)
        flips.append([snapshot.calibration.readout(q) for q in circuit.final_layout])
    if not circuits:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = AerSimulator(method="density_matrix").run(circuits).result()
    # save_probabilities orders outcomes with the first listed qubit as the least significant bit.
    return [read_all_zeros(np.asarray(result.data(index)["probabilities"]), flip) for index, flip in enumerate(flips)]


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
    transpiled = [transpile_for(kernel_circuit(spec, x, y), snapshot, settings) for x, y in pairs]
    noisy = simulate_noisy_entries(transpiled, snapshot)
    deepest = max(transpiled, key=lambda circuit: circuit.depth)
    depth, two_qubit = deepest.depth, deepest.two_qubit_gates
    return PredictedKernelError(snapshot.name, np.asarray(exact, dtype=np.float64), np.asarray(noisy), depth,
                                two_qubit, snapshot.calibration.kind)


def sample_pairs(rows: int, pairs: int) -> list[tuple[int, int]]:
    """The first ``pairs`` off-diagonal entries (i < j) of a ``rows`` x ``rows`` Gram matrix, row
    by row: the entries a device prediction simulates (the diagonal is 1 by construction)."""
    return [(i, j) for i in range(rows) for j in range(i + 1, rows)][:pairs]


def predict_on_devices(spec: FeatureMapSpec, X: np.ndarray, devices: Sequence[str], *, pairs: int = 6,
                       settings: TranspileSettings = TranspileSettings()) -> list[dict[str, Any]]:
    """For each of ``devices``: :meth:`PredictedKernelError.to_dict` on the first ``pairs``
    off-diagonal entries of X's Gram matrix, or ``{"device", "error"}`` saying why it cannot be
    predicted (no calibration, too wide to simulate)."""
    from hybrid_resources.quantum.devices import device_snapshot
    from hybrid_resources.quantum.kernel_engine import quantum_kernel

    X = np.asarray(X, dtype=np.float64)
    entries = sample_pairs(len(X), pairs)
    if not entries:
        return []
    exact_kernel = quantum_kernel(X, spec=spec).matrix
    exact = np.array([exact_kernel[i, j] for i, j in entries])
    predictions = []
    for device in devices:
        snapshot = device_snapshot(device)
        try:
            predicted = predict_kernel_error(spec, [(X[i], X[j]) for i, j in entries], exact, snapshot, settings)
        except ValueError as unpredictable:
            predictions.append({"device": snapshot.name, "error": str(unpredictable)})
            continue
        predictions.append(predicted.to_dict())
    return predictions
