"""Real daemon proof: a dropped file ends in an evaluated model with no click; a bad file is
quarantined and starts nothing downstream; a run worker killed mid-ingest is retried with no
click and the file is ingested exactly once; starting the daemon after ``make demo`` starts no run.

Starts a real ``dagster-daemon`` (sensors, declarative automation, run queue) on a temporary
DAGSTER_HOME and data dir, against this repository's workspace.yaml.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
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

from hybrid_assets.outputs import latest_metadata
from hybrid_resources.data.warehouse import Warehouse
from tests.bad_files import write_good_csv, write_nan_and_inf
from tests.conftest import REPO

UNFINISHED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
              DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def land(landing: Path, writer, *args, **kwargs) -> Path:
    """Write a file elsewhere and move it in, as a well-behaved producer would."""
    staging = landing.parent / "staging"
    staging.mkdir(exist_ok=True)
    written = writer(staging, *args, **kwargs)
    return Path(shutil.move(str(written), landing / written.name))


def wait_for(condition, timeout_s: float, what: str, daemon: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert daemon.poll() is None, f"dagster-daemon exited:\n{log.read_text()[-4000:]}"
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{log.read_text()[-4000:]}")


@contextmanager
def running_daemon(project, log: Path):
    """A real ``dagster-daemon`` on the project's instance, stopped (with its children) at the end."""
    executable = Path(sys.executable).with_name("dagster-daemon")
    with open(log, "w") as output:
        process = subprocess.Popen([str(executable), "run", "-w", str(REPO / "workspace.yaml")], cwd=REPO,
                                   env=project.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


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
    land(data / "landing", write_good_csv, n_rows=3000, n_features=200, name="big.csv")
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
        assert connection.execute("SELECT count(*), count(DISTINCT sample_id) FROM raw_rows").fetchone() == (3000, 3000)
        assert connection.execute("SELECT status, n_rows FROM landing_files").fetchall() == [("ingested", 3000)]
    features = instance.get_latest_materialization_event(AssetKey("features")).asset_materialization
    assert features.metadata["row_count"].value == 3000


def test_starting_the_daemon_after_make_demo_starts_no_run(local_project, tmp_path):
    write_good_csv(local_project.data / "landing", n_rows=40, name="data.csv")
    assert local_project.command("hybrid-demo").returncode == 0
    instance = DagsterInstance.from_config(str(local_project.home))
    before = {run.run_id for run in instance.get_runs()}
    with running_daemon(local_project, tmp_path / "daemon.log") as (process, log):
        time.sleep(35)  # three sensor and automation ticks
        assert process.poll() is None, log.read_text()[-3000:]
        assert runs_since(instance, before) == []
    instance.dispose()
