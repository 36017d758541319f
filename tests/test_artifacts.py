import numpy as np
import pytest

from hybrid_resources.data.artifacts import content_hash, read_artifact, write_artifact


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
