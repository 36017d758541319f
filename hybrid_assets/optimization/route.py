"""Pattern 3 as assets, for any problem type: a landing file -> problem -> QAOA circuit -> parameters ->
candidate samples -> ranked candidates, beside the classical heuristics on the same instance, with
the ROI report and its gates.

:func:`route_assets` builds one group of these assets from a :class:`ProblemKind`, and
:func:`route_job` its job: the portfolio group (:mod:`hybrid_assets.optimization.portfolio`, job
``portfolio_candidates``) and the max-cut group (:mod:`hybrid_assets.optimization.maxcut`, job
``maxcut_candidates``) are two calls of them. The landing asset runs when its sensor sees a new file
(or in the job); everything after it refreshes by itself when the landing's data changed
(``ON_NEW_DATA``), as the training pipeline does after ``raw_samples``.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetSelection,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
    define_asset_job,
)
from pydantic import Field

from hybrid_assets.common.automation import ON_NEW_DATA
from hybrid_assets.common.circuits import Ceilings, circuit_report
from hybrid_assets.common.outputs import artifact_output
from hybrid_assets.common.reporting import (
    comparison_table,
    histograms_png,
    markdown_image,
)
from hybrid_assets.optimization.gates import (
    cost_gate,
    optimum_probability_gate,
    quantum_beats_heuristic,
    seed_reproducibility,
)
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.contract import ContractViolation, redact_message
from hybrid_resources.data.paths import (
    DataLayout,
    ZoneEntry,
    printable_name,
    zone_entries,
)
from hybrid_resources.data.quarantine import quarantine_and_record, refuse_and_record
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.data.zones import ZoneRefusal, stage_zone_file
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.optimization.pipeline import run_heuristics
from hybrid_resources.optimization.portfolio import (
    Qubo,
    SolverResult,
    approximation_ratio,
    bits_to_str,
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
from hybrid_resources.quantum.backends import QuantumBackend

STAGES = ("landing", "problem", "circuit", "parameters", "samples", "heuristics", "ranked", "report")


@dataclass(frozen=True)
class ProblemKind:
    """One problem type's side of the route.

    ``names``: the asset name of each of :data:`STAGES`; ``folder`` (under ``$HYBRID_DATA_DIR``) and
    ``suffixes``: where its files land; ``load``: a file -> (artifact fields, metadata), or
    ContractViolation; ``example``: (file name, writer) of the bundled example an empty folder
    receives; ``build``: (config of class ``problem_config``, landing artifact) -> (problem,
    metadata); ``problem_type``: the problem's class (``from_dict``); ``circuit``: (problem, mixer=,
    p=, mixer_graph=) -> QaoaCircuit, configured by ``circuit_config``; ``source``: the file's word
    (lineage field ``<source>_file``, check ``<source>_contract``); ``chosen``: what the set bits are;
    ``objective_label``: the objective's axis label; ``job``: (name, description).
    """

    group: str
    names: dict[str, str]
    folder: str
    suffixes: tuple[str, ...]
    load: Callable
    example: tuple[str, Callable[[Path], Path]]
    problem_config: type
    build: Callable
    problem_type: type
    circuit: Callable
    circuit_config: type
    source: str
    chosen: str
    objective_label: str
    job: tuple[str, str]

    def folder_path(self) -> Path:
        return DataLayout.from_env().root / self.folder

    def landing_entries(self) -> list[ZoneEntry]:
        """Every entry of the folder with one of ``suffixes``: regular files and refused ones."""
        return zone_entries(self.folder_path(), suffixes=self.suffixes)

    def ins(self, *stages: str) -> dict[str, AssetIn]:
        return {stage: AssetIn(self.names[stage]) for stage in stages}


def _load_staged(kind: ProblemKind, path: Path, name: str) -> tuple[tuple[dict, dict] | None, ContractViolation | None]:
    """``kind.load`` of a staged copy: its (fields, metadata), or the violation. Any other error a
    parser raises on the file's bytes is a ``parse`` violation: a bad file never crashes the run."""
    try:
        return kind.load(path), None
    except ContractViolation as violation:
        return None, violation
    except Exception as error:  # noqa: BLE001 - whatever a parser raises on hostile bytes
        return None, ContractViolation("parse", f"{name!r} could not be read: {type(error).__name__}: "
                                                f"{redact_message(error)}", {"error_type": type(error).__name__})


