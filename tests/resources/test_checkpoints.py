"""CheckpointStore: atomic writes, hash verification, fallback past corrupt files, no pickle."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from hybrid_resources.data.checkpoints import CheckpointStore, CheckpointWarning


def _state(step: int) -> dict[str, np.ndarray]:
    return {
        "params": np.full((2, 3), float(step)),
        "step": np.int64(step),
        "rng_state": np.array(json.dumps({"state": 2**100 + step})),  # 0-d unicode, no pickle
    }


def _store_with_steps(tmp_path: Path, steps: list[int], keep: int = 3) -> CheckpointStore:
    store = CheckpointStore(tmp_path, "lineage-a", keep=keep)
    for s in steps:
        store.save(s, _state(s), {"note": f"s{s}"})
    return store


def test_save_then_latest_round_trips(tmp_path: Path) -> None:
    store = _store_with_steps(tmp_path, [1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean store must not warn
        ckpt = store.latest()
    assert ckpt is not None and ckpt.step == 2 and ckpt.skipped == ()
    np.testing.assert_array_equal(ckpt.state["params"], np.full((2, 3), 2.0))
    assert json.loads(str(ckpt.state["rng_state"])) == {"state": 2**100 + 2}
    assert ckpt.meta == {"note": "s2"}
    sidecar = json.loads((tmp_path / "lineage-a" / "step-000002.json").read_text())
    assert len(sidecar["npz_sha256"]) == 64 and sidecar["step"] == 2


def test_keeps_only_last_k_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = _store_with_steps(tmp_path, [1, 2, 3, 4, 5], keep=3)
    assert store.steps_on_disk() == [3, 4, 5]
    names = sorted(p.name for p in (tmp_path / "lineage-a").iterdir())
    assert names == [f"step-00000{s}.{ext}" for s in (3, 4, 5) for ext in ("json", "npz")]


def test_empty_or_missing_store_has_no_latest(tmp_path: Path) -> None:
    assert CheckpointStore(tmp_path, "nothing-here").latest() is None


@pytest.mark.parametrize(
    "damage",
    ["truncate_npz", "garbage_npz", "missing_json", "garbage_json", "missing_npz"],
)
def test_corrupt_newest_falls_back_to_previous_with_warning(tmp_path: Path, damage: str) -> None:
    store = _store_with_steps(tmp_path, [1, 2, 3])
    npz = tmp_path / "lineage-a" / "step-000003.npz"
    js = tmp_path / "lineage-a" / "step-000003.json"
    if damage == "truncate_npz":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    elif damage == "garbage_npz":  # same length, so only the hash can tell
        npz.write_bytes(np.random.default_rng(0).bytes(npz.stat().st_size))
    elif damage == "missing_json":  # killed between writing the npz and its sidecar
        js.unlink()
    elif damage == "garbage_json":
        js.write_bytes(b"\x00\xffnot json")
    else:
        npz.unlink()

    with pytest.warns(CheckpointWarning, match="step 3"):
        ckpt = store.latest()
    assert ckpt is not None and ckpt.step == 2
    assert len(ckpt.skipped) == 1 and store.last_warnings == list(ckpt.skipped)
    np.testing.assert_array_equal(ckpt.state["params"], np.full((2, 3), 2.0))


def test_all_corrupt_returns_none_with_warnings(tmp_path: Path) -> None:
    store = _store_with_steps(tmp_path, [1, 2])
    for npz in (tmp_path / "lineage-a").glob("*.npz"):
        npz.write_bytes(b"garbage")
    with pytest.warns(CheckpointWarning):
        assert store.latest() is None
    assert len(store.last_warnings) == 2


def test_object_arrays_are_refused_and_files_load_without_pickle(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "lineage-a")
    with pytest.raises(TypeError, match="object"):
        store.save(1, {"bad": np.array([{"a": 1}], dtype=object)}, {})
    assert store.steps_on_disk() == []  # nothing half-written
    store.save(1, _state(1), {})
    for npz in (tmp_path / "lineage-a").glob("*.npz"):
        with np.load(npz, allow_pickle=False) as data:
            for name in data.files:
                data[name]  # raises if anything needed pickle


def test_non_json_meta_fails_before_writing(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "lineage-a")
    with pytest.raises(TypeError):
        store.save(1, _state(1), {"bad": object()})
    assert store.steps_on_disk() == []


def test_lineage_must_be_a_plain_name(tmp_path: Path) -> None:
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError):
            CheckpointStore(tmp_path, bad)
