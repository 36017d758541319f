"""`make demo`'s entry point, end to end in a real process on a persistent (temporary) instance."""

from __future__ import annotations

import os
import re
import stat

import numpy as np
import polars as pl

from hybrid_resources.data.warehouse import Warehouse
from tests.conftest import REPO, latest_artifact


def readme_demo_output() -> str:
    """The demo output the README shows (between its demo-output markers)."""
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- demo-output:", 1)[1].split("<!-- demo-output-end -->", 1)[0]
    return block.split("```\n", 1)[1].rsplit("```", 1)[0]


def pattern3_lines(stdout: str) -> list[str]:
    """The demo's pattern-3 lines, their measured seconds masked, and the gate decided on measured
    seconds (the quantum stage's time to solution against the heuristics') too."""
    block = stdout.split("\nPattern 3, QAOA candidates", 1)[1].split("\n", 1)[1].split("\nDone in", 1)[0]
    return [re.sub(r"(pass|FAIL) quantum_beats_heuristics_time", "_ quantum_beats_heuristics_time",
                   re.sub(r"\([0-9.]+ s\)", "(_ s)", line)) for line in block.splitlines()]


def test_demo_fills_an_empty_landing_zone_and_prints_both_models(local_project):
    local_project.env.pop("HYBRID_DEMO_PATTERN3")  # the default: pattern 3 beside the refresh
    completed = local_project.command("hybrid-demo")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    # The README shows this output; it must be what the demo prints, not a hand-copied memory of it.
    printed = completed.stdout[completed.stdout.index("Verdict:"):]
    printed = printed[: printed.index("Promoted:")] + printed[printed.index("Promoted:"):].split("\n", 1)[0] + "\n"
    timing = re.compile(r"[0-9.]+ ms per sample")  # a measured latency: the one figure that varies by run
    assert timing.sub("_", printed) == timing.sub("_", readme_demo_output()), (
        "paste this into README.md's demo-output block:\n" + printed)
    data = local_project.data
    assert (data / "landing" / "breast_cancer.csv").exists()
    assert "| quantum_svm |" in completed.stdout and "| classical_baseline |" in completed.stdout
    assert "Promotion gates" in completed.stdout
    # The kernel routes' plan (job plan_kernel_routes) on the exact simulator: nothing to submit, nothing spent.
    assert "Kernel routes on default.qubit (exact shots), planned, nothing submitted" in completed.stdout
    assert re.search(r"projected: 0 circuits, \$0\.00, ~0 s, expected accuracy 0\.\d{4}", completed.stdout)
    report = latest_artifact(data / "artifacts", "model_evaluation")
    assert report["n_train"] + report["n_test"] == 569
    assert report["metrics"]["classical_baseline"]["accuracy"] > 0.9
    assert report["metrics"]["quantum_svm"]["accuracy"] > 0.8
    # The run history is on the persistent instance that `make ui` opens.
    assert any(local_project.home.rglob("*.db"))

    # New records of the same kind were scored by the registry's champion, the classical baseline.
    assert "scoring file 'breast_cancer_new.csv': 200 rows by classical_baseline@" in completed.stdout
    export = pl.read_parquet(data / "predictions" / "breast_cancer_new.csv.parquet")
    assert export.height == 200 and set(export["role"]) == {"champion"} and export["sample_id"].n_unique() == 200

    # Pattern 3 ran on its bundled examples, written into the empty returns/ and graphs/ folders.
    assert (data / "returns" / "example_returns.csv").exists() and (data / "graphs" / "example_graph.csv").exists()
    assert "portfolio_candidates on example_returns.csv" in completed.stdout
    assert "maxcut_candidates on example_graph.csv" in completed.stdout
    assert "run beside the refresh in a second process:" in completed.stdout
    ranked_cuts = latest_artifact(data / "artifacts", "ranked_cuts")
    assert ranked_cuts["lineage"]["graph_file"] == "example_graph.csv" and ranked_cuts["ranked"]
    assert latest_artifact(data / "artifacts", "portfolio_report")["gates"]
    # The second process also materialized the noise spread, in a refresh_models run of its own that
    # followed the demo's refresh, and planned the routes; the demo's refresh left it out.
    from dagster import AssetKey, DagsterInstance
    with DagsterInstance.from_config(str(local_project.home)) as instance:
        refreshes = {run.run_id: run.asset_selection for run in instance.get_runs() if run.job_name == "refresh_models"}
        spread = instance.get_latest_materialization_event(AssetKey("noisy_kernel_spread")).run_id
        plan = instance.get_latest_materialization_event(AssetKey("provider_scorecard")).run_id
        assert refreshes[spread] == {AssetKey("noisy_kernel_spread")} and len(refreshes) == 2
        assert [AssetKey("noisy_kernel_spread") not in keys and len(keys) == 13
                for run_id, keys in refreshes.items() if run_id != spread] == [True]
        assert instance.get_run_by_id(plan).job_name == "plan_kernel_routes"

    # A second demo on the same instance re-uses the landing data (nothing rewritten) and passes;
    # scoring the same file with the same champion again writes no duplicates. Pattern 3 run after
    # the scoring, in the demo's own process, prints what it printed from its second process.
    local_project.env["HYBRID_DEMO_PATTERN3"] = "after"
    again = local_project.command("hybrid-demo")
    assert again.returncode == 0, again.stdout + again.stderr
    assert pattern3_lines(again.stdout) == pattern3_lines(completed.stdout) and len(pattern3_lines(again.stdout)) == 4
    assert "run beside the refresh" not in again.stdout
    assert "Landing zone was empty" not in again.stdout and "Scoring zone was empty" not in again.stdout
    with Warehouse(path=str(data / "warehouse.duckdb")).connect(read_only=True) as connection:
        assert connection.execute("SELECT count(*), count(DISTINCT sample_id) FROM predictions").fetchone() == (200, 200)


