"""Where a refresh's time goes: each step's wall time and share at several landed sizes.

Not a test. Each size runs in its own process with a fresh data folder and Dagster instance, as
``make demo`` does it: one landing file (scikit-learn's ``make_classification``: 30 features,
8 informative, 2 classes) is ingested, then what ``refresh_models`` materializes runs with the
embedded defaults (``resources_from_env()``, no run config), in process. Step times come from
the instance's step stats. Prints one table per size (step, seconds, share of the refresh) and
what a speed-up must leave unchanged (the tuned choices, the shot plan's recommendation, the
verdict), and writes ``bench/results/refresh_profile-<timestamp>.json``. After the refresh it
materializes ``kernel_route_plan`` (``make demo`` plans the routes too), timed on its own.

``--tasks binary,multiclass,regression`` profiles each task on the same rows (5 classes for
multiclass, ``make_regression`` with 8 informative features for regression) and prints the
refresh time of each against binary: issue 25's target is within 2x of binary.

    .venv/bin/python bench/refresh_profile.py [--rows 1000,10000,100000,1000000] [--top 12]
    .venv/bin/python bench/refresh_profile.py --rows 5000 --tasks binary,multiclass,regression

With ``HYBRID_WAREHOUSE_URL`` set, the warehouse is that PostgreSQL database, in a new schema per
size (``profile_<pid>``), against the DuckDB file without it. With ``HYBRID_DATA_DIR`` an object
store URI (``s3://bucket/prefix``), the data root is a new prefix under it per size, against a
temporary local folder without it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def landing_file(path: Path, rows: int, seed: int = 0, task: str = "binary") -> None:
    """``rows`` labelled rows of a 30-feature, 8-informative problem: binary or 5-class
    classification, or regression (float targets)."""
    import polars as pl
    from sklearn.datasets import make_classification, make_regression

    if task == "regression":
        X, y = make_regression(n_samples=rows, n_features=30, n_informative=8, noise=10.0, random_state=seed)
        labels = [f"{v:.4f}" for v in y]
    else:
        X, y = make_classification(n_samples=rows, n_features=30, n_informative=8, random_state=seed,
                                   n_classes=5 if task == "multiclass" else 2)
        labels = [str(v) for v in y]
    frame = pl.DataFrame(X, schema=[f"f{i}" for i in range(30)], orient="row")
    frame.with_columns(pl.Series("label", labels),
                       pl.Series("sample_id", [f"s{i:07d}" for i in range(rows)])).write_csv(path)


def fresh_warehouse_schema(schema: str) -> str:
    """With ``HYBRID_WAREHOUSE_URL`` set (a PostgreSQL warehouse), point it at a new ``schema`` so
    each size starts empty, as the fresh data folder does for DuckDB; returns which warehouse
    the run uses ("duckdb" or "postgresql")."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    url = os.environ.get("HYBRID_WAREHOUSE_URL", "").strip()
    if not url:
        return "duckdb"
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "schema"] + [("schema", schema)]
    os.environ["HYBRID_WAREHOUSE_URL"] = urlunsplit(parts._replace(query=urlencode(query)))
    return "postgresql"


