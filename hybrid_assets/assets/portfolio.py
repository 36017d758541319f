"""Pattern 3: a returns file -> portfolio problem -> QAOA circuit -> parameters -> candidate samples ->
ranked candidates, beside the classical heuristics on the same instance, with the ROI report and
its gates. Launch it with the job **portfolio_candidates** (the bundled example is written into an
empty ``$HYBRID_DATA_DIR/returns/``)."""

import time
from pathlib import Path

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSelection,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
    define_asset_job,
)
from pydantic import Field

from hybrid_assets.gates import circuit_ceilings
from hybrid_assets.modeling import (
    code_block,
    comparison_table,
    histograms_png,
    markdown_image,
)
from hybrid_assets.outputs import artifact_output
from hybrid_assets.portfolio_example import (
    EXAMPLE_RETURNS_FILE_NAME,
    write_example_returns,
)
from hybrid_assets.portfolio_gates import (
    cost_gate,
    optimum_probability_gate,
    quantum_beats_heuristic,
    seed_reproducibility,
)
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.contract import ContractViolation, file_sha256
from hybrid_resources.data.paths import DataLayout
from hybrid_resources.data.quarantine import quarantine_file
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.optimization.pipeline import (
    ProblemSettings,
    build_problem,
    run_heuristics,
)
from hybrid_resources.optimization.pipeline import qaoa_circuit as build_qaoa_circuit
from hybrid_resources.optimization.portfolio import (
    PortfolioProblem,
    Qubo,
    SolverResult,
    approximation_ratio,
    bits_to_str,
    feasible_solutions,
    str_to_bits,
)
from hybrid_resources.optimization.qaoa import (
    QAOA_VERSION,
    QaoaCircuit,
    QaoaConfig,
    SampleRequest,
    circuit_resources,
    exact_probabilities,
    initial_params,
    lineage_key,
    optimize_parameters,
    sample_counts,
    to_openqasm,
)
from hybrid_resources.optimization.ranking import (
    RankingRules,
    RoiRequest,
    rank_candidates,
    roi_figures,
)
from hybrid_resources.optimization.returns_contract import (
    RETURNS_SUFFIXES,
    load_returns_file,
)
from hybrid_resources.quantum.backends import QuantumBackend

GROUP = "portfolio"


def returns_folder() -> Path:
    return DataLayout.from_env().root / "returns"


def _quarantine(path: Path, violation: ContractViolation, warehouse: Warehouse) -> dict:
    file_hash = file_sha256(path)
    record = quarantine_file(path, DataLayout.from_env().quarantine, check=violation.check, reason=violation.reason,
                             details=violation.details)
    with warehouse.session() as session:
        session.record_quarantine(file_hash=file_hash, original_name=path.name, quarantined_path=record.quarantined_path,
                                  check=violation.check, reason=violation.reason)
    return {"file": path.name, "check": violation.check, "reason": violation.reason}


@asset(group_name=GROUP, code_version="1", pool="warehouse", kinds={"duckdb"},
       check_specs=[AssetCheckSpec("returns_contract", asset="returns_landing",
                                   description="Every returns file meets the returns contract; bad ones are quarantined "
                                               "(reported; the newest good file carries on)")])
def returns_landing(context: AssetExecutionContext, warehouse: Warehouse):
    """The newest returns file (by name) of ``$HYBRID_DATA_DIR/returns/`` that meets the returns
    contract, as a table of returns (periods x assets); every file that breaks it is moved to the
    quarantine with its reason. An empty folder receives the bundled example first."""
    folder = returns_folder()
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in folder.iterdir() if p.suffix in RETURNS_SUFFIXES)
    if not files:
        files = [write_example_returns(folder / EXAMPLE_RETURNS_FILE_NAME)]
        context.log.info(f"returns/ was empty: wrote the bundled example {files[0].name}")
    good, quarantined = [], []
    for path in files:
        try:
            good.append((path, load_returns_file(path)))
        except ContractViolation as violation:
            quarantined.append(_quarantine(path, violation, warehouse))
            context.log.warning(f"quarantined {path.name}: [{violation.check}] {violation.reason}")
    if not good:
        raise Failure(description=f"no returns file in {folder} meets the contract; quarantined: {quarantined}")
    path, frame = good[-1]
    assets = [c for c in frame.columns if c != "date"]
    value = {"file": path.name, "file_hash": file_sha256(path), "assets": assets,
             "dates": [str(d) for d in frame["date"]], "returns": frame.select(assets).to_numpy().round(10).tolist()}
    yield artifact_output(value, {"file": path.name, "file_hash": value["file_hash"], "assets": len(assets),
                                  "periods": frame.height, "first_date": value["dates"][0],
                                  "last_date": value["dates"][-1], "quarantined": MetadataValue.json(quarantined)})
    # A quarantined file is reported, not a failure: the newest good file carries on.
    yield AssetCheckResult(check_name="returns_contract", passed=not quarantined, severity=AssetCheckSeverity.WARN,
                           metadata={"quarantined": MetadataValue.json(quarantined), "accepted": path.name})


