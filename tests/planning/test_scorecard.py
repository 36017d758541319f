"""The provider scorecard: every device's planned cost and time for the current kernel route, the
ledger's telemetry, the transpiled circuit and the predicted kernel error, and the cheapest device
that fits. After a faked run on each provider (Braket faked at AwsDevice, IBM at the Qiskit
Runtime service) its figures are the ledger's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dagster import materialize

from hybrid_assets.definitions import all_assets
from hybrid_assets.planning.scorecard import DEFAULT_FAILURE_RATE, ledger_figures, reasons_against
from hybrid_resources.cost_policy import CostPolicy, load_price_table
from hybrid_resources.data.artifacts import ArtifactStore
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.quantum.backends import BackendConfig, QuantumBackend
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernels import compute_kernel
from tests.bad_files import write_good_csv
from tests.conftest import RESOURCES, SMALL_RUN_CONFIG, ingest
from tests.fake_braket import install_fake_braket
from tests.fake_ibm import install_fake_ibm

SHOTS = 50
GARNET = BackendConfig(device_name="braket.aws.qubit", shots=SHOTS, backoff_s=0.0, device_options=(
    ("device_arn", "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"), ("s3_destination_folder", "bucket/t")))
MANILA = QuantumBackend(device_name="qiskit.remote", shots=SHOTS, ibm_backend="ibm_manila", backoff_s=0.0)
STEPS = ["features", "reduced_embeddings", "kernel_tuning", "circuit_artifact", "noisy_kernel_spread",
         "provider_scorecard"]


def test_the_ledger_figures_and_the_reasons_against_a_device():
    empty = {"tasks": 0, "shots": 0, "usd": 0.0, "failed_submissions": 0, "tasks_timed": 0, "failed_tasks": 0,
             "median_queue_s": None, "median_run_s": None, "median_latency_s": None}
    assert ledger_figures(empty)["failure_rate"] == DEFAULT_FAILURE_RATE
    assert ledger_figures(empty)["telemetry"].startswith("default: no record")
    assert ledger_figures({**empty, "tasks": 9, "failed_submissions": 1})["failure_rate"] == pytest.approx(0.1)
    row = {"planned_usd": 12.0, "planned_wall_time_s": 100.0, "within_ceilings": True, "transpiled_depth": 40,
           "predicted_error": 0.05}
    assert reasons_against(row, error_tolerance=0.1, time_budget_s=3600, run_budget_usd=20) == []
    reasons = reasons_against({**row, "predicted_error": 0.2, "within_ceilings": False}, error_tolerance=0.1,
                              time_budget_s=50, run_budget_usd=10)
    assert len(reasons) == 4 and "over the run budget" in reasons[0] and "time budget" in reasons[1]


def test_after_a_faked_run_on_each_provider_the_scorecard_figures_are_the_ledgers(data_layout, instance, tmp_path,
                                                                                   monkeypatch, aws_env):
    write_good_csv(data_layout.landing, n_rows=40, n_features=5, seed=4, name="data.csv")
    ingest(instance, "data.csv")
    table = load_price_table()
    table["devices"]["qpu/ibm/ibm_manila"] = table["devices"]["qpu/ibm/ibm_torino"]
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(table))
    warehouse = RESOURCES["warehouse"]
    # Program sets off: the faked Braket run sends one circuit per task, and the plan prices it so.
    policy = CostPolicy(warehouse=warehouse, run_budget_usd=1e6, daily_budget_usd=1e6, price_table_path=str(prices),
                        program_sets=False, time_budget_s=0.0)

    # One faked run per provider, each through the real ledger; Braket throttles its first call once.
    braket = install_fake_braket(aws_env, throttle_first=1, queue_s=2.0)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "ibm-test-token")
    ibm = install_fake_ibm(monkeypatch)
    spec, X = FeatureMapSpec("iqp", 2, reps=1), np.random.default_rng(0).uniform(0, np.pi, size=(4, 2))
    ledgers = {}
    for device, backend in (("iqm_garnet", GARNET), ("ibm_manila", MANILA.backend_config())):
        with policy.ledger(run_id=f"faked-{device}", asset="kernel", backend=backend) as ledger:
            compute_kernel(X, spec=spec, backend=backend, ledger=ledger)
        ledgers[device] = ledger
    assert braket.tasks == ledgers["iqm_garnet"].tasks == 6 and braket.throttled == 1
    assert ibm.circuits == ledgers["ibm_manila"].circuits == 6

    config = json.loads(json.dumps(SMALL_RUN_CONFIG))
    config["ops"]["noisy_kernel_spread"] = {"config": {"rows": 4, "devices": "iqm_garnet,ibm_manila",
                                                       "device_pairs": 3}}
    config["ops"]["provider_scorecard"] = {"config": {"devices": "iqm_garnet,ibm_manila", "shots": SHOTS,
                                                      "error_tolerance": 1.0}}
    result = materialize(all_assets, selection=STEPS, instance=instance, run_config=config,
                         resources={**RESOURCES, "cost_policy": policy})
    assert result.success
    scorecard = ArtifactStore(data_layout.artifacts).read(["provider_scorecard"])
    rows = {row["device"]: row for row in scorecard["devices"]}
    assert set(rows) == {"iqm_garnet", "ibm_manila"} and scorecard["submitted"] == "nothing: a plan"
    for device, ledger in ledgers.items():
        row = rows[device]
        assert row["spent_usd"] == pytest.approx(ledger.usd) and row["tasks_recorded"] == ledger.tasks
        assert row["shots_recorded"] == ledger.shots == 6 * SHOTS
        # The plan prices a circuit as the ledger charged one (one circuit per task on both here).
        assert row["planned_usd"] == pytest.approx(ledger.usd / ledger.circuits * row["circuits"], rel=1e-6)
    assert rows["iqm_garnet"]["failure_rate"] == pytest.approx(1 / 7)  # one throttled submission, six tasks
    # Timed by its tasks' own timestamps (each waited 2 s in the fake queue), not by the default.
    median, timed = warehouse.task_latency("qpu/iqm/garnet")
    assert timed == 6 and median >= 2.0 and rows["iqm_garnet"]["latency_source"].startswith("ledger: median")
    assert rows["iqm_garnet"]["planned_wall_time_s"] == pytest.approx(rows["iqm_garnet"]["tasks"] * median)
    assert rows["ibm_manila"]["failure_rate"] == 0.0 and rows["ibm_manila"]["telemetry"].startswith("ledger")
    assert rows["ibm_manila"]["planned_usd"] < rows["iqm_garnet"]["planned_usd"]  # per second beats per task here
    for row in rows.values():
        assert row["transpiled_depth"] > 0 and 0 < row["predicted_error"] < 1 and row["fits"], row["reasons"]
    assert scorecard["recommended"] == scorecard["devices"][0]["device"] == "ibm_manila"  # the cheapest that fits

    # A tolerance no device meets: nothing is recommended, and each row says why.
    strict_config = {"devices": "iqm_garnet,ibm_manila", "shots": SHOTS, "error_tolerance": 0.0}
    again = materialize(all_assets, selection=["provider_scorecard"], instance=instance,
                        run_config={"ops": {"provider_scorecard": {"config": strict_config}}},
                        resources={**RESOURCES, "cost_policy": policy})
    strict = ArtifactStore(data_layout.artifacts).read(["provider_scorecard"])
    assert again.success and strict["recommended"] is None
    assert all("predicted kernel error" in "; ".join(row["reasons"]) for row in strict["devices"])