def judge_entry(kind: ProblemKind, entry: ZoneEntry, warehouse: Warehouse) -> tuple[dict | None, dict | None]:
    """One entry of ``kind``'s folder: (the accepted file, None) or (None, why it was turned away).

    The file is copied once (``O_NOFOLLOW``) into a private staged copy, which is hashed, loaded
    and, when it breaks the contract, quarantined (the zone's file then leaves the folder). A link
    or anything else that is not a regular file is refused unread (``refuse_and_record``)."""
    layout, name = DataLayout.from_env(), printable_name(entry.name)
    try:
        staged = stage_zone_file(entry.path, layout.staging)
    except ZoneRefusal as refusal:
        with warehouse.session() as session:
            refuse_and_record(session, entry.path, refusal)
        return None, {"file": name, "check": refusal.check, "reason": refusal.reason}
    try:
        loaded, violation = _load_staged(kind, staged.path, name)
        if violation is None:
            fields, metadata = loaded
            return {"file": name, "file_hash": staged.file_hash, "fields": fields, "metadata": metadata}, None
        with warehouse.session() as session:
            quarantine_and_record(session, staged.path, layout.quarantine, violation, original_name=entry.name,
                                  original=entry.path, expected_hash=staged.file_hash)
        return None, {"file": name, "check": violation.check, "reason": violation.reason}
    finally:
        staged.discard()


def _landing_asset(kind: ProblemKind):
    name, check = kind.names["landing"], f"{kind.source}_contract"

    @asset(name=name, group_name=kind.group, code_version="1", pool="warehouse", kinds={"duckdb"},
           check_specs=[AssetCheckSpec(check, asset=name, description=f"Every {kind.source} file meets its contract; "
                                       "bad ones are quarantined (reported; the newest good file carries on)")],
           description=f"The newest {kind.source} file (by name) of $HYBRID_DATA_DIR/{kind.folder}/ that meets its "
                       "contract; every file that breaks it is moved to the quarantine with its reason. An empty "
                       "folder receives the bundled example first.")
    def landing(context: AssetExecutionContext, warehouse: Warehouse):
        folder = kind.folder_path()
        folder.mkdir(parents=True, exist_ok=True)
        entries = kind.landing_entries()
        if not any(not entry.refused for entry in entries):
            example_name, write_example = kind.example
            write_example(folder / example_name)
            context.log.info(f"{kind.folder}/ held no file: wrote the bundled example {example_name}")
            entries = kind.landing_entries()
        good, quarantined = [], []
        for entry in entries:
            accepted, turned_away = judge_entry(kind, entry, warehouse)
            good += [accepted] if accepted else []
            quarantined += [turned_away] if turned_away else []
            if turned_away:
                context.log.warning(f"quarantined {turned_away['file']}: [{turned_away['check']}] {turned_away['reason']}")
        if not good:
            raise Failure(description=f"no {kind.source} file in {folder} meets the contract; quarantined: {quarantined}")
        newest = good[-1]
        value = {"file": newest["file"], "file_hash": newest["file_hash"], **newest["fields"]}
        yield artifact_output(value, {"file": newest["file"], "file_hash": newest["file_hash"], **newest["metadata"],
                                      "quarantined": MetadataValue.json(quarantined)})
        # A quarantined file is reported, not a failure: the newest good file carries on.
        yield AssetCheckResult(check_name=check, passed=not quarantined, severity=AssetCheckSeverity.WARN,
                               metadata={"quarantined": MetadataValue.json(quarantined), "accepted": newest["file"]})

    return landing


def _problem_asset(kind: ProblemKind):
    @asset(name=kind.names["problem"], group_name=kind.group, code_version="1", ins=kind.ins("landing"),
           automation_condition=ON_NEW_DATA, description=kind.build.__doc__)
    def problem(config: kind.problem_config, landing: dict) -> Output:
        built, metadata = kind.build(config, landing)
        value = {"problem": built.to_dict(), "qubo": built.qubo().to_dict(), f"{kind.source}_file": landing["file"],
                 f"{kind.source}_hash": landing["file_hash"], "problem_hash": built.problem_hash()}
        return artifact_output(value, metadata)

    return problem


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