class ProblemConfig(Config):
    k: int = Field(default=4, ge=1, description="Assets to choose")
    risk_aversion: float = Field(default=1.0, ge=0.0, description="lambda in mu.x - lambda x^T Sigma x")
    sector_cap: int = Field(default=0, ge=0, description="At most this many chosen assets per sector (0 = no cap)")
    sectors: dict[str, str] = Field(default_factory=dict, description="asset -> sector (unnamed assets: own sector)")


def _frame(returns: dict):
    import polars as pl

    return pl.DataFrame(np.asarray(returns["returns"]), schema=returns["assets"], orient="row").with_columns(
        pl.Series("date", returns["dates"]).str.to_date()).select("date", *returns["assets"])


@asset(group_name=GROUP, code_version="1")
def portfolio_problem(config: ProblemConfig, returns_landing: dict) -> Output:
    """Annualised mean returns and covariance of the returns file, the cardinality-constrained
    problem (choose k, return - lambda risk, optional sector cap) and its QUBO."""
    settings = ProblemSettings(k=config.k, risk_aversion=config.risk_aversion, sectors=dict(config.sectors),
                               sector_cap=config.sector_cap)
    problem = build_problem(_frame(returns_landing), settings)
    value = {"problem": problem.to_dict(), "qubo": problem.qubo().to_dict(), "returns_file": returns_landing["file"],
             "returns_hash": returns_landing["file_hash"], "problem_hash": problem.problem_hash()}
    rows = {a: {"mean_return": float(m), "volatility": float(np.sqrt(problem.cov[i, i]))}
            for i, (a, m) in enumerate(zip(problem.assets, problem.mu))}
    return artifact_output(value, {"assets": problem.n, "k": problem.k, "risk_aversion": problem.risk_aversion,
                                   "qubo_penalty": problem.default_penalty(), "sector_cap": problem.sector_cap,
                                   "statistics": MetadataValue.md(comparison_table(rows, ["mean_return", "volatility"]))})


def _problem(value: dict) -> PortfolioProblem:
    return PortfolioProblem.from_dict(value["problem"])


class CircuitConfig(Config):
    p: int = Field(default=2, ge=1, description="QAOA depth (cost + mixer layers)")
    mixer: str = Field(default="xy", description="xy (keeps the cardinality, starts in a Dicke state) | x (penalty)")
    mixer_graph: str = Field(default="ring", description="Pairs the XY mixer couples: ring | complete")
    max_depth: int = Field(default=1000, ge=1, description="QAOA's depth ceiling after decomposition (an XY-QAOA on "
                                                           "12 qubits at p=2 is ~740 deep; the feature maps' ceiling "
                                                           "in gate_policy is for kernel circuits)")
    max_two_qubit_gates: int = Field(default=1000, ge=0, description="QAOA's two-qubit gate ceiling")


def _circuit(value: dict) -> QaoaCircuit:
    q = value["circuit"]
    qubo = Qubo(np.asarray(q["qubo"]["linear"]), np.asarray(q["qubo"]["quadratic"]), float(q["qubo"]["offset"]))
    return QaoaCircuit(qubo, q["mixer"], int(q["p"]), int(q["k"]), q.get("mixer_graph", "ring"))


