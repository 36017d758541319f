"""Real daemon proof: a dropped file ends in an evaluated model with no click; a bad file is
quarantined and leaves the model and every good row untouched.

Starts a real ``dagster-daemon`` (sensors, declarative automation, run queue) on a temporary
DAGSTER_HOME and data dir, against this repository's workspace.yaml.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from hybrid_assets.outputs import latest_metadata
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


@pytest.fixture
def daemon(local_project, tmp_path):
    # Create the sqlite storage before the daemon and its code server open it: processes that
    # initialize one fresh instance at the same moment can race on its schema stamp (as
    # `make home` does for `make ui`, with `dagster instance concurrency set`).
    instance = DagsterInstance.from_config(str(local_project.home))
    instance.get_runs(limit=1)
    log = tmp_path / "daemon.log"
    executable = Path(sys.executable).with_name("dagster-daemon")
    with open(log, "w") as output:
        process = subprocess.Popen([str(executable), "run", "-w", str(REPO / "workspace.yaml")], cwd=REPO,
                                   env=local_project.env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield instance, local_project.data, process, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        instance.dispose()


def latest_version(instance: DagsterInstance, asset: str) -> str | None:
    event = instance.get_latest_materialization_event(AssetKey(asset))
    return event.asset_materialization.tags.get("dagster/data_version") if event else None


def idle(instance: DagsterInstance) -> bool:
    return not instance.get_runs(RunsFilter(statuses=UNFINISHED), limit=1)


def test_dropped_files_refresh_the_model_without_a_click(daemon):
    instance, data, process, log = daemon
    land(data / "landing", write_good_csv, n_rows=60, name="first.csv")
    wait_for(lambda: latest_version(instance, "model_evaluation"), 300, "the evaluated model", process, log)
    wait_for(lambda: idle(instance), 120, "runs to finish", process, log)
    model_version = latest_version(instance, "quantum_svm")
    features = instance.get_latest_materialization_event(AssetKey("features")).asset_materialization
    assert features.metadata["row_count"].value == 60

    bad = land(data / "landing", write_nan_and_inf)
    sidecar = data / "quarantine" / f"{bad.name}.reason.json"
    wait_for(sidecar.exists, 180, "the bad file in quarantine", process, log)
    time.sleep(25)  # let the automation sensor react to the quarantined partition, if it will
    wait_for(lambda: idle(instance), 180, "runs to finish", process, log)

    assert not bad.exists() and (data / "quarantine" / bad.name).exists()
    assert "finite_values" in sidecar.read_text()
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