def _circuit_asset(kind: ProblemKind):
    name = kind.names["circuit"]

    @asset(name=name, group_name=kind.group, code_version=QAOA_VERSION, kinds={"pennylane"}, ins=kind.ins("problem"),
           automation_condition=ON_NEW_DATA,
           check_specs=[AssetCheckSpec("circuit_ceilings", asset=name, blocking=True,
                                       description="Width, depth and two-qubit gates after decomposition under the ceilings")])
    def circuit(config: kind.circuit_config, problem: dict, gate_policy: GatePolicy):
        """The QAOA circuit (``qml.qaoa`` layers), its OpenQASM 2.0 bound to the ramp parameters, its size,
        checked against the width ceiling of ``gate_policy`` and QAOA's own depth and two-qubit ceilings."""
        built = kind.circuit(kind.problem_type.from_dict(problem["problem"]), mixer=config.mixer, p=config.p,
                             mixer_graph=config.mixer_graph)
        reference = initial_params(QaoaConfig(p=config.p, mixer=config.mixer), 0)
        resources = circuit_resources(built)
        artifact = {"circuit": built.to_dict(), "circuit_hash": built.circuit_hash(), "version": QAOA_VERSION,
                    "reference_params": reference.tolist(), "openqasm": to_openqasm(built, reference),
                    "resources": resources, "problem_hash": problem["problem_hash"]}
        ceilings = Ceilings(gate_policy.max_width, config.max_depth, config.max_two_qubit_gates)
        metadata, check = circuit_report(name, artifact["openqasm"], resources, ceilings, max_lines=60)
        yield artifact_output(artifact, {
            "circuit_version": QAOA_VERSION, "circuit_hash": artifact["circuit_hash"], "mixer": config.mixer,
            "p": config.p, **metadata,
        })
        yield check

    return circuit


class ParametersConfig(Config):
    steps: int = Field(default=40, ge=1, description="Adam steps per restart")
    step_size: float = Field(default=0.1, gt=0.0)
    restarts: int = Field(default=2, ge=1, description="Seeded restarts (0: linear ramp); the best is kept")
    seed: int = Field(default=0, ge=0)
    checkpoint_every: int = Field(default=5, ge=1)
    objective: str = Field(default="cvar", description="cvar (mean of the best alpha of the mass) | expectation")
    cvar_alpha: float = Field(default=0.05, gt=0.0, le=1.0)


def _parameters_asset(kind: ProblemKind):
    @asset(name=kind.names["parameters"], group_name=kind.group, code_version=QAOA_VERSION, kinds={"pennylane"},
           ins=kind.ins("circuit"), automation_condition=ON_NEW_DATA)
    def parameters(context: AssetExecutionContext, config: ParametersConfig, circuit: dict) -> Output:
        """(gamma, beta) per layer, optimised on the exact statevector with seeded restarts (best kept),
        checkpointed under ``$HYBRID_DATA_DIR/checkpoints/<lineage>``: a killed run resumes there."""
        built = _circuit(circuit)
        qaoa_config = QaoaConfig(p=built.p, mixer=built.mixer, steps=config.steps, step_size=config.step_size,
                                 restarts=config.restarts, seed=config.seed, checkpoint_every=config.checkpoint_every,
                                 objective=config.objective, cvar_alpha=config.cvar_alpha)
        lineage = lineage_key(built, qaoa_config)
        result = optimize_parameters(built, qaoa_config, checkpoint_dir=DataLayout.from_env().checkpoints,
                                     lineage=lineage)
        if result.resumed_from_step is not None:
            context.log.info(f"resumed from checkpoint step {result.resumed_from_step} of lineage {lineage}")
        value = {"params": result.params.tolist(), "config": qaoa_config.to_dict(), "lineage": lineage,
                 "circuit_hash": circuit["circuit_hash"], "objective": result.objective,
                 "restart_final_objectives": [h[-1] for h in result.history],
                 "telemetry": {"steps_run": result.steps_run, "resumed_from_step": result.resumed_from_step}}
        return artifact_output(value, {"objective": result.objective, "best_restart": result.best_restart,
                                       "lineage": lineage, "params": MetadataValue.json(value["params"]),
                                       "steps_run": result.steps_run, "resumed_from_step": result.resumed_from_step})

    return parameters


