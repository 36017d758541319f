"""Pattern 3: portfolio QUBO, QAOA candidates, classical ranking, heuristics and gates (real
PennyLane devices, real checkpoints, a real SIGKILLed process)."""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hybrid_assets.optimization.gates import quantum_beats_heuristic
from hybrid_resources.data.checkpoints import CheckpointStore
from hybrid_resources.optimization.portfolio import (
    PortfolioProblem,
    bits_to_str,
    brute_force,
    feasible_solutions,
    greedy,
    returns_statistics,
    simulated_annealing,
)
from hybrid_resources.optimization.qaoa import (
    QaoaCircuit,
    QaoaConfig,
    SampleRequest,
    circuit_probabilities,
    circuit_resources,
    exact_probabilities,
    lineage_key,
    optimize_parameters,
    sample_counts,
    to_openqasm,
)
from hybrid_resources.optimization.ranking import RankingRules, rank_candidates
from hybrid_resources.quantum.backends import BackendConfig
from tests.conftest import kill_when_ready

WORKER = Path(__file__).parents[1] / "qaoa_worker.py"


def problem_of(n: int, k: int, seed: int = 0, **kwargs) -> PortfolioProblem:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0005, 0.02, (200, n)) + rng.normal(0, 0.01, (200, 1))
    return PortfolioProblem(returns.mean(0) * 250, np.cov(returns, rowvar=False) * 250, k,
                            assets=tuple(f"A{i}" for i in range(n)), **kwargs)


def test_returns_table_gives_mean_and_covariance():
    frame = pl.DataFrame({"date": ["2024-01-03", "2024-01-01", "2024-01-02"], "x": [0.3, 0.1, 0.2], "y": [1.0, 3.0, 2.0]})
    mu, cov, assets = returns_statistics(frame)
    assert assets == ("x", "y")
    np.testing.assert_allclose(mu, [0.2, 2.0])
    np.testing.assert_allclose(cov, [[0.01, -0.1], [-0.1, 1.0]])


def test_qubo_objective_equals_portfolio_objective_on_every_bitstring_for_n4():
    problem = problem_of(4, 2, risk_aversion=0.7)
    qubo = problem.qubo()
    A = problem.default_penalty()
    X = np.array(list(itertools.product([0, 1], repeat=4)))
    assert len(X) == 16
    penalised = -problem.objective(X) + A * (X.sum(axis=1) - problem.k) ** 2
    np.testing.assert_allclose(qubo.energies(X), penalised, atol=1e-12)
    feasible = problem.feasible(X)
    np.testing.assert_allclose(qubo.energies(X[feasible]), -problem.objective(X[feasible]), atol=1e-12)
    # the penalty is large enough: the QUBO's minimum over all 16 bitstrings is the constrained optimum
    assert bits_to_str(X[np.argmin(qubo.energies(X))]) == bits_to_str(brute_force(problem).best)


def test_brute_force_finds_the_known_optimum():
    # Two assets with high return and no risk; the rest lose: the optimum of "2 of 5" is {0, 3}.
    mu = np.array([1.0, -0.5, -0.2, 0.9, -1.0])
    cov = np.diag([0.01, 0.2, 0.2, 0.01, 0.2])
    problem = PortfolioProblem(mu, cov, 2)
    result = brute_force(problem)
    assert bits_to_str(result.best) == ["10010"]
    assert result.best_value == pytest.approx(1.9 - 0.02)
    assert result.evaluations == 10  # C(5, 2)
    # a sector cap of 1 on a sector holding assets 0 and 3 moves the optimum to {0, 2}
    capped = replace(problem, sectors=(0, 1, 2, 0, 1), sector_cap=1)
    assert bits_to_str(brute_force(capped).best) == ["10100"]


def test_heuristics_are_feasible_and_annealing_reaches_the_optimum_with_budget():
    problem = problem_of(10, 3, seed=3, sectors=(0, 0, 0, 1, 1, 1, 2, 2, 2, 2), sector_cap=2)
    optimum = brute_force(problem)
    for result in (greedy(problem), simulated_annealing(problem, evaluations=400, seed=1)):
        assert problem.feasible(result.best)[0]
    annealed = simulated_annealing(problem, evaluations=400, seed=1)
    assert annealed.evaluations == 400
    assert annealed.best_value == pytest.approx(optimum.best_value)


