"""What ``hybrid-demo`` (:mod:`hybrid_assets.cli.demo`) runs and prints.

Writes the bundled example (scikit-learn's breast-cancer data, no download) into the landing zone
only when it is empty (and then example records into an empty scoring zone), ingests every landing
file as its own partition, refreshes the models (with the run config of ``HYBRID_RUN_CONFIG``, a
YAML file, when set), prints the verdict, the holdout table and the gates, scores every scoring file
with the registry's champion, materializes the serving dashboard, plans the kernel routes on the
configured device, prints pattern 3's results on the newest returns and graph files (bundled
examples in empty folders), and exits non-zero if any step or blocking check failed.

Run as ``python -m hybrid_assets.cli.demo_run``, it is the second process, beside the refresh
(:func:`beside_main`): pattern 3, then the refresh's noise spread and the route plan.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import polars as pl
import yaml
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance

from hybrid_assets.cli.pattern3_process import BesideOutput, BesideRefresh, pattern3_place
from hybrid_assets.common.examples import (
    EXAMPLE_FILE_NAME,
    EXAMPLE_SCORING_FILE_NAME,
    write_example_dataset,
    write_example_scoring,
    write_task_example,
)
from hybrid_assets.common.partitions import (
    landing_files_partitions,
    safe_partition_key,
    scoring_files_partitions,
)
from hybrid_assets.common.reporting import comparison_table
from hybrid_assets.definitions import defs
from hybrid_assets.evaluation.assets import GATE_DESCRIPTIONS, PROMOTION_GATES
from hybrid_assets.evaluation.report import holdout_columns
from hybrid_assets.executors import set_missing_pool_limits
from hybrid_assets.optimization.maxcut import MAXCUT
from hybrid_assets.optimization.portfolio import PORTFOLIO
from hybrid_resources.data.artifacts import ArtifactStore
from hybrid_resources.data.paths import (
    DataLayout,
    landing_location,
    zone_entries,
    zone_files,
    zone_location,
)
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.lazy_modules import import_deferred
from hybrid_resources.process_heap import freeze_heap
from hybrid_resources.quantum.transpilation import import_transpiler

__all__ = ["beside_main", "run_demo"]

# Step logs stay in the instance (and the UI); the terminal gets warnings and the summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class Demo:
    """One demo run: the instance, the run config and the failures collected on the way."""

    def __init__(self, instance: DagsterInstance):
        self.instance = instance
        self.failures: list[str] = []

    def execute(self, job: str, what: str, *, run_config: dict = QUIET, **kwargs):
        """Run ``job`` in process; a failed run or a failed blocking (ERROR) check is a failure."""
        result = defs.resolve_job_def(job).execute_in_process(instance=self.instance, raise_on_error=False,
                                                              run_config=run_config, **kwargs)
        if not result.success:
            self.failures.append(f"{what} (run {result.run_id}{''.join(f'; {step}' for step in failed_steps(result))})")
        for evaluation in result.get_asset_check_evaluations():
            # A failed WARN gate only blocks promotion; a failed ERROR check stops what depends on it.
            if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR:
                self.failures.append(f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name}")
        return result

    def add_partition(self, partitions_name: str, key: str) -> None:
        if not self.instance.has_dynamic_partition(partitions_name, key):
            self.instance.add_dynamic_partitions(partitions_name, [key])


def failed_steps(result) -> list[str]:
    """``"<step>: <first line of its error>"`` for each failed step of an in-process run's
    ``result``, so that the demo's last line says what failed, however much the steps logged after."""
    failed = []
    for event in (event for event in result.all_events if event.is_step_failure):
        data, error = event.step_failure_data, event.step_failure_data.error
        while error is not None and error.cause is not None:  # Dagster wraps the step's own exception
            error = error.cause
        described = data.user_failure_data.description if data.user_failure_data else None
        text = (described or (error.message if error else "") or "failed").strip()
        failed.append(f"{event.step_key}: {text.splitlines()[0]}")
    return failed


