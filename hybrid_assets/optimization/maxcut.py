"""Pattern 3 on max-cut, the second problem type through the same route (:mod:`hybrid_assets.optimization.route`):
a graph file (an edge list ``u,v,weight``) -> max-cut problem -> QAOA circuit (X mixer) -> parameters ->
samples -> ranked cuts, beside brute force, annealing and greedy, with the same ROI report and gates.
Launch it with the job **maxcut_candidates** (the bundled example graph is written into an empty
``$HYBRID_DATA_DIR/graphs/``); ``graph_sensor`` ingests each new graph file."""

from pathlib import Path

from dagster import Config
from pydantic import Field

from hybrid_assets.common.examples import EXAMPLE_GRAPH_FILE_NAME, write_example_graph
from hybrid_assets.optimization.route import (
    CircuitConfig,
    ProblemKind,
    route_assets,
    route_job,
)
from hybrid_resources.optimization.maxcut import (
    GRAPH_SUFFIXES,
    MaxCutProblem,
    qaoa_circuit,
    read_graph_file,
)

GROUP = "maxcut"


def load_graph(path: Path) -> tuple[dict, dict]:
    """A graph file that meets the graph contract, as the landing artifact's fields and metadata."""
    problem = read_graph_file(path)
    return problem.to_dict(), {"nodes": problem.n, "edges": len(problem.edges),
                               "total_weight": float(sum(w for _, _, w in problem.edges))}


class GraphConfig(Config):
    """Max-cut takes no settings: the graph is the whole problem."""


def build_maxcut(config: GraphConfig, graph: dict) -> tuple[MaxCutProblem, dict]:
    """The max-cut of the graph file (maximise the weight of the edges between the two sides) and its
    QUBO (-cut); every bitstring is a cut."""
    problem = MaxCutProblem.from_dict(graph)
    return problem, {"nodes": problem.n, "edges": len(problem.edges)}


class MaxCutCircuitConfig(CircuitConfig):
    mixer: str = Field(default="x", description="x: max-cut has no cardinality for the xy mixer to keep")


MAXCUT = ProblemKind(
    group=GROUP,
    names={"landing": "graph_landing", "problem": "maxcut_problem", "circuit": "maxcut_circuit",
           "parameters": "maxcut_parameters", "samples": "maxcut_samples", "heuristics": "maxcut_heuristics",
           "ranked": "ranked_cuts", "report": "maxcut_report"},
    folder="graphs", suffixes=GRAPH_SUFFIXES, load=load_graph,
    example=(EXAMPLE_GRAPH_FILE_NAME, write_example_graph),
    problem_config=GraphConfig, build=build_maxcut, problem_type=MaxCutProblem,
    circuit=qaoa_circuit, circuit_config=MaxCutCircuitConfig,
    source="graph", chosen="side 1", objective_label="cut weight",
    job=("maxcut_candidates",
         "Pattern 3 on the newest graph file: max-cut -> QAOA -> samples -> ranked cuts, the heuristics and "
         "the ROI report (writes the bundled example graph into an empty graphs/ folder)."),
)

maxcut_assets = route_assets(MAXCUT)
maxcut_job = route_job(MAXCUT)
