"""``make demo``: materialize the whole pipeline on the landing data against the local instance.

Writes the bundled example (scikit-learn's breast-cancer data, no download) into the landing
zone only when it is empty (and, then, example records to score into an empty scoring zone),
ingests every landing file as its own partition, refreshes the models (with the run config of
``HYBRID_RUN_CONFIG``, a YAML file, when set), prints the quantum-vs-classical holdout table and
the kernel routes' plan on the configured device, scores every scoring file with the registry's champion, runs
pattern 3 (QAOA candidates ranked classically) on the newest returns file and the newest graph file
(bundled examples in empty folders), and says where to look. Exits non-zero if any
step or blocking check fails.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from hybrid_resources.data.artifacts import ArtifactStore
from hybrid_resources.data.paths import DataLayout, atomic_write

EXAMPLE_FILE_NAME = "breast_cancer.csv"
EXAMPLE_SCORING_FILE_NAME = "breast_cancer_new.csv"


def example_frame():
    """The breast-cancer data (569 rows, 30 features, labels 0/1) with sample ids."""
    import polars as pl
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    frame = pl.DataFrame(data.data, schema=[str(name) for name in data.feature_names], orient="row")
    return frame.with_columns(
        pl.Series("label", data.target.astype(int)),
        pl.Series("sample_id", [f"bc-{i:04d}" for i in range(len(data.target))]),
    ).select("sample_id", "label", *[str(name) for name in data.feature_names])


def write_example_dataset(path: Path) -> Path:
    """The example data as a landing CSV, written whole (never seen half-written)."""
    atomic_write(path, example_frame().write_csv)
    return path


def write_example_scoring(path: Path, *, rows: int = 200, seed: int = 0) -> Path:
    """New unlabelled records like the example data (rows drawn again, each feature shifted by 1%
    of its spread), with new sample ids, as a scoring CSV."""
    import numpy as np
    import polars as pl

    frame = example_frame()
    features = frame.drop("sample_id", "label")
    rng = np.random.default_rng(seed)
    drawn = features.to_numpy()[rng.integers(0, features.height, rows)]
    drawn += rng.normal(scale=0.01, size=drawn.shape) * features.to_numpy().std(axis=0)
    scoring = pl.DataFrame(drawn, schema=features.columns, orient="row").with_columns(
        pl.Series("sample_id", [f"bc-new-{i:04d}" for i in range(rows)])).select("sample_id", *features.columns)
    atomic_write(path, scoring.write_csv)
    return path


def score_files(instance, quiet: dict, failures: list[str]) -> None:
    """Score every file of the scoring zone (one partition each), as the scoring sensor does."""
    import polars as pl

    from hybrid_assets.definitions import defs
    from hybrid_assets.ingestion import landing_files
    from hybrid_assets.partitions import safe_partition_key, scoring_files_partitions
    from hybrid_resources.data.paths import zone_location
    from hybrid_resources.data.warehouse import Warehouse

    job = defs.resolve_job_def("ingest_scoring_file")
    files = landing_files(zone_location("scoring"))
    if not files:
        print(f"  no files in {zone_location('scoring')}: drop unlabelled CSV or Parquet files (sample_id and the "
              "feature columns) there to score them")
    for path in files:
        key = safe_partition_key(path.name)
        if not instance.has_dynamic_partition(scoring_files_partitions.name, key):
            instance.add_dynamic_partitions(scoring_files_partitions.name, [key])
        result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False, run_config=quiet)
        if not result.success:
            failures.append(f"scoring of {key!r} (run {result.run_id})")
            continue
        with Warehouse().session(read_only=True) as session:
            scored = session.predictions().filter((pl.col("source") == key) & (pl.col("role") == "champion"))
            record = session.landing_record(key, "scoring")
        if scored.is_empty():
            print(f"  scoring file {key!r}: {record.status if record else 'not ingested'}, no predictions"
                  + (f" ({record.reason}; the file is in {DataLayout.from_env().quarantine})"
                     if record and record.status == "quarantined" else ""))
            continue
        decisions = dict(sorted(scored["decision"].value_counts().iter_rows()))
        print(f"  scoring file {key!r}: {scored.height} rows by {scored['model_version'][0]}, decisions {decisions}, "
              f"{scored.filter(pl.col('flagged').is_not_null()).height} flagged; "
              f"export {DataLayout.from_env().predictions / (key + '.parquet')}")


def print_checks(evaluations) -> None:
    """model_evaluation's checks as the UI shows them (its Checks tab): the promotion gates, then
    the checks that are only reported."""
    from hybrid_assets.assets.evaluation import GATE_DESCRIPTIONS, PROMOTION_GATES

    found = {e.check_name: e for e in evaluations if e.asset_key.to_user_string() == "model_evaluation"}
    groups = {"Promotion gates (a failure blocks promoted_model):": PROMOTION_GATES,
              "Other checks (reported; they never block promotion):": [name for name in GATE_DESCRIPTIONS
                                                                      if name not in PROMOTION_GATES]}
    for title, names in groups.items():
        print(title)
        for name in names:
            if name in found:
                print(f"  {'pass' if found[name].passed else 'FAIL'}  {name}: {found[name].metadata['message'].value}")


def run_pattern3(instance, quiet: dict, failures: list[str]) -> None:
    """Pattern 3 on the newest returns file and the newest graph file (the bundled examples are written
    into empty ``returns/`` and ``graphs/`` folders): each route's job, then its best ranked candidate
    against the optimum and the heuristics, P(optimum) and the reported gates."""
    from dagster import AssetCheckSeverity

    from hybrid_assets.assets.maxcut import MAXCUT
    from hybrid_assets.assets.portfolio import PORTFOLIO
    from hybrid_assets.definitions import defs

    for kind in (PORTFOLIO, MAXCUT):
        job, started = kind.job[0], time.perf_counter()
        result = defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False, run_config=quiet)
        failed = [e.check_name for e in result.get_asset_check_evaluations()
                  if not e.passed and e.severity == AssetCheckSeverity.ERROR]
        failures.extend(f"check {job}:{name}" for name in failed)
        if not result.success:
            failures.append(f"{job} (run {result.run_id})")
            continue
        landing, ranked = result.output_for_node(kind.names["landing"]), result.output_for_node(kind.names["ranked"])
        report = result.output_for_node(kind.names["report"])
        roi, best = report["roi"], ranked["ranked"][0]
        heuristics = ", ".join(f"{name} {ratio:.3f}" for name, ratio in roi["heuristic_approximation_ratio"].items())
        gates = "; ".join(f"{'pass' if g['passed'] else 'FAIL'} {g['name']}" for g in report["gates"])
        print(f"  {job} on {landing['file']} ({time.perf_counter() - started:.1f} s): best {kind.chosen} "
              f"[{', '.join(best['chosen'])}], objective {best['objective']:.4g}, approximation ratio "
              f"{roi['quantum_approximation_ratio']:.3f} (heuristics: {heuristics})\n    P(optimum) "
              f"{roi['p_optimum_per_shot']:.4f} per shot, {roi['p_optimum_per_shot'] / roi['p_optimum_uniform_feasible']:.1f}x "
              f"uniform; gates (reported): {gates}")


def refresh_run_config(quiet: dict) -> dict:
    """The refresh's run config: ``quiet`` plus the ``ops`` of the YAML file ``HYBRID_RUN_CONFIG``
    names (the same file pastes into the launchpad), e.g. ``deploy/run_config/shot_devices.yaml``."""
    import os

    import yaml

    path = os.environ.get("HYBRID_RUN_CONFIG", "").strip()
    if not path:
        return quiet
    loaded = yaml.safe_load(Path(path).read_text()) or {}
    print(f"Run config for refresh_models: {path}")
    return {**quiet, "ops": loaded.get("ops", {})}


def print_route_plan(instance, quiet: dict, failures: list[str]) -> None:
    """Run plan_kernel_routes (submits nothing) and print each route's circuits, dollars and time."""
    from hybrid_assets.definitions import defs

    result = defs.resolve_job_def("plan_kernel_routes").execute_in_process(instance=instance, raise_on_error=False,
                                                                          run_config=quiet)
    if not result.success:
        failures.append(f"plan_kernel_routes (run {result.run_id})")
        return
    report = result.output_for_node("kernel_route_plan")
    accuracy = report["expected_accuracy"]
    print(f"\nKernel routes on {report['device']} ({report['shots'] or 'exact'} shots), planned, nothing submitted "
          "(asset kernel_route_plan; `hybrid-plan` prints the same):")
    for route in report["routes"]:
        refused = " - refused by the time budget" if route["route"] in report["refused"] else ""
        print(f"  {route['route']:>9}: {route['circuits']:,} circuits, ${route['usd']:,.2f}, "
              f"~{route['wall_time_s']:,.0f} s, expected accuracy {accuracy.get(route['route'], float('nan')):.4f}"
              f"{refused}")