class SamplesConfig(Config):
    shots: int = Field(default=1000, ge=1, description="Shots when the backend is exact (else the backend's shots)")
    seed: int = Field(default=0, ge=0, description="Sampler seed of the kept samples")
    repeat_seeds: int = Field(default=3, ge=1, description="Seeds sampled in all (reproducibility gate)")


def _samples_asset(kind: ProblemKind):
    name = kind.names["samples"]

    @asset(name=name, group_name=kind.group, code_version="1", pool="quantum", kinds={"pennylane"},
           ins=kind.ins("circuit", "parameters"), automation_condition=ON_NEW_DATA)
    def samples(context: AssetExecutionContext, config: SamplesConfig, circuit: dict, parameters: dict,
                quantum_backend: QuantumBackend, cost_policy: CostPolicy) -> Output:
        """Bitstring counts drawn from the configured device (through the ledger, which admits each draw
        first), for ``repeat_seeds`` seeds; the first seed's counts are the candidates."""
        backend = quantum_backend.backend_config()
        shots = backend.shots or config.shots
        built, params = _circuit(circuit), np.asarray(parameters["params"])
        seeds = list(range(config.seed, config.seed + config.repeat_seeds))
        per_seed, walls = [], []
        with cost_policy.ledger(run_id=context.run_id, asset=name, backend=backend) as ledger:
            for seed in seeds:
                started = time.perf_counter()
                per_seed.append(sample_counts(SampleRequest(built, params, backend, shots, seed), ledger=ledger))
                walls.append(time.perf_counter() - started)
        value = {"counts": per_seed[0], "counts_per_seed": per_seed, "seeds": seeds,
                 "shots": shots, "backend": backend.cache_key(), "circuit_hash": circuit["circuit_hash"],
                 "parameters_lineage": parameters["lineage"],
                 "telemetry": {"wall_s_per_run": float(np.mean(walls)), "circuits_executed": ledger.tasks,
                               "shots_executed": ledger.shots, "estimated_cost_usd": ledger.usd}}
        return artifact_output(value, {"shots": shots, "distinct_bitstrings": len(per_seed[0]), "seeds": len(per_seed),
                                       "backend": MetadataValue.json(backend.cache_key()),
                                       "circuits_executed": ledger.tasks, "estimated_cost_usd": ledger.usd})

    return samples


class HeuristicsConfig(Config):
    seeds: int = Field(default=10, ge=1, description="Simulated-annealing runs (their success rate gives its time to solution)")
    top_m: int = Field(default=10, ge=1, description="Length of the true top list kept for the recall figure")


def _heuristics_asset(kind: ProblemKind):
    @asset(name=kind.names["heuristics"], group_name=kind.group, code_version="2", ins=kind.ins("problem", "samples"),
           automation_condition=ON_NEW_DATA)
    def heuristics(config: HeuristicsConfig, problem: dict, samples: dict) -> Output:
        """On the same instance: exact brute force (n <= 20), simulated annealing with the quantum stage's
        evaluation budget (its shots), and greedy."""
        built = kind.problem_type.from_dict(problem["problem"])
        X, values = built.solutions()
        found = run_heuristics(built, evaluations=samples["shots"], seeds=config.seeds, optimum=float(values[0]))
        results = found["results"]
        value = {
            "optimum": {"bitstring": bits_to_str(X[:1])[0], "objective": float(values[0])},
            "optima": bits_to_str(X[np.isclose(values, values[0], rtol=1e-9, atol=1e-12)]),
            "worst_objective": float(values[-1]), "feasible": len(values),
            "true_top": bits_to_str(X[: config.top_m]), "evaluation_budget": samples["shots"],
            "heuristics": {name: {"bitstring": bits_to_str(r.best)[0], "objective": r.best_value, "seen": list(r.seen)}
                           for name, r in results.items()},
            "success_rate": found["success_rate"],
            "telemetry": {"wall_s_per_run": found["wall_s_per_run"], "time_to_solution_s": found["time_to_solution_s"]},
        }
        rows = {name: {"objective": r.best_value, "approximation_ratio":
                       approximation_ratio(r.best_value, float(values[0]), float(values[-1])),
                       "success_rate": found["success_rate"][name]} for name, r in results.items()}
        return artifact_output(value, {"optimum": float(values[0]), "optima": len(value["optima"]),
                                       "feasible": len(values),
                                       "heuristics": MetadataValue.md(comparison_table(rows, list(rows["greedy"])))})

    return heuristics


