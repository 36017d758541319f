"""Device snapshots: what a quantum device is, as far as circuits and their cost are concerned.

A :class:`DeviceSnapshot` holds a device's qubits, its coupling map, its native gates (named as
Qiskit names them, so Qiskit's transpiler can target them) and, where published, its calibration.
Two sources:

- files shipped in ``device_snapshots/`` for the Braket devices (IQM Garnet, Rigetti Ankaa-3, IonQ
  Forte-1): each file says where its figures come from; their calibrations are typical medians,
  not one day's values;
- IBM devices from ``qiskit-ibm-runtime``'s fake backends (``ibm_torino``, ``ibm_brisbane``, ...),
  which carry a real topology and a real per-qubit, per-pair calibration offline. The default ones
  ship in ``device_snapshots/ibm/``, written from the fake backends by :func:`write_ibm_snapshot`
  (a test keeps them equal), so a run does not build the fake backends to read them.

Devices are named by snapshot name (``iqm_garnet``), Braket ARN or IBM backend name
(:func:`device_snapshot`). Nothing here talks to a provider.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SNAPSHOT_FOLDER = Path(__file__).with_name("device_snapshots")
IBM_SNAPSHOT_FOLDER = SNAPSHOT_FOLDER / "ibm"
# A folder of Braket standardized calibrations, one <snapshot name>.json each (a day's figures).
CALIBRATIONS_VARIABLE = "HYBRID_DEVICE_CALIBRATIONS"
# IBM backends offered by default (a Heron with CZ, an Eagle with directed ECR); any other fake
# backend of qiskit-ibm-runtime is reachable by its name.
DEFAULT_IBM_DEVICES = ("ibm_torino", "ibm_brisbane")


@dataclass(frozen=True)
class Calibration:
    """Error rates in [0, 1): average gate infidelity of one- and two-qubit native gates and the
    readout misassignment probability, as medians, with per-qubit / per-pair figures where the
    source has them (they win over the medians)."""

    one_qubit_error: float
    two_qubit_error: float
    readout_error: float
    kind: str  # "typical medians, ..." or "per qubit and pair, ..."
    # Not part of equality or the hash (the snapshot hash covers the medians): a snapshot stays hashable.
    per_qubit_1q: dict[int, float] = field(default_factory=dict, compare=False)
    per_pair_2q: dict[tuple[int, int], float] = field(default_factory=dict, compare=False)
    per_qubit_readout: dict[int, float] = field(default_factory=dict, compare=False)

    def error_1q(self, qubit: int) -> float:
        return self.per_qubit_1q.get(qubit, self.one_qubit_error)

    def error_2q(self, a: int, b: int) -> float:
        return self.per_pair_2q.get((a, b), self.per_pair_2q.get((b, a), self.two_qubit_error))

    def readout(self, qubit: int) -> float:
        return self.per_qubit_readout.get(qubit, self.readout_error)

    def to_json(self) -> dict[str, Any]:
        """Every figure, the per-qubit and per-pair ones as ``[qubit, error]`` and ``[a, b, error]``
        rows (JSON has no tuple keys); :meth:`from_json` reads it back."""
        return {"one_qubit_error": self.one_qubit_error, "two_qubit_error": self.two_qubit_error,
                "readout_error": self.readout_error, "kind": self.kind,
                "per_qubit_1q": [[q, e] for q, e in self.per_qubit_1q.items()],
                "per_pair_2q": [[a, b, e] for (a, b), e in self.per_pair_2q.items()],
                "per_qubit_readout": [[q, e] for q, e in self.per_qubit_readout.items()]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        """A calibration as a snapshot file holds it: the medians and the kind, and the per-qubit and
        per-pair rows of :meth:`to_json` where the file has them."""
        return cls(one_qubit_error=data["one_qubit_error"], two_qubit_error=data["two_qubit_error"],
                   readout_error=data["readout_error"], kind=data["kind"],
                   per_qubit_1q={int(q): e for q, e in data.get("per_qubit_1q", [])},
                   per_pair_2q={(int(a), int(b)): e for a, b, e in data.get("per_pair_2q", [])},
                   per_qubit_readout={int(q): e for q, e in data.get("per_qubit_readout", [])})

    def to_dict(self) -> dict[str, Any]:
        """The medians and the kind (per-qubit figures are summarised by their count)."""
        return {"one_qubit_error": self.one_qubit_error, "two_qubit_error": self.two_qubit_error,
                "readout_error": self.readout_error, "kind": self.kind,
                "per_qubit_figures": len(self.per_qubit_1q) + len(self.per_pair_2q) + len(self.per_qubit_readout)}


def braket_fidelities(properties: dict[str, Any]) -> tuple[dict[str, float], dict[str, float],
                                                          dict[tuple[str, str], float]]:
    """From a Braket standardized calibration (``AwsDevice(arn).properties.standardized``, as a
    dict): per qubit label its randomized-benchmarking and its readout fidelity, and per coupled
    pair of labels the mean fidelity of the two-qubit gates listed for it."""
    rb, readout = {}, {}
    for qubit, figures in properties.get("oneQubitProperties", {}).items():
        for fidelity in figures.get("oneQubitFidelity", []):
            kind = fidelity["fidelityType"]["name"]
            if kind == "RANDOMIZED_BENCHMARKING":
                rb[qubit] = float(fidelity["fidelity"])
            elif kind == "READOUT":
                readout[qubit] = float(fidelity["fidelity"])
    pairs = {}
    for pair, figures in properties.get("twoQubitProperties", {}).items():
        listed = [float(gate["fidelity"]) for gate in figures.get("twoQubitGateFidelity", [])]
        if listed:
            a, b = pair.split("-")
            pairs[(a, b)] = sum(listed) / len(listed)
    return rb, readout, pairs


def calibration_from_braket(properties: dict[str, Any], *, qubit_offset: int = 0, source: str = "") -> Calibration:
    """A :class:`Calibration` from a Braket standardized calibration: errors are 1 - fidelity, per
    qubit and pair, with medians; the device's qubit label ``k`` is snapshot qubit ``k - qubit_offset``
    (IQM numbers its qubits from 1)."""
    rb, readout, pairs = braket_fidelities(properties)
    per_qubit = {int(q) - qubit_offset: 1.0 - f for q, f in rb.items()}
    per_readout = {int(q) - qubit_offset: 1.0 - f for q, f in readout.items()}
    per_pair = {(int(a) - qubit_offset, int(b) - qubit_offset): 1.0 - f for (a, b), f in pairs.items()}
    return Calibration(one_qubit_error=_median(list(per_qubit.values())),
                       two_qubit_error=_median(list(per_pair.values())),
                       readout_error=_median(list(per_readout.values())),
                       kind=f"per qubit and pair, from the Braket calibration {source}".rstrip(),
                       per_qubit_1q=per_qubit, per_pair_2q=per_pair, per_qubit_readout=per_readout)


@dataclass(frozen=True)
class DeviceSnapshot:
    """One device: ``qubits`` physical qubits 0..qubits-1; ``coupling_map`` the directed pairs
    (control, target) a two-qubit native gate may act on; ``native_gates`` Qiskit gate names
    (``measure`` is implied); ``virtual_gates`` those done in software (no error, no time)."""

    name: str
    provider: str  # "braket" | "ibm"
    identifier: str  # Braket ARN or IBM backend name
    qubits: int
    native_gates: tuple[str, ...]
    coupling_map: tuple[tuple[int, int], ...]
    virtual_gates: tuple[str, ...]
    calibration: Calibration | None
    source: str
    captured: str

    @property
    def edges(self) -> frozenset[tuple[int, int]]:
        return frozenset(self.coupling_map)

    @property
    def snapshot_hash(self) -> str:
        """Content hash of what transpilation depends on (topology and native gates) and of the
        calibration's medians: a changed snapshot gives circuits a new version."""
        content = {"name": self.name, "qubits": self.qubits, "native_gates": list(self.native_gates),
                   "coupling_map": [list(pair) for pair in sorted(self.coupling_map)],
                   "calibration": self.calibration.to_dict() if self.calibration else None}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """What a report shows of the device (no coupling map: it can be thousands of pairs)."""
        return {"device": self.name, "provider": self.provider, "identifier": self.identifier,
                "qubits": self.qubits, "native_gates": list(self.native_gates),
                "couplers": len({tuple(sorted(pair)) for pair in self.coupling_map}),
                "calibration": self.calibration.to_dict() if self.calibration else None,
                "snapshot_hash": self.snapshot_hash, "source": self.source, "captured": self.captured}


    def backend_config(self, shots: int) -> Any:
        """The BackendConfig that would run on this device with ``shots`` shots per circuit (Braket
        by its ARN, IBM Quantum by its backend name); plain data, nothing is opened."""
        from hybrid_resources.quantum.backends import BackendConfig

        if self.provider == "ibm":
            return BackendConfig(device_name="qiskit.remote", shots=shots, device_options=(("backend", self.identifier),))
        return BackendConfig(device_name="braket.aws.qubit", shots=shots, device_options=(("device_arn", self.identifier),))


