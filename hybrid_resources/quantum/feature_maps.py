"""Feature maps: the circuits U(x) that embed a classical sample into a quantum state.

A feature map is identified by a :class:`FeatureMapSpec` (registry name, qubits, reps,
entanglement, semantic version). Its ``spec_hash`` keys every cached kernel entry, so a
change to a circuit MUST bump that map's ``version`` in :data:`FEATURE_MAPS`.

The PennyLane templates in this module are the source of truth. The kernel engine also has
a fast numpy simulation of the same gates (:mod:`hybrid_resources.quantum.simulator`); the tests assert that it
equals PennyLane's ``default.qubit`` state for every map and entanglement.

Conventions: inputs ``x`` are real vectors of length ``n_qubits`` in any range (the caller
scales them; angles are in radians). Wire 0 is the most significant bit of a basis index,
as in PennyLane's ``qml.state()``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np

from hybrid_resources.lazy_modules import module_on_first_use

qml = module_on_first_use("pennylane")

ENTANGLEMENTS = ("linear", "circular", "full")

# The gate set circuit_resources() decomposes into: what most hardware compilers accept.
BASIC_GATE_SET = ("Hadamard", "RX", "RY", "RZ", "CNOT")


@dataclass(frozen=True)
class FeatureMapSpec:
    """Which feature map, on how many qubits, with which options.

    ``reps`` (>= 1) repeats the IQP layer; ``entanglement`` picks the ZZ pairs of the IQP map.
    The angle map is a product state and ignores both (they still enter the hash as given).
    ``bandwidth`` (> 0) scales the inputs before the map, U(bandwidth * x): the kernel's
    bandwidth, which decides between a kernel near the identity and a useful one (Shaydulin &
    Wild, "Importance of kernel bandwidth in quantum machine learning", PRA 106, 042407).
    ``version`` "" means the registry's current version for ``name``.
    """

    name: str
    n_qubits: int
    reps: int = 2
    entanglement: str = "linear"
    version: str = ""
    bandwidth: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in FEATURE_MAPS:
            raise ValueError(f"unknown feature map {self.name!r}; known: {sorted(FEATURE_MAPS)}")
        if self.n_qubits < 1:
            raise ValueError(f"n_qubits must be >= 1, got {self.n_qubits}")
        if self.reps < 1:
            raise ValueError(f"reps must be >= 1, got {self.reps}")
        if not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0, got {self.bandwidth}")
        if self.entanglement not in ENTANGLEMENTS:
            raise ValueError(f"entanglement must be one of {ENTANGLEMENTS}, got {self.entanglement!r}")
        current = FEATURE_MAPS[self.name].version
        if self.version and self.version != current:
            # Old circuits are not kept: a cached result under an old version must not be
            # confused with what this code would compute now.
            raise ValueError(
                f"feature map {self.name!r} is at version {current}, spec asks for {self.version}"
            )

    @property
    def resolved_version(self) -> str:
        return self.version or FEATURE_MAPS[self.name].version

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the version filled in."""
        d = asdict(self)
        d["version"] = self.resolved_version
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureMapSpec":
        return cls(
            name=str(d["name"]),
            n_qubits=int(d["n_qubits"]),
            reps=int(d.get("reps", 2)),
            entanglement=str(d.get("entanglement", "linear")),
            version=str(d.get("version", "")),
            bandwidth=float(d.get("bandwidth", 1.0)),
        )

    @property
    def spec_hash(self) -> str:
        """sha256 hex of the canonical JSON (sorted keys, no spaces) of :meth:`to_dict`."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def entangling_pairs(n_qubits: int, entanglement: str) -> list[tuple[int, int]]:
    """Qubit index pairs (i < j except the circular wrap) that get a ZZ interaction.

    linear: (0,1),(1,2),...; circular: linear plus (n-1, 0) when n > 2; full: all i < j.
    """
    if entanglement not in ENTANGLEMENTS:
        raise ValueError(f"entanglement must be one of {ENTANGLEMENTS}, got {entanglement!r}")
    linear = [(i, i + 1) for i in range(n_qubits - 1)]
    if entanglement == "linear":
        return linear
    if entanglement == "circular":
        # With 2 qubits the wrap pair is the linear pair again: do not apply it twice.
        return linear + ([(n_qubits - 1, 0)] if n_qubits > 2 else [])
    return [(i, j) for i in range(n_qubits) for j in range(i + 1, n_qubits)]


def _check_x(spec: FeatureMapSpec, x: Any) -> Any:
    shape = qml.math.shape(x)
    if not shape or shape[-1] != spec.n_qubits:
        raise ValueError(f"x must have last dimension n_qubits={spec.n_qubits}, got shape {shape}")
    return x


def _apply_angle(x: Any, wires: Sequence, spec: FeatureMapSpec) -> None:
    # RY keeps amplitudes real: the engine then uses real (4x cheaper) matrix products.
    qml.AngleEmbedding(_check_x(spec, x), wires=wires, rotation="Y")


def _apply_iqp(x: Any, wires: Sequence, spec: FeatureMapSpec) -> None:
    # PennyLane's IQPEmbedding is exactly the ZZ map we want: per rep, H on every wire,
    # RZ(x_i), then MultiRZ(x_i * x_j) = exp(-i x_i x_j Z_i Z_j / 2) on each pattern pair.
    pairs = entangling_pairs(spec.n_qubits, spec.entanglement)
    pattern = [[wires[i], wires[j]] for i, j in pairs]
    if spec.n_qubits == 1:
        pattern = []
    qml.IQPEmbedding(_check_x(spec, x), wires=wires, n_repeats=spec.reps, pattern=pattern)


@dataclass(frozen=True)
class FeatureMap:
    """A registry entry. ``apply(x, wires, spec)`` queues the gates inside a QNode/tape."""

    name: str
    version: str
    description: str
    apply: Callable[[Any, Sequence, FeatureMapSpec], None]
    real_amplitudes: bool  # states have real amplitudes (enables real Gram products)


FEATURE_MAPS: dict[str, FeatureMap] = {
    "angle": FeatureMap(
        name="angle",
        version="1.0.0",
        description="Angle embedding: RY(x_i) on qubit i (product state; reps/entanglement unused).",
        apply=_apply_angle,
        real_amplitudes=True,
    ),
    "iqp": FeatureMap(
        name="iqp",
        version="1.0.0",
        description=(
            "IQP/ZZ map: reps x [H on all qubits, RZ(x_i), ZZ(x_i*x_j) = MultiRZ on the "
            "entangled pairs (linear | circular | full)]."
        ),
        apply=_apply_iqp,
        real_amplitudes=False,
    ),
}


def apply_feature_map(spec: FeatureMapSpec, x: np.ndarray, wires: Sequence) -> None:
    """Queue U(x) on ``wires`` (len n_qubits). Call inside a QNode or a queuing context.

    ``x`` has shape (n_qubits,) or (batch, n_qubits) for parameter broadcasting.
    """
    wires = list(wires)
    if len(wires) != spec.n_qubits:
        raise ValueError(f"need {spec.n_qubits} wires, got {len(wires)}")
    FEATURE_MAPS[spec.name].apply(x * spec.bandwidth if spec.bandwidth != 1.0 else x, wires, spec)


def feature_map_tape(spec: FeatureMapSpec, x: np.ndarray, measurements: Sequence = ()) -> qml.tape.QuantumScript:
    """A tape holding U(x) on wires 0..n-1 (templates not yet decomposed)."""
    with qml.queuing.AnnotatedQueue() as q:
        apply_feature_map(spec, x, range(spec.n_qubits))
    return qml.tape.QuantumScript(q.queue, list(measurements))


def to_openqasm(spec: FeatureMapSpec, x: np.ndarray) -> str:
    """OpenQASM 2.0 program of U(x) with final measurement of every qubit.

    PennyLane decomposes the templates into qelib1 gates (h, rz, ry, cx).
    """
    x = np.asarray(x, dtype=float)
    tape = feature_map_tape(spec, x, [qml.probs(wires=range(spec.n_qubits))])
    return qml.to_openqasm(tape, wires=range(spec.n_qubits), measure_all=True)


def _depth(ops: Sequence[qml.operation.Operator]) -> int:
    """Circuit depth: longest chain of gates sharing wires (ASAP layering)."""
    level: dict[Any, int] = {}
    depth = 0
    for op in ops:
        layer = 1 + max((level.get(w, 0) for w in op.wires), default=0)
        for w in op.wires:
            level[w] = layer
        depth = max(depth, layer)
    return depth


def tape_resources(tape: qml.tape.QuantumScript, width: int) -> dict[str, Any]:
    """The sizes the circuit ceilings judge, of any circuit after decomposition to
    :data:`BASIC_GATE_SET`: {"width", "depth", "gate_counts": {name: n} (in first-use order),
    "two_qubit_gates", "total_gates"}. Bind generic angles first: a rotation by 0 decomposes away."""
    (decomposed,), _ = qml.transforms.decompose(tape, gate_set=set(BASIC_GATE_SET))
    counts: dict[str, int] = {}
    for op in decomposed.operations:
        counts[op.name] = counts.get(op.name, 0) + 1
    return {"width": width, "depth": _depth(decomposed.operations), "gate_counts": counts,
            "two_qubit_gates": sum(1 for op in decomposed.operations if len(op.wires) == 2),
            "total_gates": len(decomposed.operations)}


@lru_cache(maxsize=256)
def _circuit_resources(spec: FeatureMapSpec) -> tuple:
    # Generic non-special input so no rotation is decomposed away as identity.
    sizes = tape_resources(feature_map_tape(spec, np.linspace(0.3, 1.1, spec.n_qubits)), spec.n_qubits)
    return (sizes["width"], sizes["depth"], tuple(sorted(sizes["gate_counts"].items())), sizes["two_qubit_gates"],
            sizes["total_gates"])


def circuit_resources(spec: FeatureMapSpec) -> dict[str, Any]:
    """Resources of U(x) alone, after decomposition to :data:`BASIC_GATE_SET` (H, RX, RY, RZ, CNOT).

    Returns {"width", "depth", "gate_counts": {name: n}, "two_qubit_gates", "total_gates",
    "gate_set"}. A compute-uncompute kernel circuit costs twice this (plus measurement).
    """
    width, depth, counts, two_qubit, total = _circuit_resources(spec)
    return {
        "width": width,
        "depth": depth,
        "gate_counts": dict(counts),
        "two_qubit_gates": two_qubit,
        "total_gates": total,
        "gate_set": list(BASIC_GATE_SET),
    }


def is_real_map(spec: FeatureMapSpec) -> bool:
    """True when every state of this map has real amplitudes."""
    return FEATURE_MAPS[spec.name].real_amplitudes
