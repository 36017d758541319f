"""Pattern 3 on portfolios: a returns file -> portfolio problem -> QAOA circuit -> parameters ->
candidate samples -> ranked candidates, beside the classical heuristics on the same instance, with
the ROI report and its gates (the route of :mod:`hybrid_assets.optimization.route`). Launch it with
the job **portfolio_candidates** (the bundled example is written into an empty
``$HYBRID_DATA_DIR/returns/``); ``returns_sensor`` ingests each new returns file."""

from pathlib import Path

import numpy as np
from dagster import Config, MetadataValue
from pydantic import Field

from hybrid_assets.common.examples import (
    EXAMPLE_RETURNS_FILE_NAME,
    write_example_returns,
)
from hybrid_assets.common.reporting import comparison_table
from hybrid_assets.optimization.route import (
    CircuitConfig,
    ProblemKind,
    route_assets,
    route_job,
)
from hybrid_resources.optimization.pipeline import (
    ProblemSettings,
    build_problem,
    qaoa_circuit,
)
from hybrid_resources.optimization.portfolio import PortfolioProblem
from hybrid_resources.optimization.returns_contract import (
    RETURNS_SUFFIXES,
    load_returns_file,
)

GROUP = "portfolio"


def load_returns(path: Path) -> tuple[dict, dict]:
    """A returns file that meets the returns contract, as the landing artifact's fields and metadata."""
    frame = load_returns_file(path)
    assets = [c for c in frame.columns if c != "date"]
    dates = [str(d) for d in frame["date"]]
    fields = {"assets": assets, "dates": dates, "returns": frame.select(assets).to_numpy().round(10).tolist()}
    return fields, {"assets": len(assets), "periods": frame.height, "first_date": dates[0], "last_date": dates[-1]}


class ProblemConfig(Config):
    k: int = Field(default=4, ge=1, description="Assets to choose")
    risk_aversion: float = Field(default=1.0, ge=0.0, description="lambda in mu.x - lambda x^T Sigma x")
    sector_cap: int = Field(default=0, ge=0, description="At most this many chosen assets per sector (0 = no cap)")
    sectors: dict[str, str] = Field(default_factory=dict, description="asset -> sector (unnamed assets: own sector)")


def _frame(returns: dict):
    import polars as pl

    return pl.DataFrame(np.asarray(returns["returns"]), schema=returns["assets"], orient="row").with_columns(
        pl.Series("date", returns["dates"]).str.to_date()).select("date", *returns["assets"])


def build_portfolio(config: ProblemConfig, returns: dict) -> tuple[PortfolioProblem, dict]:
    """Annualised mean returns and covariance of the returns file, the cardinality-constrained
    problem (choose k, return - lambda risk, optional sector cap) and its QUBO."""
    settings = ProblemSettings(k=config.k, risk_aversion=config.risk_aversion, sectors=dict(config.sectors),
                               sector_cap=config.sector_cap)
    problem = build_problem(_frame(returns), settings)
    rows = {a: {"mean_return": float(m), "volatility": float(np.sqrt(problem.cov[i, i]))}
            for i, (a, m) in enumerate(zip(problem.assets, problem.mu))}
    return problem, {"assets": problem.n, "k": problem.k, "risk_aversion": problem.risk_aversion,
                     "qubo_penalty": problem.default_penalty(), "sector_cap": problem.sector_cap,
                     "statistics": MetadataValue.md(comparison_table(rows, ["mean_return", "volatility"]))}


PORTFOLIO = ProblemKind(
    group=GROUP,
    names={"landing": "returns_landing", "problem": "portfolio_problem", "circuit": "qaoa_circuit",
           "parameters": "qaoa_parameters", "samples": "candidate_samples", "heuristics": "classical_heuristics",
           "ranked": "ranked_candidates", "report": "portfolio_report"},
    folder="returns", suffixes=RETURNS_SUFFIXES, load=load_returns,
    example=(EXAMPLE_RETURNS_FILE_NAME, write_example_returns),
    problem_config=ProblemConfig, build=build_portfolio, problem_type=PortfolioProblem,
    circuit=qaoa_circuit, circuit_config=CircuitConfig,
    source="returns", chosen="assets", objective_label="objective (return - lambda risk)",
    job=("portfolio_candidates",
         "Pattern 3 on the newest returns file: problem -> QAOA -> samples -> ranked candidates, the "
         "heuristics and the ROI report (writes the bundled example into an empty returns/ folder)."),
)

portfolio_assets = route_assets(PORTFOLIO)
portfolio_job = route_job(PORTFOLIO)
