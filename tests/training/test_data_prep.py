import numpy as np
import polars as pl
import pytest

from hybrid_assets.ingest.features import build_features, split_of
from hybrid_assets.training.embeddings import (
    ENCODING_RANGE,
    EmbeddingTransform,
    reduce_embeddings,
    refit_reason,
)
from hybrid_resources.data.contract import row_hash
from tests.conftest import blobs_frame


def raw_rows(frame: pl.DataFrame, file_hash: str = "f1", order_offset: int = 0) -> pl.DataFrame:
    feature_columns = [c for c in frame.columns if c.startswith("f")]
    return pl.DataFrame({
        "sample_id": frame["sample_id"],
        "label": frame["label"],
        "features": frame.select(feature_columns).to_numpy().tolist(),
        "file_hash": [file_hash] * frame.height,
        "order": np.arange(frame.height) + order_offset,
    })


def test_split_is_a_pure_function_of_the_id():
    ids = [f"id-{i}" for i in range(4000)]
    splits = [split_of(i, test_fraction=0.2, seed=1) for i in ids]
    assert splits == [split_of(i, test_fraction=0.2, seed=1) for i in ids]
    assert 0.17 < splits.count("test") / len(ids) < 0.23
    assert splits != [split_of(i, test_fraction=0.2, seed=2) for i in ids]


def test_split_is_stable_as_data_grows(blobs):
    small = build_features(raw_rows(blobs.head(30)), test_fraction=0.3, seed=0)
    grown = build_features(raw_rows(blobs), test_fraction=0.3, seed=0)
    joined = small.join(grown, on="sample_id", suffix="_grown")
    assert joined.height == 30
    assert (joined["split"] == joined["split_grown"]).all()


def test_first_delivery_wins_and_identical_rows_collapse(blobs):
    first = raw_rows(blobs.head(10), "a", 0)
    again = raw_rows(blobs.head(10), "b", 100)
    table = build_features(pl.concat([first, again]), test_fraction=0.2, seed=0)
    assert table.height == 10
    assert set(table["file_hash"]) == {"a"}
    assert table["row_hash"][0] == row_hash(table["label"][0], table["features"][0].to_list())


def test_test_fraction_is_validated(blobs):
    with pytest.raises(ValueError, match="test_fraction"):
        build_features(raw_rows(blobs), test_fraction=1.0, seed=0)


def test_embeddings_fit_on_train_only_and_lie_in_the_encoding_range(blobs):
    table = build_features(raw_rows(blobs), test_fraction=0.25, seed=0)
    bundle = reduce_embeddings(table, n_qubits=3)
    assert bundle["X_train"].shape == (int((table["split"] == "train").sum()), 3)
    assert bundle["X_test"].shape[1] == 3
    low, high = ENCODING_RANGE
    for name in ("X_train", "X_test"):
        assert bundle[name].min() >= low and bundle[name].max() <= high
    assert np.isclose(bundle["X_train"].min(axis=0), low).all() and np.isclose(bundle["X_train"].max(axis=0), high).all()
    # Changing only test rows leaves the fitted transform (and train embeddings) unchanged.
    shifted = table.with_columns(
        pl.when(pl.col("split") == "test").then(pl.col("features").list.eval(pl.element() * 10)).otherwise(pl.col("features"))
    )
    other = reduce_embeddings(shifted, n_qubits=3)
    np.testing.assert_array_equal(bundle["components"], other["components"])
    np.testing.assert_array_equal(bundle["X_train"], other["X_train"])
    assert bundle["classes"].tolist() == ["0", "1"]
    assert set(np.unique(bundle["y_train"])) == {0, 1}


def test_embedding_dims_capped_by_feature_count(blobs):
    table = build_features(raw_rows(blobs), test_fraction=0.25, seed=0)
    assert reduce_embeddings(table, n_qubits=12)["X_train"].shape[1] == 5


def test_one_class_is_refused(blobs):
    table = build_features(raw_rows(blobs.filter(pl.col("label") == "1")), test_fraction=0.25, seed=0)
    with pytest.raises(ValueError, match="at least 2 label classes"):
        reduce_embeddings(table, n_qubits=2)


def test_a_kept_transform_keeps_old_embeddings_until_the_train_split_grows_past_refit_growth(blobs):
    base = build_features(raw_rows(blobs.head(40)), test_fraction=0.25, seed=0)
    first = reduce_embeddings(base, n_qubits=3)
    transform = EmbeddingTransform.from_bundle(first)
    assert transform is not None and len(transform.fit_ids) == len(first["ids_train"])
    assert refit_reason(None, base, n_qubits=3, refit_growth=0.2) == "no fitted transform yet"
    assert refit_reason(transform, base, n_qubits=3, refit_growth=0.0) is None  # same rows: keep

    grown = build_features(raw_rows(blobs.head(44)), test_fraction=0.25, seed=0)
    growth = (grown["split"] == "train").sum() / len(transform.fit_ids) - 1
    assert 0 < growth <= 0.2
    assert refit_reason(transform, grown, n_qubits=3, refit_growth=0.2) is None
    assert "grew" in refit_reason(transform, grown, n_qubits=3, refit_growth=0.0)
    kept = reduce_embeddings(grown, n_qubits=3, transform=transform)
    old = np.isin(kept["ids_train"], first["ids_train"])
    np.testing.assert_array_equal(kept["X_train"][old], first["X_train"])
    np.testing.assert_array_equal(kept["fit_ids"], first["fit_ids"])
    low, high = ENCODING_RANGE
    assert kept["X_train"].min() >= low and kept["X_train"].max() <= high  # new rows clipped into range

    assert "dimensions" in refit_reason(transform, grown, n_qubits=2, refit_growth=0.2)
    narrower = grown.with_columns(pl.col("features").list.head(4))
    assert "feature columns" in refit_reason(transform, narrower, n_qubits=3, refit_growth=0.2)
    other = build_features(raw_rows(blobs_frame(n_rows=60, seed=9, id_offset=5000)), test_fraction=0.25, seed=0)
    assert "no longer in the train split" in refit_reason(transform, other, n_qubits=3, refit_growth=1.0)
    # Bundles written before fit_ids existed carry no reusable transform.
    assert EmbeddingTransform.from_bundle({k: v for k, v in first.items() if k != "fit_ids"}) is None
