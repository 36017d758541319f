"""Pattern 3's second problem type, max-cut, as assets: a graph file through the same route as a
returns file (real Dagster instance, real PennyLane sampling, real quarantine), its contract, its
landing sensor and the automation that refreshes the route after a new file."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid_resources.data.contract import ContractViolation
from hybrid_resources.optimization.maxcut import (
    MaxCutProblem,
    qaoa_circuit,
    read_graph_file,
)
from hybrid_resources.optimization.pipeline import run_heuristics
from tests.optimization.test_qaoa import _portfolio_resources

# A 6-ring with one chord of weight 0.5 between opposite nodes (a, d): alternating sides cut every
# ring edge and the chord (a and d are 3 apart), so the maximum cut is 6.5, reached by 010101 and 101010.
RING = "u,v,weight\na,b,1\nb,c,1\nc,d,1\nd,e,1\ne,f,1\nf,a,1\na,d,0.5\n"
SMALL_RUN = {"ops": {"maxcut_parameters": {"config": {"steps": 12, "restarts": 1}},
                     "maxcut_heuristics": {"config": {"seeds": 3}},
                     "maxcut_samples": {"config": {"shots": 300, "repeat_seeds": 2}}}}


def test_brute_force_finds_the_known_max_cut(tmp_path):
    path = tmp_path / "ring.csv"
    path.write_text(RING)
    problem = read_graph_file(path)
    assert problem.labels == ("a", "b", "c", "d", "e", "f") and len(problem.edges) == 7
    X, cuts = problem.solutions()
    assert cuts[0] == 6.5 and cuts[-1] == 0.0 and len(cuts) == 64
    assert {"".join(map(str, x)) for x in X[cuts == 6.5]} == {"010101", "101010"}
    heuristics = run_heuristics(problem, evaluations=200, seeds=3, optimum=6.5)
    assert heuristics["results"]["simulated_annealing"].best_value == 6.5
    assert heuristics["results"]["greedy"].best_value <= 6.5
    with pytest.raises(ValueError, match="mixer 'x'"):
        qaoa_circuit(problem, mixer="xy", p=1)


BAD_GRAPHS = {
    "edge_format": "u,v,weight\na,b,1\nb,c,heavy\n",
    "self_loop": "a,b\nb,b\n",
    "finite_values": "a,b,1\nb,c,inf\n",
    "duplicate_edges": "a,b,1\nb,a,2\n",
    "edge_count": "# nothing but a comment\n",
    "node_count": "".join(f"n{i},n{i + 1}\n" for i in range(21)),
    "value_range": "a,b,1e308\nb,c,1e308\na,c,1e308\n",
}


@pytest.mark.parametrize("check", sorted(BAD_GRAPHS))
def test_graph_contract_names_the_broken_rule(tmp_path, check):
    path = tmp_path / "graph.csv"
    path.write_text(BAD_GRAPHS[check])
    with pytest.raises(ContractViolation) as raised:
        read_graph_file(path)
    assert raised.value.check == check, raised.value.reason


def test_maxcut_assets_from_a_graph_file_to_ranked_cuts_and_a_bad_file_quarantined(data_layout):
    from dagster import DagsterInstance, load_assets_from_modules, materialize

    from hybrid_assets.optimization import maxcut
    from hybrid_resources.data.quarantine import read_sidecar

    graphs = data_layout.root / "graphs"
    graphs.mkdir(parents=True)
    (graphs / "ring.csv").write_text(RING)
    bad = "u,v,weight\na,b,1\nb,c,heavy\n"
    (graphs / "z_bad.csv").write_text(bad)  # newest by name, but it breaks the contract
    with DagsterInstance.ephemeral() as instance:
        result = materialize(load_assets_from_modules([maxcut]), resources=_portfolio_resources(), instance=instance,
                             run_config=SMALL_RUN, raise_on_error=False)
    assert result.success
    # the bad file is in the quarantine, unchanged, with its reason; the good one was used
    assert not (graphs / "z_bad.csv").exists() and (data_layout.quarantine / "z_bad.csv").read_text() == bad
    sidecar = read_sidecar(data_layout.quarantine / "z_bad.csv")
    assert sidecar["check"] == "edge_format" and "'heavy' is not a number" in sidecar["reason"]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["graph_contract"].passed and checks["graph_contract"].severity.value == "WARN"
    assert checks["circuit_ceilings"].passed
    assert result.output_for_node("graph_landing")["file"] == "ring.csv"

    ranked = result.output_for_node("ranked_cuts")
    assert ranked["ranked"][0]["objective"] == 6.5 and ranked["ranked"][0]["bitstring"] in ("010101", "101010")
    assert [r["objective"] for r in ranked["ranked"]] == sorted((r["objective"] for r in ranked["ranked"]), reverse=True)
    assert ranked["lineage"]["graph_file"] == "ring.csv" and ranked["lineage"]["shots"] == 300
    problem = MaxCutProblem.from_dict(result.output_for_node("maxcut_problem")["problem"])
    assert [problem.cut(np.array([[int(c) for c in r["bitstring"]]]))[0] for r in ranked["ranked"]] == \
        [r["objective"] for r in ranked["ranked"]]
    circuit = result.output_for_node("maxcut_circuit")
    assert circuit["circuit"]["mixer"] == "x" and circuit["openqasm"].startswith("OPENQASM 2.0")
    report = result.output_for_node("maxcut_report")
    assert report["roi"]["quantum_approximation_ratio"] == 1.0 and report["roi"]["found_optimum"]
    # both optimal bitstrings count for P(optimum); uniform sampling hits one with probability 2/64
    assert report["roi"]["p_optimum_uniform_feasible"] == pytest.approx(2 / 64)
    assert report["roi"]["p_optimum_per_shot"] > 2 / 64
    assert {g["name"] for g in report["gates"]} == {"quantum_beats_heuristics_ratio", "quantum_beats_heuristics_time",
                                                    "optimum_probability", "reproducibility", "cost_within_budget"}


def test_a_new_graph_file_refreshes_the_route_through_its_sensor_and_automation(data_layout):
    """graph_sensor asks for graph_landing when a file with new content lands; after that run the
    automation conditions request everything downstream in one tick; the same file again (its
    sensor skips it) or a re-run of the landing with the same data refreshes nothing."""
    from dagster import (
        AssetKey,
        DagsterInstance,
        Definitions,
        SensorResult,
        SkipReason,
        build_sensor_context,
        evaluate_automation_conditions,
        materialize,
    )

    from hybrid_assets.common.examples import EXAMPLE_GRAPH_FILE_NAME
    from hybrid_assets.optimization.maxcut import maxcut_assets
    from hybrid_assets.optimization.sensors import graph_sensor

    landing = [a for a in maxcut_assets if a.key == AssetKey("graph_landing")]
    defs = Definitions(assets=maxcut_assets, resources=_portfolio_resources())
    with DagsterInstance.ephemeral() as instance:
        assert isinstance(graph_sensor(build_sensor_context(instance=instance)), SkipReason)  # no folder yet
        first = evaluate_automation_conditions(defs, instance)
        assert first.total_requested == 0  # nothing runs before a graph landed
        # an empty folder receives the bundled example when the landing runs (as in the job)
        assert materialize(landing, resources=_portfolio_resources(), instance=instance).success
        assert (data_layout.root / "graphs" / EXAMPLE_GRAPH_FILE_NAME).exists()
        settle = build_sensor_context(instance=instance)
        assert isinstance(graph_sensor(settle), SkipReason)  # a new file waits one tick to stop growing
        taken = graph_sensor(build_sensor_context(instance=instance, cursor=settle.cursor))
        assert isinstance(taken, SkipReason) and "already taken by graph_landing" in taken.skip_message
        second = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
        downstream = {a.key for a in maxcut_assets} - {AssetKey("graph_landing")}
        assert {key for key in downstream if second.get_num_requested(key)} == downstream

        # the daemon ticks again before the next file lands (a request is "handled" on the tick after it)
        quiet = evaluate_automation_conditions(defs, instance, cursor=second.cursor)
        assert quiet.total_requested == 0

        (data_layout.root / "graphs" / "ring.csv").write_text(RING)
        settle = build_sensor_context(instance=instance)
        assert isinstance(graph_sensor(settle), SkipReason)
        context = build_sensor_context(instance=instance, cursor=settle.cursor)
        result = graph_sensor(context)
        assert isinstance(result, SensorResult) and [r.run_key[:7] for r in result.run_requests] == ["graphs-"]
        assert "ring.csv" in result.run_requests[0].tags["graphs/files"]
        assert isinstance(graph_sensor(build_sensor_context(instance=instance, cursor=result.cursor)), SkipReason)

        assert materialize(landing, resources=_portfolio_resources(), instance=instance).success  # takes ring.csv
        third = evaluate_automation_conditions(defs, instance, cursor=quiet.cursor)
        assert {key for key in downstream if third.get_num_requested(key)} == downstream
        # a landing run that finds the same newest file keeps its data version: nothing downstream is asked for
        quiet = evaluate_automation_conditions(defs, instance, cursor=third.cursor)
        assert materialize(landing, resources=_portfolio_resources(), instance=instance).success
        fourth = evaluate_automation_conditions(defs, instance, cursor=quiet.cursor)
        assert fourth.total_requested == 0