def test_demo_runs_another_csv_in_another_data_dir(local_project):
    rng = np.random.default_rng(5)
    y = np.arange(90) % 2
    X = rng.normal(size=(90, 4)) + 2.0 * y[:, None]
    frame = pl.DataFrame(X, schema=["petal", "sepal", "stem", "leaf"], orient="row")
    landing = local_project.data / "landing"
    frame.with_columns(pl.Series("label", np.where(y == 1, "virginica", "setosa"))).write_csv(landing / "flowers.csv")
    # Beside it, what the landing zone refuses unread: a link to a file outside it, and a FIFO.
    outside = local_project.data.parent / "outside.csv"
    outside.write_text("sample_id,label,petal\ns1,a,1.0\n")
    os.symlink(outside, landing / "link.csv")
    os.mkfifo(landing / "pipe.csv")
    (local_project.data / "scoring").mkdir()
    os.symlink(outside, local_project.data / "scoring" / "to_score.csv")

    completed = local_project.command("hybrid-demo")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    # Each is refused and says so, as the landing sensor's runs do: the link removed (its target
    # untouched), the FIFO left where it is; the CSV flows on.
    for name in ("flowers.csv", "link.csv", "pipe.csv"):
        status = "ingested" if name == "flowers.csv" else "quarantined"
        assert f"  landing file {name!r}: {status}" in completed.stdout, completed.stdout
    assert not os.path.lexists(landing / "link.csv") and outside.read_text().startswith("sample_id,label")
    assert stat.S_ISFIFO(os.lstat(landing / "pipe.csv").st_mode)
    assert re.search(r"  scoring file 'to_score.csv': quarantined, no predictions \('to_score.csv' is a symbolic link[^\n]*"
                     r"target never read\)\n", completed.stdout), completed.stdout
    assert not os.path.lexists(local_project.data / "scoring" / "to_score.csv")
    assert not (landing / "breast_cancer.csv").exists()
    assert not (local_project.data / "scoring" / "breast_cancer_new.csv").exists()  # only beside the example
    report = latest_artifact(local_project.data / "artifacts", "model_evaluation")
    assert report["n_train"] + report["n_test"] == 90
    embeddings = latest_artifact(local_project.data / "artifacts", "reduced_embeddings")
    assert embeddings["classes"].tolist() == ["setosa", "virginica"]
    # HYBRID_DEMO_PATTERN3=off (this fixture's setting): pattern 3 neither ran nor wrote its examples.
    assert "Pattern 3: not run (HYBRID_DEMO_PATTERN3=off)." in completed.stdout
    assert "portfolio_candidates" not in completed.stdout and not (local_project.data / "graphs" / "example_graph.csv").exists()


