"""One ledger: what the paid device saw is what the ledger recorded, in every path.

The paid device is the fake Braket QPU of tests/fake_braket.py (faked at ``AwsDevice`` only; its
tasks run on Braket's real LocalSimulator). Everything above it is the real code: the plugin,
PennyLane, the kernel engine, the VQC trainer, the cost policy's ledger, the DuckDB warehouse and
Dagster runs on a real instance.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from dagster import DagsterInstance, DagsterRunStatus, materialize

from hybrid_assets.definitions import all_assets
from hybrid_resources.cost_policy import (
    CostPolicy,
    device_identity,
    replay_spend_journals,
)
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import BackendUnavailableError, QuantumBackend
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.kernel_engine import planned_circuits, quantum_kernel
from tests.bad_files import write_good_csv
from tests.conftest import RESOURCES, ingest, kill_when_ready, refresh, train_in_process
from tests.fake_braket import counted_tasks, install_fake_braket

GARNET = "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"  # $0.30 per task + $0.00145 per shot
PAID = "qpu/iqm/garnet"  # how the ledger names it
S3 = "hybrid-test-results/ledger"
SPEC = FeatureMapSpec("iqp", 2, reps=1)


def paid_backend(**overrides) -> QuantumBackend:
    return QuantumBackend(**{"device_name": "braket.aws.qubit", "shots": 100, "device_arn": GARNET,
                             "s3_destination": S3, "backoff_s": 0.0, **overrides})


def generous_policy(warehouse: Warehouse | None = None) -> CostPolicy:
    return CostPolicy(warehouse=warehouse or Warehouse(), run_budget_usd=5000.0, daily_budget_usd=5000.0)


def recorded(warehouse: Warehouse, run_id: str | None = None, asset: str | None = None,
             device: str | None = None) -> tuple[int, int, float]:
    """(tasks, shots, USD) the ledger wrote to the warehouse, for a run, an asset and/or a device."""
    sql = "SELECT coalesce(sum(tasks), 0), coalesce(sum(shots), 0), coalesce(sum(estimated_usd), 0) FROM quantum_spend"
    clauses, args = [], []
    for column, value in (("run_id", run_id), ("asset", asset), ("device", device)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    with warehouse.connect(read_only=True) as connection:
        tasks, shots, usd = connection.execute(sql + (" WHERE " + " AND ".join(clauses) if clauses else ""),
                                               args).fetchone()
    return int(tasks), int(shots), float(usd)


def test_a_throttle_in_the_middle_of_a_batch_resends_no_completed_task(data_layout, aws_env):
    device = install_fake_braket(aws_env, throttle_at=(4,))  # the 4th task of the first batch is throttled
    X = np.random.default_rng(0).uniform(0, np.pi, size=(6, 2))
    backend = paid_backend(batch_size=64).backend_config()
    policy = generous_policy()
    with policy.ledger(run_id="throttled", asset="kernel", backend=backend) as ledger:
        result = quantum_kernel(X, spec=SPEC, backend=backend, ledger=ledger)
    pairs = planned_circuits(6, None)
    assert device.throttled == 1 and result.stats.retries == 1
    assert device.tasks == pairs == 15  # every pair once: the 3 tasks before the throttle were not re-sent
    assert device.submissions == pairs + 1
    assert ledger.tasks == device.tasks and ledger.shots == device.shots == 15 * 100
    assert recorded(policy.warehouse, "throttled") == (15, 1500, pytest.approx(15 * (0.30 + 100 * 0.00145)))


def test_a_failure_after_a_partial_submission_records_what_ran_and_the_rerun_sends_only_the_rest(data_layout, aws_env):
    X = np.random.default_rng(1).uniform(0, np.pi, size=(6, 2))
    backend = paid_backend(max_retries=1).backend_config()
    policy = generous_policy()
    cache = KernelCache(data_layout.root / "kernel_cache")
    offline = install_fake_braket(aws_env, fail_after_tasks=5)
    with policy.ledger(run_id="first", asset="kernel", backend=backend) as ledger:
        with pytest.raises(BackendUnavailableError, match="ServiceUnavailable"):
            quantum_kernel(X, spec=SPEC, backend=backend, cache=cache, ledger=ledger)
    assert offline.tasks == ledger.tasks == 5
    assert recorded(policy.warehouse, "first")[0] == 5  # written although the step failed

    healthy = install_fake_braket(aws_env)
    with policy.ledger(run_id="second", asset="kernel", backend=backend) as ledger:
        result = quantum_kernel(X, spec=SPEC, backend=backend, cache=cache, ledger=ledger)
    assert healthy.tasks == ledger.tasks == 15 - 5  # the journal kept the 5 finished entries
    assert result.stats.entries_from_cache == 2 * 5 and result.stats.circuits_executed == 10
    assert recorded(policy.warehouse)[0] == offline.tasks + healthy.tasks == 15
    np.testing.assert_array_equal(result.matrix, result.matrix.T)
    # Once stored, nothing is left in the journal, and a third request is served from the cache.
    (namespace,) = cache.namespaces()
    assert not list((cache.root / namespace / "journal").glob("*.jsonl"))
    assert quantum_kernel(X, spec=SPEC, backend=backend, cache=cache).stats.circuits_executed == 0


def test_the_whole_refresh_on_a_paid_device_records_every_task_it_sent(data_layout, instance, aws_env):
    device = install_fake_braket(aws_env)
    write_good_csv(data_layout.landing, n_rows=16, n_features=3, name="data.csv")
    ingest(instance, "data.csv")
    warehouse = Warehouse()
    config = {"ops": {"reduced_embeddings": {"config": {"n_qubits": 2}},
                      "vqc_model": {"config": {"layers": 1, "batch_size": 4, "epochs": 1, "restarts": 2}}}}
    result = refresh(instance, config, quantum_backend=paid_backend(), cost_policy=generous_policy(warehouse),
                     gate_policy=GatePolicy(min_margin=-1.0, reproducibility_seeds=2, reproducibility_samples=8))
    assert result.success
    # The paid device's records (noisy_kernel_spread also records its free density-matrix circuits).
    paid = device_identity(paid_backend().backend_config())
    tasks, shots, usd = recorded(warehouse, result.run_id, device=paid)
    assert (tasks, shots) == (device.tasks, device.shots) and tasks > 0
    per_asset = {asset: recorded(warehouse, result.run_id, asset, paid)[0]
                 for asset in ("quantum_kernel_train", "quantum_kernel_test", "vqc_model", "model_evaluation")}
    assert all(per_asset.values()), per_asset  # the reproducibility repeats are recorded too
    assert sum(per_asset.values()) == device.tasks
    # Tuning and shot planning run on the exact simulator: only the chosen circuit reached the device.
    assert recorded(warehouse, result.run_id, "kernel_tuning")[0] == recorded(warehouse, result.run_id, "shot_plan")[0] == 0
    gate = next(e for e in result.get_asset_check_evaluations() if e.check_name == "cost_within_budget")
    assert gate.metadata["spent_usd"].value == pytest.approx(usd)


WORKER = """
import sys, time
from pathlib import Path
import pytest
from dagster import DagsterInstance, materialize
from hybrid_assets.definitions import all_assets
import hybrid_resources.quantum.vqc as vqc
from tests.conftest import RESOURCES
from tests.fake_braket import install_fake_braket
from tests.resources.test_ledger import VQC_CONFIG, generous_policy, paid_backend

