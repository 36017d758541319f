"""Circuits transpiled to each shipped device snapshot by Qiskit's SABRE pass managers, checked
three ways: every two-qubit gate on a coupler, only native gates, and the original's state up to
the final qubit permutation on the exact simulator."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from dagster import AssetKey, materialize

from hybrid_assets.common.circuits import Ceilings, ceilings_gate
from hybrid_assets.definitions import all_assets
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.devices import (
    DEFAULT_IBM_DEVICES,
    IBM_SNAPSHOT_FOLDER,
    UnknownDeviceError,
    _from_ibm_fake,
    device_snapshot,
    known_devices,
    shipped_devices,
)
from hybrid_resources.quantum.feature_maps import FeatureMapSpec, circuit_resources, to_openqasm
from hybrid_resources.quantum.transpilation import (
    TranspileSettings,
    parse_openqasm,
    transpile_for,
    transpile_on_devices,
    verify_transpiled,
)
from tests.bad_files import write_good_csv
from tests.conftest import RESOURCES, SMALL_RUN_CONFIG, ingest

# Every shipped snapshot, the default IBM pair (Heron CZ, Eagle with directed ECR) and a Heron r2.
DEVICES = known_devices() + ("ibm_fez",)
INPUT = np.linspace(0.3, 1.1, 5)


def iqp(entanglement: str, n_qubits: int = 5, reps: int = 2) -> FeatureMapSpec:
    return FeatureMapSpec("iqp", n_qubits, reps=reps, entanglement=entanglement)


def test_the_shipped_snapshots_are_the_three_braket_devices():
    assert set(shipped_devices()) == {"iqm_garnet", "rigetti_ankaa_3", "ionq_forte_1"}
    garnet = device_snapshot("arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet")
    assert garnet.name == "iqm_garnet" and garnet.qubits == 20 and len(garnet.edges) == 60  # 30 couplers, both ways
    forte = device_snapshot("ionq_forte_1")
    assert len(forte.edges) == 36 * 35  # all-to-all
    torino = device_snapshot("ibm_torino")
    assert torino.provider == "ibm" and torino.qubits == 133 and "cz" in torino.native_gates
    assert len(torino.calibration.per_pair_2q) > 100 and 0 < torino.calibration.two_qubit_error < 0.05
    with pytest.raises(UnknownDeviceError, match="iqm_garnet"):
        device_snapshot("qpu/acme/nothing")


@pytest.mark.parametrize("name", DEFAULT_IBM_DEVICES)
def test_a_shipped_ibm_snapshot_is_what_qiskit_ibm_runtimes_fake_backend_gives(name):
    shipped, fake = device_snapshot(name), _from_ibm_fake(name)
    assert (IBM_SNAPSHOT_FOLDER / f"{name}.json").is_file()
    regenerate = f"regenerate with hybrid_resources.quantum.devices.write_ibm_snapshot({name!r})"
    assert shipped == fake and shipped.snapshot_hash == fake.snapshot_hash, regenerate
    for figures in ("per_qubit_1q", "per_pair_2q", "per_qubit_readout"):
        assert getattr(shipped.calibration, figures) == getattr(fake.calibration, figures), regenerate
    assert device_snapshot(f"fake_{name.removeprefix('ibm_')}") == shipped


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("entanglement", ["linear", "full"])
def test_a_transpiled_circuit_sits_on_couplers_uses_native_gates_and_keeps_the_state(device, entanglement):
    snapshot = device_snapshot(device)
    openqasm = to_openqasm(iqp(entanglement), INPUT)
    transpiled = transpile_for(openqasm, snapshot)
    check = verify_transpiled(openqasm, transpiled, snapshot)
    assert check.off_coupling_map == () and check.foreign_gates == ()
    assert check.fidelity == pytest.approx(1.0, abs=1e-9)
    assert check.passed()
    assert set(transpiled.gate_counts) <= set(snapshot.native_gates)
    assert transpiled.two_qubit_gates >= circuit_resources(iqp(entanglement))["two_qubit_gates"]


def test_the_check_catches_a_wrong_circuit_an_off_map_gate_and_a_foreign_gate():
    snapshot = device_snapshot("iqm_garnet")
    openqasm = to_openqasm(iqp("linear"), INPUT)
    transpiled = transpile_for(openqasm, snapshot)
    other = to_openqasm(iqp("linear"), INPUT + 0.5)
    assert verify_transpiled(other, transpiled, snapshot).fidelity < 0.999
    broken = transpiled.circuit.copy()
    broken.cx(0, 19)  # not a coupler on Garnet, and CX is not native there
    from dataclasses import replace

    check = verify_transpiled(openqasm, replace(transpiled, circuit=broken), snapshot)
    assert (0, 19) in check.off_coupling_map and "cx" in check.foreign_gates and not check.passed()


def test_routing_inserts_swaps_on_a_lattice_and_none_all_to_all():
    openqasm = to_openqasm(iqp("full", n_qubits=6), np.linspace(0.3, 1.1, 6))
    on_lattice = transpile_for(openqasm, device_snapshot("iqm_garnet"))
    all_to_all = transpile_for(openqasm, device_snapshot("ionq_forte_1"))
    assert on_lattice.swaps > 0 and all_to_all.swaps == 0
    assert on_lattice.two_qubit_gates > all_to_all.two_qubit_gates


def test_the_same_settings_give_the_same_circuit_and_the_version_records_them():
    openqasm = to_openqasm(iqp("full"), INPUT)
    snapshot = device_snapshot("rigetti_ankaa_3")
    first, again = transpile_for(openqasm, snapshot), transpile_for(openqasm, snapshot)
    assert first.openqasm() == again.openqasm()
    version = first.version()
    assert version["seed"] == 7 and version["optimization_level"] == 1 and version["layout_method"] == "sabre"
    assert version["routing_method"] == "sabre" and version["transpiler"].startswith("qiskit ")
    assert version["snapshot_hash"] == snapshot.snapshot_hash
    assert transpile_for(openqasm, snapshot, TranspileSettings(optimization_level=0)).version() != version


@pytest.mark.parametrize("device", ["iqm_garnet", "ibm_fez"])
def test_a_reused_pass_manager_transpiles_as_a_new_one_would(device):
    """transpile_for builds each device's pass manager once; after other circuits went through it,
    it still gives what a pass manager generated for this circuit alone gives."""
    from hybrid_resources.quantum.transpilation import preset_pass_manager

    snapshot, settings = device_snapshot(device), TranspileSettings()
    circuits = [parse_openqasm(to_openqasm(iqp(entanglement, n_qubits=5), np.linspace(0.2, 1.4, 5) + shift))
                for entanglement in ("linear", "full") for shift in (0.0, 0.7)]
    reused = [transpile_for(circuit, snapshot, settings) for circuit in circuits]
    assert preset_pass_manager.cache_info().currsize >= 1
    for circuit, transpiled in zip(circuits, reused, strict=True):
        fresh = preset_pass_manager.__wrapped__(snapshot, settings).run(circuit)  # built anew, not the cached one
        assert transpiled.circuit == fresh
        assert transpiled.final_layout == tuple(fresh.layout.final_index_layout(filter_ancillas=True))


def test_a_circuit_wider_than_the_device_does_not_fit():
    openqasm = to_openqasm(FeatureMapSpec("iqp", 21, reps=1), np.linspace(0.1, 2.0, 21))
    with pytest.raises(ValueError, match="do not fit iqm_garnet"):
        transpile_for(openqasm, device_snapshot("iqm_garnet"))
    report = transpile_on_devices(parse_openqasm(openqasm), ["iqm_garnet", "ionq_forte_1"])
    assert report["iqm_garnet"] == {"fits": False, "reason": "21 qubits > 20"} and report["ionq_forte_1"]["fits"]


def test_the_ceilings_fail_a_circuit_that_fits_before_transpilation_but_not_after():
    spec = iqp("full", n_qubits=6)
    logical = circuit_resources(spec)
    transpiled = transpile_on_devices(to_openqasm(spec, np.linspace(0.3, 1.1, 6)), ["rigetti_ankaa_3", "ionq_forte_1"])
    ceiling = 400
    assert logical["depth"] <= ceiling < transpiled["rigetti_ankaa_3"]["resources"]["depth"]
    assert ceilings_gate(logical, Ceilings(20, ceiling, 1000), transpiled).passed  # no target device
    on_rigetti = ceilings_gate(logical, Ceilings(20, ceiling, 1000, ("rigetti_ankaa_3",)), transpiled)
    assert not on_rigetti.passed and "after transpilation to rigetti_ankaa_3: depth" in on_rigetti.message
    assert ceilings_gate(logical, Ceilings(20, ceiling, 1000, ("ionq_forte_1",)), transpiled).passed


def test_circuit_artifact_reports_every_device_and_blocks_on_a_target_device(data_layout, instance):
    write_good_csv(data_layout.landing, n_rows=40, n_features=6, seed=4, name="data.csv")
    ingest(instance, "data.csv")
    config = json.loads(json.dumps(SMALL_RUN_CONFIG))
    config["ops"]["reduced_embeddings"]["config"]["n_qubits"] = 6
    config["ops"]["kernel_tuning"] = {"config": {"feature_map": "iqp", "reps": [2], "entanglement": "full",
                                                 "bandwidths": [1.0], "Cs": [1.0]}}
    steps = ["features", "reduced_embeddings", "kernel_tuning", "circuit_artifact", "quantum_kernel_train"]

    def refresh(policy: GatePolicy):
        return materialize(all_assets, selection=steps, instance=instance, run_config=config, raise_on_error=False,
                           resources={**RESOURCES, "gate_policy": policy})

    fits = refresh(GatePolicy(target_devices="ionq_forte_1"))
    assert fits.success
    event = instance.get_latest_materialization_event(AssetKey("circuit_artifact")).asset_materialization
    assert "rigetti_ankaa_3" in event.metadata["transpiled"].value and "ibm_torino" in event.metadata["transpiled"].value
    assert event.metadata["transpile_settings"].value["seed"] == 7
    check = next(e for e in fits.get_asset_check_evaluations() if e.check_name == "circuit_ceilings")
    assert check.passed and check.metadata["ionq_forte_1_swaps"].value == 0

    blocked = refresh(GatePolicy(target_devices="arn:aws:braket:us-west-1::device/qpu/rigetti/Ankaa-3"))
    check = next(e for e in blocked.get_asset_check_evaluations() if e.check_name == "circuit_ceilings")
    assert not check.passed and "after transpilation to rigetti_ankaa_3: depth" in check.metadata["message"].value
    assert check.metadata["depth"].value <= 400 < check.metadata["rigetti_ankaa_3_depth"].value
    assert not blocked.success  # blocking: the kernel is not computed for a circuit the device cannot run
    assert len(instance.fetch_materializations(AssetKey("quantum_kernel_train"), limit=5).records) == 1


def test_tuning_tries_only_the_candidates_within_the_ceilings_on_the_target_devices():
    from hybrid_assets.training.quantum import tune_kernel

    rng = np.random.default_rng(2)
    X, y = rng.uniform(0, np.pi, size=(30, 6)), np.arange(30) % 2
    grid = {"feature_map": "iqp", "entanglement": "full", "bandwidths": [1.0], "reps": [1, 2], "Cs": [1.0],
            "n_qubits": 6, "metric": "accuracy"}
    # IQP full on 6 qubits: reps 2 is depth 49 logically but 566 on Ankaa-3, over the ceiling of 400.
    anywhere = tune_kernel(X, y, grid, GatePolicy())
    assert {c["params"]["reps"] for c in anywhere["candidates"]} == {1, 2}
    on_rigetti = tune_kernel(X, y, grid, GatePolicy(target_devices="rigetti_ankaa_3"))
    assert {c["params"]["reps"] for c in on_rigetti["candidates"]} == {1} and on_rigetti["spec"]["reps"] == 1


def test_an_unknown_target_device_fails_the_step_naming_the_known_ones(data_layout, instance):
    write_good_csv(data_layout.landing, n_rows=30, n_features=4, seed=4, name="data.csv")
    ingest(instance, "data.csv")
    result = materialize(all_assets, selection=["features", "reduced_embeddings", "kernel_tuning"], instance=instance,
                         run_config=SMALL_RUN_CONFIG, raise_on_error=False,
                         resources={**RESOURCES, "gate_policy": GatePolicy(target_devices="qpu/acme/nothing")})
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert "gate_policy.target_devices" in message and "qpu/acme/nothing" in message and "iqm_garnet" in message


def test_import_transpiler_leaves_the_first_transpilation_nothing_to_import():
    """``hybrid-demo`` calls it before its clock: the packages a first transpilation imports, its
    stage plugins (IBM's runtime among them) included, are then paid up front. (Qiskit still
    imports a few of its own submodules on first use: about 4 ms.)"""
    probe = ("import json, sys\n"
             "from hybrid_resources.quantum.devices import device_snapshot\n"
             "from hybrid_resources.quantum.transpilation import import_transpiler, transpile_for\n"
             "before = set(sys.modules)\n"
             "import_transpiler()\n"
             "loaded = set(sys.modules)\n"
             "transpile_for('OPENQASM 2.0; include \"qelib1.inc\"; qreg q[2]; cx q[0], q[1];', "
             "device_snapshot('iqm_garnet'))\n"
             "print(json.dumps([sorted({m.split('.')[0] for m in loaded - before}), "
             "sorted({m.split('.')[0] for m in set(sys.modules) - loaded} - {m.split('.')[0] for m in loaded})]))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    up_front, by_the_transpilation = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"qiskit", "qiskit_ibm_runtime"} <= set(up_front), up_front
    assert by_the_transpilation == [], by_the_transpilation