def test_numpy_statevector_equals_the_pennylane_qaoa_circuit():
    problem = problem_of(5, 2, seed=1)
    params = np.array([[0.3, 0.7], [0.5, 0.2]])
    for mixer, qubo in (("xy", problem.qubo(penalty=0)), ("x", problem.qubo())):
        circuit = QaoaCircuit(qubo, mixer, 2, problem.k)
        np.testing.assert_allclose(exact_probabilities(circuit, params), circuit_probabilities(circuit, params), atol=1e-12)
    # the XY mixer from the Dicke state never leaves the weight-k subspace
    weights = np.array([b.count("1") for b in (format(i, "05b") for i in range(32))])
    probs = exact_probabilities(QaoaCircuit(problem.qubo(penalty=0), "xy", 2, problem.k), params)
    assert probs[weights != problem.k].sum() < 1e-12


def test_qaoa_optimum_probability_beats_uniform_sampling(tmp_path):
    problem = problem_of(6, 2, seed=2)
    X, values = feasible_solutions(problem)
    config = QaoaConfig(p=2, mixer="xy", steps=25, restarts=1)
    circuit = QaoaCircuit(problem.qubo(penalty=0), "xy", config.p, problem.k)
    result = optimize_parameters(circuit, config, checkpoint_dir=tmp_path, lineage=lineage_key(circuit, config))
    p_opt = exact_probabilities(circuit, result.params)[int(bits_to_str(X[:1])[0], 2)]
    uniform_feasible = 1 / len(values)  # 1/15; uniform over all 64 bitstrings is lower still
    assert p_opt > 2 * uniform_feasible, (p_opt, uniform_feasible)
    assert result.history[0][-1] < result.history[0][0]  # <H_C> went down


def test_sampled_candidates_go_through_the_ledger_and_rank_feasible_only(priced_policy):
    problem = problem_of(6, 3, seed=4, sectors=(0, 0, 0, 1, 1, 1), sector_cap=2)
    circuit = QaoaCircuit(problem.qubo(), "x", 1, problem.k)  # the X mixer samples infeasible strings too
    backend = BackendConfig(device_name="default.qubit", seed=3)
    with priced_policy.ledger(run_id="r1", asset="candidate_samples", backend=backend) as ledger:
        counts = sample_counts(SampleRequest(circuit, np.array([[0.4, 0.3]]), backend, shots=200, seed=3), ledger=ledger)
    assert sum(counts.values()) == 200
    assert (ledger.tasks, ledger.shots) == (1, 200)
    assert any(b.count("1") != problem.k for b in counts)  # the raw samples include infeasible strings
    ranked = rank_candidates(problem, counts, RankingRules(top=5, excluded=("A0",)))
    assert 0 < len(ranked) <= 5
    bits = np.array([[c == "1" for c in row["bitstring"]] for row in ranked])
    assert problem.feasible(bits).all() and not bits[:, 0].any()
    assert [row["objective"] for row in ranked] == sorted((row["objective"] for row in ranked), reverse=True)
    assert sum(1 for _ in ranked) == len({row["bitstring"] for row in ranked})


def test_circuit_exports_openqasm_and_reports_its_size():
    problem = problem_of(4, 2)
    circuit = QaoaCircuit(problem.qubo(penalty=0), "xy", 2, problem.k)
    qasm = to_openqasm(circuit, np.array([[0.1, 0.2], [0.3, 0.4]]))
    assert qasm.startswith("OPENQASM 2.0") and "measure q[3]" in qasm
    resources = circuit_resources(circuit)
    assert resources["width"] == 4 and resources["two_qubit_gates"] > 0 and resources["depth"] > 0


