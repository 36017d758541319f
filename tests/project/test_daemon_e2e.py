"""Real daemon proof: a dropped file ends in an evaluated model with no click; a bad file is
quarantined and starts nothing downstream; a run worker killed mid-ingest is retried with no
click and the file is ingested exactly once; starting the daemon after ``make demo`` starts no run;
a model promoted from the CLI scores dropped files and Redis stream records with no click.

Starts a real ``dagster-daemon`` (sensors, declarative automation, run queue) on a temporary
DAGSTER_HOME and data dir, against the code location of this repository's workspace.yaml (served
by one code server, see :func:`running_daemon`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
)

from hybrid_assets.common.outputs import latest_metadata
from hybrid_resources.data.stream import ScoringStream
from hybrid_resources.data.warehouse import Warehouse
from tests.bad_files import good_frame, write_good_csv, write_nan_and_inf
from tests.conftest import REPO, free_port, start_service, stop_process_group

UNFINISHED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
              DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def land(landing: Path, writer, *args, **kwargs) -> Path:
    """Write a file elsewhere and move it in, as a well-behaved producer would."""
    staging = landing.parent / "staging"
    staging.mkdir(exist_ok=True)
    written = writer(staging, *args, **kwargs)
    return Path(shutil.move(str(written), landing / written.name))


def wait_for(condition, timeout_s: float, what: str, process: subprocess.Popen, log: Path):
    """``condition()``'s first true value, polled while ``process`` (the daemon, or the code server
    it reaches) runs; its log's tail if it exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert process.poll() is None, f"{process.args[0]} exited, waiting for {what}:\n{log.read_text()[-4000:]}"
        time.sleep(0.5)  # the instance is local sqlite: a poll costs milliseconds
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{log.read_text()[-4000:]}")


@contextmanager
def running_daemon(project, log: Path):
    """A real ``dagster-daemon`` on the project's instance, stopped (with its children) at the end.

    The code location is served by one code server for the whole test, the module of
    workspace.yaml loaded as ``dagster dev`` and the compose file serve it (``dagster code-server
    start``; the daemon reaches it through a ``grpc_server`` entry). Given workspace.yaml itself,
    the daemon would start a fresh code server at each of its 60-s workspace refreshes, each
    importing the pipeline again (about 4 s of CPU) while sensors wait for it."""
    bin_dir, port = Path(sys.executable).parent, free_port()
    workspace = log.with_name("workspace.yaml")
    workspace.write_text(f"load_from:\n  - grpc_server: {{host: 127.0.0.1, port: {port}, "
                         "location_name: hybrid_assets.definitions}\n")
    with open(log, "w") as output:
        code_server = start_service([str(bin_dir / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p",
                                     str(port), "-m", "hybrid_assets.definitions"], cwd=REPO, env=project.env,
                                    stdout=output, stderr=subprocess.STDOUT)
    try:
        # It listens once it has loaded the module.
        wait_for(lambda: listening(port), 120, "the code server to listen", code_server, log)
        with open(log, "a") as output:
            process = start_service([str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)], cwd=REPO,
                                    env=project.env, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield process, log
        finally:
            stop_process_group(process)
    finally:
        stop_process_group(code_server)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def daemon(local_project, tmp_path):
    # Create the sqlite storage before the daemon and its code server open it: processes that
    # initialize one fresh instance at the same moment can race on its schema stamp (as
    # `make home` does for `make ui`, with `dagster instance concurrency set`).
    instance = DagsterInstance.from_config(str(local_project.home))
    instance.get_runs(limit=1)
    with running_daemon(local_project, tmp_path / "daemon.log") as (process, log):
        yield instance, local_project.data, process, log
    instance.dispose()


def latest_version(instance: DagsterInstance, asset: str) -> str | None:
    event = instance.get_latest_materialization_event(AssetKey(asset))
    return event.asset_materialization.tags.get("dagster/data_version") if event else None


def idle(instance: DagsterInstance) -> bool:
    return not instance.get_runs(RunsFilter(statuses=UNFINISHED), limit=1)


def runs_since(instance: DagsterInstance, known: set[str]) -> list:
    return [run for run in instance.get_runs() if run.run_id not in known]


def test_dropped_files_refresh_the_model_without_a_click(daemon):
    instance, data, process, log = daemon
    land(data / "landing", write_good_csv, n_rows=60, name="first.csv")
    wait_for(lambda: latest_version(instance, "model_evaluation"), 300, "the evaluated model", process, log)
    wait_for(lambda: idle(instance), 120, "runs to finish", process, log)
    model_version = latest_version(instance, "quantum_svm")
    features = instance.get_latest_materialization_event(AssetKey("features")).asset_materialization
    assert features.metadata["row_count"].value == 60

    # A bad file is quarantined, and nothing downstream runs: its run added no data.
    before = {run.run_id for run in instance.get_runs()}
    bad = land(data / "landing", write_nan_and_inf)
    sidecar = data / "quarantine" / f"{bad.name}.reason.json"
    wait_for(sidecar.exists, 180, "the bad file in quarantine", process, log)
    time.sleep(25)  # two automation ticks: time to react to the quarantined partition, if it would
    wait_for(lambda: idle(instance), 180, "runs to finish", process, log)

    assert not bad.exists() and (data / "quarantine" / bad.name).exists()
    assert "finite_values" in sidecar.read_text()
    assert [run.job_name for run in runs_since(instance, before)] == ["ingest_landing_file"]
    assert latest_version(instance, "quantum_svm") == model_version
    features = instance.get_latest_materialization_event(AssetKey("features")).asset_materialization
    assert features.metadata["row_count"].value == 60
    failed = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE]))
    assert not failed, [run.run_id for run in failed]

    # A small good file: a new model whose kernel comes mostly from the cache.
    land(data / "landing", write_good_csv, n_rows=6, seed=7, id_offset=900, name="more.csv")
    wait_for(lambda: latest_version(instance, "quantum_svm") != model_version, 300, "the refreshed model", process, log)
    wait_for(lambda: idle(instance), 180, "runs to finish", process, log)
    embeddings = latest_metadata(instance, "reduced_embeddings")
    kernel = latest_metadata(instance, "quantum_kernel_train")
    assert embeddings["transform"].startswith("kept"), embeddings["transform"]
    n_old = embeddings["transform_fit_rows"]
    assert kernel["entries_from_cache"] == n_old * (n_old - 1) and kernel["entries_computed"] > 0
    assert not instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE]))


def worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The pid of the process executing a run's steps, once its step has started (from its event log)."""
    records = instance.all_logs(run_id)
    if not any(r.dagster_event and r.dagster_event.event_type == DagsterEventType.STEP_START for r in records):
        return None
    for record in records:
        match = re.search(r"Executing steps in process \(pid: (\d+)\)", record.user_message or "")
        if match:
            return int(match.group(1))
    return None


def test_a_worker_killed_mid_ingest_is_retried_and_the_file_is_ingested_exactly_once(daemon):
    instance, data, process, log = daemon
    # Small: the kill lands while the step imports Great Expectations (seconds), before it reads the
    # file, whatever its size; the models the retry leads to are then trained on these rows.
    land(data / "landing", write_good_csv, n_rows=80, n_features=5, name="big.csv")
    ingest = wait_for(lambda: next(iter(instance.get_runs(RunsFilter(job_name="ingest_landing_file"))), None),
                      120, "the ingest run", process, log)
    pid = wait_for(lambda: worker_pid(instance, ingest.run_id), 120, "the ingest step to start", process, log)
    os.kill(pid, signal.SIGKILL)  # mid-file: Great Expectations alone takes seconds to import
    assert instance.get_latest_materialization_event(AssetKey("raw_samples")) is None

    # No click: run monitoring marks the run failed and frees its pool slot, run retries re-launch it.
    wait_for(lambda: latest_version(instance, "model_evaluation"), 600, "the models after the retry", process, log)
    wait_for(lambda: idle(instance), 180, "runs to finish", process, log)
    killed = instance.get_run_by_id(ingest.run_id)
    assert killed.status == DagsterRunStatus.FAILURE
    (retry,) = [run for run in instance.get_runs(RunsFilter(job_name="ingest_landing_file"))
                if run.tags.get("dagster/parent_run_id") == ingest.run_id]
    assert retry.status == DagsterRunStatus.SUCCESS
    assert not instance.event_log_storage.get_concurrency_run_ids() & {ingest.run_id}
    with Warehouse(path=str(data / "warehouse.duckdb")).connect(read_only=True) as connection:
        assert connection.execute("SELECT count(*), count(DISTINCT sample_id) FROM raw_rows").fetchone() == (80, 80)
        assert connection.execute("SELECT status, n_rows FROM landing_files").fetchall() == [("ingested", 80)]
    features = instance.get_latest_materialization_event(AssetKey("features")).asset_materialization
    assert features.metadata["row_count"].value == 80


def test_starting_the_daemon_after_make_demo_starts_no_run(local_project, tmp_path):
    local_project.env["HYBRID_DEMO_PATTERN3"] = "after"  # the whole demo: pattern 3's sensors see its files too
    write_good_csv(local_project.data / "landing", n_rows=40, name="data.csv")
    assert local_project.command("hybrid-demo").returncode == 0
    instance = DagsterInstance.from_config(str(local_project.home))
    before = {run.run_id for run in instance.get_runs()}
    with running_daemon(local_project, tmp_path / "daemon.log") as (process, log):
        time.sleep(35)  # three sensor and automation ticks
        assert process.poll() is None, log.read_text()[-3000:]
        assert runs_since(instance, before) == []
    instance.dispose()


