"""Hardware economics and noise: what each kernel route would cost, what program sets
save, how far a mitigated noisy kernel is from exact, and how fast the local shot simulators are.

    .venv/bin/python bench/hardware_economics_bench.py [--quick] [--skip-latency] [--braket-dm]

1. Planned cost of the pairwise fidelity kernel vs the projected kernel at N=100 train rows
   (1,000 shots) on IQM Garnet and Rigetti Ankaa-3 list prices (the shipped prices.json), train
   Gram only and with a 25-row test kernel, with and without program sets; nothing is submitted.
2. Task-fee reduction by program sets on the same plans.
3. Noisy kernel at 2% depolarizing noise per qubit, n=4 (IQP reps=2), N=20 samples, on
   default.mixed (and braket_dm with --braket-dm): max/mean abs error against exact before and
   after each PennyLane mitigation; also with gate and readout noise from the example calibration.
4. Per-circuit latency of braket.local.qubit and default.qubit (1,000 shots) for n=4..8, on the
   kernel engine's compute-uncompute circuits and the projected kernel's basis circuits (median
   of --repeats runs): the defaults in hybrid_resources/quantum/planning.py come from here.

Prints the figures and writes bench/results/hardware_economics_bench-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_resources.cost_policy import (  # noqa: E402
    CostPolicy,
    load_price_table,
    program_set_savings,
)
from hybrid_resources.quantum.backends import BackendConfig  # noqa: E402
from hybrid_resources.quantum.feature_maps import FeatureMapSpec  # noqa: E402
from hybrid_resources.quantum.kernel_engine import quantum_kernel  # noqa: E402
from hybrid_resources.quantum.noise import (  # noqa: E402
    MITIGATIONS,
    NoiseModel,
    kernel_error,
    mitigate_kernel,
    noisy_kernel,
)
from hybrid_resources.quantum.planning import PlanRequest, cost_ratio, plan_routes  # noqa: E402
from hybrid_resources.quantum.projected_kernel import (  # noqa: E402
    ProjectedKernelSpec,
    projected_kernel,
)

DEVICES = {
    "IQM Garnet": "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet",
    "Rigetti Ankaa-3": "arn:aws:braket:us-west-1::device/qpu/rigetti/Ankaa-3",
}
SHOTS = 1000


def planned_costs() -> dict:
    """Pairwise vs projected at N=100 per device: train only and with 25 test rows, with and
    without program sets; plus the program-set fee reduction of each plan."""
    table, policy, out = load_price_table(), CostPolicy(), {}
    for name, arn in DEVICES.items():
        backend = BackendConfig(device_name="braket.aws.qubit", shots=SHOTS, device_options=(("device_arn", arn),))
        for n_test in (0, 25):
            for grouped in (False, True):
                device = policy.with_program_sets(backend) if grouped else backend
                plans = plan_routes(PlanRequest(100, n_test, FeatureMapSpec("iqp", 4), landmarks=20), device, table)
                key = f"{name} | N=100 train, {n_test} test | {'program sets' if grouped else 'one circuit per task'}"
                out[key] = {"plans": [p.to_dict() for p in plans],
                            "projected_over_pairwise": cost_ratio(plans, "projected"),
                            "nystrom_over_pairwise": cost_ratio(plans, "nystrom")}
        for route, circuits in (("pairwise", 4950), ("projected", 300)):
            out[f"{name} | program-set savings | {route} N=100"] = program_set_savings(backend, circuits, SHOTS, table)
    return out


def noise_figures(N: int, braket_dm: bool) -> dict:
    """Noisy vs exact kernel at n=4 before and after each mitigation."""
    X = np.random.default_rng(0).uniform(0.0, np.pi, size=(N, 4))
    cases = [("2% depolarizing per qubit", NoiseModel(depolarizing=0.02)),
             ("2% depolarizing + 1% readout", NoiseModel(depolarizing=0.02, readout=0.01)),
             ("example calibration (gate + readout)", NoiseModel.from_calibration())]
    devices = ["default.mixed"] + (["braket_dm"] if braket_dm else [])
    out = {}
    for bandwidth in (0.3, 1.0):
        spec = FeatureMapSpec("iqp", 4, reps=2, bandwidth=bandwidth)
        exact = quantum_kernel(X, spec=spec).matrix
        for label, noise in cases:
            for device in devices if label.startswith("2% depolarizing per") else ["default.mixed"]:
                started = time.perf_counter()
                noisy = noisy_kernel(X, spec=spec, noise=noise, device=device)
                row = {"noise": noise.to_dict(), "device": device, "circuits": noisy.stats.circuits_executed,
                       "wall_time_s": time.perf_counter() - started, "raw": kernel_error(exact, noisy.matrix)}
                for method in MITIGATIONS[1:] + ("depolarizing_average+threshold",):
                    row[method] = kernel_error(exact, mitigate_kernel(noisy.matrix, 4, method))
                out[f"iqp reps=2 bandwidth={bandwidth} | {label} | {device}"] = row
    return out


def latency(widths: list[int], repeats: int, samples: int) -> dict:
    """Median seconds per circuit of each local shot device, pair and projected circuits."""
    out = {}
    for device in ("default.qubit", "braket.local.qubit"):
        backend = BackendConfig(device_name=device, shots=SHOTS)
        for n in widths:
            spec = FeatureMapSpec("iqp", n, reps=2)
            X = np.random.default_rng(n).uniform(0.0, np.pi, size=(samples, n))
            quantum_kernel(X[:2], spec=spec, backend=backend)  # warm-up: imports and device construction
            pair, proj = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                stats = quantum_kernel(X, spec=spec, backend=backend).stats
                pair.append((time.perf_counter() - started) / stats.circuits_executed)
                started = time.perf_counter()
                stats = projected_kernel(X, spec=ProjectedKernelSpec(spec), backend=backend).stats
                proj.append((time.perf_counter() - started) / stats.circuits_executed)
            out[f"{device} | n={n}"] = {"pair_circuit_s": statistics.median(pair),
                                         "projected_circuit_s": statistics.median(proj),
                                         "pair_circuits": samples * (samples - 1) // 2,
                                         "projected_circuits": 3 * samples, "repeats": repeats}
    return out


def report(results: dict) -> None:
    print("\n== Planned cost at N=100, 1,000 shots (nothing submitted) ==")
    for key, row in results["planned_costs"].items():
        if "plans" in row:
            plans = {p["route"]: p for p in row["plans"]}
            print(f"{key}: pairwise {plans['pairwise']['circuits']:,} circuits / {plans['pairwise']['tasks']:,} tasks "
                  f"${plans['pairwise']['usd']:,.2f}; projected {plans['projected']['circuits']:,} / "
                  f"{plans['projected']['tasks']:,} ${plans['projected']['usd']:,.2f}; "
                  f"ratio {100 * row['projected_over_pairwise']:.2f}%")
        else:
            print(f"{key}: task fees ${row['task_fees_without_usd']:,.2f} -> ${row['task_fees_with_usd']:,.2f} "
                  f"({row['task_fee_reduction']:.1f}x), total ${row['usd_without']:,.2f} -> ${row['usd_with']:,.2f} "
                  f"({row['total_reduction']:.2f}x)")
    print("\n== Noisy kernel vs exact, n=4, max abs error (mean) ==")
    for key, row in results["noise"].items():
        best = min((m for m in row if m in MITIGATIONS[1:] or "+" in m), key=lambda m: row[m]["max_abs_error"])
        print(f"{key}: raw {row['raw']['max_abs_error']:.4f} ({row['raw']['mean_abs_error']:.4f}); "
              f"depolarizing_average {row['depolarizing_average']['max_abs_error']:.4f} "
              f"({row['depolarizing_average']['mean_abs_error']:.4f}); best {best} {row[best]['max_abs_error']:.4f}; "
              f"{row['circuits']} circuits in {row['wall_time_s']:.1f} s")
    if results.get("latency"):
        print("\n== Per-circuit latency, 1,000 shots (median) ==")
        for key, row in results["latency"].items():
            print(f"{key}: pair {1000 * row['pair_circuit_s']:.1f} ms, projected {1000 * row['projected_circuit_s']:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="widths 4, 6, 8 and one latency repeat")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--braket-dm", action="store_true", help="also run the 2%% case on braket_dm (slower)")
    parser.add_argument("--samples", type=int, default=20, help="N of the noisy kernel")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    results = {"machine": {"python": platform.python_version(), "processor": platform.processor(),
                           "cpus": __import__("os").cpu_count()},
               "planned_costs": planned_costs(), "noise": noise_figures(args.samples, args.braket_dm)}
    if not args.skip_latency:
        widths = [4, 6, 8] if args.quick else [4, 5, 6, 7, 8]
        results["latency"] = latency(widths, 1 if args.quick else args.repeats, samples=10)
    report(results)
    out = Path(__file__).parent / "results" / f"hardware_economics_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