def test_gate_fails_when_the_heuristic_wins_and_says_by_how_much():
    lost = quantum_beats_heuristic(0.90, {"greedy": 0.95, "simulated_annealing": 1.0}, margin=0.0,
                                   measure="approximation ratio")
    assert not lost.passed
    assert "simulated_annealing" in lost.message and "lost by 0.1" in lost.message
    assert lost.figures["advantage"] == pytest.approx(-0.1)
    won = quantum_beats_heuristic(2.0, {"simulated_annealing": 3.0}, margin=0.5, measure="time to solution (s)",
                                  higher_is_better=False)
    assert won.passed and won.figures["advantage"] == pytest.approx(1.0)


def test_sigkilled_parameter_optimisation_resumes_from_its_checkpoint(tmp_path):
    problem = problem_of(6, 2, seed=5)
    config = QaoaConfig(p=2, mixer="xy", steps=15, restarts=2, checkpoint_every=1)  # 30 steps
    circuit = QaoaCircuit(problem.qubo(penalty=0), "xy", config.p, problem.k)
    lineage = lineage_key(circuit, config)
    problem_path = tmp_path / "problem.json"
    problem_path.write_text(json.dumps(problem.to_dict()))
    killed = tmp_path / "killed"
    kill_when_ready([sys.executable, str(WORKER), str(problem_path), json.dumps(asdict(config)), str(killed), lineage,
                     "0.1"], lambda: any((killed / lineage / f"step-{s:06d}.json").exists() for s in range(18, 31)))
    on_disk = CheckpointStore(killed, lineage).steps_on_disk()
    assert 18 <= max(on_disk) < 30, on_disk  # killed in the second restart, not after the end

    resumed = optimize_parameters(circuit, config, checkpoint_dir=killed, lineage=lineage)
    assert resumed.resumed_from_step is not None and resumed.resumed_from_step >= 17
    assert resumed.steps_run == 30 - resumed.resumed_from_step
    fresh = optimize_parameters(circuit, config, checkpoint_dir=tmp_path / "fresh", lineage=lineage)
    assert fresh.resumed_from_step is None and fresh.steps_run == 30
    np.testing.assert_array_equal(resumed.params, fresh.params)
    assert resumed.history == fresh.history and resumed.best_restart == fresh.best_restart


# ---------------------------------------------------------------------------------------
# The assets, materialized on a real (ephemeral) Dagster instance
# ---------------------------------------------------------------------------------------

SMALL_PORTFOLIO_RUN = {"ops": {"qaoa_parameters": {"config": {"steps": 12, "restarts": 1}},
                               "classical_heuristics": {"config": {"seeds": 3}},
                               "candidate_samples": {"config": {"shots": 300, "repeat_seeds": 2}}}}


def _portfolio_resources():
    from hybrid_resources.cost_policy import CostPolicy
    from hybrid_resources.data.artifacts import ArtifactIOManager
    from hybrid_resources.data.warehouse import Warehouse
    from hybrid_resources.gate_policy import GatePolicy
    from hybrid_resources.quantum.backends import QuantumBackend

    warehouse = Warehouse()
    return {"io_manager": ArtifactIOManager(), "warehouse": warehouse, "quantum_backend": QuantumBackend(),
            "cost_policy": CostPolicy(warehouse=warehouse), "gate_policy": GatePolicy()}