install_fake_braket(pytest.MonkeyPatch(), count_file=sys.argv[1])
save = vqc.CheckpointStore.save
def save_then_wait(self, step, *args, **kwargs):
    path = save(self, step, *args, **kwargs)
    if step == 2:  # the test kills this process while it waits here
        Path(sys.argv[2]).write_text("checkpoint 2 saved")
        time.sleep(600)
    return path
vqc.CheckpointStore.save = save_then_wait
with DagsterInstance.get() as instance:
    materialize(all_assets, selection=["vqc_model"], instance=instance,
                resources={**RESOURCES, "quantum_backend": paid_backend(), "cost_policy": generous_policy()},
                run_config={"ops": {"vqc_model": {"config": VQC_CONFIG}}})
"""
VQC_CONFIG = {"layers": 1, "batch_size": 4, "epochs": 2, "restarts": 1, "seed": 5}


def test_a_vqc_resumed_after_a_sigkill_records_only_the_circuits_it_ran(local_project, monkeypatch, aws_env):
    monkeypatch.setenv("HYBRID_DATA_DIR", str(local_project.data))
    write_good_csv(local_project.data / "landing", n_rows=16, n_features=2, name="data.csv")
    train_in_process(local_project, "data.csv")
    count_file, ready = local_project.data / "device_tasks.txt", local_project.data / "ready"
    env = {name: value for name, value in local_project.env.items() if not name.startswith("AWS_")}
    env |= {name: os.environ[name] for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                                                 "AWS_EC2_METADATA_DISABLED")}
    kill_when_ready([sys.executable, "-c", WORKER, str(count_file), str(ready)], ready, env=env, timeout_s=300)
    sent_before_kill, _ = counted_tasks(count_file)
    warehouse = Warehouse(path=str(local_project.data / "warehouse.duckdb"))
    replay_spend_journals(warehouse)  # what the next ledger does first: the killed process's journal is dead
    assert recorded(warehouse, device=PAID)[0] == sent_before_kill > 0

    install_fake_braket(aws_env, count_file=str(count_file))
    with DagsterInstance.from_config(str(local_project.home)) as instance:
        # What the daemon's run monitoring does for a run whose process died (see test_daemon_e2e).
        (killed,) = [run for run in instance.get_runs() if run.status == DagsterRunStatus.STARTED]
        instance.report_run_failed(killed)
        instance.event_log_storage.free_concurrency_slots_for_run(killed.run_id)
        result = materialize(all_assets, selection=["vqc_model"], instance=instance,
                             resources={**RESOURCES, "quantum_backend": paid_backend(),
                                        "cost_policy": generous_policy(warehouse)},
                             run_config={"ops": {"vqc_model": {"config": VQC_CONFIG}}})
        assert result.success
        metadata = result.asset_materializations_for_node("vqc_model")[0].metadata
    sent_in_all, shots_in_all = counted_tasks(count_file)
    resumed_tasks = recorded(warehouse, result.run_id)[0]
    assert metadata["training"].value["resumed_from_step"] == 2
    assert recorded(warehouse, device=PAID)[:2] == (sent_in_all, shots_in_all)
    assert resumed_tasks == sent_in_all - sent_before_kill == metadata["circuits_executed"].value
    assert resumed_tasks < metadata["planned_circuits"].value  # not the whole plan again


def test_a_vqc_plan_over_budget_is_refused_before_its_first_circuit(data_layout, instance, aws_env):
    device = install_fake_braket(aws_env)
    write_good_csv(data_layout.landing, n_rows=16, n_features=3, name="data.csv")
    ingest(instance, "data.csv")
    warehouse = Warehouse()
    result = materialize(all_assets, selection=["features", "reduced_embeddings", "vqc_model"], instance=instance,
                         resources={**RESOURCES, "quantum_backend": paid_backend(),
                                    "cost_policy": CostPolicy(warehouse=warehouse, run_budget_usd=5.0)},
                         run_config={"ops": {"reduced_embeddings": {"config": {"n_qubits": 2}}}},
                         raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert failure.step_key == "vqc_model"
    message = failure.step_failure_data.user_failure_data.description
    assert "Refused before submission" in message and "qpu/iqm/garnet" in message and "$5.00" in message
    assert device.devices_created == device.submissions == device.tasks == 0
    assert recorded(warehouse) == (0, 0, 0.0)


KERNEL_WORKER = """
import sys, time
from pathlib import Path
import numpy as np, pytest
from hybrid_resources.quantum.kernel_cache import CachedEntries, KernelCache
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from tests.fake_braket import install_fake_braket
from tests.resources.test_ledger import SPEC, generous_policy, kernel_inputs, paid_backend
from hybrid_resources.data.warehouse import Warehouse

