"""Scoring throughput: one large scoring file, the classical champion on every row, the quantum
challenger (in shadow) on the uncertain ~1%, on the exact simulator.

    .venv/bin/python bench/scoring_bench.py [--rows 1000000] [--format csv|parquet] [--repeats 3]

Setup (not timed): a temporary Dagster instance and data root; 240 labelled rows (scikit-learn's
make_classification, 8 features) ingested and every model refreshed with ``min_margin = -1`` so
the quantum model passes its gates and scores in shadow; one scoring file of ``--rows`` rows
(sample_id + the 8 features) written to ``scoring/``; the uncertainty band set to the 1% quantile
of the champion's |decision value| on a sample, and the quantum row quota above 1% of the rows.

Timed, each repeat in a fresh subprocess (so its peak RSS, ``ru_maxrss``, is its own): the
``ingest_scoring_file`` job as the sensor launches it (contract validation, rows into DuckDB,
champion on every row, the quantum shadow on the uncertain rows through the ledger, predictions
upserted into the warehouse, the Parquet export). End-to-end rows/s = rows / the job's wall time;
also reported with the worker process's start and imports included.
Prints the median and writes bench/results/scoring_bench-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
N_FEATURES = 8
PARTITION = "bench_scoring"  # + the file suffix


def dataset(rows: int, seed: int) -> pl.DataFrame:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=N_FEATURES, n_informative=5, random_state=seed)
    frame = pl.DataFrame({"sample_id": [f"s{seed}-{i:07d}" for i in range(rows)]})
    return frame.with_columns(pl.Series("label", y.astype(str)),
                              *[pl.Series(f"f{j}", X[:, j]) for j in range(N_FEATURES)])


def setup(root: Path, rows: int, file_format: str) -> dict:
    """Train and register the models, write the scoring file; returns the run settings."""
    from dagster import AssetSelection, DagsterInstance, materialize

    from hybrid_assets.common.partitions import (
        landing_files_partitions,
        scoring_files_partitions,
    )
    from hybrid_assets.definitions import all_assets
    from hybrid_assets.resources import resources_from_env
    from hybrid_assets.serving.scoring import load_scorer
    from hybrid_resources.data.artifacts import ArtifactStore
    from hybrid_resources.data.paths import DataLayout
    from hybrid_resources.data.warehouse import Warehouse

    layout = DataLayout.from_env().ensure()
    dataset(240, seed=0).write_csv(layout.landing / "train.csv")
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(landing_files_partitions.name, ["train.csv"])
        resources = resources_from_env()
        assert materialize(all_assets, selection=["raw_samples"], partition_key="train.csv", instance=instance,
                           resources=resources).success
        training = (AssetSelection.all() - AssetSelection.assets("raw_samples") - AssetSelection.groups("hardware")
                    - AssetSelection.groups("serving")) | AssetSelection.assets("model_registry")
        assert materialize(all_assets, selection=training, instance=instance, resources=resources).success
        instance.add_dynamic_partitions(scoring_files_partitions.name, [f"{PARTITION}.{file_format}"])
    with Warehouse().session(read_only=True) as session:
        models = {m["status"]: m for m in session.models()}
    assert {"champion", "shadow"} <= set(models), f"the quantum model did not reach shadow: {list(models)}"
    scoring = dataset(rows, seed=1).drop("label")
    path = layout.root / "scoring" / f"{PARTITION}.{file_format}"
    path.parent.mkdir(parents=True, exist_ok=True)
    scoring.write_csv(path) if file_format == "csv" else scoring.write_parquet(path)
    champion = load_scorer(models["champion"], ArtifactStore(layout.artifacts))
    sample = scoring.head(20_000).drop("sample_id").to_numpy()
    band = float(np.quantile(np.abs(champion.classical(champion.embed(sample))), 0.01))
    shadow = models["shadow"]
    return {"band": band, "file": str(path), "partition": path.name, "bytes": path.stat().st_size, "shadow": shadow["version_id"],
            "champion": models["champion"]["version_id"]}


def child(settings: dict) -> dict:
    """One timed scoring run, as the scoring sensor launches it."""
    from dagster import DagsterEventType, DagsterInstance

    from hybrid_assets.definitions import defs

    job = defs.resolve_job_def("ingest_scoring_file")
    config = {"ops": {"predictions": {"config": {"uncertainty_band": settings["band"]}}}}
    with DagsterInstance.get() as instance:
        started = time.perf_counter()
        result = job.execute_in_process(instance=instance, partition_key=settings["partition"],
                                     run_config=config)
        wall = time.perf_counter() - started
        assert result.success
        steps = {}
        for event in instance.all_logs(result.run_id):
            dagster_event = event.dagster_event
            if dagster_event and dagster_event.event_type == DagsterEventType.STEP_SUCCESS:
                steps[dagster_event.step_key] = dagster_event.event_specific_data.duration_ms / 1e3
        metadata = {k: getattr(v, "value", v) for k, v in
                    result.asset_materializations_for_node("predictions")[0].metadata.items()}
    return {"wall_s": wall, "steps_s": steps, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "quantum_rows": metadata.get("shadow_quantum_rows"), "flagged": metadata.get("shadow_flagged_rows"),
            "rows": metadata.get("rows")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    root = Path(tempfile.mkdtemp(prefix="scoring_bench-"))
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "HYBRID_DATA_DIR": str(root / "data"), "HYBRID_MIN_MARGIN": "-1",
           "HYBRID_QUANTUM_ROWS_PER_DAY": str(10 * args.rows)}
    os.environ.update(env)
    try:
        started = time.perf_counter()
        settings = setup(root, args.rows, args.format)
        print(f"setup {time.perf_counter() - started:.1f} s: {args.rows} rows, {settings['bytes'] / 2**20:.0f} MiB "
              f"{args.format}, band {settings['band']:.4f}", flush=True)
        runs = []
        for repeat in range(args.repeats):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--child", json.dumps(settings)], env=env, cwd=REPO,
                                  capture_output=True, text=True)
            process_wall = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"run {repeat} failed:\n{done.stderr[-4000:]}")
            run = json.loads(done.stdout.strip().splitlines()[-1])
            run["rows_per_s"] = args.rows / run["wall_s"]
            # With the interpreter's start and the imports (pennylane, dagster): a cold worker process.
            run["process_wall_s"] = process_wall
            run["cold_rows_per_s"] = args.rows / process_wall
            runs.append(run)
            print(f"run {repeat}: {run['wall_s']:.1f} s = {run['rows_per_s']:,.0f} rows/s, peak RSS "
                  f"{run['peak_rss_gib']:.2f} GiB, steps {json.dumps({k: round(v, 1) for k, v in run['steps_s'].items()})},"
                  f" quantum rows {run['quantum_rows']}; with process start {process_wall:.1f} s = "
                  f"{run['cold_rows_per_s']:,.0f} rows/s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {
        "rows": args.rows, "format": args.format, "repeats": args.repeats,
        "median_wall_s": statistics.median(r["wall_s"] for r in runs),
        "median_rows_per_s": statistics.median(r["rows_per_s"] for r in runs),
        "median_cold_rows_per_s": statistics.median(r["cold_rows_per_s"] for r in runs),
        "max_peak_rss_gib": max(r["peak_rss_gib"] for r in runs),
        "quantum_rows": runs[0]["quantum_rows"], "target_rows_per_s": 20_000, "target_peak_rss_gib": 4.0,
        "runs": runs, "machine": {"cpus": os.cpu_count()},
    }
    print(f"median {summary['median_rows_per_s']:,.0f} rows/s (target 20,000; "
          f"{summary['median_cold_rows_per_s']:,.0f} with process start), peak RSS "
          f"{summary['max_peak_rss_gib']:.2f} GiB (target 4), quantum rows {summary['quantum_rows']}")
    out = REPO / "bench" / "results" / f"scoring_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
