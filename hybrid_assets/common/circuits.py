"""What every circuit asset reports about its circuit: its OpenQASM (written beside the artifacts and
shown in the metadata), its size after decomposition and, where given, after transpilation to each
device, and the ``circuit_ceilings`` check (the logical circuit and every target device's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagster import AssetCheckResult, MetadataValue

from hybrid_assets.common.gates import GateResult, circuit_ceilings
from hybrid_assets.common.reporting import code_block
from hybrid_resources.data.paths import DataLayout, atomic_write
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.devices import device_snapshot

__all__ = ["Ceilings", "ceilings_gate", "circuit_report", "transpiled_table"]


@dataclass(frozen=True)
class Ceilings:
    """The circuit ceilings one circuit asset is checked against: on the logical circuit, and on
    its transpilation to each of ``target_devices`` (device snapshot names)."""

    max_width: int
    max_depth: int
    max_two_qubit_gates: int
    target_devices: tuple[str, ...] = ()

    @classmethod
    def of(cls, gate_policy: GatePolicy) -> Ceilings:
        """The ceilings of the gate policy, its target devices resolved to snapshot names (an
        unknown device raises UnknownDeviceError)."""
        devices = tuple(device_snapshot(name).name for name in gate_policy.target_devices.split(",") if name.strip())
        return cls(gate_policy.max_width, gate_policy.max_depth, gate_policy.max_two_qubit_gates, devices)

    def judge(self, resources: dict[str, Any]) -> GateResult:
        return circuit_ceilings(resources, max_width=self.max_width, max_depth=self.max_depth,
                                max_two_qubit_gates=self.max_two_qubit_gates)


def ceilings_gate(resources: dict[str, Any], ceilings: Ceilings, transpiled: dict[str, dict] | None = None) -> GateResult:
    """``circuit_ceilings`` on the logical ``resources`` and on each target device's entry of
    ``transpiled`` (:func:`~hybrid_resources.quantum.transpilation.transpile_on_devices`); it fails
    when any of them is over a ceiling, or the circuit does not fit a target device."""
    logical = ceilings.judge(resources)
    problems = [] if logical.passed else [logical.message]
    figures = dict(logical.figures)
    for device in ceilings.target_devices:
        entry = (transpiled or {}).get(device)
        if entry is None or not entry["fits"]:
            problems.append(f"{device}: {entry['reason'] if entry else 'not transpiled'}")
            continue
        on_device = ceilings.judge(entry["resources"])
        figures |= {f"{device}_{name}": entry["resources"][name] for name in ("width", "depth", "two_qubit_gates")}
        figures[f"{device}_swaps"] = entry["resources"]["swaps"]
        if not on_device.passed:
            problems.append(f"after transpilation to {device}: {on_device.message}")
    judged = "the logical circuit" + "".join(f", {device}" for device in ceilings.target_devices)
    return GateResult("circuit_ceilings", not problems,
                      f"within ceilings ({judged})" if not problems else "; ".join(problems), figures)


def transpiled_table(transpiled: dict[str, dict]) -> str:
    """A markdown table of the circuit on each device: width, depth, two-qubit gates, SWAPs."""
    rows = ["| device | qubits used | depth | two-qubit gates | SWAPs inserted |", "| --- | --- | --- | --- | --- |"]
    for device, entry in transpiled.items():
        if not entry["fits"]:
            rows.append(f"| {device} | does not fit: {entry['reason']} | | | |")
            continue
        sizes = entry["resources"]
        rows.append(f"| {device} | {sizes['width']} | {sizes['depth']} | {sizes['two_qubit_gates']} | {sizes['swaps']} |")
    return "\n".join(rows)


def circuit_report(asset_name: str, openqasm: str, resources: dict[str, Any], ceilings: Ceilings, *,
                   max_lines: int = 120, transpiled: dict[str, dict] | None = None
                   ) -> tuple[dict[str, Any], AssetCheckResult]:
    """Write ``openqasm`` to ``<artifacts>/<asset_name>/circuit.qasm``; return the circuit's metadata
    (width, depth, two-qubit gates, gate counts, the OpenQASM cut after ``max_lines`` lines, its path,
    and with ``transpiled`` the table per device), to follow the asset's own keys, and the
    ``circuit_ceilings`` check (:func:`ceilings_gate`)."""
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
    if transpiled:
        metadata["transpiled"] = MetadataValue.md(transpiled_table(transpiled))
    gate = ceilings_gate(resources, ceilings, transpiled)
    check = AssetCheckResult(check_name="circuit_ceilings", passed=gate.passed,
                             metadata={"message": gate.message, **gate.figures})
    return metadata, check