def test_portfolio_assets_from_returns_file_to_ranked_candidates_with_gates(data_layout):
    from dagster import DagsterInstance, load_assets_from_modules, materialize

    from hybrid_assets.cli.audit import audit_trail, to_markdown
    from hybrid_assets.common.examples import write_example_returns
    from hybrid_assets.optimization import portfolio
    from hybrid_resources.data.quarantine import read_sidecar

    returns = data_layout.root / "returns"
    write_example_returns(returns / "example_returns.csv")  # what an empty returns/ folder receives
    (returns / "a_prices.csv").write_text("date,x,y\n" + "".join(f"2024-01-{d:02d},{100 + d},{50 + d}\n" for d in range(1, 31)))
    with DagsterInstance.ephemeral() as instance:
        result = materialize(load_assets_from_modules([portfolio]), resources=_portfolio_resources(), instance=instance,
                             run_config=SMALL_PORTFOLIO_RUN, raise_on_error=False)
        assert result.success
        trail = audit_trail(instance, "ranked_candidates")
    # hybrid-audit traces the ranked candidates back to the returns file, the circuit, the device, shots, seed
    nodes = {node["asset"]: node for node in trail["chain"]}
    assert {"returns_landing", "portfolio_problem", "qaoa_circuit", "qaoa_parameters", "candidate_samples"} <= set(nodes)
    assert nodes["returns_landing"]["metadata"]["file"] == "example_returns.csv"
    assert nodes["returns_landing"]["metadata"]["file_hash"] == result.output_for_node("returns_landing")["file_hash"]
    assert nodes["qaoa_circuit"]["metadata"]["circuit_version"] == "qaoa-1"
    assert nodes["candidate_samples"]["metadata"]["shots"] == 300
    assert nodes["candidate_samples"]["metadata"]["backend"]["device_name"] == "default.qubit"
    assert "example_returns.csv" in to_markdown(trail)
    # the bad file went to the quarantine with its reason (file and warehouse); the good one was used
    sidecar = read_sidecar(data_layout.quarantine / "a_prices.csv")
    assert sidecar["check"] == "value_range" and "prices or percents" in sidecar["reason"]
    assert not (returns / "a_prices.csv").exists()
    with _portfolio_resources()["warehouse"].connect(read_only=True) as connection:
        assert connection.execute("SELECT check_name FROM quarantine WHERE original_name = 'a_prices.csv'").fetchall() \
            == [("value_range",)]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    # only the circuit ceilings block; a quarantined file and the ROI gates are reported (WARN)
    severities = {e.check_name: e.severity.value for e in result.get_asset_check_evaluations()}
    assert severities["returns_contract"] == "WARN" and severities["quantum_beats_heuristics_ratio"] == "WARN"
    assert checks["returns_contract"] is False and checks["circuit_ceilings"] is True
    assert {"quantum_beats_heuristics_ratio", "quantum_beats_heuristics_time", "optimum_probability",
            "reproducibility", "cost_within_budget"} <= set(checks)
    ranked = result.output_for_node("ranked_candidates")
    problem = PortfolioProblem.from_dict(result.output_for_node("portfolio_problem")["problem"])
    bits = np.array([[c == "1" for c in row["bitstring"]] for row in ranked["ranked"]])
    assert len(bits) == 10 and problem.feasible(bits).all()
    assert ranked["lineage"]["returns_file"] == "example_returns.csv" and ranked["lineage"]["shots"] == 300
    report = result.output_for_node("portfolio_report")
    assert 0.0 <= report["roi"]["quantum_approximation_ratio"] <= 1.0 and "recall_top_m" in report["roi"]
    materialization = result.asset_materializations_for_node("portfolio_report")[0]
    assert materialization.metadata["objective_histogram"].value.startswith("![objective histogram](data:image/png")


def test_maxcut_from_an_edge_list_takes_the_same_route(tmp_path):
    from hybrid_resources.optimization.maxcut import qaoa_circuit, read_graph_file

    graph = tmp_path / "graph.txt"
    graph.write_text("# a 6-ring with one chord\na b\nb c\nc d\nd e\ne f\nf a\na, d, 0.5\n")
    problem = read_graph_file(graph)
    X, cuts = problem.solutions()
    assert problem.n == 6 and cuts[0] == 6.5  # alternating colours cut every ring edge and the chord (odd distance)
    np.testing.assert_allclose(problem.qubo().energies(basis_bits_all(6)), -problem.cut(basis_bits_all(6)))
    config = QaoaConfig(p=2, mixer="x", steps=25, restarts=1, objective="expectation")
    circuit = qaoa_circuit(problem, p=config.p)
    result = optimize_parameters(circuit, config, checkpoint_dir=tmp_path, lineage=lineage_key(circuit, config))
    probs = exact_probabilities(circuit, result.params)
    optimal = [int(b, 2) for b, c in zip(bits_to_str(X), cuts) if c == cuts[0]]
    assert probs[optimal].sum() > 3 * len(optimal) / 64  # uniform sampling: 2 of 64
    counts = sample_counts(SampleRequest(circuit, result.params, BackendConfig(), shots=200, seed=1))
    assert rank_candidates(problem, counts, RankingRules(top=3))[0]["objective"] == 6.5