def run_demo() -> int:
    from dagster import DagsterInstance

    from hybrid_assets.definitions import defs
    from hybrid_assets.ingestion import landing_files
    from hybrid_assets.partitions import landing_files_partitions, safe_partition_key
    from hybrid_resources.data.paths import zone_location

    layout = DataLayout.from_env().ensure()
    started = time.perf_counter()
    if not landing_files():
        write_example_dataset(layout.landing / EXAMPLE_FILE_NAME)
        print(f"Landing zone was empty: wrote the example dataset to {layout.landing / EXAMPLE_FILE_NAME}")
        scoring = zone_location("scoring")
        if not landing_files(scoring) and scoring.protocol in ("", "file"):  # records for the champion to score
            write_example_scoring(Path(scoring.path) / EXAMPLE_SCORING_FILE_NAME)
            print(f"Scoring zone was empty: wrote example records to score to {scoring / EXAMPLE_SCORING_FILE_NAME}")

    instance = DagsterInstance.get()
    keys = [safe_partition_key(path.name) for path in landing_files()]
    partitions_name = landing_files_partitions.name
    instance.add_dynamic_partitions(partitions_name, [k for k in keys if not instance.has_dynamic_partition(partitions_name, k)])

    # Step logs stay in the instance (and the UI); the terminal gets warnings and the summary.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    failures: list[str] = []
    ingest = defs.resolve_job_def("ingest_landing_file")
    for key in keys:
        result = ingest.execute_in_process(partition_key=key, instance=instance, raise_on_error=False,
                                           run_config=quiet)
        status = result.asset_materializations_for_node("raw_samples")[-1].metadata["status"].value if result.success else "failed"
        print(f"  landing file {key!r}: {status}")
        if not result.success:
            failures.append(f"ingest of {key!r} (run {result.run_id})")

    refresh = defs.resolve_job_def("refresh_models").execute_in_process(
        instance=instance, raise_on_error=False, run_config=refresh_run_config(quiet))
    if not refresh.success:
        failures.append(f"refresh_models (run {refresh.run_id})")
    from dagster import AssetCheckSeverity

    for evaluation in refresh.get_asset_check_evaluations():
        # A failed ERROR check stops what depends on it: a failure. A failed WARN gate only blocks promotion.
        if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR:
            failures.append(f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name}")

    if refresh.success and ArtifactStore(layout.artifacts).latest_version(["model_evaluation"]):
        from hybrid_assets.assets.evaluation import METRICS
        from hybrid_assets.modeling import comparison_table

        report = ArtifactStore(layout.artifacts).read(["model_evaluation"])
        print(f"\nVerdict: {report['gates']['quantum_beats_classical']['message']}")
        print(f"\nHoldout comparison ({report['n_train']} train / {report['n_test']} test samples):\n")
        print(comparison_table(report["metrics"], METRICS))
        print(f"\nQuantum stage: {report['quantum_stage']}.")
        print_checks(refresh.get_asset_check_evaluations())
        print("Promoted: " + ("yes (asset promoted_model)" if report["promotable"] else "no, the quantum model stays a candidate"))
    if refresh.success:
        print_route_plan(instance, quiet, failures)
        print("\nScoring (the registry's champion; warehouse table `predictions`):")
        score_files(instance, quiet, failures)
    print("\nPattern 3, QAOA candidates ranked classically (returns/ and graphs/; see the README):")
    run_pattern3(instance, quiet, failures)
    print(f"\nDone in {time.perf_counter() - started:.1f} s (after imports).")
    print(f"  data, warehouse, artifacts: {layout.root}")
    print(f"  Dagster instance (run history): {instance.root_directory}")
    print("  UI: `make ui`, then open http://127.0.0.1:3000 (Catalog -> model_evaluation; Lineage for the graph)")
    print("  pattern 3: Catalog -> portfolio_report, maxcut_report (ROI, gates, objective histogram); "
          "ranked_candidates, ranked_cuts")
    print("  models that serve: `.venv/bin/hybrid-registry list`; audit trail: `.venv/bin/hybrid-audit`")
    if failures:
        print("\nFAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def main() -> None:
    sys.exit(run_demo())


if __name__ == "__main__":
    main()
