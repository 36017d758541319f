"""From verdict to production, on a real instance: the registry, scoring files cheap first, quotas,
shadow mode with labels arriving later, approvals and rollbacks."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from dagster import materialize

from hybrid_assets.common.partitions import (
    labels_files_partitions,
    scoring_files_partitions,
)
from hybrid_assets.definitions import all_assets
from hybrid_assets.serving.jobs import registry
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.artifacts import ArtifactStore
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import QuantumBackend
from tests.bad_files import good_frame, write_good_csv
from tests.conftest import RESOURCES, ingest, refresh
from tests.devices import DeviceBoundary


def registry_state() -> dict[str, str]:
    with Warehouse().session(read_only=True) as session:
        return {m["version_id"]: m["status"] for m in session.models()}


def version_of(asset: str) -> str:
    (version,) = [v for v in registry_state() if v.startswith(asset)]
    return version


def land_scoring(layout, name: str, *, n_rows: int = 20, seed: int = 9, id_offset: int = 5000, frame=None) -> str:
    frame = good_frame(n_rows=n_rows, seed=seed, id_offset=id_offset).drop("label") if frame is None else frame
    frame.write_csv(layout.scoring / name)
    return name


def score(instance, name: str, **resources):
    """Ingest one scoring file and score it, as the scoring sensor's run does."""
    instance.add_dynamic_partitions(scoring_files_partitions.name, [name])
    result = materialize(all_assets, selection=["scoring_batches", "predictions"], partition_key=name,
                         instance=instance, resources={**RESOURCES, **resources}, raise_on_error=False)
    return result


def predictions_of(source: str) -> pl.DataFrame:
    with Warehouse().session(read_only=True) as session:
        return session.predictions().filter(pl.col("source") == source)


def test_the_first_classical_model_serves_with_no_click_and_rescoring_writes_no_duplicates(trained, instance):
    assert registry_state()[version_of("classical_baseline")] == "champion"
    assert registry_state()[version_of("quantum_svm")] == "shadow"  # its promotion gates passed
    name = land_scoring(trained, "batch.csv")
    assert score(instance, name).success
    scored = predictions_of(name)
    champion = scored.filter(pl.col("role") == "champion")
    assert champion.height == 20 and set(champion["model_version"]) == {version_of("classical_baseline")}
    assert set(champion["decision"]) <= {"0", "1"} and champion["decided_by"].to_list() == champion["model_version"].to_list()
    assert (champion["score"] > 0).to_list() == (champion["decision"] == "1").to_list()
    assert champion["latency_s"].min() > 0 and champion["flagged"].is_null().all()
    export = pl.read_parquet(trained.predictions / f"{name}.parquet")
    assert export.height == scored.height and set(export["role"]) == {"champion", "shadow"}

    assert score(instance, name).success  # the same file, the same model: replaced, not added
    again = predictions_of(name)
    assert again.height == scored.height and again.select("sample_id", "role").is_duplicated().sum() == 0
    assert again.sort("sample_id", "role")["score"].to_list() == scored.sort("sample_id", "role")["score"].to_list()


@pytest.mark.parametrize("case, check", [
    ("labelled", "unexpected_label"),
    ("no_ids", "required_columns"),
    ("other_columns", "schema_mismatch"),
])
def test_bad_scoring_files_are_quarantined_with_their_reason(trained, instance, case, check):
    frame = good_frame(n_rows=10, seed=1, id_offset=7000)
    frame = {"labelled": frame, "no_ids": frame.drop("label", "sample_id"),
             "other_columns": frame.drop("label").rename({"f0": "g0"})}[case]
    name = land_scoring(trained, f"{case}.csv", frame=frame)
    result = score(instance, name)
    assert result.success
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "scoring_contract"]
    assert not evaluation.passed and evaluation.metadata["failed_check"].value == check
    sidecar = json.loads((trained.quarantine / f"{name}.reason.json").read_text())
    assert sidecar["check"] == check and (trained.quarantine / name).exists() and not (trained.scoring / name).exists()
    assert predictions_of(name).height == 0
    again = score(instance, name)  # re-run with the file gone from scoring/: the recorded outcome stands
    (evaluation,) = [e for e in again.get_asset_check_evaluations() if e.check_name == "scoring_contract"]
    assert again.success and not evaluation.passed and predictions_of(name).height == 0


