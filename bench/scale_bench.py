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

- ``pipeline``: the whole pipeline as a user runs it, landing file to evaluated model (ingest,
  then what ``refresh_models`` materializes), at each of ``--pipeline-rows`` landed rows (30
  features, 8 qubits, the embedded defaults: Nyström above 5,000 train rows with 1,000 landmarks,
  the VQC's 10,000-row sample, 3 epochs). Each size runs once in its own process (fresh data folder
  and Dagster instance, in-process executor): wall time per stage, the process's peak RSS
  overall and within each stage (sampled every 0.2 s), and a plot of both against N
  (bench/results/scale_bench-pipeline.png). ``--pipeline-dask`` enables the dask resource
  (a LocalCluster for the streamed kernel blocks; its workers' memory is not in the peak RSS).

Timings are medians over ``--repeats`` (the pipeline: one run per size). Prints a table; writes bench/results/scale_bench-<timestamp>.json.
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

from hybrid_assets.ingest.features import build_features  # noqa: E402
from hybrid_assets.training.embeddings import reduce_embeddings  # noqa: E402
from hybrid_assets.training.models import (  # noqa: E402
    fit_precomputed_svm,
    fit_rbf_svm,
    precomputed_decision,
    rbf_decision,
)
from hybrid_resources.compute import cluster_facts, dask_client  # noqa: E402
from hybrid_resources.data.big_arrays import open_kernel_file  # noqa: E402
from hybrid_resources.quantum.backends import BackendConfig  # noqa: E402
from hybrid_resources.quantum.dask_kernel import dask_quantum_kernel  # noqa: E402
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
    if "pipeline" in results:
        lines += pipeline_lines(results["pipeline"]["runs"])
    if "emulation" in results:
        r = results["emulation"]
        how = (f"extrapolated from {r['circuits_timed']} circuits ({r['circuit_rows_timed']} rows) at "
               f"{r['per_circuit_s'] * 1e3:.2f} ms each" if r["extrapolated"] else "every circuit run")
        lines.append(f"Shot emulation, {r['rows']} rows x {r['shots']} shots: {r['emulation_s'] * 1e3:.1f} ms; circuits: "
                     f"{r['circuit_path_s']:.1f} s for {r['circuits_needed']} circuits ({how}); "
                     f"{r['speedup']:.0f}x faster")
    return lines


def pipeline_child(rows: int, use_dask: bool, out: Path) -> None:
    """One pipeline run at ``rows`` landed rows in this process; writes its figures to ``out``."""
    import resource
    import threading

    sys.path.insert(0, str(ROOT / "bench"))
    from kernel_path_bench import run_path

    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample_rss() -> None:
        while not done.is_set():
            with open("/proc/self/status") as status:
                kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
            samples.append((time.time(), kb))
            done.wait(0.2)

    stages: dict[str, tuple[float, float]] = {}
    threading.Thread(target=sample_rss, daemon=True).start()
    args = argparse.Namespace(rows=rows, features=30, n_qubits=N_QUBITS, max_exact_train=5000, landmarks=1000,
                              vqc_rows=10000, vqc_epochs=3, seed=0, dask=use_dask,
                              on_stage=lambda name, start, end: stages.__setitem__(name, (start, end)))
    started = time.perf_counter()
    run = run_path(args, "auto")
    total = time.perf_counter() - started
    done.set()
    stage_rss = {name: round(max((kb for t, kb in samples if start <= t <= end), default=0) / 2**20, 3)
                 for name, (start, end) in stages.items()}
    out.write_text(json.dumps({
        "rows": rows, "dask": use_dask, "total_s": round(total, 1),
        "ingest_to_evaluated_model_s": round(run["ingest_s"] + run["refresh_s"], 1),
        "stage_s": {"ingest (raw_samples)": run["ingest_s"], **run["step_s"]},
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "stage_peak_rss_gib": stage_rss,
        "kernel_path": run["kernel_path"], "quantum_holdout": run["quantum_svm_holdout"],
        "classical_holdout": run["classical_holdout"], "train_kernel_arrays": run["train_kernel_arrays"],
    }, default=str))


def bench_pipeline(args: argparse.Namespace) -> dict:
    """Each size in its own process (a clean peak RSS), one after the other."""
    import subprocess

    runs = {}
    for rows in args.pipeline_rows:
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        command = [sys.executable, __file__, "--pipeline-child", str(rows), "--child-out", str(out)]
        command += ["--pipeline-dask"] if args.pipeline_dask else []
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            runs[str(rows)] = {"rows": rows, "failed": completed.stderr[-3000:]}
            print(f"pipeline at {rows} rows failed:\n{completed.stderr[-3000:]}", flush=True)
            continue
        runs[str(rows)] = json.loads(out.read_text())
        print(pipeline_lines({str(rows): runs[str(rows)]})[0], flush=True)
    plot_pipeline(runs, ROOT / "bench" / "results" / "scale_bench-pipeline.png")
    return {"runs": runs}


def pipeline_lines(runs: dict) -> list[str]:
    lines = []
    for run in runs.values():
        if "failed" in run:
            lines.append(f"pipeline {run['rows']:,} rows: FAILED")
            continue
        slowest = sorted(run["stage_s"].items(), key=lambda kv: -kv[1])[:4]
        lines.append(f"pipeline {run['rows']:,} rows ({'dask' if run['dask'] else 'local'} blocks): ingest to "
                     f"evaluated model {run['ingest_to_evaluated_model_s']:.0f} s, peak RSS {run['peak_rss_gib']:.2f} "
                     f"GiB, {run['kernel_path']}; quantum holdout {run['quantum_holdout'].get('accuracy', 0):.4f}, "
                     f"classical {run['classical_holdout'].get('accuracy', 0):.4f}; slowest: "
                     + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in slowest))
    return lines


def plot_pipeline(runs: dict, path: Path) -> None:
    """Wall time and peak RSS against N (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in runs.values() if "failed" not in r]
    if not done:
        return
    rows = [r["rows"] for r in done]
    figure, (time_axis, rss_axis) = plt.subplots(1, 2, figsize=(10, 4))
    time_axis.loglog(rows, [r["ingest_to_evaluated_model_s"] for r in done], "o-")
    time_axis.set(xlabel="landed rows N", ylabel="ingest to evaluated model (s)", title="wall time")
    rss_axis.loglog(rows, [r["peak_rss_gib"] for r in done], "o-")
    rss_axis.set(xlabel="landed rows N", ylabel="peak RSS (GiB)", title="memory")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


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
    parser.add_argument("--pipeline-rows", type=_ints, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--pipeline-dask", action="store_true", help="the pipeline's streamed blocks on Dask")
    parser.add_argument("--pipeline-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipeline_child:
        pipeline_child(args.pipeline_child, args.pipeline_dask, args.child_out)
        return
    benches = {"nystrom": bench_nystrom, "dask": bench_dask, "emulation": bench_emulation, "pipeline": bench_pipeline}
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