def test_the_second_process_reports_its_lines_its_plan_its_failures_and_a_process_that_died():
    import subprocess
    import sys
    import tempfile

    from hybrid_assets.cli.pattern3_process import BesideOutput, BesideRefresh

    def beside(code: str) -> BesideRefresh:
        output = tempfile.TemporaryFile("w+")
        return BesideRefresh(subprocess.Popen([sys.executable, "-c", code], stdout=output, stdin=subprocess.PIPE,
                                              text=True), output)

    # It reads the run id it is handed, and ends its output with its failures and the plan's lines.
    echo = beside("import json, sys; run = sys.stdin.readline().strip(); print('  line')\n"
                  "print(json.dumps({'failures': ['maxcut_candidates (run 1)'], 'route_plan': ['plan of ' + run]}))")
    echo.follow("run-7")
    assert echo.result() == BesideOutput(["  line"], ["plan of run-7"], ["maxcut_candidates (run 1)"])
    # Handed nothing: its standard input ends, and it did not plan.
    idle = beside("import json, sys; print(json.dumps({'failures': [], 'route_plan': sys.stdin.readline() or None}))")
    assert idle.result() == BesideOutput([], None, [])
    died = beside("print('  started'); raise SystemExit(3)")
    assert died.result() == BesideOutput(["  started"], None, [
        "the demo's second process (exited with code 3; its error is above)"])
    died.follow("run-8")  # a process that has ended is handed nothing, and nothing fails


def test_the_second_process_waits_for_what_the_refresh_materializes_and_not_for_a_run_that_ended(tmp_path):
    from dagster import AssetKey, DagsterInstance, asset, materialize

    from hybrid_assets.cli.demo_run import wait_for_materializations

    @asset
    def upstream() -> int:
        return 1

    @asset
    def other() -> int:
        return 2

    with DagsterInstance.ephemeral() as instance:
        both = materialize([upstream, other], instance=instance)
        assert wait_for_materializations(instance, both.run_id, {AssetKey("upstream"), AssetKey("other")})
        only_other = materialize([other], instance=instance)
        # A finished run that did not materialize one of them: no waiting for it.
        assert not wait_for_materializations(instance, only_other.run_id, {AssetKey("upstream")})
        # A later run of it: the earlier run's materialization is no longer the latest one.
        materialize([upstream], instance=instance)
        assert not wait_for_materializations(instance, both.run_id, {AssetKey("upstream")})


def test_a_wrong_pattern3_place_is_refused_before_anything_runs(local_project):
    local_project.env["HYBRID_DEMO_PATTERN3"] = "later"
    completed = local_project.command("hybrid-demo")
    assert completed.returncode != 0 and "HYBRID_DEMO_PATTERN3 must be one of beside, after, off, got 'later'" in completed.stderr
    assert not any(local_project.home.rglob("*.db")) and not (local_project.data / "landing" / "breast_cancer.csv").exists()


def test_demo_processes_create_a_fresh_instance_one_at_a_time(tmp_path):
    """hybrid-demo and its pattern-3 process both open $DAGSTER_HOME. Two processes creating a fresh
    SQLite instance at once can both stamp its schema version (3 of 8 tries here), after which it
    no longer opens; ``open_instance`` lets one process at a time in."""
    import fcntl
    import shutil
    import subprocess
    import sys
    import time

    from hybrid_assets.cli.demo_run import instance_lock

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    code = ("from hybrid_assets.cli.demo_run import open_instance\n"
            "print('opening', flush=True)\nopen_instance()\nprint('opened', flush=True)")
    with open(instance_lock(home), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another demo process is creating the instance
        opener = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "DAGSTER_HOME": str(home)},
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert opener.stdout.readline().strip() == "opening"
        time.sleep(2)  # time enough to create the instance, were the lock not taken
        assert opener.poll() is None and not (home / "history").exists()
    assert opener.communicate(timeout=300)[0].strip() == "opened" and opener.returncode == 0
    assert (home / "history" / "runs.db").exists() and sorted(p.name for p in home.iterdir()) == [
        "dagster.yaml", "history", "schedules"]  # the lock is not in the home


def test_a_failed_run_names_each_failed_step_and_the_first_line_of_its_error():
    from dagster import Failure, job, op

    from hybrid_assets.cli.demo_run import failed_steps

    @op
    def refused():
        raise Failure(description="Refused before submission: $12.00 over run_budget_usd\nmore detail")

    @op
    def crashed():
        raise RuntimeError("the device went away")

    @op
    def fine():
        return 1

    @job
    def three_steps():
        refused()
        crashed()
        fine()

    result = three_steps.execute_in_process(raise_on_error=False)
    assert sorted(failed_steps(result)) == ["crashed: RuntimeError: the device went away",
                                            "refused: Refused before submission: $12.00 over run_budget_usd"]
