"""Feature maps: registry, spec hashing, numpy simulation == PennyLane, QASM, resources."""

from __future__ import annotations

import json
import re

import numpy as np
import pennylane as qml
import pytest

from hybrid_resources.quantum.feature_maps import (
    ENTANGLEMENTS,
    FEATURE_MAPS,
    FeatureMapSpec,
    apply_feature_map,
    circuit_resources,
    entangling_pairs,
    to_openqasm,
)
from hybrid_resources.quantum.kernel_engine import feature_states
from hybrid_resources.quantum.simulator import simulate_states

ALL_SPECS = [
    FeatureMapSpec(name, n, reps=reps, entanglement=ent)
    for name in ("angle", "iqp")
    for ent in ENTANGLEMENTS
    for n in (1, 2, 3, 4)
    for reps in (1, 2, 3)
]


def _pennylane_states(spec: FeatureMapSpec, X: np.ndarray) -> np.ndarray:
    dev = qml.device("default.qubit", wires=spec.n_qubits)

    @qml.qnode(dev)
    def circuit(x):
        apply_feature_map(spec, x, range(spec.n_qubits))
        return qml.state()

    return np.stack([np.asarray(circuit(x)) for x in X])


def test_registry_has_versions():
    assert {"angle", "iqp"} <= set(FEATURE_MAPS)
    for fm in FEATURE_MAPS.values():
        major, minor, patch = fm.version.split(".")
        assert all(part.isdigit() for part in (major, minor, patch))
        assert fm.description


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.name}-{s.entanglement}-n{s.n_qubits}-r{s.reps}")
def test_numpy_simulation_equals_pennylane(spec: FeatureMapSpec):
    X = np.random.default_rng(spec.n_qubits * 10 + spec.reps).uniform(-4, 4, size=(4, spec.n_qubits))
    np.testing.assert_allclose(simulate_states(spec, X), _pennylane_states(spec, X), atol=1e-12)


@pytest.mark.parametrize("name", ["angle", "iqp"])
def test_feature_states_broadcast_pennylane_equals_numpy(name: str):
    spec = FeatureMapSpec(name, 3, reps=2, entanglement="circular")
    X = np.random.default_rng(1).normal(size=(7, 3))
    via_pl = feature_states(X, spec, simulator="pennylane")
    via_np = feature_states(X, spec)
    assert via_np.dtype == np.complex128 and via_np.shape == (7, 8)
    np.testing.assert_allclose(via_np, via_pl, atol=1e-12)


def test_spec_roundtrip_and_hash():
    spec = FeatureMapSpec("iqp", 4, reps=3, entanglement="full")
    d = spec.to_dict()
    assert d["version"] == FEATURE_MAPS["iqp"].version
    assert json.loads(json.dumps(d)) == d
    again = FeatureMapSpec.from_dict(d)
    assert again.spec_hash == spec.spec_hash
    assert len(spec.spec_hash) == 64
    # "" and the explicit current version are the same circuit.
    assert FeatureMapSpec("iqp", 4, 3, "full", FEATURE_MAPS["iqp"].version).spec_hash == spec.spec_hash
    others = [FeatureMapSpec("iqp", 4, 2, "full"), FeatureMapSpec("iqp", 4, 3, "linear"),
              FeatureMapSpec("iqp", 5, 3, "full"), FeatureMapSpec("angle", 4, 3, "full")]
    assert len({o.spec_hash for o in others} | {spec.spec_hash}) == 5


def test_spec_validation():
    with pytest.raises(ValueError):
        FeatureMapSpec("nope", 2)
    with pytest.raises(ValueError):
        FeatureMapSpec("iqp", 2, entanglement="star")
    with pytest.raises(ValueError):
        FeatureMapSpec("iqp", 2, version="0.0.1")
    with pytest.raises(ValueError):
        FeatureMapSpec("iqp", 2, reps=0)


def test_entangling_pairs():
    assert entangling_pairs(4, "linear") == [(0, 1), (1, 2), (2, 3)]
    assert entangling_pairs(4, "circular") == [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert entangling_pairs(2, "circular") == [(0, 1)]
    assert len(entangling_pairs(5, "full")) == 10


def test_openqasm_roundtrip_state():
    spec = FeatureMapSpec("iqp", 3, reps=2, entanglement="full")
    x = np.array([0.3, -1.2, 2.0])
    qasm = to_openqasm(spec, x)
    assert qasm.startswith("OPENQASM 2.0;")
    assert "cx" in qasm and "rz" in qasm and "h q[0]" in qasm
    # Replaying the program's gates (h, rz, ry, cx) prepares the same state.
    gates = {"h": qml.Hadamard, "cx": qml.CNOT}
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def circuit():
        for line in qasm.splitlines():
            m = re.match(r"(h|cx|rz|ry)(?:\(([^)]*)\))? (.*);", line)
            if not m:
                continue
            gate, arg, qubits = m.groups()
            wires = [int(q) for q in re.findall(r"q\[(\d+)\]", qubits)]
            if gate in gates:
                gates[gate](wires=wires)
            else:
                (qml.RZ if gate == "rz" else qml.RY)(float(arg), wires=wires)
        return qml.state()

    np.testing.assert_allclose(circuit(), simulate_states(spec, x[None])[0], atol=1e-9)


def test_circuit_resources():
    linear = circuit_resources(FeatureMapSpec("iqp", 4, reps=2, entanglement="linear"))
    assert linear["width"] == 4
    # Each ZZ = CNOT RZ CNOT: 3 pairs x 2 reps x 2 CNOTs.
    assert linear["two_qubit_gates"] == 12 == linear["gate_counts"]["CNOT"]
    assert linear["gate_counts"]["Hadamard"] == 8
    assert linear["total_gates"] == sum(linear["gate_counts"].values())
    assert linear["depth"] > 0
    full = circuit_resources(FeatureMapSpec("iqp", 4, reps=2, entanglement="full"))
    assert full["two_qubit_gates"] == 24
    angle = circuit_resources(FeatureMapSpec("angle", 4))
    assert angle == {**angle, "depth": 1, "two_qubit_gates": 0, "total_gates": 4}
