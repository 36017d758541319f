"""Does the multiprocess executor run the refresh against the DuckDB warehouse without lock failures?

Not a test. Lands one small file, ingests it (in process), then runs the model refresh (features
to registry; not the hardware, serving or portfolio groups) once with ``in_process_executor`` and
once with ``multiprocess_executor`` (``--max-concurrent`` step processes), each on a fresh data
folder and a test Dagster instance (no pool limits: the most concurrent warehouse access);
reports success, failed steps, wall time and DuckDB lock errors that reached a step's log (the
warehouse retries the lock error with backoff without logging each retry).

    .venv/bin/python bench/executor_check.py --rows 300 --max-concurrent 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dagster import (  # noqa: E402
    AssetSelection,
    Definitions,
    define_asset_job,
    execute_job,
    in_process_executor,
    instance_for_test,
    materialize,
    multiprocess_executor,
    reconstructable,
)

from hybrid_assets.definitions import all_assets  # noqa: E402
from hybrid_assets.resources import resources_from_env  # noqa: E402

SELECTION = (AssetSelection.all() - AssetSelection.groups("hardware", "serving", "portfolio")
             - AssetSelection.assets("raw_samples"))


def definitions(executor_name: str) -> Definitions:
    executor = (in_process_executor if executor_name == "in_process" else
                multiprocess_executor.configured({"max_concurrent": int(os.environ["CHECK_MAX_CONCURRENT"])}))
    return Definitions(assets=all_assets, jobs=[define_asset_job("check_refresh", selection=SELECTION)],
                       resources=resources_from_env(), executor=executor)


def multiprocess_job():
    return definitions("multiprocess").resolve_job_def("check_refresh")


def in_process_job():
    return definitions("in_process").resolve_job_def("check_refresh")


def run(executor_name: str, rows: int) -> dict:
    from hybrid_assets.common.partitions import (
        landing_files_partitions,
        safe_partition_key,
    )
    from hybrid_assets.ingest.assets import raw_samples
    from hybrid_resources.data.paths import DataLayout

    with tempfile.TemporaryDirectory() as folder:
        os.environ["HYBRID_DATA_DIR"] = str(Path(folder) / "data")
        layout = DataLayout.from_env().ensure()
        rng = np.random.default_rng(0)
        y = np.arange(rows) % 2
        frame = pl.DataFrame(rng.normal(size=(rows, 5)) + 1.5 * y[:, None], schema=[f"f{i}" for i in range(5)],
                             orient="row")
        frame.with_columns(pl.Series("label", [str(v) for v in y]),
                           pl.Series("sample_id", [f"s{i:06d}" for i in range(rows)])).write_csv(
            layout.landing / "check.csv")
        with instance_for_test() as instance:
            key = safe_partition_key("check.csv")
            instance.add_dynamic_partitions(landing_files_partitions.name, [key])
            assert materialize([raw_samples], partition_key=key, instance=instance,
                               resources=resources_from_env()).success
            job = reconstructable(multiprocess_job if executor_name == "multiprocess" else in_process_job)
            started = time.perf_counter()
            run_config = {"ops": {"reduced_embeddings": {"config": {"n_qubits": 3}}}}
            with execute_job(job, instance=instance, run_config=run_config, raise_on_error=False) as result:
                wall = time.perf_counter() - started
                logs = instance.all_logs(result.run_id)
                # DuckDB's own wording; the warehouse retries it silently, so this counts only the
                # lock errors that outlived the retries and reached a step's log.
                lock_lines = [e.user_message for e in logs
                              if any(text in (e.user_message or "").lower()
                                     for text in ("could not set lock", "conflicting lock"))]
                failed = [e.step_key for e in logs if e.is_dagster_event and e.dagster_event.is_step_failure]
                return {"executor": executor_name, "success": result.success, "wall_s": round(wall, 1),
                        "failed_steps": failed, "lock_errors_logged": len(lock_lines), "lock_lines": lock_lines[:5],
                        "steps": len({e.step_key for e in logs if e.step_key})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--max-concurrent", type=int, default=4)
    parser.add_argument("--executors", default="in_process,multiprocess")
    args = parser.parse_args()
    os.environ["CHECK_MAX_CONCURRENT"] = str(args.max_concurrent)
    results = {"args": vars(args), "runs": [run(name, args.rows) for name in args.executors.split(",")]}
    print(json.dumps(results, indent=2))
    out = ROOT / "bench" / "results" / "executor_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