class UnknownDeviceError(ValueError):
    pass


def _from_file(path: Path, calibrations: str = "") -> DeviceSnapshot:
    """A shipped snapshot; with ``calibrations`` (a folder) holding ``<its name>.json``, that day's
    Braket calibration replaces its medians."""
    data = json.loads(path.read_text())
    qubits = int(data["qubits"])
    pairs = (itertools.combinations(range(qubits), 2) if data["coupling_map"] == "all_to_all"
             else (tuple(pair) for pair in data["coupling_map"]))
    coupling = tuple((a, b) for a, b in pairs)
    if data.get("bidirectional", True):
        coupling = coupling + tuple((b, a) for a, b in coupling)
    calibration = Calibration.from_json(data["calibration"]) if data.get("calibration") else None
    captured, day = data["captured"], Path(calibrations) / path.name if calibrations else None
    if day is not None and day.is_file():
        calibration = calibration_from_braket(json.loads(day.read_text()),
                                              qubit_offset=int(data.get("braket_qubit_offset", 0)), source=str(day))
        captured = f"calibration {day.name}"
    return DeviceSnapshot(
        name=data["name"], provider=data["provider"], identifier=data["identifier"], qubits=qubits,
        native_gates=tuple(data["native_gates"]), coupling_map=coupling,
        virtual_gates=tuple(data.get("virtual_gates", ())), calibration=calibration, source=data["source"],
        captured=captured)