class RankingConfig(Config):
    top: int = Field(default=10, ge=1, description="Candidates kept")
    excluded: list[str] = Field(default_factory=list, description="Bits kept at 0 (business rule): assets never held, "
                                                                  "nodes kept on side 0")
    min_objective: float | None = Field(default=None, description="Drop candidates below this objective")


def _ranked_asset(kind: ProblemKind):
    @asset(name=kind.names["ranked"], group_name=kind.group, code_version="2", ins=kind.ins("problem", "samples"),
           automation_condition=ON_NEW_DATA)
    def ranked(config: RankingConfig, problem: dict, samples: dict) -> Output:
        """The samples repaired to feasibility, filtered by the business rules, scored by the true
        objective, best ``top`` kept, with the lineage: landing file, circuit, device, shots, seed."""
        built = kind.problem_type.from_dict(problem["problem"])
        rows = rank_candidates(built, samples["counts"], RankingRules(top=config.top, excluded=tuple(config.excluded),
                                                                      min_objective=config.min_objective))
        source = f"{kind.source}_file"
        lineage = {source: problem[source], f"{kind.source}_hash": problem[f"{kind.source}_hash"],
                   "circuit_version": QAOA_VERSION, "circuit_hash": samples["circuit_hash"],
                   "parameters_lineage": samples["parameters_lineage"], "backend": samples["backend"],
                   "shots": samples["shots"], "seed": samples["seeds"][0]}
        table = {f"#{i + 1}": {"objective": r["objective"], kind.chosen: ", ".join(r["chosen"]), "count": r["count"]}
                 for i, r in enumerate(rows)}
        return artifact_output({"ranked": rows, "lineage": lineage}, {
            "candidates": len(rows), "best_objective": rows[0]["objective"] if rows else None,
            "ranked": MetadataValue.md(comparison_table(table, ["objective", kind.chosen, "count"])),
            "lineage": MetadataValue.json(lineage)})

    return ranked


class ReportConfig(Config):
    ratio_margin: float = Field(default=0.0, description="Quantum must beat the best heuristic's approximation ratio by more")
    time_margin_s: float = Field(default=0.0, description="... and its time to solution by more than this (s)")
    min_optimum_factor: float = Field(default=2.0, gt=0.0, description="P(optimum) at least this x uniform feasible")
    reproducibility_tolerance: float = Field(default=0.05, ge=0.0, description="Best ratio spread across seeds")


REPORT_CHECKS = {
    "quantum_beats_heuristics_ratio": "Best ranked candidate's approximation ratio beats the best heuristic by the margin",
    "quantum_beats_heuristics_time": "Quantum time to solution (99%) beats the best heuristic's by the margin",
    "optimum_probability": "P(sampling an optimum) is a multiple of uniform feasible sampling",
    "reproducibility": "Best approximation ratio across sampling seeds within tolerance",
    "cost_within_budget": "Spend the ledger recorded for the samples is within the run budget",
}


def _roi(built, inputs: dict) -> dict:
    """The ROI figures of the report's inputs (``circuit``, ``parameters``, ``samples``, ``ranked``,
    ``heuristics``): every optimal bitstring counts for P(optimum)."""
    heur, samples = inputs["heuristics"], inputs["samples"]
    probs = exact_probabilities(_circuit(inputs["circuit"]), np.asarray(inputs["parameters"]["params"]))
    results = {name: SolverResult(name, str_to_bits([h["bitstring"]])[0], h["objective"], 0, tuple(h["seen"]))
               for name, h in heur["heuristics"].items()}
    telemetry = samples["telemetry"]
    return roi_figures(RoiRequest(
        built, inputs["ranked"]["ranked"], results, heur["true_top"], (heur["optimum"]["objective"], heur["worst_objective"]),
        p_optimum=float(sum(probs[int(b, 2)] for b in heur["optima"])), p_uniform=len(heur["optima"]) / heur["feasible"],
        cost_usd=telemetry["estimated_cost_usd"], quantum_wall_s=telemetry["wall_s_per_run"], shots=samples["shots"]),
        top_m=len(heur["true_top"]))