def write_scoring_csv(folder: Path, *, n_rows: int, id_offset: int, name: str) -> Path:
    path = folder / name
    good_frame(n_rows=n_rows, seed=21, id_offset=id_offset).drop("label").write_csv(path)
    return path


def champion_predictions(data: Path, source: str) -> list[tuple[str, str]]:
    """(model_version, decided_by) of the champion's predictions from one source."""
    with Warehouse(path=str(data / "warehouse.duckdb")).connect(read_only=True) as connection:
        return connection.execute("SELECT model_version, decided_by FROM predictions WHERE source = ? "
                                  "AND role = 'champion'", [source]).fetchall()


def registry(project, *args: str) -> str:
    completed = project.command("hybrid-registry", *args)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_promote_and_score_files_and_stream_records_without_a_click(trained_project, tmp_path, redis_url,
                                                                   signers):
    """From trained models (the quantum one in shadow), approve and promote the quantum model from
    the CLI, then scoring files and stream records get predictions with no click; a rollback from
    the CLI changes the next file's model. (That a dropped file trains the models with no click is
    test_dropped_files_refresh_the_model_without_a_click's.)"""
    project, data = trained_project, trained_project.data
    project.env.update({"HYBRID_MIN_MARGIN": "-1",  # as trained: the quantum model's gates pass on any margin
                        "HYBRID_REDIS_URL": redis_url, "HYBRID_SCORING_STREAM": "e2e:scoring",
                        "HYBRID_APPROVERS_FILE": str(signers.file)})
    (data / "scoring").mkdir(exist_ok=True)
    instance = DagsterInstance.from_config(str(project.home))
    before, trained_model = {run.run_id for run in instance.get_runs()}, latest_version(instance, "quantum_svm")
    with running_daemon(project, tmp_path / "daemon.log") as (process, log):
        with Warehouse(path=str(data / "warehouse.duckdb")).session(read_only=True) as session:
            status = {m["version_id"]: m["status"] for m in session.models()}
        (quantum,) = [v for v, s in status.items() if v.startswith("quantum_svm@") and s == "shadow"]
        (classical,) = [v for v, s in status.items() if v.startswith("classical_baseline@") and s == "champion"]

        signed = {action: tmp_path / f"{action}.json" for action in ("approve", "promote", "rollback")}
        registry(project, *signers.sign_args("approve", f"promote:{quantum}", by="alice", out=signed["approve"]))
        registry(project, "approve", "--statement", str(signed["approve"]))
        registry(project, *signers.sign_args("promote", quantum, by="bob", out=signed["promote"]))
        assert f"{quantum} is the champion" in registry(project, "promote", "--statement", str(signed["promote"]))
        land(data / "scoring", write_scoring_csv, n_rows=30, id_offset=7000, name="first.csv")
        first = wait_for(lambda: champion_predictions(data, "first.csv"), 300, "the first file's predictions",
                         process, log)
        assert len(first) == 30 and {version for version, _ in first} == {quantum}
        assert {decided for _, decided in first} <= {quantum, classical}  # cheap first: the screen decides most

        stream = ScoringStream(url=redis_url, stream="e2e:scoring")
        frame = good_frame(n_rows=4, seed=22, id_offset=8000)
        names = [c for c in frame.columns if c.startswith("f")]
        for row in frame.iter_rows(named=True):
            stream.client().xadd(stream.stream, {"sample_id": row["sample_id"],
                                                 "features": json.dumps({n: row[n] for n in names})})
        streamed = wait_for(lambda: len(champion_predictions(data, "stream:e2e:scoring")) == 4 or None, 180,
                            "the stream records' predictions", process, log)
        assert streamed and stream.backlog(stream.client()) == {"pending": 0, "lag": 0}

        registry(project, *signers.sign_args("rollback", by="bob", out=signed["rollback"], reason="e2e rollback"))
        assert classical in registry(project, "rollback", "--statement", str(signed["rollback"]))
        land(data / "scoring", write_scoring_csv, n_rows=10, id_offset=9000, name="second.csv")
        second = wait_for(lambda: champion_predictions(data, "second.csv"), 300, "the second file's predictions",
                          process, log)
        assert {version for version, _ in second} == {classical}
        # Automation refreshes the dashboard after the scoring runs: 30 + 4 + 10 rows scored.
        wait_for(lambda: latest_metadata(instance, "serving_monitor").get("rows_scored") == 44, 180,
                 "the serving monitor", process, log)
        wait_for(lambda: idle(instance), 180, "runs to finish", process, log)
        assert not instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE]))
        # Serving ran on the trained models: no retraining, one run per scoring file and stream batch.
        assert latest_version(instance, "quantum_svm") == trained_model
        jobs = [run.job_name for run in runs_since(instance, before)]
        assert sorted(job for job in jobs if job != "__ASSET_JOB") == [
            "ingest_scoring_file", "ingest_scoring_file", "score_stream_job"], jobs
    instance.dispose()
