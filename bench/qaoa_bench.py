"""Pattern 3 on the bundled example (12 assets, choose 4): QAOA quality against depth p and mixer,
and the wall time from the returns file to ranked candidates.

    .venv/bin/python bench/qaoa_bench.py [--depths 1 2 3] [--shots 1000] [--steps 40] [--restarts 2]

For each mixer and p: the exact probability of the optimum (per shot, and as a multiple of uniform
sampling over the feasible set), the expected approximation ratio of one shot (its feasible objective
against the feasible set's best and worst; an infeasible shot counts as the worst), the feasible
probability mass, and the best ranked candidate's approximation ratio after ``--shots`` shots on
default.qubit. Then ingest-to-ranked (read CSV, statistics, QUBO, optimise, sample, rank) at the
default settings (XY, p=2), beside the heuristics with the same evaluation budget. Prints the
figures and writes bench/results/qaoa_bench-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from hybrid_assets.common.examples import write_example_returns
from hybrid_resources.optimization.pipeline import (
    ProblemSettings,
    build_problem,
    qaoa_circuit,
    run_heuristics,
)
from hybrid_resources.optimization.portfolio import (
    approximation_ratio,
    bits_to_str,
    feasible_solutions,
)
from hybrid_resources.optimization.qaoa import (
    QaoaConfig,
    SampleRequest,
    basis_bits,
    exact_probabilities,
    lineage_key,
    optimize_parameters,
    sample_counts,
)
from hybrid_resources.optimization.ranking import RankingRules, rank_candidates
from hybrid_resources.quantum.backends import BackendConfig


def depth_row(problem, feasible, mixer: str, p: int, args, folder: Path) -> dict:
    X, values = feasible
    best, worst = float(values[0]), float(values[-1])
    config = QaoaConfig(p=p, mixer=mixer, steps=args.steps, restarts=args.restarts)
    circuit = qaoa_circuit(problem, mixer=mixer, p=p)
    started = time.perf_counter()
    result = optimize_parameters(circuit, config, checkpoint_dir=folder, lineage=lineage_key(circuit, config))
    optimise_s = time.perf_counter() - started
    probs = exact_probabilities(circuit, result.params)
    B = basis_bits(problem.n)
    feasible_mask = problem.feasible(B)
    ratios = np.where(feasible_mask, (problem.objective(B) - worst) / (best - worst), 0.0)
    p_opt = float(probs[int(bits_to_str(X[:1])[0], 2)])
    counts = sample_counts(SampleRequest(circuit, result.params, BackendConfig(), shots=args.shots, seed=0))
    ranked = rank_candidates(problem, counts, RankingRules(top=10))
    return {"mixer": mixer, "p": p, "p_optimum": p_opt, "p_optimum_vs_uniform_feasible": p_opt * len(values),
            "expected_approximation_ratio": float(probs @ ratios), "feasible_mass": float(probs[feasible_mask].sum()),
            "uniform_feasible_expected_approximation_ratio": float(np.mean((values - worst) / (best - worst))),
            "best_candidate_approximation_ratio": approximation_ratio(ranked[0]["objective"], best, worst),
            "optimise_s": optimise_s, "steps": args.steps * args.restarts}


def ingest_to_ranked(path: Path, args, folder: Path) -> dict:
    started = time.perf_counter()
    problem = build_problem(pl.read_csv(path, try_parse_dates=True), ProblemSettings(k=4))
    config = QaoaConfig(p=2, mixer="xy", steps=args.steps, restarts=args.restarts)
    circuit = qaoa_circuit(problem, mixer="xy", p=2)
    result = optimize_parameters(circuit, config, checkpoint_dir=folder / "ingest", lineage=lineage_key(circuit, config))
    counts = sample_counts(SampleRequest(circuit, result.params, BackendConfig(), shots=args.shots, seed=0))
    ranked = rank_candidates(problem, counts, RankingRules(top=10))
    wall = time.perf_counter() - started
    X, values = feasible_solutions(problem)
    heuristics = run_heuristics(problem, evaluations=args.shots, seeds=10, optimum=float(values[0]))
    return {"ingest_to_ranked_s": wall, "found_optimum": ranked[0]["bitstring"] == bits_to_str(X[:1])[0],
            "heuristic_success_rate": heuristics["success_rate"], "heuristic_wall_s_per_run": heuristics["wall_s_per_run"],
            "greedy_approximation_ratio": approximation_ratio(heuristics["results"]["greedy"].best_value,
                                                              float(values[0]), float(values[-1]))}


def sixteen_assets(args, folder: Path) -> dict:
    """The target size: 16 assets (choose 5) of random factor-model returns, XY p=2, exact simulator."""
    rng = np.random.default_rng(16)
    returns = rng.normal(0.0004, 0.015, (400, 16)) + rng.normal(0.0003, 0.01, (400, 1))
    frame = pl.DataFrame(returns, schema=[f"a{i}" for i in range(16)], orient="row").with_columns(
        pl.date_range(pl.date(2020, 1, 1), pl.date(2021, 2, 3), "1d", eager=True).alias("date"))
    problem = build_problem(frame, ProblemSettings(k=5))
    started = time.perf_counter()
    X, values = feasible_solutions(problem)
    brute_s = time.perf_counter() - started
    row = depth_row(problem, (X, values), "xy", 2, args, folder)
    return {**row, "assets": 16, "k": 5, "feasible": len(values), "brute_force_s": brute_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--mixers", nargs="+", default=["xy", "x"])
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--restarts", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = write_example_returns(Path(folder) / "returns.csv")
        problem = build_problem(pl.read_csv(path, try_parse_dates=True), ProblemSettings(k=4))
        feasible = feasible_solutions(problem)
        rows = []
        for mixer in args.mixers:
            for p in args.depths:
                row = depth_row(problem, feasible, mixer, p, args, Path(folder))
                rows.append(row)
                print(f"{mixer:>2} p={p}: P(opt) {row['p_optimum']:.4f} ({row['p_optimum_vs_uniform_feasible']:.1f}x uniform "
                      f"feasible), E[approx ratio] {row['expected_approximation_ratio']:.3f} (uniform feasible "
                      f"{row['uniform_feasible_expected_approximation_ratio']:.3f}), feasible mass "
                      f"{row['feasible_mass']:.3f}, best ranked ratio {row['best_candidate_approximation_ratio']:.3f}, "
                      f"optimise {row['optimise_s']:.1f} s")
        end_to_end = ingest_to_ranked(path, args, Path(folder))
        scale = sixteen_assets(args, Path(folder))
    print(f"16 assets (choose 5), xy p=2: P(opt) {scale['p_optimum']:.4f} ({scale['p_optimum_vs_uniform_feasible']:.1f}x "
          f"uniform feasible), optimise {scale['optimise_s']:.1f} s, brute force {scale['brute_force_s']:.2f} s")
    print(f"ingest to ranked (xy, p=2, {args.shots} shots): {end_to_end['ingest_to_ranked_s']:.1f} s, optimum found: "
          f"{end_to_end['found_optimum']}; heuristics success {end_to_end['heuristic_success_rate']}")
    results = {"instance": {"assets": problem.n, "k": problem.k, "feasible": len(feasible[1])}, "args": vars(args),
               "depths": rows, "end_to_end": end_to_end, "sixteen_assets": scale}
    out = Path(__file__).parent / "results" / f"qaoa_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
