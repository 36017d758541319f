"""Per-circuit cost of the spend ledger on a priced local device, with and without batching.

    .venv/bin/python bench/ledger_overhead.py [--circuits 200] [--repeats 5] [--qubits 4] [--shots 100]

``braket.local.qubit`` is priced like a QPU in a copy of the price table, so every circuit is a
billed task the ledger counts when the device creates it. Three ways to run the same circuits
(``execute_tapes``, one circuit per device call as on Braket without parallel submission), each
on a fresh DuckDB warehouse:

- ``free``: no price, no ledger: the simulation alone (the floor);
- ``per-circuit``: the ledger writing every task to the warehouse at once (``FLUSH_EVERY = 1``),
  the write pattern of the ledger before batching (one DuckDB open and insert per circuit), plus
  its journal line;
- ``batched``: the ledger as shipped: one fsync'd journal line per task, the warehouse written
  every ``SpendLedger.FLUSH_EVERY`` tasks and on close.

Overhead per circuit = (wall time of the mode - wall time of ``free``) / circuits, median over
``--repeats`` runs. Prints the figures and writes bench/results/ledger_overhead-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pennylane as qml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_resources.cost_policy import CostPolicy, load_price_table
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.execution import execute_tapes

MODES = ("free", "per-circuit", "batched")


def priced_table(folder: Path) -> Path:
    """The shipped price table with braket.local.qubit at $0.30 per task + $0.01 per shot."""
    table = load_price_table()
    table["free_devices"] = [name for name in table["free_devices"] if name != "braket.local.qubit"]
    table["devices"]["braket.local.qubit"] = {"per_task": 0.30, "per_shot": 0.01}
    path = folder / "prices.json"
    path.write_text(json.dumps(table))
    return path


def circuits(n: int, qubits: int, shots: int) -> list[qml.tape.QuantumScript]:
    return [qml.tape.QuantumScript([qml.RY(0.01 * (i + 1), w) for w in range(qubits)]
                                   + [qml.CNOT([w, w + 1]) for w in range(qubits - 1)],
                                   [qml.probs(wires=range(qubits))], shots=shots) for i in range(n)]


def run_once(mode: str, args, folder: Path) -> dict:
    backend = BackendConfig("braket.local.qubit", shots=args.shots)
    tapes = circuits(args.circuits, args.qubits, args.shots)
    if mode == "free":
        started = time.perf_counter()
        execute_tapes(tapes, backend, args.qubits)
        return {"wall_s": time.perf_counter() - started}
    policy = CostPolicy(warehouse=Warehouse(path=str(folder / "warehouse.duckdb")), run_budget_usd=1e6,
                        daily_budget_usd=1e6, price_table_path=str(priced_table(folder)))
    started = time.perf_counter()
    with policy.ledger(run_id=f"bench-{mode}", asset="bench", backend=backend) as ledger:
        if mode == "per-circuit":
            ledger.FLUSH_EVERY = 1
        ledger.admit(args.circuits, args.shots, n_qubits=args.qubits)
        execute_tapes(tapes, backend, args.qubits, ledger=ledger)
    wall_s = time.perf_counter() - started
    with policy.warehouse.connect(read_only=True) as connection:
        rows, tasks = connection.execute("SELECT count(*), sum(tasks) FROM quantum_spend").fetchone()
    assert tasks == ledger.tasks == args.circuits, (tasks, ledger.tasks)
    return {"wall_s": wall_s, "quantum_spend_rows": int(rows), "tasks_recorded": int(tasks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--circuits", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--shots", type=int, default=100)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for mode in MODES:  # warm-up (imports, the plugin's first device, DuckDB), not measured
        with tempfile.TemporaryDirectory() as folder:
            run_once(mode, argparse.Namespace(**{**vars(args), "circuits": 5}), Path(folder))
    for repeat in range(args.repeats):
        for mode in MODES:  # interleaved, so drift on a shared machine hits every mode alike
            with tempfile.TemporaryDirectory() as folder:
                runs[mode].append(run_once(mode, args, Path(folder)))
    median = {mode: statistics.median(run["wall_s"] for run in runs[mode]) for mode in MODES}
    figures = {mode: {"median_wall_s": median[mode], "median_ms_per_circuit": 1e3 * median[mode] / args.circuits,
                      "overhead_ms_per_circuit": 1e3 * (median[mode] - median["free"]) / args.circuits,
                      "quantum_spend_rows": runs[mode][-1].get("quantum_spend_rows")} for mode in MODES}
    print(f"{args.circuits} circuits x {args.shots} shots, {args.qubits} qubits, braket.local.qubit priced; "
          f"median of {args.repeats}")
    print(f"{'mode':<12} {'ms/circuit':>11} {'overhead ms/circuit':>20} {'quantum_spend rows':>19}")
    for mode in MODES:
        row = figures[mode]
        print(f"{mode:<12} {row['median_ms_per_circuit']:>11.2f} {row['overhead_ms_per_circuit']:>20.2f} "
              f"{row['quantum_spend_rows']!s:>19}")
    out = Path(__file__).parent / "results" / f"ledger_overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "figures": figures, "runs": runs}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
