"""What every circuit asset reports about its circuit: its OpenQASM (written beside the artifacts and
shown in the metadata), its size after decomposition, and the ``circuit_ceilings`` check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagster import AssetCheckResult, MetadataValue

from hybrid_assets.common.gates import circuit_ceilings
from hybrid_assets.common.reporting import code_block
from hybrid_resources.data.paths import DataLayout, atomic_write
from hybrid_resources.gate_policy import GatePolicy

__all__ = ["Ceilings", "circuit_report"]


@dataclass(frozen=True)
class Ceilings:
    """The circuit ceilings one circuit asset is checked against."""

    max_width: int
    max_depth: int
    max_two_qubit_gates: int

    @classmethod
    def of(cls, gate_policy: GatePolicy) -> Ceilings:
        """The ceilings of the gate policy."""
        return cls(gate_policy.max_width, gate_policy.max_depth, gate_policy.max_two_qubit_gates)


def circuit_report(asset_name: str, openqasm: str, resources: dict[str, Any], ceilings: Ceilings, *,
                   max_lines: int = 120) -> tuple[dict[str, Any], AssetCheckResult]:
    """Write ``openqasm`` to ``<artifacts>/<asset_name>/circuit.qasm``; return the circuit's metadata
    (width, depth, two-qubit gates, gate counts, the OpenQASM cut after ``max_lines`` lines, its path),
    to follow the asset's own keys, and the ``circuit_ceilings`` check of ``resources``."""
    qasm_path = DataLayout.from_env().artifacts / asset_name / "circuit.qasm"
    atomic_write(qasm_path, lambda handle: handle.write(openqasm.encode()))
    metadata = {
        "width": resources["width"],
        "depth": resources["depth"],
        "two_qubit_gates": resources["two_qubit_gates"],
        "gate_counts": MetadataValue.json(resources["gate_counts"]),
        "openqasm": MetadataValue.md(code_block(openqasm, "qasm", max_lines=max_lines, whole=str(qasm_path))),
        "openqasm_path": MetadataValue.path(str(qasm_path)),
    }
    gate = circuit_ceilings(resources, max_width=ceilings.max_width, max_depth=ceilings.max_depth,
                            max_two_qubit_gates=ceilings.max_two_qubit_gates)
    check = AssetCheckResult(check_name="circuit_ceilings", passed=gate.passed,
                             metadata={"message": gate.message, **gate.figures})
    return metadata, check