install_fake_braket(pytest.MonkeyPatch(), count_file=sys.argv[1])
journal = CachedEntries.record_progress
calls = []
def journal_then_wait(self, pairs, values):
    journal(self, pairs, values)
    calls.append(len(pairs))
    if len(calls) == 6:  # the test kills this process while it waits here
        Path(sys.argv[2]).write_text("6 circuits journaled")
        time.sleep(600)
CachedEntries.record_progress = journal_then_wait
backend = paid_backend().backend_config()
with generous_policy(Warehouse(path=sys.argv[3])).ledger(run_id="killed", asset="k", backend=backend) as ledger:
    quantum_kernel(kernel_inputs(), spec=SPEC, backend=backend, cache=KernelCache(Path(sys.argv[4])), ledger=ledger)
"""


def kernel_inputs() -> np.ndarray:
    return np.random.default_rng(3).uniform(0, np.pi, size=(6, 2))


def test_a_kernel_killed_midway_resumes_from_its_journal_and_sends_no_task_twice(data_layout, aws_env, tmp_path):
    count_file, ready = tmp_path / "device_tasks.txt", tmp_path / "ready"
    warehouse, cache_root = Warehouse(path=str(tmp_path / "ledger.duckdb")), tmp_path / "kernel_cache"
    kill_when_ready([sys.executable, "-c", KERNEL_WORKER, str(count_file), str(ready), str(warehouse.file),
                     str(cache_root)], ready, env=dict(os.environ), timeout_s=120)
    replay_spend_journals(warehouse)  # what the next ledger does first: the killed process's journal is dead
    assert counted_tasks(count_file)[0] == recorded(warehouse, "killed")[0] == 6

    install_fake_braket(aws_env, count_file=str(count_file))
    backend = paid_backend().backend_config()
    with generous_policy(warehouse).ledger(run_id="resumed", asset="k", backend=backend) as ledger:
        result = quantum_kernel(kernel_inputs(), spec=SPEC, backend=backend, cache=KernelCache(cache_root),
                                ledger=ledger)
    pairs = planned_circuits(6, None)
    assert result.stats.circuits_executed == ledger.tasks == pairs - 6
    assert counted_tasks(count_file)[0] == recorded(warehouse)[0] == pairs  # every pair sent once, in all
    assert result.stats.entries_from_cache == 2 * 6