def _median(values: list[float], default: float = 0.0) -> float:
    values = sorted(v for v in values if v is not None)
    return float(values[len(values) // 2]) if values else default


def _from_ibm_fake(backend_name: str) -> DeviceSnapshot:
    from qiskit_ibm_runtime import fake_provider

    # FakeTorino is ibm_torino; the fake backends of retired devices are listed the same way.
    fakes = {name.removeprefix("Fake").removesuffix("V2").lower(): cls for name, cls in vars(fake_provider).items()
             if name.startswith("Fake") and isinstance(cls, type) and "Provider" not in name
             and not name.endswith("Backend")}
    key = backend_name.removeprefix("ibm_")
    if key not in fakes:
        raise UnknownDeviceError(f"no IBM fake backend {backend_name!r}; known: "
                                 f"{', '.join(sorted('ibm_' + k for k in fakes))}")
    backend = fakes[key]()
    target = backend.target
    two_qubit = [name for name in ("cz", "ecr", "cx") if name in target.operation_names]
    one_qubit = [name for name in ("sx", "x", "rz") if name in target.operation_names]
    per_pair = {pair: props.error for name in two_qubit for pair, props in target[name].items()
                if props is not None and props.error is not None}
    per_qubit = {qubits[0]: props.error for qubits, props in target["sx"].items()
                 if props is not None and props.error is not None}
    readout = {qubits[0]: props.error for qubits, props in target["measure"].items()
               if props is not None and props.error is not None}
    calibration = Calibration(
        one_qubit_error=_median(list(per_qubit.values())), two_qubit_error=_median(list(per_pair.values())),
        readout_error=_median(list(readout.values())),
        kind=f"per qubit and pair, from qiskit-ibm-runtime's {type(backend).__name__}",
        per_qubit_1q=per_qubit, per_pair_2q=per_pair, per_qubit_readout=readout)
    # A coupler calibrated at error 1 is out of service: routing must not use it.
    coupling = tuple(sorted({pair for name in two_qubit for pair, props in target[name].items()
                             if props is None or props.error is None or props.error < 1.0}))
    return DeviceSnapshot(
        name=f"ibm_{key}", provider="ibm", identifier=f"ibm_{key}", qubits=target.num_qubits,
        native_gates=tuple(two_qubit + one_qubit), coupling_map=coupling, virtual_gates=("rz",),
        calibration=calibration,
        source=f"qiskit-ibm-runtime fake backend {type(backend).__name__}: the device's real topology, gates and a "
               "recorded calibration",
        captured=str(getattr(backend.properties(), "last_update_date", "") or ""))


def write_ibm_snapshot(backend_name: str, folder: Path = IBM_SNAPSHOT_FOLDER) -> Path:
    """Write the snapshot of qiskit-ibm-runtime's fake backend ``backend_name`` to
    ``folder/<name>.json`` in the shipped snapshots' format (after upgrading qiskit-ibm-runtime, for
    each of :data:`DEFAULT_IBM_DEVICES`)."""
    snapshot = _from_ibm_fake(backend_name)
    path = folder / f"{snapshot.name}.json"
    path.write_text(json.dumps({
        "name": snapshot.name, "provider": snapshot.provider, "identifier": snapshot.identifier,
        "qubits": snapshot.qubits, "native_gates": list(snapshot.native_gates),
        "virtual_gates": list(snapshot.virtual_gates), "source": snapshot.source, "captured": snapshot.captured,
        "bidirectional": False,  # the coupling map is already directed (ECR couplers go one way)
        "coupling_map": [list(pair) for pair in snapshot.coupling_map],
        "calibration": snapshot.calibration.to_json()}, indent=1) + "\n")
    return path


def shipped_devices() -> tuple[str, ...]:
    """The names of the snapshots shipped as files (the Braket devices)."""
    return tuple(sorted(path.stem for path in SNAPSHOT_FOLDER.glob("*.json")))


def known_devices() -> tuple[str, ...]:
    """The devices every report covers by default: the shipped snapshots and :data:`DEFAULT_IBM_DEVICES`."""
    return shipped_devices() + DEFAULT_IBM_DEVICES


def device_snapshot(device: str) -> DeviceSnapshot:
    """The snapshot of ``device``: a shipped snapshot's name, a Braket ARN one of them carries, or
    an IBM backend name (``ibm_torino``) with a fake backend in qiskit-ibm-runtime. Raises
    UnknownDeviceError naming the known ones otherwise.

    A shipped snapshot takes a day's calibration from ``$HYBRID_DEVICE_CALIBRATIONS/<name>.json``
    when that file exists: the device's Braket standardized properties, e.g. saved with
    ``AwsDevice(arn).properties.standardized.json()``."""
    return _snapshot(device.strip(), os.environ.get(CALIBRATIONS_VARIABLE, "").strip())


@lru_cache(maxsize=64)
def _snapshot(device: str, calibrations: str) -> DeviceSnapshot:
    for name in shipped_devices():
        snapshot = _from_file(SNAPSHOT_FOLDER / f"{name}.json", calibrations)
        if device in (name, snapshot.identifier) or device.lower() == snapshot.identifier.lower():
            return snapshot
    if device.startswith("ibm_") or device.startswith("fake_"):
        shipped = IBM_SNAPSHOT_FOLDER / f"ibm_{device.removeprefix('fake_').removeprefix('ibm_')}.json"
        return _from_file(shipped) if shipped.is_file() else _from_ibm_fake(device.removeprefix("fake_"))
    raise UnknownDeviceError(f"unknown device {device!r}: name a snapshot ({', '.join(shipped_devices())}), its "
                             f"Braket ARN, or an IBM backend such as {DEFAULT_IBM_DEVICES[0]}")