def basis_bits_all(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n)))


def test_samples_from_the_braket_local_simulator_keep_the_cardinality_and_are_recorded(priced_policy):
    problem = problem_of(4, 2, seed=6)
    circuit = QaoaCircuit(problem.qubo(penalty=0), "xy", 1, problem.k)
    backend = BackendConfig(device_name="braket.local.qubit", shots=100)
    with priced_policy.ledger(run_id="r2", asset="candidate_samples", backend=backend) as ledger:
        counts = sample_counts(SampleRequest(circuit, np.array([[0.5, 0.4]]), backend, shots=100), ledger=ledger)
    assert sum(counts.values()) == 100 and all(b.count("1") == 2 for b in counts)
    assert (ledger.tasks, ledger.shots) == (1, 100)


BAD_RETURNS = {
    "required_columns": "day,x,y\n" + "".join(f"2024-01-{d:02d},0.01,0.02\n" for d in range(1, 31)),
    "row_count": "date,x,y\n" + "".join(f"2024-01-{d:02d},0.01,0.02\n" for d in range(1, 11)),
    "unique_dates": "date,x,y\n" + "".join(f"2024-01-{min(d, 29):02d},0.01,0.02\n" for d in range(1, 31)),
    "numeric_returns": "date,x,y\n" + "".join(f"2024-01-{d:02d},0.01,up\n" for d in range(1, 31)),
    "finite_values": "date,x,y\n" + "".join(f"2024-01-{d:02d},0.01,{'' if d == 5 else 0.02}\n" for d in range(1, 31)),
    "asset_columns": "date,x\n" + "".join(f"2024-01-{d:02d},0.01\n" for d in range(1, 31)),
}


@pytest.mark.parametrize("check", sorted(BAD_RETURNS))
def test_returns_contract_names_the_broken_rule(tmp_path, check):
    from hybrid_resources.data.contract import ContractViolation
    from hybrid_resources.optimization.returns_contract import load_returns_file

    path = tmp_path / "returns.csv"
    path.write_text(BAD_RETURNS[check])
    with pytest.raises(ContractViolation) as raised:
        load_returns_file(path)
    assert raised.value.check == check, raised.value.reason


def test_returns_sensor_launches_once_per_new_content(data_layout):
    from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context

    from hybrid_assets.common.examples import write_example_returns
    from hybrid_assets.optimization.sensors import new_contents, returns_sensor

    def tick(instance, cursor=None):
        context = build_sensor_context(instance=instance, cursor=cursor)
        return returns_sensor(context), context.cursor

    with DagsterInstance.ephemeral() as instance:
        assert isinstance(tick(instance)[0], SkipReason)  # no folder yet
        path = write_example_returns(data_layout.root / "returns" / "r.csv")
        waiting, cursor = tick(instance)
        assert isinstance(waiting, SkipReason) and "waiting for 1 file" in waiting.skip_message  # one tick to settle
        result, _ = tick(instance, cursor)
        assert isinstance(result, SensorResult) and result.cursor
        (request,) = result.run_requests
        assert request.run_key.startswith("returns-")
        again, cursor = tick(instance, result.cursor)
        assert isinstance(again, SkipReason)  # same content: nothing new
        path.write_text(path.read_text().replace("0.0", "0.1", 1))  # new content under the same name
        _, cursor = tick(instance, cursor)
        changed, _ = tick(instance, cursor)
        assert isinstance(changed, SensorResult) and len(changed.run_requests) == 1
    # the file the asset already took is not new, whatever the cursor
    assert new_contents({"a.csv": "h1"}, taken="h1") == {}
    assert new_contents({"a.csv": "h1", "b.csv": "h2"}, taken="h1") == {"b.csv": "h2"}
