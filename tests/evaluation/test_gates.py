"""Stage gates and cost control, each passing and failing for a real reason on a real instance.

Devices are real (default.qubit); where a failure is needed, the device's own ``execute`` is
wrapped at the boundary to fail or to count circuits. Admission, cost, retry and fallback
logic is the project's real code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from hybrid_assets.common.gates import kernel_health
from hybrid_assets.definitions import all_assets
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import QuantumBackend
from tests.bad_files import write_good_csv
from tests.conftest import (
    DOWNSTREAM,
    RESOURCES,
    SMALL_RUN_CONFIG,
    ingest,
    latest_artifact,
    priced_like_a_qpu,
)
from tests.devices import DeviceBoundary

REPO = Path(__file__).parents[2]


@pytest.fixture
def landed(data_layout, instance):
    write_good_csv(data_layout.landing, n_rows=48, n_features=5, seed=4, name="data.csv")
    ingest(instance, "data.csv")
    return data_layout


def run(instance: DagsterInstance, run_config: dict | None = None, **resources):
    config = json.loads(json.dumps(SMALL_RUN_CONFIG))
    for op, op_config in (run_config or {}).items():
        config["ops"].setdefault(op, {"config": {}})["config"].update(op_config)
    return materialize(all_assets, selection=DOWNSTREAM, instance=instance, resources={**RESOURCES, **resources},
                       run_config=config, raise_on_error=False)


def checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def materialized(instance: DagsterInstance, asset: str) -> bool:
    return instance.get_latest_materialization_event(AssetKey(asset)) is not None


def test_kernel_health_passes_real_kernels_and_fails_broken_ones():
    from hybrid_resources.quantum.feature_maps import FeatureMapSpec
    from hybrid_resources.quantum.kernel_engine import quantum_kernel

    X = np.random.default_rng(0).uniform(0, np.pi, size=(12, 3))
    real = quantum_kernel(X, spec=FeatureMapSpec("iqp", 3)).matrix
    args = dict(shots=None, symmetry_tolerance=1e-8, psd_tolerance=1e-8, psd_shot_factor=1.5, square=True)
    assert kernel_health(real, **args).passed
    broken = real.copy()
    broken[0, 1] += 0.2
    assert "asymmetric" in kernel_health(broken, **args).message
    # Symmetric, unit diagonal, entries in [0, 1], yet not PSD: its eigenvalues are 1 and 1 +- sqrt(2).
    not_psd = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    verdict = kernel_health(not_psd, **args)
    assert not verdict.passed and "not PSD" in verdict.message
    assert verdict.figures["min_eigenvalue"] == pytest.approx(1 - np.sqrt(2))


def test_promotion_when_every_gate_passes(landed, instance):
    result = run(instance, gate_policy=GatePolicy(min_margin=-1.0))
    assert result.success
    passed = checks(result)
    for name in ("kernel_well_formed", "circuit_ceilings", "quantum_beats_classical", "reproducibility",
                 "cost_within_budget"):
        assert passed[name] is True, name
    record = latest_artifact(landed.artifacts, "promoted_model")
    assert set(record["gates"]) == {"quantum_beats_classical", "reproducibility", "cost_within_budget", "latency_ceiling"}
    report = latest_artifact(landed.artifacts, "model_evaluation")
    assert report["promotable"] and set(report["telemetry"]["dashboard"]) == {"quantum_svm", "classical_baseline", "vqc_model"}


def test_a_deliberately_poor_circuit_fails_the_margin_gate_and_blocks_promotion(landed, instance):
    # Many repetitions of a fully entangled IQP map on [0, pi] inputs: near-orthogonal states, a
    # kernel close to the identity, and a model that cannot generalize.
    poor = {"kernel_tuning": {"feature_map": "iqp", "reps": [8], "entanglement": "full", "bandwidths": [1.0],
                              "Cs": [1.0]},
            "reduced_embeddings": {"n_qubits": 5}}
    result = run(instance, poor)
    assert result.success  # a lost comparison is a decision, not a crash
    assert checks(result)["quantum_beats_classical"] is False
    report = latest_artifact(landed.artifacts, "model_evaluation")
    verdict = report["gates"]["quantum_beats_classical"]
    assert "lost by" in verdict["message"] and "25 splits" in verdict["message"]
    assert verdict["figures"]["high"] < 0 and verdict["figures"]["holdout_difference"] < 0
    assert not materialized(instance, "promoted_model")
    assert materialized(instance, "classical_baseline")


def test_circuit_ceilings_are_blocking(landed, instance):
    result = run(instance, gate_policy=GatePolicy(max_depth=3))
    assert not result.success and checks(result)["circuit_ceilings"] is False
    assert not materialized(instance, "quantum_kernel_train")
    assert materialized(instance, "classical_baseline")


def test_reproducibility_fails_for_noisy_shot_kernels_and_reports_the_variance(landed, instance):
    noisy = QuantumBackend(shots=16, backoff_s=0.0)
    result = run(instance, quantum_backend=noisy, gate_policy=GatePolicy(min_margin=-1.0, reproducibility_tolerance=0.0,
                                                                         psd_shot_factor=10.0))
    assert checks(result)["reproducibility"] is False
    figures = latest_artifact(landed.artifacts, "model_evaluation")["gates"]["reproducibility"]["figures"]
    assert figures["max_kernel_spread"] > 0 and len(figures["accuracy_per_seed"]) == 3
    assert not materialized(instance, "promoted_model")


def test_an_over_budget_plan_is_refused_before_any_circuit(landed, instance, monkeypatch, tmp_path):
    boundary = DeviceBoundary(monkeypatch)
    priced = CostPolicy(run_budget_usd=1.0, price_table_path=str(priced_like_a_qpu(tmp_path)))
    result = run(instance, quantum_backend=QuantumBackend(shots=100), cost_policy=priced)
    assert not result.success
    assert boundary.circuits == 0 and boundary.calls == 0
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "Refused before submission" in message and "$1.00" in message and "run_budget_usd" in message
    assert materialized(instance, "classical_baseline")


def test_a_transient_failure_is_retried_then_succeeds(landed, instance, monkeypatch):
    boundary = DeviceBoundary(monkeypatch, fail_first=1)
    kernel_only = ["features", "reduced_embeddings", "kernel_tuning", "circuit_artifact", "quantum_kernel_train"]
    config = json.loads(json.dumps(SMALL_RUN_CONFIG))
    result = materialize(all_assets, selection=kernel_only, instance=instance,
                         resources={**RESOURCES, "quantum_backend": QuantumBackend(shots=200, backoff_s=0.01)},
                         run_config=config)
    assert result.success and boundary.calls > 1
    metadata = instance.get_latest_materialization_event(AssetKey("quantum_kernel_train")).asset_materialization.metadata
    assert metadata["retries"].value == 1  # the throttled call, retried once
    assert metadata["circuits_executed"].value == boundary.circuits  # nothing counted twice
    # The ledger knows the failure rate: one failed submission, every circuit that ran.
    assert RESOURCES["warehouse"].failure_rate(run_id=result.run_id) == (1, boundary.circuits)
    assert checks(result)["kernel_well_formed"] is True


@pytest.mark.parametrize("cause", ["permanent_failure", "disabled"])
def test_degraded_quantum_stage_falls_back_to_the_classical_model(landed, instance, monkeypatch, cause):
    if cause == "permanent_failure":
        DeviceBoundary(monkeypatch, fail_first=10**6)
        backend = QuantumBackend(shots=100, max_retries=2, backoff_s=0.01)
    else:
        backend = QuantumBackend(enabled=False)
    result = run(instance, quantum_backend=backend, gate_policy=GatePolicy(min_margin=-1.0))
    assert result.success
    report = latest_artifact(landed.artifacts, "model_evaluation")
    assert report["quantum_stage"] == "degraded" and report["degraded_reason"]
    assert report["metrics"]["classical_baseline"]["accuracy"] > 0.7
    assert report["gates"]["quantum_beats_classical"]["passed"] is False
    assert not materialized(instance, "promoted_model")
    if cause == "permanent_failure":
        assert "retries" in report["degraded_reason"]


def test_the_pool_limits_are_in_the_instance_config(tmp_path):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_restart_spread_gate():
    from hybrid_assets.evaluation.gates import restart_spread

    assert restart_spread([0.90, 0.91], metric="accuracy", tolerance=0.05).passed
    noisy = restart_spread([0.55, 0.95], metric="accuracy", tolerance=0.05)
    assert not noisy.passed and noisy.figures["accuracy_std"] == pytest.approx(0.2)
    assert not restart_spread([0.9], metric="accuracy", tolerance=0.05).passed