@asset(group_name=GROUP, code_version=QAOA_VERSION, kinds={"pennylane"},
       check_specs=[AssetCheckSpec("circuit_ceilings", asset="qaoa_circuit", blocking=True,
                                   description="Width, depth and two-qubit gates after decomposition under the ceilings")])
def qaoa_circuit(config: CircuitConfig, portfolio_problem: dict, gate_policy: GatePolicy):
    """The QAOA circuit (``qml.qaoa`` layers), its OpenQASM 2.0 bound to the ramp parameters, its size,
    checked against the width ceiling of ``gate_policy`` and QAOA's own depth and two-qubit ceilings."""
    problem = _problem(portfolio_problem)
    circuit = build_qaoa_circuit(problem, mixer=config.mixer, p=config.p, mixer_graph=config.mixer_graph)
    reference = initial_params(QaoaConfig(p=config.p, mixer=config.mixer), 0)
    resources = circuit_resources(circuit)
    artifact = {"circuit": circuit.to_dict(), "circuit_hash": circuit.circuit_hash(), "version": QAOA_VERSION,
                "reference_params": reference.tolist(), "openqasm": to_openqasm(circuit, reference),
                "resources": resources, "problem_hash": portfolio_problem["problem_hash"]}
    qasm_path = DataLayout.from_env().artifacts / "qaoa_circuit" / "circuit.qasm"
    qasm_path.parent.mkdir(parents=True, exist_ok=True)
    qasm_path.write_text(artifact["openqasm"])
    yield artifact_output(artifact, {
        "circuit_version": QAOA_VERSION, "circuit_hash": artifact["circuit_hash"], "mixer": config.mixer,
        "p": config.p, "width": resources["width"], "depth": resources["depth"],
        "two_qubit_gates": resources["two_qubit_gates"], "gate_counts": MetadataValue.json(resources["gate_counts"]),
        "openqasm": MetadataValue.md(code_block(artifact["openqasm"], "qasm", max_lines=60, whole=str(qasm_path))),
        "openqasm_path": MetadataValue.path(str(qasm_path)),
    })
    ceilings = circuit_ceilings(resources, max_width=gate_policy.max_width, max_depth=config.max_depth,
                                max_two_qubit_gates=config.max_two_qubit_gates)
    yield AssetCheckResult(check_name="circuit_ceilings", passed=ceilings.passed,
                           metadata={"message": ceilings.message, **ceilings.figures})



class ParametersConfig(Config):
    steps: int = Field(default=40, ge=1, description="Adam steps per restart")
    step_size: float = Field(default=0.1, gt=0.0)
    restarts: int = Field(default=2, ge=1, description="Seeded restarts (0: linear ramp); the best is kept")
    seed: int = Field(default=0, ge=0)
    checkpoint_every: int = Field(default=5, ge=1)
    objective: str = Field(default="cvar", description="cvar (mean of the best alpha of the mass) | expectation")
    cvar_alpha: float = Field(default=0.05, gt=0.0, le=1.0)


@asset(group_name=GROUP, code_version=QAOA_VERSION, kinds={"pennylane"})
def qaoa_parameters(context: AssetExecutionContext, config: ParametersConfig, qaoa_circuit: dict) -> Output:
    """(gamma, beta) per layer, optimised on the exact statevector with seeded restarts (best kept),
    checkpointed under ``$HYBRID_DATA_DIR/checkpoints/<lineage>``: a killed run resumes there."""
    circuit = _circuit(qaoa_circuit)
    qaoa_config = QaoaConfig(p=circuit.p, mixer=circuit.mixer, steps=config.steps, step_size=config.step_size,
                             restarts=config.restarts, seed=config.seed, checkpoint_every=config.checkpoint_every,
                             objective=config.objective, cvar_alpha=config.cvar_alpha)
    lineage = lineage_key(circuit, qaoa_config)
    result = optimize_parameters(circuit, qaoa_config, checkpoint_dir=DataLayout.from_env().checkpoints,
                                 lineage=lineage)
    if result.resumed_from_step is not None:
        context.log.info(f"resumed from checkpoint step {result.resumed_from_step} of lineage {lineage}")
    value = {"params": result.params.tolist(), "config": qaoa_config.to_dict(), "lineage": lineage,
             "circuit_hash": qaoa_circuit["circuit_hash"], "objective": result.objective,
             "restart_final_objectives": [h[-1] for h in result.history],
             "telemetry": {"steps_run": result.steps_run, "resumed_from_step": result.resumed_from_step}}
    return artifact_output(value, {"objective": result.objective, "best_restart": result.best_restart,
                                   "lineage": lineage, "params": MetadataValue.json(value["params"]),
                                   "steps_run": result.steps_run, "resumed_from_step": result.resumed_from_step})


