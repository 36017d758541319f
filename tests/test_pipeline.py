"""The whole graph, materialized with Dagster's own machinery on a real instance and real devices."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, instance_for_test, materialize

from hybrid_assets.assets.landing import raw_samples
from hybrid_assets.definitions import all_assets
from hybrid_assets.partitions import landing_files_partitions
from hybrid_resources.artifacts import ArtifactIOManager, read_artifact
from hybrid_resources.quantum_backend import QuantumBackend
from hybrid_resources.quarantine import safe_partition_key
from hybrid_resources.warehouse import Warehouse
from tests.conftest import blobs_frame

RESOURCES = {"io_manager": ArtifactIOManager(), "warehouse": Warehouse(), "quantum_backend": QuantumBackend()}
DOWNSTREAM = AssetSelection.all() - AssetSelection.assets(raw_samples)
SMALL_RUN_CONFIG = {"ops": {"reduced_embeddings": {"config": {"n_qubits": 3}}}}


def ingest(instance: DagsterInstance, *names: str) -> dict[str, str]:
    """Materialize the raw_samples partition of each landing file; returns {file: status}."""
    keys = [safe_partition_key(name) for name in names]
    instance.add_dynamic_partitions(landing_files_partitions.name, keys)
    statuses = {}
    for name, key in zip(names, keys):
        result = materialize([raw_samples], partition_key=key, instance=instance, resources=RESOURCES)
        assert result.success
        statuses[name] = result.asset_materializations_for_node("raw_samples")[0].metadata["status"].value
    return statuses


def refresh(instance: DagsterInstance, run_config: dict = SMALL_RUN_CONFIG):
    return materialize(all_assets, selection=DOWNSTREAM, instance=instance, resources=RESOURCES, run_config=run_config)


@pytest.fixture
def instance():
    with instance_for_test() as test_instance:
        yield test_instance


def test_landing_file_to_evaluated_models(data_layout, instance):
    blobs_frame(n_rows=60, seed=1).write_csv(data_layout.landing / "first batch.csv")
    (data_layout.landing / "broken.csv").write_bytes(b"\x00\xff\x00garbage")
    assert ingest(instance, "first batch.csv", "broken.csv") == {"first batch.csv": "ingested", "broken.csv": "quarantined"}
    assert (data_layout.quarantine / "broken.csv").exists() or list(data_layout.quarantine.glob("*broken.csv"))

    result = refresh(instance)
    assert result.success
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations["features_contract"] is True

    kernel = read_artifact(data_layout.artifacts / "quantum_kernel_train" / "value")
    assert kernel.shape[0] == kernel.shape[1] > 30
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(kernel), 1.0, atol=1e-12)
    assert (data_layout.artifacts / "quantum_kernel_train" / "value.npy").exists()

    report = read_artifact(data_layout.artifacts / "model_evaluation" / "value")
    assert set(report["metrics"]) == {"quantum_svm", "classical_svm"}
    for metrics in report["metrics"].values():
        assert set(metrics) == {"accuracy", "f1", "roc_auc"}
        assert metrics["accuracy"] > 0.75  # well-separated blobs
    circuit = read_artifact(data_layout.artifacts / "circuit_artifact" / "value")
    assert circuit["openqasm"].startswith("OPENQASM 2.0")
    assert circuit["spec"]["n_qubits"] == 3

    materialization = instance.get_latest_materialization_event(AssetKey("model_evaluation")).asset_materialization
    assert "| quantum_svm |" in materialization.metadata["comparison"].value
    assert "data:image/png;base64," in materialization.metadata["kernel_heatmap"].value
    # No artifact needs pickle to load.
    for path in data_layout.artifacts.rglob("*.np[yz]"):
        np.load(path, allow_pickle=False)


def test_new_file_grows_the_data_and_keeps_existing_splits(data_layout, instance):
    blobs_frame(n_rows=40, seed=2).write_csv(data_layout.landing / "a.csv")
    ingest(instance, "a.csv")
    assert refresh(instance).success
    first = read_artifact(data_layout.artifacts / "reduced_embeddings" / "value")

    blobs_frame(n_rows=40, seed=3, id_offset=1000).write_parquet(data_layout.landing / "b.parquet")
    assert ingest(instance, "b.parquet") == {"b.parquet": "ingested"}
    assert refresh(instance).success
    second = read_artifact(data_layout.artifacts / "reduced_embeddings" / "value")

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
