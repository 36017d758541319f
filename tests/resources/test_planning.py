"""Plans that submit nothing: each kernel route's circuits, tasks, dollars and wall time; the time
budget refusal; progress with an ETA."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hybrid_resources.cost_policy import (
    CostPolicy,
    SubmissionRefused,
    TimeBudgetExceededError,
    load_price_table,
)
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.latency import LatencyModel, ProgressETA, default_latency
from hybrid_resources.quantum.planning import (
    PlanRequest,
    cost_ratio,
    format_plan,
    measure_circuit_latency,
    plan_routes,
    refuse_over_time_budget,
    route_circuits,
    route_requests,
)
from hybrid_resources.quantum.projected_kernel import (
    ProjectedKernelSpec,
    projected_kernel,
)

GARNET = BackendConfig(device_name="braket.aws.qubit", shots=1000,
                       device_options=(("device_arn", "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"),))
ANKAA = replace(GARNET, device_options=(("device_arn", "arn:aws:braket:us-west-1::device/qpu/rigetti/Ankaa-3"),))
SPEC = FeatureMapSpec("iqp", 4)


def test_pairwise_vs_projected_at_100_train_rows_on_list_prices():
    table = load_price_table()
    plans = {p.route: p for p in plan_routes(PlanRequest(100, 0, SPEC, landmarks=20), GARNET, table)}
    pairwise, projected = plans["pairwise"], plans["projected"]
    # Pairwise: 4,950 circuits = tasks, $0.30 + 1,000 x $0.00145 each (the issue's $8,663, $1,485 of task fees).
    assert (pairwise.circuits, pairwise.tasks) == (4950, 4950)
    assert pairwise.usd == pytest.approx(8662.5) and pairwise.task_fee_usd == pytest.approx(1485.0)
    # Projected: 3 circuits per sample.
    assert (projected.circuits, projected.tasks) == (300, 300) and projected.usd == pytest.approx(525.0)
    assert plans["nystrom"].circuits == 20 * 19 // 2 + 80 * 20  # K_mm, then the 80 non-landmark rows
    # With the same shots per circuit the ratio is the circuit ratio, 3N / (N(N-1)/2) = 6/(N-1):
    # 6.06% at N=100, so the 5% target holds from N=122 train rows (or with >= 27 test rows).
    assert cost_ratio(plans.values(), "projected") == pytest.approx(300 / 4950)
    assert cost_ratio(plan_routes(PlanRequest(122, 0, SPEC), GARNET, table), "projected") < 0.05
    assert cost_ratio(plan_routes(PlanRequest(100, 27, SPEC), GARNET, table), "projected") < 0.05
    assert cost_ratio(plan_routes(PlanRequest(100, 25, SPEC), GARNET, table), "projected") > 0.05
    # Program sets (100 per task on Garnet) cut the task fees, not the shots.
    grouped = {p.route: p for p in plan_routes(PlanRequest(100, 0, SPEC), CostPolicy().with_program_sets(GARNET),
                                               table)}
    assert (grouped["pairwise"].tasks, grouped["projected"].tasks) == (50, 3)
    assert grouped["pairwise"].usd == pytest.approx(15.0 + 7177.5) and grouped["projected"].usd == pytest.approx(435.9)
    # Rigetti Ankaa-3: $0.30 + 1,000 x $0.0009 per circuit (the issue's $5,940).
    ankaa = {p.route: p for p in plan_routes(PlanRequest(100, 0, SPEC), ANKAA, table)}
    assert ankaa["pairwise"].usd == pytest.approx(5940.0) and ankaa["projected"].usd == pytest.approx(360.0)
    assert "| pairwise | 4,950 | 4,950 |" in format_plan(list(plans.values()))


def test_nystrom_counts_k_nm_only_for_the_non_landmark_rows_so_all_landmarks_cost_what_pairwise_does():
    pairwise = route_requests("pairwise", 100, 25)
    assert pairwise == [4950, 2500]
    # A landmark's row of K_nm is its row of K_mm: m(m-1)/2 + (N-m) m + T m.
    assert route_requests("nystrom", 100, 25, landmarks=20) == [190, 80 * 20, 25 * 20]
    assert route_circuits("nystrom", 100, 25, landmarks=20) == 190 + 80 * 20 + 25 * 20 == 2290
    # At m = N (m = 1000 is capped at N = 100) the route is pairwise's train Gram matrix plus T N.
    for m in (100, 1000):
        assert route_requests("nystrom", 100, 25, landmarks=m) == pairwise
        assert route_circuits("nystrom", 100, 25, landmarks=m) == route_circuits("pairwise", 100, 25) == 7450
    table = load_price_table()
    for backend in (GARNET, CostPolicy().with_program_sets(GARNET)):
        for m in (100, 1000):
            plans = {p.route: p for p in plan_routes(PlanRequest(100, 25, SPEC, landmarks=m), backend, table)}
            same = ("circuits", "tasks", "usd", "task_fee_usd", "shot_fee_usd", "wall_time_s")
            assert [getattr(plans["nystrom"], k) for k in same] == [getattr(plans["pairwise"], k) for k in same]
            assert "every train row is a landmark, so this is the exact kernel at pairwise's cost" in plans["nystrom"].note
        fewer = {p.route: p for p in plan_routes(PlanRequest(100, 25, SPEC, landmarks=20), backend, table)}
        assert fewer["nystrom"].circuits == 190 + 80 * 20 + 25 * 20 and fewer["nystrom"].note == ""


def test_wall_time_from_latency_and_refusal_over_the_time_budget():
    local = BackendConfig(device_name="braket.local.qubit", shots=1000)
    demo = PlanRequest(360, 90, FeatureMapSpec("iqp", 6), landmarks=50)  # the 450-row demo split
    plans = {p.route: p for p in plan_routes(demo, local, load_price_table())}
    assert plans["pairwise"].circuits == 360 * 359 // 2 + 90 * 360 == 97_020
    latency = default_latency(local, 6)
    assert plans["pairwise"].wall_time_s == pytest.approx(97_020 * latency.per_circuit_s)
    assert plans["pairwise"].usd == 0.0 and "measured braket.local.qubit pair circuits at 6" in plans["pairwise"].latency_source
    assert plans["projected"].wall_time_s == pytest.approx(1350 * default_latency(local, 6, "projected").per_circuit_s)

    with pytest.raises(TimeBudgetExceededError) as refused:
        refuse_over_time_budget(plans["pairwise"], time_budget_s=3600)
    assert isinstance(refused.value, SubmissionRefused)  # the same refusal as an over-budget plan
    assert "time_budget_s / HYBRID_TIME_BUDGET_S" in str(refused.value) and "97020 circuits" in str(refused.value)
    refuse_over_time_budget(plans["projected"], time_budget_s=3600)  # 1,350 circuits: minutes
    refuse_over_time_budget(plans["pairwise"], time_budget_s=0)  # 0 = no limit
    with pytest.raises(TimeBudgetExceededError, match="raise the budget"):
        CostPolicy(time_budget_s=60).admit_time(plans["pairwise"].wall_time_s, "the kernel")

    # A measured latency (e.g. from the ledger) replaces the default; managed devices pay per task.
    measured = LatencyModel.from_measurement(12.0, 100, source="ledger: run r1")
    assert plan_routes(demo, local, load_price_table(), latency=measured)[1].wall_time_s == pytest.approx(1350 * 0.12)
    qpu = default_latency(GARNET, 4)
    assert qpu.wall_time_s(tasks=3, circuits=300, total_shots=300_000) == pytest.approx(3 * 5.0 + 300.0)
    # Exact and emulated backends run no circuits.
    assert plan_routes(demo, BackendConfig(), load_price_table())[0].circuits == 0


def test_progress_is_logged_with_an_eta_at_most_every_few_seconds():
    lines, now = [], [0.0]
    progress = ProgressETA(1000, lines.append, label="pair circuits", every_s=5.0, clock=lambda: now[0])
    for _ in range(99):
        now[0] += 0.5
        progress.advance(10)
    assert len(lines) == 9  # 49.5 s in 0.5 s steps: one line per 5 s
    assert lines[0] == "pair circuits: 100/1000 (10%), 5.0 s elapsed, ETA 45.0 s"
    now[0] += 0.5
    progress.advance(10)
    assert lines[-1].endswith("1000/1000 (100%), 50.0 s elapsed, done")
    with pytest.raises(ValueError, match="route must be one of"):
        route_circuits("fidelity", 10)


def test_measured_latency_and_progress_of_a_real_shot_run():
    local = BackendConfig(device_name="default.qubit", shots=100)
    latency = measure_circuit_latency(local, FeatureMapSpec("angle", 2), samples=4)
    assert latency.per_circuit_s > 0 and latency.source == "measured: default.qubit at 2 qubits"
    with pytest.raises(ValueError, match="ledger"):
        measure_circuit_latency(GARNET, SPEC)

    lines = []
    progress = ProgressETA(3 * 7, lines.append, label="basis circuits", every_s=3600.0)
    X = np.random.default_rng(0).uniform(0, np.pi, size=(7, 2))
    projected_kernel(X, spec=ProjectedKernelSpec(FeatureMapSpec("angle", 2)), backend=replace(local, batch_size=4),
                     on_call=progress.advance)
    assert progress.done == 21 and len(lines) == 1 and lines[0].startswith("basis circuits: 21/21 (100%)")


def test_the_ledger_refuses_a_kernel_over_the_time_budget_before_any_circuit(tmp_path):
    # The README's trap: the demo's two kernels on the local Braket simulator at 1,000 shots were
    # hours of circuits with no warning. Admission now refuses such a request, naming the setting.
    from hybrid_resources.data.warehouse import Warehouse
    from hybrid_resources.quantum.kernel_engine import quantum_kernel

    local = BackendConfig(device_name="braket.local.qubit", shots=1000)
    X = np.random.default_rng(0).uniform(0, np.pi, size=(40, 4))  # 780 pair circuits, ~30 s here
    policy = CostPolicy(warehouse=Warehouse(path=str(tmp_path / "w.duckdb")), time_budget_s=10)
    with policy.ledger(run_id="r1", asset="quantum_kernel_train", backend=local) as ledger:
        with pytest.raises(TimeBudgetExceededError) as refused:
            quantum_kernel(X, spec=SPEC, backend=local, ledger=ledger)
    assert ledger.circuits == ledger.tasks == 0  # nothing was sent
    message = str(refused.value)
    assert "quantum_kernel_train: 780 circuits x 1000 shots on braket.local.qubit" in message
    assert "measured braket.local.qubit pair circuits at 4 qubits" in message and "HYBRID_TIME_BUDGET_S" in message
    # Within the budget (or with 0 = no limit) the same plan is admitted; exact backends never count.
    CostPolicy(warehouse=policy.warehouse, time_budget_s=0).ledger(run_id="r2", asset="k", backend=local).admit(780, 1000)
    CostPolicy(warehouse=policy.warehouse, time_budget_s=60).ledger(run_id="r3", asset="k", backend=local).admit(780, 1000)
    CostPolicy(warehouse=policy.warehouse, time_budget_s=1e-9).ledger(run_id="r4", asset="k",
                                                                      backend=BackendConfig()).admit(0, 0)


def test_a_shot_kernel_logs_its_progress_with_an_eta(caplog):
    from hybrid_resources.quantum.kernel_engine import quantum_kernel

    X = np.random.default_rng(0).uniform(0, np.pi, size=(8, 2))
    with caplog.at_level("INFO", logger="dagster"):
        quantum_kernel(X, spec=FeatureMapSpec("angle", 2),
                       backend=BackendConfig(device_name="default.qubit", shots=100, batch_size=5))
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("hybrid_quantum.kernel")]
    # 28 pairs in 6 calls: at most one line per 10 s, and always the last one.
    assert lines and lines[-1].startswith("angle pair circuits on default.qubit: 28/28 (100%)")