def _gates(config: ReportConfig, built, roi: dict, inputs: dict, budget_usd: float) -> list:
    heur, samples = inputs["heuristics"], inputs["samples"]
    best, worst = heur["optimum"]["objective"], heur["worst_objective"]
    per_seed = [approximation_ratio(rank_candidates(built, c, RankingRules(top=1))[0]["objective"], best, worst)
                for c in samples["counts_per_seed"]]
    return [
        quantum_beats_heuristic(roi["quantum_approximation_ratio"], roi["heuristic_approximation_ratio"],
                                margin=config.ratio_margin, measure="approximation ratio",
                                name="quantum_beats_heuristics_ratio"),
        quantum_beats_heuristic(roi["quantum_time_to_solution_s"], heur["telemetry"]["time_to_solution_s"],
                                margin=config.time_margin_s, measure="time to solution (s)", higher_is_better=False,
                                name="quantum_beats_heuristics_time"),
        optimum_probability_gate(roi["p_optimum_per_shot"], roi["p_optimum_uniform_feasible"],
                                 min_factor=config.min_optimum_factor),
        seed_reproducibility(per_seed, tolerance=config.reproducibility_tolerance),
        cost_gate(samples["telemetry"]["estimated_cost_usd"], budget_usd),
    ]


def _histogram(kind: ProblemKind, built, inputs: dict) -> bytes:
    """The objective of the feasible samples (one per shot), the annealer's visits and every feasible bitstring."""
    counts = inputs["samples"]["counts"]
    shots = np.repeat(str_to_bits(list(counts)), list(counts.values()), axis=0)
    annealed = built.objective(str_to_bits(inputs["heuristics"]["heuristics"]["simulated_annealing"]["seen"]))
    return histograms_png({"QAOA samples (feasible)": built.objective(shots[built.feasible(shots)]),
                           "annealing visits": annealed, "all feasible": built.solutions()[1]},
                          xlabel=kind.objective_label, title="Objective of samples vs heuristics")


def _report_asset(kind: ProblemKind):
    name = kind.names["report"]
    upstream = ("problem", "circuit", "parameters", "samples", "ranked", "heuristics")

    @asset(name=name, group_name=kind.group, code_version="2", ins=kind.ins(*upstream),
           automation_condition=ON_NEW_DATA,
           check_specs=[AssetCheckSpec(check, asset=name, description=f"{text} (reported; blocks nothing)")
                        for check, text in REPORT_CHECKS.items()])
    def report(config: ReportConfig, problem: dict, circuit: dict, parameters: dict, samples: dict, ranked: dict,
               heuristics: dict, cost_policy: CostPolicy):
        """ROI of the quantum stage against the heuristics: approximation ratio, P(optimum), recall of the
        true top-m, novelty, cost per successful run, time to solution; the gates; the objective histogram."""
        inputs = {"circuit": circuit, "parameters": parameters, "samples": samples, "ranked": ranked,
                  "heuristics": heuristics}
        built = kind.problem_type.from_dict(problem["problem"])
        roi = _roi(built, inputs)
        gates = _gates(config, built, roi, inputs, cost_policy.run_budget_usd)
        histogram = _histogram(kind, built, inputs)
        telemetry_keys = ("cost_usd", "quantum_time_to_solution_s", "cost_per_successful_run_usd")
        value = {"roi": {k: v for k, v in roi.items() if k not in telemetry_keys},
                 "gates": [g.to_dict() for g in gates], "lineage": ranked["lineage"],
                 "telemetry": {k: roi[k] for k in telemetry_keys}}
        yield artifact_output(value, {
            "approximation_ratio": roi["quantum_approximation_ratio"], "p_optimum": roi["p_optimum_per_shot"],
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

    return report


def route_assets(kind: ProblemKind) -> list:
    """The group ``kind.group``: one asset per stage of :data:`STAGES`."""
    builders = (_landing_asset, _problem_asset, _circuit_asset, _parameters_asset, _samples_asset,
                _heuristics_asset, _ranked_asset, _report_asset)
    return [build(kind) for build in builders]


def route_job(kind: ProblemKind):
    name, description = kind.job
    return define_asset_job(name, selection=AssetSelection.groups(kind.group), description=description)