def profile_child(rows: int, out: Path, task: str = "binary") -> None:
    """Ingest and refresh at ``rows`` in this process; write step times and totals to ``out``."""
    with tempfile.TemporaryDirectory() as folder:
        shared = os.environ.get("HYBRID_DATA_DIR", "").strip()
        if "://" in shared:  # an object store: a new prefix per size, this host's scratch in the temporary folder
            os.environ["HYBRID_DATA_DIR"] = f"{shared.rstrip('/')}/profile_{os.getpid()}"
            os.environ["HYBRID_SCRATCH_DIR"] = str(Path(folder) / "scratch")
        else:
            os.environ["HYBRID_DATA_DIR"] = str(Path(folder) / "data")
        warehouse = fresh_warehouse_schema(f"profile_{os.getpid()}")
        from dagster import AssetSelection, instance_for_test, materialize

        from hybrid_assets.common.partitions import landing_files_partitions, safe_partition_key
        from hybrid_assets.definitions import all_assets, refresh_models_job
        from hybrid_assets.ingest.assets import raw_samples
        from hybrid_assets.resources import resources_from_env
        from hybrid_resources.data.paths import DataLayout

        layout = DataLayout.from_env().ensure()
        landing_file(Path(folder) / "profile.csv", rows, task=task)
        upload = layout.landing / "profile.csv"
        upload.parent.mkdir(parents=True, exist_ok=True)
        upload.write_bytes((Path(folder) / "profile.csv").read_bytes())
        resources = resources_from_env()
        with instance_for_test() as instance:
            key = safe_partition_key("profile.csv")
            instance.add_dynamic_partitions(landing_files_partitions.name, [key])
            started = time.perf_counter()
            assert materialize([raw_samples], partition_key=key, instance=instance, resources=resources).success
            ingest_s = time.perf_counter() - started
            selection = refresh_models_job.selection - AssetSelection.assets("raw_samples")
            started = time.perf_counter()
            result = materialize(all_assets, selection=selection, instance=instance, resources=resources,
                                 raise_on_error=False)
            refresh_s = time.perf_counter() - started
            steps = {s.step_key: round(s.end_time - s.start_time, 2)
                     for s in instance.get_run_step_stats(result.run_id) if s.end_time and s.start_time}
            outcomes = refresh_outcomes(result) if result.success else {}
            # make demo plans the kernel routes after the refresh (its own job): timed on its own.
            started = time.perf_counter()
            plan = materialize(all_assets, selection=AssetSelection.assets("kernel_route_plan"), instance=instance,
                               resources=resources, raise_on_error=False)
            route_plan_s = time.perf_counter() - started
            if plan.success:
                (event,) = plan.asset_materializations_for_node("kernel_route_plan")
                outcomes["route_plan_expected"] = getattr(event.metadata.get("expected_accuracy"), "value", None)
    out.write_text(json.dumps({
        "rows": rows, "task": task, "warehouse": warehouse, "data_root": "object store" if layout.shared else "local disk",
        "success": result.success, "ingest_s": round(ingest_s, 2), "refresh_s": round(refresh_s, 2),
        "route_plan_s": round(route_plan_s, 2), "route_plan_success": plan.success,
        "step_s": steps, "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "outcomes": outcomes}, default=str))


def refresh_outcomes(result) -> dict:
    """What a speed-up must not change: the tuned choices, the shot plan's recommendation, the verdict."""
    def metadata(asset: str) -> dict:
        (event,) = result.asset_materializations_for_node(asset)
        return {key: getattr(value, "value", value) for key, value in event.metadata.items()}

    (verdict,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "quantum_beats_classical"]
    return {"task": metadata("reduced_embeddings").get("task"),
            "classical": [metadata("classical_baseline").get(key) for key in ("kind", "params")],
            "quantum": {key: metadata("kernel_tuning").get(key) for key in ("bandwidth", "reps", "C")},
            "recommended_shots": metadata("shot_plan").get("recommended_shots"),
            "verdict": {"passed": verdict.passed, "message": getattr(verdict.metadata.get("message"), "value", None)}}


def table(run: dict, top: int) -> list[str]:
    """The run's steps, slowest first, with their share of the refresh."""
    if "failed" in run:
        return [f"{run['rows']:,} rows: FAILED", run["failed"][-800:]]
    lines = [f"{run['rows']:,} rows ({run.get('task', 'binary')}, {run.get('warehouse', 'duckdb')} warehouse): ingest {run['ingest_s']:.1f} s, refresh {run['refresh_s']:.1f} s "
             f"({'succeeded' if run['success'] else 'FAILED'}), kernel_route_plan {run.get('route_plan_s', 0):.1f} s, "
             f"peak RSS {run['peak_rss_gib']:.2f} GiB",
             f"  {'step':<28}{'s':>9}{'share':>8}"]
    lines.append(f"  outcomes: {json.dumps(run.get('outcomes', {}), default=str)[:600]}")
    steps = sorted(run["step_s"].items(), key=lambda kv: -kv[1])
    for step, seconds in steps[:top]:
        lines.append(f"  {step:<28}{seconds:>9.1f}{seconds / run['refresh_s']:>8.1%}")
    rest = sum(seconds for _, seconds in steps[top:])
    lines.append(f"  {'(the other ' + str(max(0, len(steps) - top)) + ' steps)':<28}{rest:>9.1f}"
                 f"{rest / run['refresh_s']:>8.1%}")
    return lines


def print_task_ratios(runs: dict, rows: int) -> None:
    """Each task's refresh time over binary's at ``rows`` (when both ran)."""
    binary = runs.get(f"{rows}-binary", {}).get("refresh_s")
    for name, run in runs.items():
        if binary and name.startswith(f"{rows}-") and run.get("refresh_s") and run["task"] != "binary":
            print(f"{rows:,} rows: {run['task']} refresh {run['refresh_s']:.1f} s = {run['refresh_s'] / binary:.2f}x "
                  f"binary ({binary:.1f} s); steps over 2x binary: "
                  + ", ".join(f"{step} {seconds:.1f}/{runs[f'{rows}-binary']['step_s'].get(step, 0):.1f} s"
                              for step, seconds in run["step_s"].items()
                              if seconds > 2 * runs[f"{rows}-binary"]["step_s"].get(step, seconds) and seconds > 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000,10000,100000,1000000",
                        type=lambda text: [int(v) for v in text.split(",")])
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--tasks", default="binary", type=lambda text: text.split(","))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-task", default="binary", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        profile_child(args.child, args.child_out, args.child_task)
        return
    runs = {}
    for rows in args.rows:
        for task in args.tasks:
            name = str(rows) if args.tasks == ["binary"] else f"{rows}-{task}"
            out = Path(tempfile.mkstemp(suffix=".json")[1])
            done = subprocess.run([sys.executable, __file__, "--child", str(rows), "--child-out", str(out),
                                   "--child-task", task], capture_output=True, text=True)
            runs[name] = (json.loads(out.read_text()) if done.returncode == 0
                          else {"rows": rows, "task": task, "failed": done.stderr[-3000:]})
            print("\n".join(table(runs[name], args.top)), flush=True)
        print_task_ratios(runs, rows)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = ROOT / "bench" / "results" / f"refresh_profile-{stamp}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                                  "runs": runs}, indent=2) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