class SamplesConfig(Config):
    shots: int = Field(default=1000, ge=1, description="Shots when the backend is exact (else the backend's shots)")
    seed: int = Field(default=0, ge=0, description="Sampler seed of the kept samples")
    repeat_seeds: int = Field(default=3, ge=1, description="Seeds sampled in all (reproducibility gate)")


@asset(group_name=GROUP, code_version="1", pool="quantum", kinds={"pennylane"})
def candidate_samples(context: AssetExecutionContext, config: SamplesConfig, qaoa_circuit: dict, qaoa_parameters: dict,
                      quantum_backend: QuantumBackend, cost_policy: CostPolicy) -> Output:
    """Bitstring counts drawn from the configured device (through the ledger, which admits each draw
    first), for ``repeat_seeds`` seeds; the first seed's counts are the candidates."""
    backend = quantum_backend.backend_config()
    shots = backend.shots or config.shots
    circuit, params = _circuit(qaoa_circuit), np.asarray(qaoa_parameters["params"])
    per_seed, walls = [], []
    with cost_policy.ledger(run_id=context.run_id, asset="candidate_samples", backend=backend) as ledger:
        for seed in range(config.seed, config.seed + config.repeat_seeds):
            started = time.perf_counter()
            per_seed.append(sample_counts(SampleRequest(circuit, params, backend, shots, seed), ledger=ledger))
            walls.append(time.perf_counter() - started)
    value = {"counts": per_seed[0], "counts_per_seed": per_seed, "seeds": list(range(config.seed, config.seed + config.repeat_seeds)),
             "shots": shots, "backend": backend.cache_key(), "circuit_hash": qaoa_circuit["circuit_hash"],
             "parameters_lineage": qaoa_parameters["lineage"],
             "telemetry": {"wall_s_per_run": float(np.mean(walls)), "circuits_executed": ledger.tasks,
                           "shots_executed": ledger.shots, "estimated_cost_usd": ledger.usd}}
    return artifact_output(value, {"shots": shots, "distinct_bitstrings": len(per_seed[0]), "seeds": len(per_seed),
                                   "backend": MetadataValue.json(backend.cache_key()),
                                   "circuits_executed": ledger.tasks, "estimated_cost_usd": ledger.usd})


class HeuristicsConfig(Config):
    seeds: int = Field(default=10, ge=1, description="Simulated-annealing runs (their success rate gives its time to solution)")
    top_m: int = Field(default=10, ge=1, description="Length of the true top list kept for the recall figure")


@asset(group_name=GROUP, code_version="1")
def classical_heuristics(config: HeuristicsConfig, portfolio_problem: dict, candidate_samples: dict) -> Output:
    """On the same instance: exact brute force (n <= 20), simulated annealing with the quantum stage's
    evaluation budget (its shots), and greedy."""
    problem = _problem(portfolio_problem)
    X, values = feasible_solutions(problem)
    heuristics = run_heuristics(problem, evaluations=candidate_samples["shots"], seeds=config.seeds,
                                optimum=float(values[0]))
    results = heuristics["results"]
    value = {
        "optimum": {"bitstring": bits_to_str(X[:1])[0], "objective": float(values[0])},
        "worst_objective": float(values[-1]), "feasible": len(values),
        "true_top": bits_to_str(X[: config.top_m]), "evaluation_budget": candidate_samples["shots"],
        "heuristics": {name: {"bitstring": bits_to_str(r.best)[0], "objective": r.best_value, "seen": list(r.seen)}
                       for name, r in results.items()},
        "success_rate": heuristics["success_rate"],
        "telemetry": {"wall_s_per_run": heuristics["wall_s_per_run"], "time_to_solution_s": heuristics["time_to_solution_s"]},
    }
    rows = {name: {"objective": r.best_value, "approximation_ratio":
                   approximation_ratio(r.best_value, float(values[0]), float(values[-1])),
                   "success_rate": heuristics["success_rate"][name]} for name, r in results.items()}
    return artifact_output(value, {"optimum": float(values[0]), "feasible": len(values),
                                   "heuristics": MetadataValue.md(comparison_table(rows, list(rows["greedy"])))})


