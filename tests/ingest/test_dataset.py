"""Ordinary datasets at the door: the dataset contract file, the task a training set is for, files
with categories and missing values through a real warehouse, and the preprocessor fitted on train."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from upath import UPath

from hybrid_assets.ingest.features import build_features
from hybrid_assets.ingest.ingestion import ingest_file
from hybrid_assets.training.embeddings import EmbeddingTransform, Preprocessor, reduce_embeddings
from hybrid_resources.data.contract import DatasetContract, load_landing_file
from hybrid_resources.data.dataset import DatasetFileError, load_dataset_contract, resolve_task
from hybrid_resources.data.warehouse import Warehouse


def customers(n: int = 60, seed: int = 0, *, missing: float = 0.05, plans=("basic", "plus", "pro")) -> pl.DataFrame:
    """A customer table: two numeric columns, two text categories, ~``missing`` of cells empty."""
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame({
        "sample_id": [f"c{seed}-{i:04d}" for i in range(n)],
        "tenure": rng.integers(1, 60, n).astype(float),
        "spend": rng.normal(50, 10, n).round(2),
        "plan": rng.choice(plans, n),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "label": rng.choice(["stay", "churn"], n),
    })
    holes = rng.random((n, 4)) < missing
    return frame.with_columns(*[pl.when(pl.Series(holes[:, j])).then(None).otherwise(pl.col(name)).alias(name)
                                for j, name in enumerate(["tenure", "spend", "plan", "region"])])


def test_the_contract_file_declares_the_dataset_and_a_typo_is_named(tmp_path):
    assert load_dataset_contract(tmp_path / "absent.yaml") == DatasetContract()
    path = tmp_path / "dataset.yaml"
    path.write_text("target: quality\ntask: multiclass\ncategorical: [plan]\nordinal: [plan]\n"
                    "missing:\n  impute: mean\n  max_rate: 0.2\n  columns:\n    spend: {impute: constant, max_rate: 0.1}\n")
    contract = load_dataset_contract(path)
    assert (contract.label_column, contract.task, contract.categorical, contract.ordinal) == \
        ("quality", "multiclass", ("plan",), ("plan",))
    assert contract.policy_of("spend") == ("constant", 0.1) and contract.policy_of("tenure") == ("mean", 0.2)
    path.write_text("task: multiclass\ncategoricals: [plan]\n")
    with pytest.raises(DatasetFileError, match="categoricals"):
        load_dataset_contract(path)
    path.write_text("task: clustering\n")
    with pytest.raises(DatasetFileError, match="task"):
        load_dataset_contract(path)


@pytest.mark.parametrize(("labels", "task", "classes"), [
    (["0", "1"] * 5, "binary", ("0", "1")),
    ([str(i % 3) for i in range(9)], "multiclass", ("0", "1", "2")),
    ([str(i % 10) for i in range(30)], "multiclass", tuple(str(i) for i in range(10))),  # "10" would follow "9"
    (["setosa", "virginica", "versicolor"], "multiclass", ("setosa", "versicolor", "virginica")),
    (["151.0", "75.5", "141.25"], "regression", ()),
    ([str(i) for i in range(40)], "regression", ()),  # more integers than max_classes
])
def test_the_task_is_inferred_by_the_stated_rule(labels, task, classes):
    resolution = resolve_task(DatasetContract(), labels)
    assert (resolution.task, resolution.classes, resolution.declared) == (task, classes, False)
    assert "inferred" in resolution.how and "dataset.yaml" in resolution.how


def test_a_declared_task_wins_over_the_rule():
    assert resolve_task(DatasetContract(task="regression"), ["1", "2", "3"]).task == "regression"
    declared = resolve_task(DatasetContract(task="multiclass", classes=("b", "a", "c")), ["a", "b"])
    assert declared.classes == ("b", "a", "c") and declared.declared


def test_a_batch_with_some_classes_or_missing_cells_is_valid_and_every_cell_is_accounted_for(tmp_path):
    frame = customers(missing=0.1).with_columns(pl.lit("stay").alias("label"))
    frame.write_csv(tmp_path / "one_class.csv")
    table, report = load_landing_file(tmp_path / "one_class.csv")
    assert report.success and set(table.labels) == {"stay"}
    assert table.category_names == ["plan", "region"] and table.feature_names == ["tenure", "spend"]
    missing_numbers = int(np.isnan(table.features).sum())
    missing_categories = sum(value is None for row in table.categories for value in row)
    assert missing_numbers == frame.select(pl.col("tenure", "spend").null_count()).sum_horizontal().item()
    assert missing_categories == frame.select(pl.col("plan", "region").null_count()).sum_horizontal().item()


def test_a_declared_class_list_refuses_a_new_class_and_regression_needs_numbers(tmp_path):
    frame = customers()
    frame.write_csv(tmp_path / "c.csv")
    with pytest.raises(Exception, match="outside the declared classes"):
        load_landing_file(tmp_path / "c.csv", DatasetContract(task="binary", classes=("stay", "leave")))
    with pytest.raises(Exception, match="not finite numbers"):
        load_landing_file(tmp_path / "c.csv", DatasetContract(task="regression"))


def test_categories_and_missing_values_reach_the_warehouse_and_scoring_reads_the_same_columns(data_layout):
    first = customers(seed=1)
    first.write_csv(data_layout.landing / "first.csv")
    warehouse = Warehouse()
    outcome = ingest_file(warehouse, UPath(data_layout.landing / "first.csv"), "first.csv", layout=data_layout,
                          contract=DatasetContract(), run_id="t")
    assert outcome.status == "ingested", outcome.reason
    holes = first.drop("sample_id", "label").null_count().sum_horizontal().item()
    assert holes > 0 and outcome.validation["missing_cells"] == holes  # every missing cell accounted for
    # A later file with only two plans (and a new one) still reads plan and region as categories.
    later = customers(n=8, seed=2, missing=0.0, plans=("basic", "enterprise"))
    later.write_csv(data_layout.landing / "later.csv")
    outcome = ingest_file(warehouse, UPath(data_layout.landing / "later.csv"), "later.csv", layout=data_layout,
                          contract=DatasetContract(), run_id="t")
    assert outcome.status == "ingested", outcome.reason
    scoring = customers(n=3, seed=3, missing=0.0).drop("label")
    scoring.write_csv(data_layout.scoring / "s.csv")
    outcome = ingest_file(warehouse, UPath(data_layout.scoring / "s.csv"), "s.csv", layout=data_layout,
                          contract=DatasetContract(labelled=False), run_id="t", zone="scoring")
    assert outcome.status == "ingested", outcome.reason
    with warehouse.session(read_only=True) as session:
        assert session.established_columns() == (["spend", "tenure"], ["plan", "region"])
        rows = session.ingested_rows()
        scored = session.scoring_rows("s.csv")
    assert rows.height == 68 and rows["categories"].list.len().unique().to_list() == [2]
    assert scored["categories"].to_list() == [list(row) for row in scoring.select("plan", "region").rows()]
    features = build_features(rows, test_fraction=0.25, seed=0)
    bundle = reduce_embeddings(features, n_qubits=4, columns=(["spend", "tenure"], ["plan", "region"]))
    assert np.isfinite(bundle["X_train"]).all() and np.isfinite(bundle["X_test"]).all()
    assert str(bundle["task"][0]) == "binary" and bundle["classes"].tolist() == ["churn", "stay"]
    transform = EmbeddingTransform.from_bundle(bundle)
    assert transform.preprocessor.category_names.tolist() == ["plan", "region"]
    encoded = transform.encode(np.asarray(scored["features"].to_list()), scored["categories"].to_list())
    assert encoded.shape == (3, 4) and np.isfinite(encoded).all()


def test_the_preprocessor_is_fitted_on_train_only_and_an_unseen_category_encodes_as_zeros():
    train = np.array([[1.0, 10.0], [np.nan, 20.0], [3.0, np.nan], [5.0, 40.0]])
    categories = np.array([["a", "x"], ["a", None], ["b", "y"], ["c", "y"]], dtype=object)
    contract = DatasetContract(ordinal=("size",), max_levels=2)
    pre = Preprocessor.fit(train, categories, ["colour", "size"], contract, ["f0", "f1"])
    assert pre.impute_values.tolist() == [3.0, 20.0]  # train medians
    assert pre.category_levels[0].tolist() == ["a", "b"]  # one-hot capped at the 2 most frequent (ties by name)
    assert pre.category_levels[1].tolist() == ["x", "y"] and pre.category_fill.tolist() == ["a", "y"]
    rows = pre.encode(np.array([[np.nan, np.nan]]), np.array([["zzz", None]], dtype=object))
    assert rows.tolist() == [[3.0, 20.0, 0.0, 0.0, 1.0]]  # imputed; unseen colour all-zero; missing size -> "y" (1)
    assert pre.unseen_categories(np.array([["zzz", "x"], ["a", "new"]], dtype=object)) == 2
    again = Preprocessor.from_bundle(pre.to_bundle())
    assert np.array_equal(again.encode(train, categories), pre.encode(train, categories))


def test_without_categories_or_gaps_the_embedding_is_what_it_was(blobs):
    """The binary numeric path: the preprocessor passes the features through unchanged."""
    from tests.training.test_data_prep import raw_rows

    table = build_features(raw_rows(blobs), test_fraction=0.25, seed=0)
    bundle = reduce_embeddings(table, n_qubits=3)
    train = table.filter(pl.col("split") == "train")
    plain = EmbeddingTransform.fit(np.asarray(train["features"].to_list()), train["sample_id"].to_numpy(), n_qubits=3)
    assert np.allclose(bundle["X_train"], plain.encode(np.asarray(train["features"].to_list())))


def test_a_table_of_categories_alone_keeps_every_row_and_embeds(tmp_path):
    """Repeated rows are distinct observations: a few categories repeat rows all the time."""
    rng = np.random.default_rng(5)
    colour, size = rng.choice(["red", "green", "blue"], 120), rng.choice(["S", "M", "L"], 120)
    frame = pl.DataFrame({"colour": colour, "size": size,
                          "label": np.where((colour == "red") | (size == "L"), "yes", "no")})
    frame.write_csv(tmp_path / "cats.csv")
    table, report = load_landing_file(tmp_path / "cats.csv")
    assert report.success and table.feature_names == [] and table.category_names == ["colour", "size"]
    assert len(set(table.sample_ids)) == 120  # no row collapses into another
    again, _ = load_landing_file(tmp_path / "cats.csv")
    assert again.sample_ids == table.sample_ids  # the same rows landed again: the same ids
    rows = pl.DataFrame({"sample_id": table.sample_ids, "label": table.labels,
                         "features": [[] for _ in table.sample_ids],
                         "categories": pl.Series(table.categories, dtype=pl.List(pl.String)),
                         "file_hash": ["f"] * 120, "order": np.arange(120)},
                        schema_overrides={"features": pl.List(pl.Float64)})
    bundle = reduce_embeddings(build_features(rows, test_fraction=0.25, seed=0), n_qubits=3,
                               columns=([], ["colour", "size"]))
    assert bundle["X_train"].shape[1] == 3 and np.isfinite(bundle["X_train"]).all()
