"""Scaling past one machine: Nyström vs the exact kernel SVM, Dask vs one process, shot emulation vs circuits.

    .venv/bin/python bench/scale_bench.py [--only nystrom,dask,emulation] [--repeats 3]
        [--train-rows 5000] [--landmarks 500,1000] [--bandwidths 0.3,1.0]
        [--dask-rows 20000] [--workers 0] [--emulation-rows 200] [--shots 1000] [--circuit-rows 25]

- ``nystrom``: embeddings built the way the pipeline builds them (scikit-learn's
  make_classification, 30 features, 8 informative; the split by sample id; PCA to 8 qubits),
  ``--train-rows`` train rows and a quarter as many holdout rows. Exact: the train and test Gram
  matrices (IQP, reps 2) and an SVM on the precomputed kernel. Nyström: k-means++ landmarks, the
  K_mm^(-1/2) map and the streamed least-squares SVM, same C. The classical side the same way
  (RBF SVM vs RBF Nyström, gamma "scale"). Holdout accuracy and wall time of each (kernels included).
- ``dask``: the exact ``--dask-rows`` x ``--dask-rows`` Gram matrix (IQP, 8 qubits) written into a
  .npy memmap by the single-process engine and by a LocalCluster (one single-threaded worker process
  per core), cluster start-up timed apart.
- ``emulation``: the ``--emulation-rows`` square kernel with ``--shots`` shots per entry by shot
  emulation, and by compute-uncompute circuits on default.qubit. Circuits are timed on the
  ``--circuit-rows`` first rows only (their pairs) and extrapolated per circuit to all pairs;
  ``--circuit-rows`` equal to ``--emulation-rows`` runs every circuit.

Timings are medians over ``--repeats``. Prints a table; writes bench/results/scale_bench-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hybrid_assets.data_prep import build_features, reduce_embeddings  # noqa: E402
from hybrid_assets.modeling import (  # noqa: E402
    fit_precomputed_svm,
    fit_rbf_svm,
    precomputed_decision,
    rbf_decision,
)
from hybrid_resources.compute import cluster_facts, dask_client  # noqa: E402
from hybrid_resources.quantum.backends import BackendConfig  # noqa: E402
from hybrid_resources.quantum.dask_kernel import dask_quantum_kernel, open_kernel_file  # noqa: E402
from hybrid_resources.quantum.feature_maps import FeatureMapSpec  # noqa: E402
from hybrid_resources.quantum.kernel_engine import planned_circuits, quantum_kernel  # noqa: E402
from hybrid_resources.quantum.nystrom import (  # noqa: E402
    EngineKernel,
    NystromConfig,
    RbfKernel,
    fit_nystrom,
    nystrom_decision,
)

N_QUBITS = 8
C = 1.0


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float, list[float]]:
    """(last result, median seconds, every run's seconds)."""
    runs, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return result, statistics.median(runs), runs


def embeddings(train_rows: int) -> dict:
    """The pipeline's embeddings of a make_classification set with ~train_rows train rows."""
    from sklearn.datasets import make_classification

    rows = int(train_rows / 0.8)
    X, y = make_classification(n_samples=rows, n_features=30, n_informative=8, random_state=0)
    raw = pl.DataFrame({"sample_id": [f"s{i:07d}" for i in range(rows)], "label": [str(v) for v in y],
                        "features": X.tolist(), "file_hash": ["bench"] * rows, "order": np.arange(rows)})
    return reduce_embeddings(build_features(raw, test_fraction=0.2, seed=42), n_qubits=N_QUBITS)


def _accuracy(y: np.ndarray, decision: np.ndarray) -> float:
    return float(np.mean((decision > 0) == (y > 0)))


def bench_nystrom(args: argparse.Namespace) -> dict[str, Any]:
    data = embeddings(args.train_rows)
    X, y, X_test, y_test = data["X_train"], data["y_train"], data["X_test"], data["y_test"]
    out: dict[str, Any] = {"n_train": int(len(y)), "n_test": int(len(y_test)), "C": C, "quantum": [], "classical": []}
    for bandwidth in args.bandwidths:
        spec = FeatureMapSpec("iqp", N_QUBITS, reps=2, bandwidth=bandwidth)

        def exact():
            model = fit_precomputed_svm(quantum_kernel(X, spec=spec).matrix, y, C=C)
            return _accuracy(y_test, precomputed_decision(model, quantum_kernel(X_test, X, spec=spec).matrix))

        accuracy, seconds, _ = timed(exact, args.repeats)
        row = {"bandwidth": bandwidth, "exact_accuracy": accuracy, "exact_s": seconds, "nystrom": []}
        for m in args.landmarks:
            def nystrom():
                kernel = EngineKernel(spec)
                model = fit_nystrom(X, y, kernel, NystromConfig(m=m, C=C))
                return _accuracy(y_test, nystrom_decision(model, X_test, kernel)), model.meta["clipped"]

            (acc, clipped), secs, _ = timed(nystrom, args.repeats)
            row["nystrom"].append({"m": m, "accuracy": acc, "seconds": secs, "clipped": clipped,
                                   "accuracy_gap": accuracy - acc})
        out["quantum"].append(row)
    gamma = 1.0 / (X.shape[1] * X.var())  # scikit-learn's gamma="scale"

    def rbf_exact():
        return _accuracy(y_test, rbf_decision(fit_rbf_svm(X, y, C=C, gamma=gamma), X_test))

    accuracy, seconds, _ = timed(rbf_exact, args.repeats)
    classical = {"gamma": gamma, "exact_accuracy": accuracy, "exact_s": seconds, "nystrom": []}
    for m in args.landmarks:
        def rbf_nystrom():
            model = fit_nystrom(X, y, RbfKernel(gamma), NystromConfig(m=m, C=C))
            return _accuracy(y_test, nystrom_decision(model, X_test, RbfKernel(gamma)))

        acc, secs, _ = timed(rbf_nystrom, args.repeats)
        classical["nystrom"].append({"m": m, "accuracy": acc, "seconds": secs, "accuracy_gap": accuracy - acc})
    out["classical"].append(classical)
    return out


def bench_dask(args: argparse.Namespace) -> dict[str, Any]:
    n = args.dask_rows
    X = np.random.default_rng(0).uniform(0, np.pi, size=(n, N_QUBITS))
    spec = FeatureMapSpec("iqp", N_QUBITS, reps=2)
    with tempfile.TemporaryDirectory(dir=args.scratch) as tmp:
        single_out = open_kernel_file(Path(tmp) / "single.npy", n, n)
        dask_out = open_kernel_file(Path(tmp) / "dask.npy", n, n)
        started = time.perf_counter()
        with dask_client(n_workers=args.workers) as client:
            startup_s = time.perf_counter() - started
            facts = cluster_facts(client)
            # Every worker imports the engine (and PennyLane) before the first timing.
            client.run(importlib.import_module, "hybrid_resources.quantum.kernel_engine")
            single_runs, dask_runs = [], []
            for _ in range(args.repeats):  # alternated, so both see the same page cache and disk state
                single_runs.append(timed(lambda: quantum_kernel(X, spec=spec, out=single_out), 1)[1])
                dask_runs.append(timed(lambda: dask_quantum_kernel(X, spec=spec, client=client, out=dask_out), 1)[1])
        single_s, dask_s = statistics.median(single_runs), statistics.median(dask_runs)
        corner = slice(0, min(n, 4000))
        max_diff = float(np.max(np.abs(single_out[corner, corner] - dask_out[corner, corner])))
        tail = slice(max(0, n - 2000), n)
        max_diff = max(max_diff, float(np.max(np.abs(single_out[tail] - dask_out[tail]))))
    return {"rows": n, "matrix_gb": n * n * 8 / 1e9, "single_s": single_s, "single_runs": single_runs,
            "dask_s": dask_s, "dask_runs": dask_runs, "ratio": dask_s / single_s, "cluster_startup_s": startup_s,
            "cluster": facts, "max_abs_diff_checked": max_diff}


def bench_emulation(args: argparse.Namespace) -> dict[str, Any]:
    n, shots = args.emulation_rows, args.shots
    X = np.random.default_rng(0).uniform(0, np.pi, size=(n, N_QUBITS))
    spec = FeatureMapSpec("iqp", N_QUBITS, reps=2)
    emulated_backend = BackendConfig(shots=shots, seed=1, shot_emulation=True)
    result, emulation_s, emulation_runs = timed(
        lambda: quantum_kernel(X, spec=spec, backend=emulated_backend), args.repeats)
    k = min(args.circuit_rows, n)
    circuits, circuit_s, circuit_runs = timed(
        lambda: quantum_kernel(X[:k], spec=spec, backend=BackendConfig(shots=shots, seed=1)), args.repeats)
    per_circuit = circuit_s / circuits.stats.circuits_executed
    all_circuits = planned_circuits(n, None)
    circuits_all_s = per_circuit * all_circuits
    return {"rows": n, "shots": shots, "emulation_s": emulation_s, "emulation_runs": emulation_runs,
            "emulation_method": result.stats.method, "circuits_timed": circuits.stats.circuits_executed,
            "circuit_rows_timed": k, "circuit_s_for_timed": circuit_s, "circuit_runs": circuit_runs,
            "per_circuit_s": per_circuit, "circuits_needed": all_circuits,
            "circuit_path_s": circuits_all_s, "extrapolated": k < n, "speedup": circuits_all_s / emulation_s}


def report(results: dict[str, Any]) -> list[str]:
    lines = []
    if "nystrom" in results:
        r = results["nystrom"]
        lines.append(f"Nyström vs exact kernel SVM: {r['n_train']} train rows, {r['n_test']} holdout rows, C={r['C']}")
        for row in r["quantum"]:
            lines.append(f"  quantum IQP bandwidth {row['bandwidth']}: exact {row['exact_accuracy']:.4f} "
                         f"({row['exact_s']:.1f} s)")
            for nys in row["nystrom"]:
                lines.append(f"    Nyström m={nys['m']}: {nys['accuracy']:.4f} (gap {nys['accuracy_gap']:+.4f}, "
                             f"{nys['seconds']:.1f} s, {nys['clipped']} eigenvalues clipped)")
        for row in r["classical"]:
            lines.append(f"  classical RBF gamma {row['gamma']:.3g}: exact {row['exact_accuracy']:.4f} ({row['exact_s']:.1f} s)")
            for nys in row["nystrom"]:
                lines.append(f"    Nyström m={nys['m']}: {nys['accuracy']:.4f} (gap {nys['accuracy_gap']:+.4f}, "
                             f"{nys['seconds']:.1f} s)")
    if "dask" in results:
        r = results["dask"]
        lines.append(f"Exact Gram {r['rows']} x {r['rows']} ({r['matrix_gb']:.1f} GB .npy memmap): single process "
                     f"{r['single_s']:.1f} s, Dask {r['cluster']['workers']} workers {r['dask_s']:.1f} s = "
                     f"{r['ratio']:.2f}x (cluster start {r['cluster_startup_s']:.1f} s, not included); "
                     f"max |diff| {r['max_abs_diff_checked']:.1e}")
    if "emulation" in results:
        r = results["emulation"]
        how = (f"extrapolated from {r['circuits_timed']} circuits ({r['circuit_rows_timed']} rows) at "
               f"{r['per_circuit_s'] * 1e3:.2f} ms each" if r["extrapolated"] else "every circuit run")
        lines.append(f"Shot emulation, {r['rows']} rows x {r['shots']} shots: {r['emulation_s'] * 1e3:.1f} ms; circuits: "
                     f"{r['circuit_path_s']:.1f} s for {r['circuits_needed']} circuits ({how}); "
                     f"{r['speedup']:.0f}x faster")
    return lines


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="nystrom,dask,emulation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=5000)
    parser.add_argument("--landmarks", type=_ints, default=[500, 1000])
    parser.add_argument("--bandwidths", type=lambda s: [float(v) for v in s.split(",")], default=[0.3, 1.0])
    parser.add_argument("--dask-rows", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=0, help="LocalCluster workers; 0 = one per core")
    parser.add_argument("--scratch", default=None, help="folder for the memmaps (default: the temp folder)")
    parser.add_argument("--emulation-rows", type=int, default=200)
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--circuit-rows", type=int, default=25)
    args = parser.parse_args()
    benches = {"nystrom": bench_nystrom, "dask": bench_dask, "emulation": bench_emulation}
    results = {}
    for name in args.only.split(","):
        results[name] = benches[name](args)
        print("\n".join(report({name: results[name]})), flush=True)
    meta = {"argv": sys.argv[1:], "python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "repeats": args.repeats, "n_qubits": N_QUBITS}
    out = ROOT / "bench" / "results" / f"scale_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results, "table": report(results)}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