class RankingConfig(Config):
    top: int = Field(default=10, ge=1, description="Candidates kept")
    excluded: list[str] = Field(default_factory=list, description="Assets never held (business rule)")
    min_objective: float | None = Field(default=None, description="Drop candidates below this objective")


@asset(group_name=GROUP, code_version="1")
def ranked_candidates(config: RankingConfig, portfolio_problem: dict, candidate_samples: dict) -> Output:
    """The samples repaired to feasibility, filtered by the business rules, scored by the true
    objective, best ``top`` kept, with the lineage: returns file, circuit, device, shots, seed."""
    problem = _problem(portfolio_problem)
    ranked = rank_candidates(problem, candidate_samples["counts"],
                             RankingRules(top=config.top, excluded=tuple(config.excluded),
                                          min_objective=config.min_objective))
    lineage = {"returns_file": portfolio_problem["returns_file"], "returns_hash": portfolio_problem["returns_hash"],
               "circuit_version": QAOA_VERSION, "circuit_hash": candidate_samples["circuit_hash"],
               "parameters_lineage": candidate_samples["parameters_lineage"], "backend": candidate_samples["backend"],
               "shots": candidate_samples["shots"], "seed": candidate_samples["seeds"][0]}
    table = {f"#{i + 1}": {"objective": r["objective"], "assets": ", ".join(r["assets"]), "count": r["count"]}
             for i, r in enumerate(ranked)}
    return artifact_output({"ranked": ranked, "lineage": lineage}, {
        "candidates": len(ranked), "best_objective": ranked[0]["objective"] if ranked else None,
        "ranked": MetadataValue.md(comparison_table(table, ["objective", "assets", "count"])),
        "lineage": MetadataValue.json(lineage)})


class ReportConfig(Config):
    ratio_margin: float = Field(default=0.0, description="Quantum must beat the best heuristic's approximation ratio by more")
    time_margin_s: float = Field(default=0.0, description="... and its time to solution by more than this (s)")
    min_optimum_factor: float = Field(default=2.0, gt=0.0, description="P(optimum) at least this x uniform feasible")
    reproducibility_tolerance: float = Field(default=0.05, ge=0.0, description="Best ratio spread across seeds")


REPORT_CHECKS = {
    "quantum_beats_heuristics_ratio": "Best ranked candidate's approximation ratio beats the best heuristic by the margin",
    "quantum_beats_heuristics_time": "Quantum time to solution (99%) beats the best heuristic's by the margin",
    "optimum_probability": "P(sampling the optimum) is a multiple of uniform feasible sampling",
    "reproducibility": "Best approximation ratio across sampling seeds within tolerance",
    "cost_within_budget": "Spend the ledger recorded for the samples is within the run budget",
}


@asset(group_name=GROUP, code_version="1",
       check_specs=[AssetCheckSpec(name, asset="portfolio_report", description=f"{text} (reported; blocks nothing)")
                    for name, text in REPORT_CHECKS.items()])
