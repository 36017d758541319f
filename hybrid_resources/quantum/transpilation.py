"""Circuits as a device would run them: transpiled to its coupling map and native gates.

We use Qiskit's preset pass managers (SABRE layout and routing) on the circuit's exported
OpenQASM 2.0 rather than write a router: SABRE is the transpiler providers' own toolchains
build on, it handles directed couplers (IBM's ECR) and any native set Qiskit can translate to,
and it is seeded, so the same settings give the same circuit. PennyLane's transforms route on a
line or a given graph but do not translate to a device's native set.

- :func:`transpile_for`: one circuit on one :class:`~hybrid_resources.quantum.devices.DeviceSnapshot`,
  with its depth, two-qubit gate count, SWAPs inserted by routing and the qubit layouts;
- :func:`verify_transpiled`: every two-qubit gate on a coupler, only native gates, and the same
  state as the original up to the final qubit permutation (statevector fidelity).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Sequence

import numpy as np

from hybrid_resources.quantum.devices import DeviceSnapshot, device_snapshot

# Instructions that are not gates: never counted, always allowed.
NON_GATES = ("measure", "barrier")


@dataclass(frozen=True)
class TranspileSettings:
    """What a transpiled circuit depends on besides the circuit and the device; recorded in the
    circuit's version. ``seed`` makes SABRE's randomised layout trials repeatable."""

    optimization_level: int = 1
    seed: int = 7
    layout_method: str = "sabre"
    routing_method: str = "sabre"

    def to_dict(self) -> dict[str, Any]:
        import qiskit

        return {"transpiler": f"qiskit {qiskit.__version__}", "optimization_level": self.optimization_level,
                "seed": self.seed, "layout_method": self.layout_method, "routing_method": self.routing_method}


@dataclass(frozen=True)
class TranspiledCircuit:
    """``circuit`` (a Qiskit QuantumCircuit on the device's physical qubits) with its sizes.

    ``initial_layout[i]`` / ``final_layout[i]``: the physical qubit logical qubit ``i`` starts /
    ends on (routing permutes them). ``swaps``: SWAPs the router inserted, before translation
    turned each into native two-qubit gates."""

    device: str
    snapshot_hash: str
    settings: TranspileSettings
    circuit: Any
    initial_layout: tuple[int, ...]
    final_layout: tuple[int, ...]
    swaps: int

    @property
    def gate_counts(self) -> dict[str, int]:
        return {name: int(count) for name, count in self.circuit.count_ops().items() if name not in NON_GATES}

    @property
    def two_qubit_gates(self) -> int:
        return sum(1 for instruction in self.circuit.data
                   if instruction.operation.num_qubits == 2 and instruction.operation.name not in NON_GATES)

    @property
    def depth(self) -> int:
        """Layers of gates (measurements and barriers not counted, as for the logical circuit)."""
        return int(self.circuit.depth(filter_function=lambda instruction: instruction.operation.name not in NON_GATES))

    @property
    def active_qubits(self) -> tuple[int, ...]:
        """Physical qubits a gate or measurement touches, ascending."""
        return tuple(sorted({self.circuit.find_bit(qubit).index
                             for instruction in self.circuit.data for qubit in instruction.qubits}))

    @property
    def simulated_qubits(self) -> tuple[int, ...]:
        """The physical qubits a simulation needs: those a gate touches and those the logical
        qubits end on, ascending (a simulation's qubit ``i`` is the ``i``-th of them)."""
        return tuple(sorted(set(self.active_qubits) | set(self.final_layout)))

    def gates(self) -> Iterator[tuple[Any, tuple[int, ...], tuple[int, ...]]]:
        """Each gate in order (measurements and barriers skipped): the operation, the physical
        qubits it acts on, and their indices among :attr:`simulated_qubits`."""
        position = {physical: index for index, physical in enumerate(self.simulated_qubits)}
        for instruction in self.circuit.data:
            if instruction.operation.name not in NON_GATES:
                physical = tuple(self.circuit.find_bit(qubit).index for qubit in instruction.qubits)
                yield instruction.operation, physical, tuple(position[qubit] for qubit in physical)

    def resources(self) -> dict[str, Any]:
        """The sizes the ceilings judge, like ``circuit_resources``: width (physical qubits used),
        depth, two-qubit gates, gate counts, total gates, and the SWAPs routing inserted."""
        counts = self.gate_counts
        return {"width": len(self.active_qubits), "depth": self.depth, "two_qubit_gates": self.two_qubit_gates,
                "gate_counts": counts, "total_gates": sum(counts.values()), "swaps": self.swaps}

    def version(self) -> dict[str, Any]:
        """What makes this transpiled circuit what it is: the device snapshot and the settings."""
        return {"device": self.device, "snapshot_hash": self.snapshot_hash, **self.settings.to_dict()}

    def openqasm(self) -> str:
        from qiskit import qasm2

        return qasm2.dumps(self.circuit)


@lru_cache(maxsize=32)
def device_target(snapshot: DeviceSnapshot) -> Any:
    """A Qiskit Target with the snapshot's native gates on its qubits and directed couplers, and,
    where the snapshot has a calibration, each gate's and readout's error: Qiskit's layout passes
    (VF2PostLayout) then prefer the better qubits, as a provider's own transpilation does."""
    from qiskit.circuit import Measure
    from qiskit.circuit.library import get_standard_gate_name_mapping
    from qiskit.transpiler import InstructionProperties, Target

    calibration, gates = snapshot.calibration, get_standard_gate_name_mapping()
    target = Target(num_qubits=snapshot.qubits)

    def properties(error: float) -> InstructionProperties:
        return InstructionProperties(error=error if calibration else None)

    for name in snapshot.native_gates:
        gate = gates[name]
        if gate.num_qubits == 2:
            target.add_instruction(gate, {pair: properties(calibration.error_2q(*pair) if calibration else 0.0)
                                          for pair in snapshot.coupling_map})
        else:
            virtual = name in snapshot.virtual_gates
            target.add_instruction(gate, {(q,): properties(0.0 if virtual or not calibration else calibration.error_1q(q))
                                          for q in range(snapshot.qubits)})
    target.add_instruction(Measure(), {(q,): properties(calibration.readout(q) if calibration else 0.0)
                                       for q in range(snapshot.qubits)})
    return target


def import_transpiler() -> None:
    """Import Qiskit's transpiler now, with every stage plugin installed: Qiskit imports each one
    (IBM's runtime among them, about half a second) the first time it builds a preset pass
    manager. For a process that will transpile anyway and would rather pay for its imports up
    front (``hybrid-demo``, before the clock of its "after imports" time)."""
    from qiskit import qasm2  # noqa: F401
    from qiskit.transpiler.preset_passmanagers.plugin import PassManagerStagePluginManager

    PassManagerStagePluginManager()  # loads the plugins; Qiskit's later managers reuse them


def parse_openqasm(openqasm: str) -> Any:
    """An OpenQASM 2.0 program (qelib1 gates) as a Qiskit QuantumCircuit."""
    from qiskit import qasm2

    return qasm2.loads(openqasm)


@lru_cache(maxsize=32)
def preset_pass_manager(snapshot: DeviceSnapshot, settings: TranspileSettings) -> Any:
    """Qiskit's preset pass manager for ``snapshot``'s target under ``settings``, built once per
    pair (about 10 ms each): a pass manager keeps no state between runs, and its seeded passes
    start from the same seed on every run, so a reused one transpiles as a new one would."""
    from qiskit.transpiler import generate_preset_pass_manager

    return generate_preset_pass_manager(
        optimization_level=settings.optimization_level, target=device_target(snapshot),
        seed_transpiler=settings.seed, layout_method=settings.layout_method, routing_method=settings.routing_method)


def transpile_for(circuit: Any, snapshot: DeviceSnapshot,
                  settings: TranspileSettings = TranspileSettings()) -> TranspiledCircuit:
    """``circuit`` (a QuantumCircuit, or OpenQASM 2.0 text) transpiled to ``snapshot``'s coupling
    map and native gates with Qiskit's preset pass manager under ``settings``. Raises ValueError
    when the circuit is wider than the device."""
    if isinstance(circuit, str):
        circuit = parse_openqasm(circuit)
    if circuit.num_qubits > snapshot.qubits:
        raise ValueError(f"{circuit.num_qubits} qubits do not fit {snapshot.name} ({snapshot.qubits} qubits)")
    manager = preset_pass_manager(snapshot, settings)
    inserted = [0]

    def count_swaps(dag: Any = None, **_: Any) -> None:
        # SWAPs exist only between routing and translation (which turns them into native gates).
        inserted[0] = max(inserted[0], dag.count_ops().get("swap", 0))

    transpiled = manager.run(circuit, callback=count_swaps)
    layout = transpiled.layout
    return TranspiledCircuit(
        device=snapshot.name, snapshot_hash=snapshot.snapshot_hash, settings=settings, circuit=transpiled,
        initial_layout=tuple(layout.initial_index_layout(filter_ancillas=True)),
        final_layout=tuple(layout.final_index_layout(filter_ancillas=True)),
        swaps=inserted[0] - int(circuit.count_ops().get("swap", 0)))


@dataclass(frozen=True)
class TranspileCheck:
    """The three properties of a correct transpilation, with what broke them."""

    off_coupling_map: tuple[tuple[int, int], ...]  # two-qubit gates on pairs that are no coupler
    foreign_gates: tuple[str, ...]  # gate names outside the native set
    fidelity: float  # |<original, permuted | transpiled>|^2 on the exact simulator

    def passed(self, tolerance: float = 1e-9) -> bool:
        return not self.off_coupling_map and not self.foreign_gates and self.fidelity >= 1.0 - tolerance


def _without_measurements(circuit: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "adding a register to a circuit with a layout": harmless here
        return circuit.remove_final_measurements(inplace=False)


def verify_transpiled(original: Any, transpiled: TranspiledCircuit, snapshot: DeviceSnapshot) -> TranspileCheck:
    """Check ``transpiled`` against ``original`` (QuantumCircuit or OpenQASM 2.0) on ``snapshot``.

    The state check simulates only the physical qubits the transpiled circuit touches (routing
    ancillas included, each starting in |0>), so it needs 2**active amplitudes."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Statevector

    if isinstance(original, str):
        original = parse_openqasm(original)
    off_map, foreign = set(), set()
    active = transpiled.simulated_qubits
    compact = QuantumCircuit(len(active))
    compact.global_phase = transpiled.circuit.global_phase
    for operation, physical, qubits in transpiled.gates():
        if operation.name not in snapshot.native_gates:
            foreign.add(operation.name)
        if len(physical) == 2 and physical not in snapshot.edges:
            off_map.add(physical)
        compact.append(operation, qubits)
    position = {physical: index for index, physical in enumerate(active)}
    expected = QuantumCircuit(len(active))
    expected.compose(_without_measurements(original),
                     qubits=[position[physical] for physical in transpiled.final_layout], inplace=True)
    overlap = np.vdot(Statevector(expected).data, Statevector(compact).data)
    return TranspileCheck(tuple(sorted(off_map)), tuple(sorted(foreign)), float(abs(overlap) ** 2))


def transpile_on_devices(circuit: Any, devices: Sequence[str],
                         settings: TranspileSettings = TranspileSettings()) -> dict[str, dict[str, Any]]:
    """``circuit`` (QuantumCircuit or OpenQASM 2.0) transpiled on each of ``devices`` (names a
    :func:`~hybrid_resources.quantum.devices.device_snapshot` knows): per device, its
    ``resources`` (:meth:`TranspiledCircuit.resources`) and ``version``
    (:meth:`TranspiledCircuit.version`), or ``fits: False`` with the reason when it is wider
    than the device. Raises UnknownDeviceError for a name no snapshot has."""
    if isinstance(circuit, str):
        circuit = parse_openqasm(circuit)
    report: dict[str, dict[str, Any]] = {}
    for device in devices:
        snapshot = device_snapshot(device)
        if circuit.num_qubits > snapshot.qubits:
            report[snapshot.name] = {"fits": False, "reason": f"{circuit.num_qubits} qubits > {snapshot.qubits}"}
            continue
        transpiled = transpile_for(circuit, snapshot, settings)
        report[snapshot.name] = {"fits": True, "resources": transpiled.resources(), "version": transpiled.version()}
    return report
