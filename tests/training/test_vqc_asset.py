"""vqc_model as an asset: a materialization killed with SIGKILL resumes from its checkpoint; what it
records on the exact simulator; an early stop in its metadata."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, asset, materialize

from hybrid_assets.common.outputs import artifact_output
from hybrid_assets.definitions import all_assets
from hybrid_assets.training.variational import vqc_model
from hybrid_resources.data.artifacts import content_hash
from hybrid_resources.quantum.backends import QuantumBackend
from hybrid_resources.quantum.vqc import (
    TRAINER_VERSION,
    VqcConfig,
    lineage_key,
    train_vqc,
)
from tests.bad_files import write_good_csv
from tests.conftest import REPO, RESOURCES, latest_artifact, train_in_process

VQC_CONFIG = {"layers": 1, "batch_size": 8, "epochs": 4, "seed": 3, "restarts": 2, "log_every": 1}

TRAIN_IN_A_PROCESS = """
import sys, time
from dagster import DagsterInstance, materialize
from hybrid_assets.definitions import all_assets
import hybrid_resources.quantum.vqc as vqc
from tests.conftest import RESOURCES

slow = vqc.CheckpointStore.save
def save(self, *args, **kwargs):  # slow each step down so the test can kill mid-training
    slow(self, *args, **kwargs)
    time.sleep(0.3)
vqc.CheckpointStore.save = save
with DagsterInstance.get() as instance:
    materialize(all_assets, selection=["vqc_model"], instance=instance, resources=RESOURCES,
                run_config={"ops": {"vqc_model": {"config": %r}}})
"""


def test_a_killed_training_run_resumes_from_its_checkpoint(local_project, monkeypatch):
    monkeypatch.setenv("HYBRID_DATA_DIR", str(local_project.data))
    write_good_csv(local_project.data / "landing", n_rows=60, n_features=4, name="data.csv")
    train_in_process(local_project, "data.csv")
    embeddings = latest_artifact(local_project.data / "artifacts", "reduced_embeddings")
    config = VqcConfig(**{k: v for k, v in VQC_CONFIG.items() if k != "log_every"})
    lineage = lineage_key(content_hash(embeddings), TRAINER_VERSION, config, QuantumBackend().backend_config())
    checkpoints = local_project.data / "checkpoints" / lineage

    worker = subprocess.Popen([sys.executable, "-c", TRAIN_IN_A_PROCESS % VQC_CONFIG], cwd=REPO,
                              env=local_project.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(checkpoints.glob("step-*.json"))) < 2:
        assert worker.poll() is None, "the training process ended before it could be killed"
        time.sleep(0.1)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert list(checkpoints.glob("step-*.json")), "no checkpoint was written before the kill"

    with DagsterInstance.from_config(str(local_project.home)) as instance:
        # What the daemon's run monitoring does for a run whose process died: mark it failed and
        # give back its `quantum` pool slot, so the re-run is not left waiting for it.
        (killed,) = [run for run in instance.get_runs() if run.status == DagsterRunStatus.STARTED]
        instance.report_run_failed(killed)
        instance.event_log_storage.free_concurrency_slots_for_run(killed.run_id)
        result = materialize(all_assets, selection=[vqc_model.key], instance=instance, resources=RESOURCES,
                             run_config={"ops": {"vqc_model": {"config": VQC_CONFIG}}})
        assert result.success
        metadata = instance.get_latest_materialization_event(AssetKey("vqc_model")).asset_materialization.metadata
    training = metadata["training"].value
    assert training["resumed_from_step"] is not None and training["steps_run"] < training["total_steps"]
    resumed = latest_artifact(local_project.data / "artifacts", "vqc_model")

    uninterrupted = train_vqc(embeddings["X_train"], embeddings["y_train"], config,
                              checkpoint_dir=local_project.data / "fresh_checkpoints", lineage=lineage,
                              backend=QuantumBackend().backend_config())
    np.testing.assert_allclose(resumed["params"], uninterrupted.params, atol=1e-8)
    np.testing.assert_allclose(resumed["bias"][0], uninterrupted.bias, atol=1e-8)
    assert "data:image/png;base64," in metadata["training_curves"].value


def _blob_embeddings() -> dict:
    """50 train rows (25 per class) and 10 test rows of 3 features in [0, pi], a binary task."""
    rng = np.random.default_rng(4)

    def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 2
        return np.clip(np.where(y[:, None] == 1, 2.2, 0.9) + 0.4 * rng.normal(size=(n, 3)), 0, np.pi), y

    (X_train, y_train), (X_test, y_test) = rows(50), rows(10)
    return {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test,
            "task": np.array(["binary"]), "classes": np.array(["0", "1"])}


@pytest.mark.parametrize("early_stop", [False, True])
def test_on_the_exact_simulator_the_asset_records_what_ran_and_states_an_early_stop(early_stop, data_layout,
                                                                                     instance):
    @asset(name="reduced_embeddings", group_name="quantum")
    def given_embeddings():
        return artifact_output(_blob_embeddings(), {})

    # 40 fit rows / batch 8: 5 steps per epoch; a min_delta no epoch beats stops each restart after epoch 2.
    config = {"layers": 1, "batch_size": 8, "epochs": 4, "restarts": 2,
              **({"early_stop_patience": 1, "early_stop_min_delta": 10.0} if early_stop else {})}
    result = materialize([given_embeddings, vqc_model], instance=instance, resources=RESOURCES,
                         run_config={"ops": {"vqc_model": {"config": config}}})
    assert result.success
    metadata = result.asset_materializations_for_node("vqc_model")[0].metadata
    training = metadata["training"].value
    assert training["checkpoint_every"] == 5 and training["total_steps"] == 40  # the plan
    assert metadata["shots_executed"].value == 0
    # The plan: 5 steps x 8 rows + 10 validation rows per epoch, 8 epochs, then 10 test predictions.
    assert metadata["planned_circuits"].value == 8 * (40 + 10) + 10
    if not early_stop:
        assert training["early_stops"] == [] and training["steps_completed"] == 40
        assert metadata["circuits_executed"].value == metadata["planned_circuits"].value
        return
    assert [(stop["restart"], stop["epochs_run"]) for stop in training["early_stops"]] == [(0, 2), (1, 2)]
    assert "plateau" in training["early_stops"][0]["reason"] and training["steps_completed"] == 20
    assert metadata["circuits_executed"].value == 4 * (40 + 10) + 10  # what ran: half the epochs
