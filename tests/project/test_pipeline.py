"""The whole graph, materialized with Dagster's own machinery on a real instance and real devices."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from dagster import AssetKey, AssetSelection, materialize

from hybrid_assets.common.partitions import safe_partition_key
from hybrid_assets.definitions import all_assets
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from tests.bad_files import write_good_csv
from tests.conftest import (
    DOWNSTREAM,
    RESOURCES,
    SMALL_RUN_CONFIG,
    blobs_frame,
    ingest,
    latest_artifact,
    refresh,
)


def test_landing_file_to_evaluated_models(data_layout, instance):
    blobs_frame(n_rows=60, seed=1).write_csv(data_layout.landing / "first batch.csv")
    (data_layout.landing / "broken.csv").write_bytes(b"\x00\xff\x00garbage")
    assert ingest(instance, "first batch.csv", "broken.csv") == {"first batch.csv": "ingested", "broken.csv": "quarantined"}
    assert (data_layout.quarantine / "broken.csv").read_bytes() == b"\x00\xff\x00garbage"

    result = refresh(instance)
    assert result.success
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations["features_contract"] is True
    # What the noise spread and the route plan read comes first, before the classical baseline.
    started = [event.step_key for event in result.all_events if event.event_type_value == "STEP_START"]
    assert started.index("kernel_tuning") < started.index("circuit_artifact") < started.index("classical_baseline")

    kernel = latest_artifact(data_layout.artifacts, "quantum_kernel_train")["matrix"]
    assert kernel.shape[0] == kernel.shape[1] > 30
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(kernel), 1.0, atol=1e-12)
    # Stored under its data version (the content hash Dagster records), never pickled.
    event = instance.get_latest_materialization_event(AssetKey("quantum_kernel_train")).asset_materialization
    version = event.tags["dagster/data_version"]
    assert event.metadata["artifact_root"].value == str(data_layout.artifacts)
    assert event.metadata["artifact_version"].value == version
    assert (data_layout.artifacts / "quantum_kernel_train" / version / "value.npz").exists()

    report = latest_artifact(data_layout.artifacts, "model_evaluation")
    assert set(report["metrics"]) == {"quantum_svm", "classical_baseline", "vqc_model"}
    for model, metrics in report["metrics"].items():
        assert set(metrics) == {"accuracy", "f1", "roc_auc"}
        assert all(0.0 <= value <= 1.0 for value in metrics.values())
        if model != "vqc_model":  # three epochs of a VQC are not meant to match the SVMs
            assert metrics["accuracy"] > 0.75  # well-separated blobs
    # The verdict: both sides tuned on the same folds, compared on 5 x 5 splits with an interval.
    verdict = report["verdict"]
    assert verdict["n_splits"] == 25 and verdict["low"] <= verdict["mean"] <= verdict["high"]
    assert verdict["outcome"] in ("won", "lost", "inconclusive")  # which one depends on the data
    assert verdict["outcome"] in report["gates"]["quantum_beats_classical"]["message"]
    sides = {(c["side"], c["model"]) for c in report["candidates"]}
    assert sides == {("classical", "rbf_svm"), ("classical", "logistic_regression"),
                     ("classical", "gradient_boosting"), ("quantum", "quantum_svm")}
    assert sum(c["chosen"] == "yes" for c in report["candidates"]) == 2
    assert {"kernel_concentration", "geometric_difference", "kernel_target_alignment", "latency_ceiling"} <= set(evaluations)
    assert set(report["telemetry"]["latency_per_sample_s"]) == {"quantum_svm", "classical_baseline", "vqc_model"}
    failures = report["telemetry"]["quantum_failure_rate"]
    assert failures["failed_submissions"] == 0 and failures["rate"] == 0.0 and failures["tasks"] > 0  # the VQC ran
    plan = latest_artifact(data_layout.artifacts, "shot_plan")
    assert [rung["shots"] for rung in plan["rungs"]] == [100, 300, 1000, 3000, 10000]
    assert plan["rungs"][0]["kernel_mean_abs_error"] > plan["rungs"][-1]["kernel_mean_abs_error"]
    tuning = latest_artifact(data_layout.artifacts, "kernel_tuning")
    circuit = latest_artifact(data_layout.artifacts, "circuit_artifact")
    assert circuit["spec"]["bandwidth"] == tuning["spec"]["bandwidth"] and len(tuning["candidates"]) == 24
    assert circuit["openqasm"].startswith("OPENQASM 2.0")
    assert circuit["spec"]["n_qubits"] == 3

    materialization = instance.get_latest_materialization_event(AssetKey("model_evaluation")).asset_materialization
    assert "| quantum_svm |" in materialization.metadata["comparison"].value
    assert "data:image/png;base64," in materialization.metadata["kernel_heatmap"].value
    qasm = instance.get_latest_materialization_event(AssetKey("circuit_artifact")).asset_materialization.metadata
    assert qasm["openqasm"].value.startswith("```qasm\nOPENQASM 2.0;") and circuit["openqasm"].strip() in qasm["openqasm"].value

    # The same inputs evaluated again keep the evaluation's data version: its measured latencies
    # are telemetry, so automation refreshes nothing after a second click on model_evaluation.
    again = materialize(all_assets, selection=AssetSelection.assets("model_evaluation"), instance=instance,
                        resources=RESOURCES)
    assert again.success
    latest = instance.get_latest_materialization_event(AssetKey("model_evaluation")).asset_materialization
    assert latest.tags["dagster/data_version"] == materialization.tags["dagster/data_version"]
    # An adaptive verdict states its target width, the width reached and the rows it ran on.
    adaptive = materialize(all_assets, selection=AssetSelection.assets("model_evaluation"), instance=instance,
                           resources={**RESOURCES, "gate_policy": GatePolicy(verdict_ci_width=0.9)})
    assert adaptive.success
    sample = latest_artifact(data_layout.artifacts, "model_evaluation")["verdict_sample"]
    assert sample["ci_width_target"] == 0.9 and sample["ci_width"] <= 0.9 and sample["rows"] == sample["of"]
    # No artifact needs pickle to load.
    for path in data_layout.artifacts.rglob("*.np[yz]"):
        np.load(path, allow_pickle=False)


def test_new_file_grows_the_data_and_keeps_existing_splits(data_layout, instance):
    blobs_frame(n_rows=40, seed=2).write_csv(data_layout.landing / "a.csv")
    ingest(instance, "a.csv")
    assert refresh(instance).success
    first = latest_artifact(data_layout.artifacts, "reduced_embeddings")

    blobs_frame(n_rows=40, seed=3, id_offset=1000).write_parquet(data_layout.landing / "b.parquet")
    assert ingest(instance, "b.parquet") == {"b.parquet": "ingested"}
    assert refresh(instance).success
    second = latest_artifact(data_layout.artifacts, "reduced_embeddings")

    assert len(second["ids_train"]) + len(second["ids_test"]) == 80
    assert set(first["ids_test"]) <= set(second["ids_test"])
    assert set(first["ids_train"]) <= set(second["ids_train"])
    records = instance.fetch_materializations(AssetKey("reduced_embeddings"), limit=10).records
    versions = {record.asset_materialization.tags["dagster/data_version"] for record in records}
    assert len(versions) == 2


def test_quarantined_only_data_fails_the_blocking_gate_and_stops_downstream(data_layout, instance):
    (data_layout.landing / "empty.csv").write_bytes(b"")
    assert ingest(instance, "empty.csv") == {"empty.csv": "quarantined"}
    result = materialize(all_assets, selection=DOWNSTREAM, instance=instance, resources=RESOURCES,
                         run_config=SMALL_RUN_CONFIG, raise_on_error=False)
    assert not result.success
    assert instance.get_latest_materialization_event(AssetKey("model_evaluation")) is None
    sidecars = list(data_layout.quarantine.glob("*.reason.json"))
    assert len(sidecars) == 1 and json.loads(sidecars[0].read_text())["check"]


def warehouse_rows(sql: str) -> list[tuple]:
    with Warehouse().connect(read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_every_bad_file_is_quarantined_with_its_reason_and_good_rows_flow_on(data_layout, instance):
    from tests.bad_files import BAD_FILE_WRITERS

    write_good_csv(data_layout.landing, n_rows=40, name="good one.csv")
    bad_names = [writer(data_layout.landing).name for writer, _ in BAD_FILE_WRITERS.values()]
    statuses = ingest(instance, "good one.csv", *bad_names)
    assert statuses.pop("good one.csv") == "ingested"
    assert set(statuses.values()) == {"quarantined"}
    for (writer, expected_check), name in zip(BAD_FILE_WRITERS.values(), bad_names):
        sidecar = json.loads((data_layout.quarantine / f"{safe_partition_key(name)}.reason.json").read_text())
        assert sidecar["check"] == expected_check and sidecar["original_name"] == name
        assert not (data_layout.landing / name).exists()
    assert warehouse_rows("SELECT count(*) FROM raw_rows") == [(40,)]
    assert warehouse_rows("SELECT count(*) FROM quarantine") == [(len(bad_names),)]
    assert refresh(instance).success


def test_a_spreadsheet_export_with_trailing_blank_lines_is_ingested_whole(data_layout, instance):
    from tests.bad_files import write_trailing_blank_lines

    path = write_trailing_blank_lines(data_layout.landing, n_rows=20)
    assert ingest(instance, path.name) == {path.name: "ingested"}
    assert warehouse_rows("SELECT count(*) FROM raw_rows") == [(20,)]
    metadata = instance.get_latest_materialization_event(AssetKey("raw_samples")).asset_materialization.metadata
    assert metadata["row_count"].value == 20 and metadata["blank_lines_skipped"].value == 4


def test_cross_file_rules_duplicates_and_conflicts(data_layout, instance):
    first = write_good_csv(data_layout.landing, n_rows=30, name="first.csv")
    (data_layout.landing / "copy of first.csv").write_bytes(first.read_bytes())
    # Same ids as first.csv, different values: conflicting rows.
    write_good_csv(data_layout.landing, n_rows=30, seed=9, name="conflict.csv")
    # Same feature columns in another order, new ids: accepted and aligned.
    frame = pl.read_csv(first).with_columns(pl.col("sample_id").str.replace("s", "t"))
    frame.select(list(reversed(frame.columns))).write_csv(data_layout.landing / "reordered.csv")
    write_good_csv(data_layout.landing, n_rows=30, n_features=7, id_offset=500, name="other schema.csv")

    statuses = ingest(instance, "first.csv", "copy of first.csv", "conflict.csv", "reordered.csv", "other schema.csv")
    assert statuses == {"first.csv": "ingested", "copy of first.csv": "duplicate", "conflict.csv": "quarantined",
                        "reordered.csv": "ingested", "other schema.csv": "quarantined"}
    checks = dict(warehouse_rows("SELECT original_name, check_name FROM quarantine"))
    assert checks == {"conflict.csv": "conflicting_sample_id", "other schema.csv": "schema_mismatch"}
    assert warehouse_rows("SELECT count(*) FROM raw_rows") == [(60,)]
    assert refresh(instance).success
    assert warehouse_rows("SELECT count(*) FROM features") == [(60,)]
    aligned = warehouse_rows("SELECT f.features FROM features f WHERE sample_id IN ('s00003', 't00003') ORDER BY sample_id")
    assert aligned[0] == aligned[1]


def test_names_with_spaces_unicode_and_dots_and_a_very_wide_file(data_layout, instance):
    names = ["with space.csv", "données 日本.csv", "..hidden..csv"]
    for i, name in enumerate(names):
        write_good_csv(data_layout.landing, n_rows=20, n_features=1000, id_offset=100 * i, name=name)
    visible = [name for name in names if not name.startswith(".")]  # dot-files are never picked up
    assert set(ingest(instance, *visible).values()) == {"ingested"}
    assert warehouse_rows("SELECT count(*), max(len(features)) FROM raw_rows") == [(40, 1000)]
    assert refresh(instance).success


def test_a_remote_landing_uri_is_ingested_and_bad_files_leave_it(data_layout, instance, monkeypatch):
    from upath import UPath

    from hybrid_resources.data.paths import landing_location, zone_files

    monkeypatch.setenv("HYBRID_LANDING_URI", "memory://landing-test/incoming")
    remote = UPath("memory://landing-test/incoming")
    remote.mkdir(parents=True, exist_ok=True)
    write_good_csv(data_layout.root, n_rows=30, name="remote.csv")
    (remote / "remote.csv").write_bytes((data_layout.root / "remote.csv").read_bytes())
    (remote / "bad.csv").write_bytes(b"")
    assert [path.name for path in zone_files(landing_location())] == ["bad.csv", "remote.csv"]

    assert ingest(instance, "remote.csv", "bad.csv") == {"remote.csv": "ingested", "bad.csv": "quarantined"}
    assert [path.name for path in zone_files(landing_location())] == ["remote.csv"]
    assert (data_layout.quarantine / "bad.csv").exists()
    assert warehouse_rows("SELECT count(*) FROM raw_rows") == [(30,)]


def test_growing_data_keeps_the_embedding_and_refreshes_the_kernel_incrementally(data_layout, instance):
    kernel_path = AssetSelection.assets("features", "reduced_embeddings", "kernel_tuning", "circuit_artifact",
                                        "quantum_kernel_train")

    def refresh_kernel() -> tuple[dict, dict]:
        assert materialize(all_assets, selection=kernel_path, instance=instance, resources=RESOURCES,
                           run_config=SMALL_RUN_CONFIG).success
        meta = {asset: {key: getattr(value, "value", value) for key, value in
                        instance.get_latest_materialization_event(AssetKey(asset)).asset_materialization.metadata.items()}
                for asset in ("reduced_embeddings", "quantum_kernel_train")}
        return latest_artifact(data_layout.artifacts, "reduced_embeddings"), meta

    blobs_frame(n_rows=60, seed=4).write_csv(data_layout.landing / "first.csv")
    ingest(instance, "first.csv")
    first, meta = refresh_kernel()
    assert meta["reduced_embeddings"]["transform"].startswith("fit on")
    fit_run = meta["reduced_embeddings"]["transform_fit_run"]
    n_old = len(first["ids_train"])

    # +10% rows (under the default refit_growth of 20%): same transform, old samples first and
    # unchanged, and the kernel computes only the new rows.
    blobs_frame(n_rows=6, seed=5, id_offset=500).write_csv(data_layout.landing / "second.csv")
    ingest(instance, "second.csv")
    grown, meta = refresh_kernel()
    n_new = len(grown["ids_train"]) - n_old
    assert n_new > 0
    assert meta["reduced_embeddings"]["transform"].startswith(f"kept (fit on {n_old} train rows")
    assert meta["reduced_embeddings"]["transform_fit_run"] == fit_run
    np.testing.assert_array_equal(grown["ids_train"][:n_old], first["ids_train"])
    np.testing.assert_array_equal(grown["X_train"][:n_old], first["X_train"])
    kernel_meta = meta["quantum_kernel_train"]
    assert kernel_meta["entries_from_cache"] == n_old * (n_old - 1)
    assert kernel_meta["states_simulated"] == n_new
    kernel = latest_artifact(data_layout.artifacts, "quantum_kernel_train")["matrix"]
    spec = FeatureMapSpec.from_dict(latest_artifact(data_layout.artifacts, "circuit_artifact")["spec"])
    np.testing.assert_allclose(kernel, quantum_kernel(grown["X_train"], spec=spec).matrix, atol=1e-12)

    # A large batch re-fits the transform; nothing stale is reused.
    blobs_frame(n_rows=60, seed=6, id_offset=2000).write_csv(data_layout.landing / "third.csv")
    ingest(instance, "third.csv")
    refit, meta = refresh_kernel()
    assert "grew" in meta["reduced_embeddings"]["transform"]
    assert meta["reduced_embeddings"]["transform_fit_run"] != fit_run
    assert len(refit["fit_ids"]) == len(refit["ids_train"])
    assert meta["quantum_kernel_train"]["entries_from_cache"] == 0