def instance_lock(home: Path) -> Path:
    """The lock file :func:`open_instance` takes for the instance folder ``home``: in the temporary
    folder, named after ``home``, so that nothing is added to the instance folder."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"hybrid-demo-{digest}.lock"


def open_instance() -> DagsterInstance:
    """``DagsterInstance.get()`` with every pool's limit set (:func:`set_missing_pool_limits`), one
    demo process at a time: the demo and its pattern-3 process both open ``$DAGSTER_HOME``, and
    two processes creating a fresh SQLite instance at once can both stamp its run storage's schema
    version, after which the instance no longer opens; on a fresh PostgreSQL instance both would
    insert a pool's row on its first use, and one run fails (dagster-io/dagster#33552)."""
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home or not Path(home).is_dir():
        return DagsterInstance.get()  # it says what is wrong
    with open(instance_lock(Path(home)), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        instance = DagsterInstance.get()
        set_missing_pool_limits(instance)
        return instance


def write_examples_into_empty_zones(layout: DataLayout, example: str = "breast_cancer") -> None:
    """The bundled example (``example``: breast_cancer or a name of ``TASK_EXAMPLES``) into an empty
    landing zone, and records to score into an empty local scoring zone."""
    if zone_files(landing_location()):
        return
    if example != "breast_cancer":
        scoring = zone_location("scoring")
        for path in write_task_example(example, landing_location(), None if zone_files(scoring) else scoring,
                                       layout.dataset_contract):
            print(f"Wrote the {example} example: {path}")
        return
    write_example_dataset(landing_location() / EXAMPLE_FILE_NAME)
    print(f"Landing zone was empty: wrote the example dataset to {landing_location() / EXAMPLE_FILE_NAME}")
    scoring = zone_location("scoring")
    if not zone_files(scoring):
        write_example_scoring(scoring / EXAMPLE_SCORING_FILE_NAME)
        print(f"Scoring zone was empty: wrote example records to score to {scoring / EXAMPLE_SCORING_FILE_NAME}")


def ingest_landing_files(demo: Demo) -> None:
    """Every entry of the landing zone as its own partition, as the landing sensor does: a regular
    file is ingested (or quarantined with its reason), and a link, folder or FIFO is refused unread,
    with its reason recorded."""
    for entry in zone_entries(landing_location()):
        key = safe_partition_key(entry.name)
        demo.add_partition(landing_files_partitions.name, key)
        result = demo.execute("ingest_landing_file", f"ingest of {key!r}", partition_key=key)
        status = result.asset_materializations_for_node("raw_samples")[-1].metadata["status"].value \
            if result.success else "failed"
        print(f"  landing file {key!r}: {status}")


def refresh_run_config_path() -> str:
    """``HYBRID_RUN_CONFIG``: a YAML file of run config for refresh_models; empty when unset."""
    return os.environ.get("HYBRID_RUN_CONFIG", "").strip()


def refresh_run_config() -> dict:
    """The refresh's run config: QUIET plus the ``ops`` of the YAML file ``HYBRID_RUN_CONFIG``
    names (the same file pastes into the launchpad), e.g. ``deploy/run_config/shot_devices.yaml``."""
    path = refresh_run_config_path()
    if not path:
        return QUIET
    loaded = yaml.safe_load(Path(path).read_text()) or {}
    return {**QUIET, "ops": loaded.get("ops", {})}


NOISE_SPREAD = AssetKey("noisy_kernel_spread")
"""The one refresh asset that only the route plan reads: with a second process, that process
materializes it, beside the rest of the refresh."""


def refresh_models(demo: Demo, beside: BesideRefresh | None):
    """Run refresh_models. With ``beside``, this run leaves out :data:`NOISE_SPREAD` and hands its
    run id to the second process, which materializes it (a refresh_models run of its own) once this
    run has materialized what it reads."""
    if path := refresh_run_config_path():
        print(f"Run config for refresh_models: {path}")
    if beside is None:
        return demo.execute("refresh_models", "refresh_models", run_config=refresh_run_config())
    run_id = str(uuid.uuid4())
    beside.follow(run_id)
    refreshed = [key for key in defs.resolve_job_def("refresh_models").asset_layer.selected_asset_keys
                 if key != NOISE_SPREAD]
    return demo.execute("refresh_models", "refresh_models", run_config=refresh_run_config(), run_id=run_id,
                        asset_selection=refreshed)


def wait_for_materializations(instance: DagsterInstance, run_id: str, keys: set[AssetKey],
                              poll_s: float = 0.1) -> bool:
    """Wait until run ``run_id`` has materialized every asset of ``keys``: True; False when the run
    ended without (or the demo process that started this one is gone)."""
    parent = os.getppid()

    def materialized() -> bool:
        return all(getattr(instance.get_latest_materialization_event(key), "run_id", None) == run_id for key in keys)

    while not materialized():
        run = instance.get_run_by_id(run_id)
        if (run is not None and run.is_finished) or os.getppid() != parent:
            return materialized()  # it may have materialized them just before it ended
        time.sleep(poll_s)
    return True


def spread_and_plan(demo: Demo, run_id: str) -> list[str] | None:
    """Once the refresh ``run_id`` has materialized what they read: noisy_kernel_spread, then the
    route plan; the lines :func:`print_route_plan` printed, or None when either did not run."""
    graph = defs.resolve_asset_graph()
    planned = {NOISE_SPREAD, *defs.resolve_job_def("plan_kernel_routes").asset_layer.selected_asset_keys}
    read = {parent for key in planned for parent in graph.get(key).parent_keys} - planned
    if not wait_for_materializations(demo.instance, run_id, read):
        return None
    if not demo.execute("refresh_models", NOISE_SPREAD.to_user_string(), run_config=refresh_run_config(),
                        asset_selection=[NOISE_SPREAD]).success:
        return None
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        print_route_plan(demo)
    return printed.getvalue().splitlines()


def print_checks(evaluations) -> None:
    """model_evaluation's checks as the UI's Checks tab shows them: the promotion gates, then the
    checks that are only reported."""
    found = {e.check_name: e for e in evaluations if e.asset_key.to_user_string() == "model_evaluation"}
    groups = {"Promotion gates (a failure blocks promoted_model):": PROMOTION_GATES,
              "Other checks (reported; they never block promotion):": [name for name in GATE_DESCRIPTIONS
                                                                      if name not in PROMOTION_GATES]}
    for title, names in groups.items():
        print(title)
        for name in (n for n in names if n in found):
            print(f"  {'pass' if found[name].passed else 'FAIL'}  {name}: {found[name].metadata['message'].value}")


def print_task(refresh) -> None:
    """The task the refresh trained for, and whether it was declared or inferred (and how to pin it)."""
    for event in refresh.asset_materializations_for_node("reduced_embeddings"):
        resolution = event.metadata.get("task_resolution")
        if resolution is not None:
            print(f"\nTask: {resolution.value}")


def print_evaluation(store: ArtifactStore, evaluations) -> None:
    """The verdict first, then the holdout table, the quantum stage, the gates and promotion."""
    report = store.read(["model_evaluation"])
    print(f"\nVerdict: {report['gates']['quantum_beats_classical']['message']}")
    print(f"\nHoldout comparison ({report['n_train']} train / {report['n_test']} test samples):\n")
    print(comparison_table(report["metrics"], holdout_columns(report.get("task", "binary"))))
    print(f"\nQuantum stage: {report['quantum_stage']}.")
    print_checks(evaluations)
    print("Promoted: " + ("yes (asset promoted_model)" if report["promotable"] else "no, the quantum model stays a candidate"))


def print_route_plan(demo: Demo) -> None:
    """Run plan_kernel_routes (submits nothing) and print each route's circuits, dollars and time,
    then the provider scorecard's top three devices."""
    result = demo.execute("plan_kernel_routes", "plan_kernel_routes")
    if not result.success:
        return
    report = result.output_for_node("kernel_route_plan")
    accuracy = report["expected_accuracy"]
    print(f"\nKernel routes on {report['device']} ({report['shots'] or 'exact'} shots), planned, nothing submitted "
          "(asset kernel_route_plan; `hybrid-plan` prints the same):")
    for route in report["routes"]:
        refused = " - refused by the time budget" if route["route"] in report["refused"] else ""
        print(f"  {route['route']:>9}: {route['circuits']:,} circuits, ${route['usd']:,.2f}, "
              f"~{route['wall_time_s']:,.0f} s, expected {report.get('expected_metric', 'accuracy')} "
              f"{accuracy.get(route['route'], float('nan')):.4f}"
              f"{refused}")
    print_scorecard(result.output_for_node("provider_scorecard"))


def print_scorecard(scorecard: dict) -> None:
    """The provider scorecard's top three devices, and its recommendation."""
    print(f"\nProvider scorecard, {scorecard['route']} route at {scorecard['shots_per_circuit']:,} shots, top three "
          "of every known device (asset provider_scorecard; nothing submitted):")
    for row in scorecard["devices"][:3]:
        usd = f"${row['planned_usd']:,.2f}" if row["planned_usd"] is not None else "no price"
        error = f"{row['predicted_error']:.4f}" if row["predicted_error"] is not None else "not predicted"
        print(f"  {row['device']:>16}: {usd}, depth {row['transpiled_depth']} after transpilation "
              f"({row['swaps']} SWAPs), predicted kernel error {error}, failure rate {row['failure_rate']:.2f}"
              + ("" if row["fits"] else f" - does not fit: {'; '.join(row['reasons'])}"))
    print(f"  recommended: {scorecard['recommended'] or 'none fits the gates'}")


def print_scored(key: str, layout: DataLayout, *, refused: bool = False) -> None:
    """The champion's predictions of scoring partition ``key``, or why it has none; ``refused``: the
    entry was a link, folder or FIFO, refused unread, so nothing of it is in quarantine."""
    with Warehouse().session(read_only=True) as session:
        scored = session.predictions().filter((pl.col("source") == key) & (pl.col("role") == "champion"))
        record = session.landing_record(key, "scoring")
    if scored.is_empty():
        quarantined = record is not None and record.status == "quarantined"
        where = "" if refused else f"; the file is in {layout.quarantine}"
        print(f"  scoring file {key!r}: {record.status if record else 'not ingested'}, no predictions"
              + (f" ({record.reason}{where})" if quarantined else ""))
        return
    if "upper" in scored.columns and scored["upper"].is_not_null().any():  # a regression: values, not classes
        values = scored["score"]
        decisions = f"values {values.min():.4g}..{values.max():.4g} (median {values.median():.4g})"
    else:
        decisions = f"decisions {dict(sorted(scored['decision'].value_counts().iter_rows()))}"
    print(f"  scoring file {key!r}: {scored.height} rows by {scored['model_version'][0]}, {decisions}, "
          f"{scored.filter(pl.col('flagged').is_not_null()).height} flagged; "
          f"export {layout.predictions / (key + '.parquet')}")


def score_files(demo: Demo, layout: DataLayout) -> None:
    """Score every file of the scoring zone (one partition each), as the scoring sensor does, then
    materialize the serving dashboard (serving_monitor). A link, folder or FIFO there is refused
    unread and recorded, as the sensor's runs do."""
    entries = zone_entries(zone_location("scoring"))
    if not entries:
        print(f"  no files in {zone_location('scoring')}: drop unlabelled CSV or Parquet files (sample_id and the "
              "feature columns) there to score them")
    for entry in entries:
        key = safe_partition_key(entry.name)
        demo.add_partition(scoring_files_partitions.name, key)
        if demo.execute("ingest_scoring_file", f"scoring of {key!r}", partition_key=key).success:
            print_scored(key, layout, refused=entry.refused)
    if demo.execute("serving_dashboard", "serving_dashboard").success:
        print("  serving dashboard: asset serving_monitor (drift, spend, latency, shadow)")


def run_pattern3(demo: Demo) -> None:
    """Pattern 3 on the newest returns and graph files: each route's job, then its best ranked
    candidate against the optimum and the heuristics, P(optimum) and the reported gates."""
    for kind in (PORTFOLIO, MAXCUT):
        job, started = kind.job[0], time.perf_counter()
        result = demo.execute(job, job)
        if not result.success:
            continue
        landing, ranked = result.output_for_node(kind.names["landing"]), result.output_for_node(kind.names["ranked"])
        report, best = result.output_for_node(kind.names["report"]), ranked["ranked"][0]
        roi, gates = report["roi"], report["gates"]
        heuristics = ", ".join(f"{name} {ratio:.3f}" for name, ratio in roi["heuristic_approximation_ratio"].items())
        print(f"  {job} on {landing['file']} ({time.perf_counter() - started:.1f} s): best {kind.chosen} "
              f"[{', '.join(best['chosen'])}], objective {best['objective']:.4g}, approximation ratio "
              f"{roi['quantum_approximation_ratio']:.3f} (heuristics: {heuristics})\n    P(optimum) "
              f"{roi['p_optimum_per_shot']:.4f} per shot, {roi['p_optimum_per_shot'] / roi['p_optimum_uniform_feasible']:.1f}x "
              "uniform; gates (reported): " + "; ".join(f"{'pass' if g['passed'] else 'FAIL'} {g['name']}" for g in gates))


def print_plan(demo: Demo, beside: BesideOutput | None) -> None:
    """The route plan's lines: from the second process (none when its runs failed: their failures
    say why), or planned here (:func:`print_route_plan`)."""
    if beside is None:
        print_route_plan(demo)
    elif beside.route_plan is not None:
        print(*beside.route_plan, sep="\n")


def print_pattern3(demo: Demo, beside: BesideOutput | None) -> None:
    """Pattern 3's lines: from the second process, or run here; nothing but a line saying so when
    ``HYBRID_DEMO_PATTERN3`` is ``off``."""
    if pattern3_place() == "off":
        print("\nPattern 3: not run (HYBRID_DEMO_PATTERN3=off).")
        return
    print("\nPattern 3, QAOA candidates ranked classically (returns/ and graphs/; see docs/pattern3.md)"
          + (", run beside the refresh in a second process:" if beside else ":"))
    if beside is None:
        run_pattern3(demo)
        return
    print(*beside.pattern3, sep="\n")


def print_where_to_look(layout: DataLayout, instance: DagsterInstance, started: float) -> None:
    print(f"\nDone in {time.perf_counter() - started:.1f} s (after imports).")
    print(f"  data, artifacts: {layout.root}")
    print(f"  warehouse: {Warehouse().describe()}")
    print(f"  Dagster instance (run history): {instance.root_directory}")
    print("  UI: `make ui`, then open http://127.0.0.1:3000 (Catalog -> model_evaluation; Lineage for the graph)")
    print("  pattern 3: Catalog -> portfolio_report, maxcut_report (ROI, gates, objective histogram); "
          "ranked_candidates, ranked_cuts")
    print("  models that serve: `.venv/bin/hybrid-registry list`; audit trail: `.venv/bin/hybrid-audit`")


def run_demo(example: str = "breast_cancer", beside: BesideRefresh | None = None) -> int:
    """The whole demo against ``DagsterInstance.get()`` (``$DAGSTER_HOME``); 0 when nothing failed.
    With ``beside`` (the second process, started before this one's imports), pattern 3, the noise
    spread and the route plan run there, and their lines and failures are taken from it; without,
    they run here after the scoring (pattern 3 not at all when ``HYBRID_DEMO_PATTERN3`` is off)."""
    # The landing contract imports Great Expectations when it first validates a file (3 s), the
    # steps import PennyLane and scikit-learn when they first run a circuit or fit a model, Qiskit
    # with its plugins when they first transpile (0.7 s), and Dagster its storage modules (alembic,
    # the backfill and daemon machinery) when the instance first opens its storage (0.5 s), so that
    # a process that never does does not pay for them: here they are imports like the others, paid
    # before the clock that reports the demo's time after imports starts.
    import dagster._core.storage.base_storage  # noqa: F401
    import great_expectations  # noqa: F401

    import_deferred()
    import_transpiler()
    freeze_heap()
    layout, started = DataLayout.from_env().ensure(), time.perf_counter()
    write_examples_into_empty_zones(layout, example)
    demo = Demo(open_instance())
    ingest_landing_files(demo)
    refresh = refresh_models(demo, beside)
    store = ArtifactStore.at(layout.artifacts)
    if refresh.success and store.latest_version(["model_evaluation"]):
        if example != "breast_cancer":
            print_task(refresh)
        print_evaluation(store, refresh.get_asset_check_evaluations())
    if refresh.success:
        print("\nScoring (the registry's champion; warehouse table `predictions`):")
        score_files(demo, layout)
    second = beside.result() if beside else None
    demo.failures += second.failures if second else []
    if refresh.success:
        print_plan(demo, second)
    print_pattern3(demo, second)
    print_where_to_look(layout, demo.instance, started)
    if demo.failures:
        print("\nFAILED: " + "; ".join(demo.failures), file=sys.stderr)
        return 1
    return 0


def beside_main() -> int:
    """The second process: pattern 3 on this process's instance, its lines printed; then, when the
    demo hands it a refresh's run id on standard input, :func:`spread_and_plan`; last, the JSON
    ``{"failures": [...], "route_plan": [...] | null}`` that
    :class:`~hybrid_assets.cli.pattern3_process.BesideRefresh` reads."""
    import_deferred()  # as run_demo does, before the refresh beside it starts its clock
    freeze_heap()
    demo = Demo(open_instance())
    run_pattern3(demo)
    run_id = "" if sys.stdin.isatty() else sys.stdin.readline().strip()  # run by hand: no refresh to follow
    route_plan = spread_and_plan(demo, run_id) if run_id else None
    print(json.dumps({"failures": demo.failures, "route_plan": route_plan}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(beside_main())
