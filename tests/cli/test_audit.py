"""Lineage review: `hybrid-audit` against a persistent instance, new data, staleness, secrets."""

from __future__ import annotations

import json

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, map_asset_specs

from tests.bad_files import write_good_csv

CANARY = "canary-SECRET-7f3a9c"
MODEL_CHAIN = {"quantum_svm", "quantum_kernel_train", "reduced_embeddings", "circuit_artifact", "features", "raw_samples"}


def with_canary(project):
    """``project``'s home, data and itself, with a credential the quantum backend would read from
    the environment in its environment: it must never leak."""
    project.env.update({"AWS_SECRET_ACCESS_KEY": CANARY, "HYBRID_QUANTUM_API_TOKEN": CANARY})
    return project.home, project.data, project


@pytest.fixture
def workspace(local_project):
    return with_canary(local_project)


@pytest.fixture
def trained_workspace(trained_project):
    """:func:`workspace` holding a copy of the session's trained project, for a test that starts
    from trained models rather than from a demo of its own."""
    return with_canary(trained_project)


def command(name: str, project, *args: str) -> str:
    completed = project.command(name, *args)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


def audit(project, *args: str) -> dict:
    return json.loads(command("hybrid-audit", project, "--format", "json", *args))


def versions(trail: dict) -> dict[str, str]:
    return {node["asset"] + (f"[{node['partition']}]" if node["partition"] else ""): node["data_version"]
            for node in trail["chain"]}


def test_audit_trail_follows_the_event_log_across_new_data(workspace, signers):
    home, data, project = workspace
    write_good_csv(data / "landing", n_rows=50, name="first.csv")
    command("hybrid-demo", project)
    first = audit(project)
    assert first["target"]["asset"] == "quantum_svm"
    assert {node["asset"] for node in first["chain"]} >= MODEL_CHAIN
    (landed,) = first["landing_files"]
    assert landed["file_name"] == "first.csv" and len(landed["file_hash"]) == 64 and landed["status"] == "ingested"
    kernel = next(node for node in first["chain"] if node["asset"] == "quantum_kernel_train")
    assert kernel["metadata"]["backend"]["device_name"] == "default.qubit"
    assert {"seed", "shots_executed", "circuits_executed", "wall_time_s", "estimated_cost_usd"} <= set(kernel["metadata"])
    assert "pennylane" in kernel["metadata"]["library_versions"]
    # Every node of the trail, the landing file and the features included, records its library versions.
    assert all("numpy" in node["metadata"]["library_versions"] for node in first["chain"])
    assert [check["check"] for check in kernel["checks"]] == ["kernel_well_formed"]
    circuit = next(node for node in first["chain"] if node["asset"] == "circuit_artifact")
    assert circuit["code_version"] == "angle@1.0.0,iqp@1.0.0,projected@1.0.0"
    markdown = command("hybrid-audit", project)
    assert markdown.startswith("# Audit trail: quantum_svm") and "first.csv" in markdown

    # The registry's record of the trail's model, from the CLI. The model failed its promotion gates
    # (the target is quantum_svm: no promoted_model), so a signed approval of it is refused, and so
    # is a signed promotion request; nothing is recorded but its registration.
    model = f"quantum_svm@{versions(first)['quantum_svm'][:12]}"
    assert [(m["version_id"], m["status"]) for m in first["registry"]["models"]] == [(model, "candidate")]
    project.env["HYBRID_APPROVERS_FILE"] = str(signers.file)
    approval = signers.folder / "approval.json"
    command("hybrid-registry", project, *signers.sign_args("approve", f"promote:{model}", by="alice",
                                                          reason="risk review 42", out=approval))
    refused = project.command("hybrid-registry", "approve", "--statement", str(approval))
    assert refused.returncode == 2 and "failed its promotion gates (quantum_beats_classical)" in refused.stderr
    request = signers.folder / "promote.json"
    command("hybrid-registry", project, *signers.sign_args("promote", model, by="bob", out=request))
    refused = project.command("hybrid-registry", "promote", "--statement", str(request))
    assert refused.returncode == 2 and "failed its promotion gates (quantum_beats_classical)" in refused.stderr
    registry = audit(project)["registry"]
    assert registry["approvals"] == []
    assert [(e["action"], e["to_status"]) for e in registry["events"]] == [("register", "candidate")]

    # Re-materializing with the same data, code and seeds reproduces every data version.
    command("hybrid-demo", project)
    assert versions(audit(project)) == versions(first)

    write_good_csv(data / "landing", n_rows=30, id_offset=1000, seed=3, name="second.csv")
    command("hybrid-demo", project)
    second = audit(project)
    assert {f["file_name"] for f in second["landing_files"]} == {"first.csv", "second.csv"}
    assert versions(second)["quantum_svm"] != versions(first)["quantum_svm"]
    assert versions(second)["features"] != versions(first)["features"]
    # The first model's report, asked for by its run id, still describes the first model.
    again = audit(project, "quantum_svm", "--run-id", first["target"]["run_id"])
    assert versions(again) == versions(first)
    assert [f["file_name"] for f in again["landing_files"]] == ["first.csv"]

    # The first run's model is still stored after a newer one (versioned artifacts): its arrays and
    # its inputs load, and rescoring them reproduces the holdout metrics it recorded, exactly.
    rescored = audit(project, "quantum_svm", "--run-id", first["target"]["run_id"], "--rescore")
    assert rescored["data_version"] == versions(first)["quantum_svm"]
    first_node = next(node for node in first["chain"] if node["asset"] == "quantum_svm")
    assert rescored["recorded"] == {name.split("/")[1]: value for name, value in first_node["metadata"].items()
                                    if name.startswith("holdout/")}
    assert rescored["rescored"] == rescored["recorded"] and rescored["reproduced"] is True
    assert "Reproduced: yes" in command("hybrid-audit", project, "classical_baseline", "--run-id",
                                        first["target"]["run_id"], "--rescore")

    # The canary credential appears nowhere: event log storage, artifacts, warehouse, reports.
    for root in (home, data):
        for path in root.rglob("*"):
            if path.is_file():
                assert CANARY.encode() not in path.read_bytes(), path
    assert CANARY not in markdown and CANARY not in json.dumps(second)


