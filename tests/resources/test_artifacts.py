import numpy as np
import pytest

from hybrid_resources.data.artifacts import (
    ArtifactStore,
    content_hash,
    info_of,
    read_artifact,
    telemetry_of,
    with_info,
    write_artifact,
)


@pytest.mark.parametrize("value", [
    np.arange(6.0).reshape(2, 3),
    {"X": np.ones((2, 2)), "ids": np.array(["a", "b"])},
    {"spec": {"name": "iqp", "reps": 2}, "openqasm": "OPENQASM 2.0;"},
])
def test_round_trip_without_pickle(tmp_path, value):
    path = write_artifact(tmp_path / "asset" / "value", value)
    assert path.suffix in {".npy", ".npz", ".json"}
    loaded = read_artifact(tmp_path / "asset" / "value")
    assert content_hash(loaded) == content_hash(value)
    assert not list(path.parent.glob("*.tmp"))


def test_objects_that_need_pickle_are_refused(tmp_path):
    with pytest.raises(TypeError, match="without pickle"):
        write_artifact(tmp_path / "value", [object()])
    with pytest.raises(ValueError):
        write_artifact(tmp_path / "value", np.array([object()], dtype=object))


def test_content_hash_sees_values_names_and_dtypes():
    base = {"a": np.zeros(3)}
    assert content_hash(base) == content_hash({"a": np.zeros(3)})
    assert content_hash(base) != content_hash({"b": np.zeros(3)})
    assert content_hash(base) != content_hash({"a": np.zeros(3, dtype=np.float32)})
    assert content_hash(base) != content_hash({"a": np.array([0.0, 0.0, 1e-300])})


def test_missing_artifact_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialize the upstream asset"):
        read_artifact(tmp_path / "nothing")


def test_info_is_content_and_telemetry_is_not():
    model = {"w": np.arange(3.0)}
    a = with_info(model, {"C": 1.0}, {"wall_time_s": 0.1})
    assert info_of(a) == {"C": 1.0} and telemetry_of(a) == {"wall_time_s": 0.1}
    assert content_hash(a) == content_hash(with_info(model, {"C": 1.0}, {"wall_time_s": 9.9}))
    assert content_hash(a) != content_hash(with_info(model, {"C": 2.0}, {"wall_time_s": 0.1}))
    # The same rule for a JSON artifact (an evaluation report and its measured latencies).
    report = {"verdict": "won", "telemetry": {"latency_s": 0.1}}
    assert content_hash(report) == content_hash({"verdict": "won", "telemetry": {"latency_s": 9.9}})
    assert content_hash(report) != content_hash({"verdict": "lost", "telemetry": {"latency_s": 0.1}})


def test_versions_stay_loadable_and_retention_keeps_the_latest_and_pinned_ones(tmp_path):
    store = ArtifactStore(tmp_path)
    values = [{"w": np.full(2, float(i))} for i in range(6)]
    versions = [content_hash(value) for value in values]
    for value, version in zip(values, versions):
        store.write(["model"], value, version=version, run_id=f"run-{version[:4]}")
    assert store.versions(["model"]) == versions and store.latest_version(["model"]) == versions[-1]
    np.testing.assert_array_equal(store.read(["model"], versions[0])["w"], [0.0, 0.0])
    np.testing.assert_array_equal(store.read(["model"])["w"], [5.0, 5.0])

    store.pin(["model"], versions[1], holder="promoted_model@abc")
    assert store.prune(["model"], keep=2) == [versions[0], versions[2], versions[3]]
    assert store.versions(["model"]) == [versions[1], versions[4], versions[5]]
    with pytest.raises(FileNotFoundError, match="no longer stored"):
        store.read(["model"], versions[0])
    # Writing the same content again is the same version: it moves to the newest place.
    store.write(["model"], values[4], version=versions[4])
    assert store.prune(["model"], keep=1) == [versions[5]]
    assert store.latest_version(["model"]) == versions[4] and store.versions(["model"]) == [versions[1], versions[4]]


def test_the_io_manager_pins_what_a_promoted_model_references(tmp_path, instance):
    from dagster import AssetKey, MetadataValue, Output, asset, materialize

    from hybrid_assets.common.outputs import artifact_output
    from hybrid_resources.data.artifacts import ArtifactIOManager

    @asset
    def model(context) -> Output:
        return artifact_output({"w": np.full(2, float(context.run.tags.get("n", 0)))}, {})

    @asset
    def promoted(model: dict) -> Output:
        return artifact_output({"ok": True}, {"references": MetadataValue.json({"model": content_hash(model)})})

    io_manager = ArtifactIOManager(root=str(tmp_path), keep_versions=1)
    materialize([model, promoted], instance=instance, resources={"io_manager": io_manager}, tags={"n": "1"})
    first = instance.get_latest_materialization_event(AssetKey("model")).asset_materialization.tags[
        "dagster/data_version"]
    for n in (2, 3):
        assert materialize([model], instance=instance, resources={"io_manager": io_manager}, tags={"n": str(n)}).success
    store = ArtifactStore(tmp_path)
    assert first in store.versions(["model"]) and len(store.versions(["model"])) == 2  # pinned + latest
    np.testing.assert_array_equal(store.read(["model"], first)["w"], [1.0, 1.0])