def test_a_promotion_needs_an_approval_and_says_how_to_get_one(trained, instance, signers, capsys):
    quantum = version_of("quantum_svm")
    request = signers.sign("promote", quantum, by="bob", reason="better on shadow traffic")
    assert signers.hand_in("promote", request) == 2
    assert f"hybrid-registry sign approve promote:{quantum} --key" in capsys.readouterr().err
    refused = registry.execute_in_process(instance=instance, resources=RESOURCES, raise_on_error=False,
                                          run_config={"ops": {"registry_action": {"config": {
                                              "action": "promote", "statement": request.read_text()}}}})
    assert not refused.success and registry_state()[quantum] == "shadow"
    signers.approve_and_promote(quantum)
    assert registry_state()[quantum] == "champion" and registry_state()[version_of("classical_baseline")] == "candidate"
    with Warehouse().session(read_only=True) as session:
        (approval,) = session.approvals(subject=f"promote:{quantum}")
        events = [(e["version_id"], e["action"], e["actor"]) for e in session.registry_events()]
    assert approval["actor"] == "alice" and approval["used_by"] == f"promote:{quantum}"
    assert (quantum, "promote", "bob") in events
    assert signers.hand_in("rollback", signers.sign("rollback", by="bob")) == 0  # back to the classical champion
    assert signers.hand_in("promote", signers.sign("promote", quantum, by="bob")) == 2  # one approval, one promotion
    assert "no valid approval" in capsys.readouterr().err


def test_a_quantum_model_that_failed_its_gates_is_never_champion_even_approved(data_layout, instance, signers,
                                                                               capsys):
    write_good_csv(data_layout.landing, n_rows=48, n_features=5, seed=4, name="train.csv")
    ingest(instance, "train.csv")
    assert refresh(instance, gate_policy=GatePolicy(min_margin=1.0)).success  # no model beats a margin of 1
    quantum = version_of("quantum_svm")
    assert registry_state()[quantum] == "candidate"
    assert signers.hand_in("approve", signers.sign("approve", f"promote:{quantum}", by="alice")) == 2
    assert "failed its promotion gates" in capsys.readouterr().err
    assert signers.hand_in("promote", signers.sign("promote", quantum, by="bob")) == 2
    assert "failed its promotion gates (quantum_beats_classical" in capsys.readouterr().err
    assert signers.hand_in("rollback", signers.sign("rollback", quantum, by="bob")) == 2  # nor through a rollback
    assert "was never an approved champion" in capsys.readouterr().err
    assert registry_state()[quantum] == "candidate"
    with Warehouse().session(read_only=True) as session:
        assert session.approvals(subject=f"promote:{quantum}") == []  # refused before it was recorded


def test_quantum_scores_only_uncertain_rows_within_the_daily_quota(trained, instance, monkeypatch, signers):
    quantum = version_of("quantum_svm")
    signers.approve_and_promote(quantum)
    n_support = len(ArtifactStore(trained.artifacts).read(["quantum_svm"], _artifact(quantum, "quantum_svm"))["support"])
    boundary = DeviceBoundary(monkeypatch)
    shots = QuantumBackend(shots=100)
    quota = CostPolicy(warehouse=RESOURCES["warehouse"], quantum_rows_per_day=5)
    name = land_scoring(trained, "uncertain.csv")
    config = {"ops": {"predictions": {"config": {"uncertainty_band": 1e9}}}}  # every row is uncertain
    result = materialize(all_assets, selection=["scoring_batches", "predictions"], partition_key=name,
                         instance=_with_partition(instance, name), run_config=config,
                         resources={**RESOURCES, "quantum_backend": shots, "cost_policy": quota})
    assert result.success
    champion = predictions_of(name).filter(pl.col("role") == "champion")
    by_quantum = champion.filter(pl.col("decided_by") == quantum)
    assert by_quantum.height == 5 and champion.filter(pl.col("flagged").is_not_null()).height == 15
    assert set(champion.filter(pl.col("flagged").is_not_null())["flagged"]) == {"over the daily quota of 5 quantum rows"}
    assert set(champion.filter(pl.col("flagged").is_not_null())["decided_by"]) == {version_of("classical_baseline")}
    assert boundary.circuits == 5 * n_support  # the device saw the quota's rows, not one more
    assert set(by_quantum["backend"]) == {shots.device_name}
    assert set(champion.filter(pl.col("decided_by") != quantum)["backend"]) == {"classical"}
    assert (champion["queue_s"] >= 0).all() and (champion["latency_s"] > 0).all()
    with Warehouse().session(read_only=True) as session:
        assert session.quantum_rows_today() == 5