def test_an_evaluation_reports_the_versions_it_was_given_not_the_latest(trained_workspace, monkeypatch):
    from dagster import materialize

    from hybrid_assets.definitions import all_assets
    from hybrid_resources.data.artifacts import ArtifactStore, info_of
    from tests.conftest import RESOURCES

    home, data, project = trained_workspace  # run A: C = 1.0 (the default)
    monkeypatch.setenv("HYBRID_DATA_DIR", str(data))
    store = ArtifactStore(data / "artifacts")
    with DagsterInstance.from_config(str(home)) as instance:
        def evaluate(c: float) -> str:
            config = {"ops": {"quantum_svm": {"config": {"C": c}}}}
            selection = ["quantum_svm", "model_evaluation"] if c != 0.25 else ["quantum_svm"]
            result = materialize(all_assets, selection=selection, instance=instance, resources=RESOURCES,
                                 run_config=config)
            assert result.success
            return result.run_id

        run_b = evaluate(0.5)       # run B: quantum_svm with C = 0.5, and an evaluation of it
        evaluate(0.25)              # run C: a newer quantum_svm (C = 0.25), nothing evaluated
    trail = audit(project, "model_evaluation", "--run-id", run_b)
    evaluation = trail["chain"][0]
    assert evaluation["metadata"]["quantum_svm/C"] == 0.5
    given = evaluation["inputs"]["quantum_svm"]["data_version"]
    assert info_of(store.read(["quantum_svm"], given))["C"] == 0.5  # the version it read, still stored
    assert info_of(store.read(["quantum_svm"]))["C"] == 0.25  # though a newer one exists
    report = store.read(["model_evaluation"], evaluation["data_version"])
    assert report["models"]["quantum_svm"]["C"] == 0.5 and report["inputs"]["quantum_svm"] == given
    # The trail lists every materialization whose data reached the evaluation, the VQC included.
    assert {"quantum_svm", "classical_baseline", "vqc_model", "quantum_kernel_train", "quantum_kernel_test",
            "reduced_embeddings", "circuit_artifact", "features"} <= {node["asset"] for node in trail["chain"]}


def test_unknown_asset_or_run_gives_an_actionable_error(workspace):
    home, data, project = workspace
    completed = project.command("hybrid-audit")
    assert completed.returncode == 2 and "make demo" in completed.stderr


def test_a_circuit_version_bump_marks_downstream_stale(trained_workspace, monkeypatch):
    import dataclasses

    from dagster import materialize
    from dagster._core.definitions.data_version import (
        CachingStaleStatusResolver,
        StaleStatus,
    )
    from dagster._core.loader import LoadingContextForTest

    from hybrid_assets.definitions import defs
    from hybrid_resources.quantum.feature_maps import FEATURE_MAPS

    home, data, project = trained_workspace
    with DagsterInstance.from_config(str(home)) as instance:
        def status(definitions: Definitions, asset: str) -> StaleStatus:
            resolver = CachingStaleStatusResolver(instance, definitions.get_repository_def().asset_graph,
                                                  LoadingContextForTest(instance))
            return resolver.get_status(AssetKey(asset))

        assert status(defs, "quantum_kernel_train") == StaleStatus.FRESH
        # What a release of iqp 1.1.0 changes: the registry's version, hence the circuit's code version.
        monkeypatch.setitem(FEATURE_MAPS, "iqp", dataclasses.replace(FEATURE_MAPS["iqp"], version="1.1.0"))
        bumped_assets = map_asset_specs(
            lambda spec: spec.replace_attributes(code_version="angle@1.0.0,iqp@1.1.0,projected@1.0.0")
            if spec.key == AssetKey("circuit_artifact") else spec,
            list(defs.assets),
        )
        bumped = Definitions(assets=bumped_assets, resources=defs.resources)
        assert status(bumped, "circuit_artifact") == StaleStatus.STALE
        resolver = CachingStaleStatusResolver(instance, bumped.get_repository_def().asset_graph,
                                              LoadingContextForTest(instance))
        assert [cause.reason for cause in resolver.get_stale_causes(AssetKey("circuit_artifact"))] == [
            "has a new code version"]

        # Re-materializing the circuit records the new spec (its version is hashed into the data
        # version): the kernels built on the old circuit are now stale (Dagster 1.13 reports the
        # direct dependents; their refresh then carries it on). The classical side is untouched.
        monkeypatch.setenv("HYBRID_DATA_DIR", str(data))
        result = materialize(bumped_assets, selection=[AssetKey("circuit_artifact")], instance=instance,
                             resources=defs.resources)
        assert result.success
        assert status(bumped, "circuit_artifact") == StaleStatus.FRESH
        for downstream in ("quantum_kernel_train", "quantum_kernel_test"):
            assert status(bumped, downstream) == StaleStatus.STALE, downstream
        assert status(bumped, "classical_baseline") == StaleStatus.FRESH
