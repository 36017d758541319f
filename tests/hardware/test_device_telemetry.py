"""Telemetry per device task: queue, run and total time from each Braket task's own timestamps,
failures by provider and reason, in the warehouse and the dashboards. The managed device is the
fake QPU of tests/fake_braket.py (faked at ``AwsDevice`` and its AWS session only); the local
Braket simulator is the real one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hybrid_resources.cost_policy import CostPolicy, SubmissionRefused
from hybrid_resources.data.warehouse import Warehouse, provider_of
from hybrid_resources.quantum.backends import BackendConfig, BackendUnavailableError
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from hybrid_resources.quantum.latency import default_latency
from hybrid_resources.quantum.planning import PlanRequest, plan_routes
from tests.fake_braket import install_fake_braket

GARNET = BackendConfig(device_name="braket.aws.qubit", shots=50, backoff_s=0.0, device_options=(
    ("device_arn", "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"), ("s3_destination_folder", "bucket/t")))
SPEC = FeatureMapSpec("iqp", 2, reps=1)
X = np.random.default_rng(0).uniform(0, np.pi, size=(4, 2))


def _policy(tmp_path) -> CostPolicy:
    return CostPolicy(warehouse=Warehouse(path=str(tmp_path / "w.duckdb")), run_budget_usd=100.0,
                      daily_budget_usd=100.0)


def test_provider_of_a_device_identity():
    assert provider_of("qpu/iqm/garnet") == "iqm" and provider_of("quantum-simulator/amazon/sv1") == "amazon"
    assert provider_of("braket.local.qubit") == provider_of("default.qubit") == "local"


def _task_rows(policy: CostPolicy, run_id: str) -> list[tuple]:
    with policy.warehouse.session(read_only=True) as session:
        return session.connection.execute(
            "SELECT provider, task_id, status, latency_s, run_s, queue_s FROM device_tasks WHERE run_id = ?",
            [run_id]).fetchall()


def test_each_managed_task_records_its_time_in_queue_and_run_from_its_own_timestamps(tmp_path, aws_env):
    device = install_fake_braket(aws_env, queue_s=2.5)
    policy = _policy(tmp_path)
    with policy.ledger(run_id="r1", asset="kernel", backend=GARNET) as ledger:
        quantum_kernel(X, spec=SPEC, backend=GARNET, ledger=ledger)
    rows = _task_rows(policy, "r1")
    assert len(rows) == device.tasks == 6  # one task per circuit (the fake has no program sets here)
    assert {r[1] for r in rows} == set(device.task_times)
    for provider, task_id, status, latency, run, queue in rows:
        created, ended = device.task_times[task_id]
        assert provider == "iqm" and status == "COMPLETED"
        assert latency == pytest.approx((ended - created).total_seconds(), abs=1e-3) and latency >= 2.5
        assert run is None and queue is None  # a QPU's task says when it was created and ended, not when it ran

    (summary,) = policy.warehouse.device_telemetry(run_id="r1")
    assert summary["provider"] == "iqm" and summary["device"] == "qpu/iqm/garnet" and summary["tasks"] == 6
    assert summary["failed_tasks"] == 0 and summary["median_latency_s"] >= 2.5

    # A managed simulator also reports its execution time: the rest of the latency was the queue.
    install_fake_braket(aws_env, queue_s=1.5)
    sv1 = replace(GARNET, device_options=(("device_arn", "arn:aws:braket:::device/quantum-simulator/amazon/sv1"),
                                          ("s3_destination_folder", "bucket/t")))
    with policy.ledger(run_id="r1b", asset="kernel", backend=sv1) as ledger:
        quantum_kernel(X[:2], spec=SPEC, backend=sv1, ledger=ledger)
    ((provider, _, _, latency, run, queue),) = _task_rows(policy, "r1b")
    assert provider == "amazon" and run is not None and queue == pytest.approx(latency - run) and queue >= 1.5 - 1e-3


def test_failed_submissions_are_counted_by_provider_and_reason(tmp_path, aws_env):
    install_fake_braket(aws_env, throttle_always=True)
    policy = _policy(tmp_path)
    backend = replace(GARNET, max_retries=1)
    with pytest.raises(BackendUnavailableError):
        with policy.ledger(run_id="r2", asset="kernel", backend=backend) as ledger:
            quantum_kernel(X, spec=SPEC, backend=backend, ledger=ledger)
    (summary,) = policy.warehouse.device_telemetry(run_id="r2")
    assert summary["provider"] == "iqm" and summary["tasks"] == 0
    assert summary["failed_submissions"] == 2 and summary["failure_reasons"] == ["ThrottlingException"]


def test_the_local_braket_simulator_records_its_run_time_and_no_queue(tmp_path):
    policy = _policy(tmp_path)
    backend = BackendConfig(device_name="braket.local.qubit", shots=20)
    with policy.ledger(run_id="r3", asset="kernel", backend=backend) as ledger:
        result = quantum_kernel(X[:3], spec=SPEC, backend=backend, ledger=ledger)
    (summary,) = policy.warehouse.device_telemetry(run_id="r3")
    assert summary["provider"] == "local" and summary["device"] == "braket.local.qubit"
    assert summary["tasks"] == result.stats.circuits_executed == 3
    assert summary["median_queue_s"] == 0.0 and summary["median_run_s"] > 0
    assert summary["median_latency_s"] == pytest.approx(summary["median_run_s"])


def test_once_a_managed_device_ran_tasks_plans_and_admission_use_its_recorded_latency(tmp_path, aws_env):
    policy = _policy(tmp_path)
    assert policy.recorded_latency(GARNET) is None  # never seen: the documented default
    assert policy.latency(GARNET, 2).source == default_latency(GARNET, 2).source
    install_fake_braket(aws_env, queue_s=40.0)
    with policy.ledger(run_id="r4", asset="kernel", backend=GARNET) as ledger:
        quantum_kernel(X, spec=SPEC, backend=GARNET, ledger=ledger)
    latency = policy.latency(GARNET, 2)
    assert latency.source.startswith("ledger: median") and "6 tasks of qpu/iqm/garnet" in latency.source
    assert 40.0 <= latency.per_task_s < 45.0
    (pairwise,) = plan_routes(PlanRequest(10, 0, SPEC), GARNET, policy.price_table(), latency=latency,
                              routes=["pairwise"])
    assert pairwise.wall_time_s == pytest.approx(45 * latency.per_task_s)  # 45 one-circuit tasks in turn

    # The time budget now refuses what the recorded queue makes too slow, before the first task.
    slow = CostPolicy(warehouse=policy.warehouse, run_budget_usd=100.0, daily_budget_usd=100.0, time_budget_s=600)
    device = install_fake_braket(aws_env)
    with pytest.raises(SubmissionRefused, match="ledger: median"):
        with slow.ledger(run_id="r5", asset="kernel", backend=GARNET) as ledger:
            quantum_kernel(np.random.default_rng(1).uniform(size=(10, 2)), spec=SPEC, backend=GARNET, ledger=ledger)
    assert device.tasks == 0