def test_a_rollback_changes_the_model_the_next_scoring_run_uses(trained, instance, signers):
    quantum, classical = version_of("quantum_svm"), version_of("classical_baseline")
    signers.approve_and_promote(quantum)
    assert score(instance, land_scoring(trained, "before.csv")).success
    assert set(predictions_of("before.csv").filter(pl.col("role") == "champion")["model_version"]) == {quantum}
    assert signers.hand_in("rollback", signers.sign("rollback", by="bob", reason="latency regression")) == 0
    assert score(instance, land_scoring(trained, "after.csv", id_offset=6000)).success
    assert set(predictions_of("after.csv").filter(pl.col("role") == "champion")["model_version"]) == {classical}
    with Warehouse().session(read_only=True) as session:
        rolled = [e for e in session.registry_events() if e["action"] == "rollback"]
    assert {(e["version_id"], e["to_status"], e["actor"]) for e in rolled} == {
        (quantum, "candidate", "bob"), (classical, "champion", "bob")}
    assert all(e["reason"].startswith("latency regression (request ") for e in rolled)


def test_labels_arriving_later_fill_in_the_shadow_challengers_realised_accuracy(trained, instance):
    frame = good_frame(n_rows=30, seed=11, id_offset=8000)
    name = land_scoring(trained, "shadowed.csv", frame=frame.drop("label"))
    assert score(instance, name, gate_policy=GatePolicy(shadow_min_labelled_rows=20)).success
    monitor = _monitor(instance, GatePolicy(shadow_min_labelled_rows=20))
    shadow = monitor["report"]["shadow"]
    assert shadow["version"] == version_of("quantum_svm") and shadow["labelled_rows"] == 0
    assert 0.0 <= shadow["agreement"] <= 1.0 and not monitor["ready"]

    frame.select("sample_id", "label").write_csv(trained.labels / "labels.csv")
    instance.add_dynamic_partitions(labels_files_partitions.name, ["labels.csv"])
    assert materialize(all_assets, selection=["scoring_labels"], partition_key="labels.csv", instance=instance,
                       resources=RESOURCES).success
    monitor = _monitor(instance, GatePolicy(shadow_min_labelled_rows=20, min_margin=-1.0))
    shadow = monitor["report"]["shadow"]
    assert shadow["labelled_rows"] == 30
    scored = predictions_of(name).join(frame.select("sample_id", "label"), on="sample_id", suffix="_truth")
    for role, key in (("champion", "champion_accuracy"), ("shadow", "shadow_accuracy")):
        rows = scored.filter(pl.col("role") == role)
        assert shadow[key] == pytest.approx(float((rows["decision"] == rows["label_truth"]).mean()))
    assert monitor["ready"] and "ready for promotion" in monitor["message"]
    assert set(monitor["report"]["feature_psi"]) == {f"feature_{i}" for i in range(5)}
    timing = monitor["report"]["per_backend"]
    assert timing["classical (champion)"]["rows"] == 30 and sum(t["rows"] for t in timing.values()) == 60
    assert all(t["p95_latency_ms"] >= 0 and t["median_queue_s"] >= 0 for t in timing.values())


def _monitor(instance, gates: GatePolicy) -> dict:
    result = materialize(all_assets, selection=["serving_monitor"], instance=instance,
                         resources={**RESOURCES, "gate_policy": gates})
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    report = ArtifactStore(Warehouse().file.parent / "artifacts").read(["serving_monitor"])
    return {"report": report, "ready": check.passed, "message": check.metadata["message"].value}


def _artifact(version_id: str, asset: str) -> str:
    with Warehouse().session(read_only=True) as session:
        return next(m for m in session.models() if m["version_id"] == version_id)["artifacts"][asset]


def _with_partition(instance, name: str):
    instance.add_dynamic_partitions(scoring_files_partitions.name, [name])
    return instance