def portfolio_report(config: ReportConfig, portfolio_problem: dict, qaoa_circuit: dict, qaoa_parameters: dict,
                     candidate_samples: dict, ranked_candidates: dict, classical_heuristics: dict,
                     cost_policy: CostPolicy):
    """ROI of the quantum stage against the heuristics: approximation ratio, P(optimum), recall of the
    true top-m, novelty, cost per successful run, time to solution; the gates; the objective histogram."""
    problem, heur = _problem(portfolio_problem), classical_heuristics
    best, worst = heur["optimum"]["objective"], heur["worst_objective"]
    probs = exact_probabilities(_circuit(qaoa_circuit), np.asarray(qaoa_parameters["params"]))
    p_opt = float(probs[int(heur["optimum"]["bitstring"], 2)])
    results = {name: SolverResult(name, str_to_bits([h["bitstring"]])[0], h["objective"], 0, tuple(h["seen"]))
               for name, h in heur["heuristics"].items()}
    samples_tel = candidate_samples["telemetry"]
    roi = roi_figures(RoiRequest(problem, ranked_candidates["ranked"], p_opt, results, heur["true_top"],
                                 np.array([best, worst]), samples_tel["estimated_cost_usd"],
                                 samples_tel["wall_s_per_run"], candidate_samples["shots"]), top_m=len(heur["true_top"]))
    roi["p_optimum_uniform_feasible"] = 1.0 / heur["feasible"]
    per_seed = [approximation_ratio(rank_candidates(problem, c, RankingRules(top=1))[0]["objective"], best, worst)
                for c in candidate_samples["counts_per_seed"]]
    gates = [
        quantum_beats_heuristic(roi["quantum_approximation_ratio"], roi["heuristic_approximation_ratio"],
                                margin=config.ratio_margin, measure="approximation ratio",
                                name="quantum_beats_heuristics_ratio"),
        quantum_beats_heuristic(roi["quantum_time_to_solution_s"], heur["telemetry"]["time_to_solution_s"],
                                margin=config.time_margin_s, measure="time to solution (s)", higher_is_better=False,
                                name="quantum_beats_heuristics_time"),
        optimum_probability_gate(p_opt, roi["p_optimum_uniform_feasible"], min_factor=config.min_optimum_factor),
        seed_reproducibility(per_seed, tolerance=config.reproducibility_tolerance),
        cost_gate(samples_tel["estimated_cost_usd"], cost_policy.run_budget_usd),
    ]
    shots_bits = str_to_bits(list(candidate_samples["counts"]))
    shots_bits = np.repeat(shots_bits, list(candidate_samples["counts"].values()), axis=0)
    sampled = problem.objective(shots_bits[problem.feasible(shots_bits)])
    annealed = problem.objective(str_to_bits(heur["heuristics"]["simulated_annealing"]["seen"]))
    histogram = histograms_png({"QAOA samples (feasible)": sampled, "annealing visits": annealed,
                                "all feasible": feasible_solutions(problem)[1]},
                               xlabel="objective (return - lambda risk)", title="Objective of samples vs heuristics")
    value = {"roi": {k: v for k, v in roi.items() if k not in ("cost_usd", "quantum_time_to_solution_s",
                                                                 "cost_per_successful_run_usd")},
             "gates": [g.to_dict() for g in gates], "lineage": ranked_candidates["lineage"],
             "telemetry": {"cost_usd": roi["cost_usd"], "cost_per_successful_run_usd": roi["cost_per_successful_run_usd"],
                           "quantum_time_to_solution_s": roi["quantum_time_to_solution_s"]}}
    yield artifact_output(value, {
        "approximation_ratio": roi["quantum_approximation_ratio"], "p_optimum": p_opt,
        "recall_of_true_top_k": roi["recall_top_m"], "novelty": roi["novelty"],
        "cost_per_successful_run_usd": roi["cost_per_successful_run_usd"],
        "gates": MetadataValue.md("\n".join(f"- {'pass' if g.passed else 'FAIL'} {g.name}: {g.message}" for g in gates)),
        "objective_histogram": MetadataValue.md(markdown_image(histogram, "objective histogram")),
        "roi": MetadataValue.json(value["roi"] | value["telemetry"])})
    for gate in gates:
        # Reported ROI gates: a failure is a finding about the quantum stage, not a broken run.
        yield AssetCheckResult(check_name=gate.name, passed=gate.passed, severity=AssetCheckSeverity.WARN,
                               metadata={"message": gate.message, **{k: MetadataValue.json(v) if isinstance(v, (dict, list))
                                                                     else v for k, v in gate.figures.items()}})


portfolio_job = define_asset_job(
    "portfolio_candidates", selection=AssetSelection.groups(GROUP),
    description="Pattern 3 on the newest returns file: problem -> QAOA -> samples -> ranked candidates, the "
                "heuristics and the ROI report (writes the bundled example into an empty returns/ folder).")
