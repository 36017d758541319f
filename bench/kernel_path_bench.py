"""The kernel path as a user gets it: the whole refresh (landing file to evaluated model) above
``max_exact_train`` (Nyström, chosen automatically) against the same data forced onto the exact path.

Not a test. Each path runs in its own fresh data folder and Dagster instance, in this process
(in_process executor). Reports wall time per step (from the instance's step stats), the holdout
metrics of the quantum and classical models, the kernel artifacts' shapes and the stated samples,
and writes JSON under bench/results/.

    .venv/bin/python bench/kernel_path_bench.py --rows 3000 --max-exact-train 1000 --landmarks 300
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def landing_frame(rows: int, features: int, seed: int) -> pl.DataFrame:
    """Two overlapping Gaussian blobs (class means 1.0 apart in every feature)."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % 2
    X = rng.normal(size=(rows, features)) + 1.0 * y[:, None]
    frame = pl.DataFrame(X, schema=[f"f{i}" for i in range(features)], orient="row")
    return frame.with_columns(pl.Series("label", [str(v) for v in y]),
                              pl.Series("sample_id", [f"s{i:07d}" for i in range(rows)]))


def run_path(args: argparse.Namespace, kernel_path: str) -> dict:
    """One fresh data folder and instance: ingest the landing file, refresh, read what happened."""
    from dagster import AssetSelection, instance_for_test, materialize

    with tempfile.TemporaryDirectory() as folder:
        os.environ["HYBRID_DATA_DIR"] = str(Path(folder) / "data")
        from hybrid_assets.common.partitions import (
            landing_files_partitions,
            safe_partition_key,
        )
        from hybrid_assets.definitions import all_assets, refresh_models_job
        from hybrid_assets.ingest.assets import raw_samples
        from hybrid_resources.compute import DaskCluster
        from hybrid_resources.cost_policy import CostPolicy
        from hybrid_resources.data.artifacts import ArtifactIOManager, ArtifactStore
        from hybrid_resources.data.paths import DataLayout
        from hybrid_resources.data.warehouse import Warehouse
        from hybrid_resources.gate_policy import GatePolicy
        from hybrid_resources.quantum.backends import QuantumBackend

        layout = DataLayout.from_env().ensure()
        landing_frame(args.rows, args.features, args.seed).write_csv(layout.landing / "bench.csv")
        on_stage = getattr(args, "on_stage", lambda name, start, end: None)  # wall-clock windows, for RSS
        warehouse = Warehouse()
        policy = GatePolicy(min_margin=-1.0, kernel_path=kernel_path, max_exact_train=args.max_exact_train,
                            nystrom_landmarks=args.landmarks)
        resources = {"io_manager": ArtifactIOManager(), "warehouse": warehouse, "quantum_backend": QuantumBackend(),
                     "cost_policy": CostPolicy(warehouse=warehouse), "gate_policy": policy,
                     "hardware_backend": QuantumBackend(device_name="braket.aws.qubit", shots=100),
                     "dask": DaskCluster(enabled=getattr(args, "dask", False))}
        run_config = {"ops": {"reduced_embeddings": {"config": {"n_qubits": args.n_qubits}},
                              "vqc_model": {"config": {"epochs": getattr(args, "vqc_epochs", 1),
                                                       "max_train_rows": args.vqc_rows}}}}
        with instance_for_test() as instance:
            key = safe_partition_key("bench.csv")
            instance.add_dynamic_partitions(landing_files_partitions.name, [key])
            started, wall = time.perf_counter(), time.time()
            assert materialize([raw_samples], partition_key=key, instance=instance, resources=resources).success
            ingest_s = time.perf_counter() - started
            on_stage("ingest (raw_samples)", wall, time.time())
            # What the one-click refresh runs (refresh_models), landing ingestion aside.
            selection = refresh_models_job.selection - AssetSelection.assets("raw_samples")
            started = time.perf_counter()
            result = materialize(all_assets, selection=selection, instance=instance, resources=resources,
                                 run_config=run_config)
            refresh_s = time.perf_counter() - started
            assert result.success
            stats = [s for s in instance.get_run_step_stats(result.run_id) if s.end_time and s.start_time]
            steps = {s.step_key: round(s.end_time - s.start_time, 2) for s in stats}
            for s in stats:
                on_stage(s.step_key, s.start_time, s.end_time)

            def metadata(asset: str) -> dict:
                (event,) = result.asset_materializations_for_node(asset)
                return {k: getattr(v, "value", v) for k, v in event.metadata.items()}

            store = ArtifactStore(layout.artifacts)
            kernel = store.read(["quantum_kernel_train"])
            evaluation = metadata("model_evaluation")
            return {
                "kernel_path": metadata("quantum_svm").get("kernel_path"),
                "kernel_path_reason": metadata("quantum_kernel_train").get("kernel_path_reason"),
                "train_kernel_arrays": {k: list(v.shape) for k, v in kernel.items() if isinstance(v, np.ndarray)
                                        and v.ndim == 2},
                "quantum_svm_holdout": {k.split("/")[1]: v for k, v in metadata("quantum_svm").items()
                                        if k.startswith("holdout/")},
                "classical_holdout": {k.split("/")[1]: v for k, v in metadata("classical_baseline").items()
                                      if k.startswith("holdout/")},
                "classical_fit": metadata("classical_baseline").get("fit"),
                "verdict": evaluation.get("verdict"),
                "verdict_sample": evaluation.get("verdict_sample"),
                "ingest_s": round(ingest_s, 2),
                "refresh_s": round(refresh_s, 2),
                "step_s": steps,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000, help="landed rows (75%% become the train split)")
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--n-qubits", type=int, default=4)
    parser.add_argument("--max-exact-train", type=int, default=1000)
    parser.add_argument("--landmarks", type=int, default=300)
    parser.add_argument("--vqc-rows", type=int, default=500, help="vqc_model max_train_rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paths", default="auto,exact", help="comma-separated kernel_path values to run")
    args = parser.parse_args()
    results = {"args": vars(args), "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
               "runs": {}}
    for path in args.paths.split(","):
        results["runs"][path] = run_path(args, path)
        run = results["runs"][path]
        print(f"{path}: took {run['kernel_path']} ({run['kernel_path_reason']}); refresh {run['refresh_s']} s; "
              f"quantum holdout {run['quantum_svm_holdout']}; classical {run['classical_holdout']}", flush=True)
    out = ROOT / "bench" / "results" / "kernel_path_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
