"""Ordinary datasets from file to verdict to predictions through the real asset graph: 3 and 10
classes, a regression target, and a customer table with text categories and missing values (its
dataset contract file declared). Every landed row and every scoring row is accounted for."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from dagster import AssetKey, materialize

from hybrid_assets.common.examples import CUSTOMERS_CONTRACT, TASK_EXAMPLES
from hybrid_assets.common.partitions import labels_files_partitions, scoring_files_partitions
from hybrid_assets.definitions import all_assets
from hybrid_resources.data.artifacts import ArtifactStore
from hybrid_resources.data.warehouse import Warehouse
from tests.conftest import RESOURCES, ingest, latest_artifact, refresh

CASES = {
    # example, rows kept (a seeded sample keeps the suite quick), task, classes, metric, floor
    "wine": ("wine", None, "multiclass", 3, "accuracy", 0.85),
    "digits": ("digits", 600, "multiclass", 10, "accuracy", 0.5),
    "diabetes": ("diabetes", None, "regression", 0, "r2", 0.25),
    "customers": ("customers", None, "binary", 2, "accuracy", 0.6),
}


def land(layout, example: str, rows: int | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The example as a landing file and 40 other rows of it, unlabelled, as a scoring file."""
    frame = TASK_EXAMPLES[example]()
    frame = frame.sample(n=rows, seed=0) if rows else frame
    held = frame.sample(n=40, seed=1)
    frame.filter(~pl.col("sample_id").is_in(held["sample_id"])).write_csv(layout.landing / f"{example}.csv")
    held.drop("label").write_csv(layout.scoring / "new.csv")
    if example == "customers":
        (layout.root / "dataset.yaml").write_text(CUSTOMERS_CONTRACT)
    return frame, held


def score_and_label(instance, layout, held: pl.DataFrame) -> dict:
    """Score the scoring file, land the held rows' labels, refresh the serving dashboard."""
    instance.add_dynamic_partitions(scoring_files_partitions.name, ["new.csv"])
    assert materialize(all_assets, selection=["scoring_batches", "predictions"], partition_key="new.csv",
                       instance=instance, resources=RESOURCES).success
    held.select("sample_id", "label").write_csv(layout.labels / "labels.csv")
    instance.add_dynamic_partitions(labels_files_partitions.name, ["labels.csv"])
    assert materialize(all_assets, selection=["scoring_labels"], partition_key="labels.csv", instance=instance,
                       resources=RESOURCES).success
    assert materialize(all_assets, selection=["serving_monitor"], instance=instance, resources=RESOURCES).success
    return ArtifactStore(layout.artifacts).read(["serving_monitor"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_ordinary_dataset_runs_from_file_to_verdict_to_predictions(case, data_layout, instance):
    example, rows, task, n_classes, metric, floor = CASES[case]
    frame, held = land(data_layout, example, rows)
    assert ingest(instance, f"{example}.csv") == {f"{example}.csv": "ingested"}
    event = instance.get_latest_materialization_event(AssetKey("raw_samples")).asset_materialization
    holes = frame.filter(~pl.col("sample_id").is_in(held["sample_id"])).drop("sample_id", "label")
    assert event.metadata["missing_cells"].value == holes.null_count().sum_horizontal().item()  # imputed later

    result = refresh(instance, {"ops": {"reduced_embeddings": {"config": {"n_qubits": 4}}}})
    assert result.success
    embeddings = latest_artifact(data_layout.artifacts, "reduced_embeddings")
    assert str(embeddings["task"][0]) == task and len(embeddings["classes"]) == n_classes
    with Warehouse().session(read_only=True) as session:  # every landed row is a feature row
        assert session.features_in_arrival_order().height == frame.height - held.height
    assert len(embeddings["y_train"]) + len(embeddings["y_test"]) == frame.height - held.height

    report = latest_artifact(data_layout.artifacts, "model_evaluation")
    assert report["task"] == task and report["judged_metric"] == metric
    assert report["verdict"]["metric"] == metric and report["verdict"]["n_splits"] == 25
    assert report["verdict"]["outcome"] in report["gates"]["quantum_beats_classical"]["message"]
    assert report["metrics"]["classical_baseline"][metric] > floor
    assert report["metrics"]["quantum_svm"][metric] > floor
    vqc = latest_artifact(data_layout.artifacts, "vqc_model")
    if task == "binary":
        assert "params" in vqc  # the variational classifier trains on binary tasks only
    else:
        checks = {check.check_name: check for check in result.get_asset_check_evaluations()}
        refusal = checks["vqc_beats_classical"]
        assert refusal.passed and "binary classification only" in refusal.metadata["message"].value

    monitor = score_and_label(instance, data_layout, held)
    with Warehouse().session(read_only=True) as session:
        predictions = session.predictions().filter(pl.col("role") == "champion")
    assert sorted(predictions["sample_id"]) == sorted(held["sample_id"])  # every scoring row has a prediction
    truth = dict(held.select("sample_id", pl.col("label").cast(pl.String)).iter_rows())
    if task == "regression":
        assert (predictions["lower"] <= predictions["score"]).all() and (predictions["score"] <= predictions["upper"]).all()
        errors = np.abs(predictions["score"].to_numpy() - np.array([float(truth[s]) for s in predictions["sample_id"]]))
        assert np.median(errors) < np.std([float(v) for v in truth.values()])  # better than guessing the mean
        assert set(monitor["realized"]) >= {"r2", "rmse", "mae"}
    else:
        classes = set(embeddings["classes"].tolist())
        assert set(predictions["decision"]) <= classes
        hits = np.mean([decision == truth[sid] for sid, decision in predictions.select("sample_id", "decision").rows()])
        assert hits > floor - 0.1
        assert monitor["realized"]["accuracy"] == pytest.approx(hits)
        if task == "multiclass":
            assert predictions["class_scores"].list.len().unique().to_list() == [n_classes]
    if example == "customers":
        assert monitor["categorical_drift"]["unseen_share"] == 0.0