def test_population_stability_is_zero_for_the_same_data_and_grows_with_shift():
    from hybrid_assets.serving.scoring import population_stability

    rng = np.random.default_rng(0)
    base = rng.normal(size=5000)
    assert population_stability(base, rng.normal(size=5000)) < 0.02
    assert population_stability(base, rng.normal(loc=1.0, size=5000)) > 0.2


def test_a_failed_predictions_write_keeps_the_export_and_the_retry_pays_nothing_again(trained, instance, monkeypatch):
    """The warehouse is held by another process when predictions write: the step fails with the
    lock timeout, the Parquet export is already on disk, and the retry records it without sending
    one circuit again."""
    import subprocess
    import sys

    from hybrid_assets.serving import assets as serving_assets

    boundary = DeviceBoundary(monkeypatch)
    name = land_scoring(trained, "held.csv")
    holders = []
    real_atomic_write = serving_assets.atomic_write

    def export_then_hold(path, write):  # after the export, a real process takes the warehouse's lock
        real_atomic_write(path, write)
        holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                                   "print('held', flush=True); time.sleep(8)", str(Warehouse().file)],
                                  stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        holders.append(holder)

    monkeypatch.setattr(serving_assets, "atomic_write", export_then_hold)
    config = {"ops": {"predictions": {"config": {"uncertainty_band": 1e9}}}}  # every row is uncertain
    resources = {**RESOURCES, "quantum_backend": QuantumBackend(shots=100), "warehouse": Warehouse(lock_wait_s=1)}
    failed = materialize(all_assets, selection=["scoring_batches", "predictions"], partition_key=name,
                         instance=_with_partition(instance, name), run_config=config, resources=resources,
                         raise_on_error=False)
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "held by another process" in str(failure.event_specific_data.error)
    holders[0].kill()
    holders[0].wait()
    export = pl.read_parquet(trained.predictions / f"{name}.parquet")
    sent = boundary.circuits
    assert sent > 0 and export.height == 40 and predictions_of(name).height == 0

    monkeypatch.setattr(serving_assets, "atomic_write", real_atomic_write)
    retried = materialize(all_assets, selection=["predictions"], partition_key=name, instance=instance,
                          run_config=config, resources={**RESOURCES, "quantum_backend": QuantumBackend(shots=100)})
    assert retried.success and boundary.circuits == sent  # nothing sent (nor paid for) again
    recorded = predictions_of(name).sort("sample_id", "role")
    assert recorded["score"].to_list() == export.sort("sample_id", "role")["score"].to_list()
    (materialization,) = retried.asset_materializations_for_node("predictions")
    assert materialization.metadata["reused_export"].value is True


@pytest.mark.parametrize("case, check", [
    ("unknown_ids", "unknown_sample_ids"),
    ("nan_label", "label_classes"),
    ("infinite_label", "label_classes"),
    ("unknown_class", "label_classes"),
])
def test_labels_of_unscored_rows_or_of_no_training_class_are_quarantined(trained, instance, case, check):
    frame = good_frame(n_rows=12, seed=12, id_offset=9000)
    name = land_scoring(trained, "to_label.csv", frame=frame.drop("label"))
    assert score(instance, name).success
    labels = frame.select("sample_id", pl.col("label").cast(pl.String))
    labels = {"unknown_ids": labels.with_columns(pl.col("sample_id") + "-never-scored"),
              "nan_label": labels.with_columns(pl.lit("NaN").alias("label")),
              "infinite_label": labels.with_columns(pl.lit("-inf").alias("label")),
              "unknown_class": labels.with_columns(pl.lit("7").alias("label"))}[case]
    labels.write_csv(trained.labels / f"{case}.csv")
    good = frame.select("sample_id", "label").head(6)
    good.write_csv(trained.labels / "good.csv")
    instance.add_dynamic_partitions(labels_files_partitions.name, [f"{case}.csv", "good.csv"])
    for partition in (f"{case}.csv", "good.csv"):
        result = materialize(all_assets, selection=["scoring_labels"], partition_key=partition, instance=instance,
                             resources=RESOURCES)
        assert result.success
    sidecar = json.loads((trained.quarantine / f"{case}.csv.reason.json").read_text())
    assert sidecar["check"] == check and not (trained.labels / f"{case}.csv").exists()
    labelled = predictions_of(name).filter(pl.col("label").is_not_null())
    assert set(labelled["sample_id"]) == set(good["sample_id"])  # the good file flowed, the bad one stored nothing
