"""Circuits on real device topologies: transpiled sizes, the three-way check, and the predicted
kernel error against Aer's own noise model of the same fake IBM backends.

For each device snapshot (the shipped Braket ones, IBM Torino, Brisbane and Fez) and each IQP map
(linear and full entanglement, reps 2, 4/6/8 qubits) it transpiles U(x) with the default settings
(Qiskit preset pass manager, optimization level 1, SABRE, seed 7) and prints the logical and
transpiled depth, the two-qubit gates, the SWAPs routing inserted, the transpile time, and the
check: off-coupler gates, foreign gates and the state fidelity up to the final permutation.

Then, for FakeTorino and FakeBrisbane, it predicts ``--pairs`` kernel entries from the calibration
(``hybrid_resources.quantum.calibrated_noise``) and simulates the same transpiled circuits with
``AerSimulator.from_backend`` (depolarizing + thermal relaxation, asymmetric readout, 100,000
shots), and prints both mean |error| and the largest entry difference.

    .venv/bin/python bench/transpile_bench.py [--pairs 6] [--skip-reference]

Writes ``bench/results/transpile_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from hybrid_resources.quantum.calibrated_noise import kernel_circuit, predict_kernel_error, sample_pairs
from hybrid_resources.quantum.devices import device_snapshot, known_devices
from hybrid_resources.quantum.feature_maps import FeatureMapSpec, circuit_resources, to_openqasm
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from hybrid_resources.quantum.transpilation import transpile_for, verify_transpiled

ROOT = Path(__file__).resolve().parents[1]
SHOTS = 100_000


def transpile_rows() -> list[dict]:
    rows = []
    for n_qubits in (4, 6, 8):
        for entanglement in ("linear", "full"):
            spec = FeatureMapSpec("iqp", n_qubits, reps=2, entanglement=entanglement)
            openqasm = to_openqasm(spec, np.linspace(0.3, 1.1, n_qubits))
            logical = circuit_resources(spec)
            for device in known_devices() + ("ibm_fez",):
                snapshot = device_snapshot(device)
                started = time.perf_counter()
                transpiled = transpile_for(openqasm, snapshot)
                seconds = time.perf_counter() - started
                check = verify_transpiled(openqasm, transpiled, snapshot)
                rows.append({"device": device, "qubits": n_qubits, "entanglement": entanglement,
                             "logical_depth": logical["depth"], "logical_two_qubit_gates": logical["two_qubit_gates"],
                             **{key: value for key, value in transpiled.resources().items() if key != "gate_counts"},
                             "transpile_s": round(seconds, 4), "off_coupling_map": len(check.off_coupling_map),
                             "foreign_gates": list(check.foreign_gates), "fidelity": check.fidelity})
    return rows


def reference_rows(pairs: int) -> list[dict]:
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeBrisbane, FakeTorino

    rows = []
    X = np.random.default_rng(0).uniform(0, np.pi, size=(6, 4))
    entries = sample_pairs(len(X), pairs)
    for entanglement in ("linear", "full"):
        spec = FeatureMapSpec("iqp", 4, reps=2, entanglement=entanglement, bandwidth=0.5)
        exact_kernel = quantum_kernel(X, spec=spec).matrix
        exact = np.array([exact_kernel[i, j] for i, j in entries])
        for fake, device in ((FakeTorino, "ibm_torino"), (FakeBrisbane, "ibm_brisbane")):
            snapshot = device_snapshot(device)
            started = time.perf_counter()
            predicted = predict_kernel_error(spec, [(X[i], X[j]) for i, j in entries], exact, snapshot)
            predict_s = time.perf_counter() - started
            simulator = AerSimulator.from_backend(fake(), method="density_matrix", seed_simulator=11)
            reference = []
            started = time.perf_counter()
            for i, j in entries:
                circuit = transpile_for(kernel_circuit(spec, X[i], X[j]), snapshot).circuit
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    counts = simulator.run(circuit, shots=SHOTS).result().get_counts()
                reference.append(sum(c for outcome, c in counts.items() if set(outcome.replace(" ", "")) <= {"0"})
                                 / SHOTS)
            reference_s = time.perf_counter() - started
            reference = np.array(reference)
            rows.append({"device": device, "entanglement": entanglement, "pairs": len(entries),
                         "predicted_mean_abs_error": predicted.mean_abs_error,
                         "aer_mean_abs_error": float(np.mean(np.abs(reference - exact))),
                         "max_entry_difference": float(np.max(np.abs(predicted.noisy - reference))),
                         "predict_s": round(predict_s, 3), "aer_reference_s": round(reference_s, 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--skip-reference", action="store_true", help="only the transpilation table")
    args = parser.parse_args()
    transpiled = transpile_rows()
    print("| device | qubits | entanglement | logical depth | depth | 2q logical | 2q | SWAPs | s | off-map | foreign | "
          "1 - fidelity |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in transpiled:
        print(f"| {r['device']} | {r['qubits']} | {r['entanglement']} | {r['logical_depth']} | {r['depth']} | "
              f"{r['logical_two_qubit_gates']} | {r['two_qubit_gates']} | {r['swaps']} | {r['transpile_s']:.3f} | "
              f"{r['off_coupling_map']} | {','.join(r['foreign_gates']) or '-'} | {1 - r['fidelity']:.1e} |")
    reference = [] if args.skip_reference else reference_rows(args.pairs)
    if reference:
        print("\n| device | entanglement | pairs | predicted mean abs error | Aer mean abs error | max entry diff | "
              "predict s | Aer s |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in reference:
            print(f"| {r['device']} | {r['entanglement']} | {r['pairs']} | {r['predicted_mean_abs_error']:.4f} | "
                  f"{r['aer_mean_abs_error']:.4f} | {r['max_entry_difference']:.4f} | {r['predict_s']:.2f} | "
                  f"{r['aer_reference_s']:.1f} |")
    target = ROOT / "bench" / "results" / "transpile_bench.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"transpiled": transpiled, "prediction_vs_aer": reference}, indent=1))
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
