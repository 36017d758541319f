"""Landing files -> raw rows (one partition per file) -> deduplicated, split features."""

import hashlib

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from hybrid_assets.common.automation import NO_NEW_DATA_TAG, ON_NEW_DATA
from hybrid_assets.common.outputs import library_versions
from hybrid_assets.common.partitions import landing_files_partitions
from hybrid_assets.ingest.features import build_features
from hybrid_assets.ingest.ingestion import (
    find_landing_file,
    ingest_file,
    recorded_outcome,
)
from hybrid_resources.data.contract import DatasetContract, quote_samples
from hybrid_resources.data.dataset import load_dataset_contract, resolve_task
from hybrid_resources.data.paths import DataLayout, zone_location
from hybrid_resources.data.warehouse import Warehouse

MIN_TRAIN_ROWS_PER_CLASS = 2  # fewer and a class cannot appear in both folds of a 2-fold split


@asset(
    partitions_def=landing_files_partitions,
    pool="warehouse",
    code_version="1",
    group_name="ingest",
    kinds={"duckdb"},
    check_specs=[AssetCheckSpec("landing_contract", asset="raw_samples",
                                description="The file parses and meets the dataset contract (Great Expectations suite)")],
)
def raw_samples(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Rows of one landing file in the warehouse, or the file quarantined with its reason (zero rows).

    One partition per landing file; the landing sensor ingests each new file by itself. To refresh
    every model on the ingested files, launch the job **refresh_models** (Jobs -> refresh_models ->
    Materialize all). "Materialize all" on the whole Lineage graph includes this partitioned asset,
    so it opens a backfill dialog instead: that backfill re-ingests every file (an identical file
    changes nothing) and then refreshes everything downstream."""
    return ingest_partition(context, warehouse, zone="landing", contract=load_dataset_contract(),
                            check_name="landing_contract")


def ingest_partition(context: AssetExecutionContext, warehouse: Warehouse, *, zone: str, contract: DatasetContract,
                     check_name: str) -> MaterializeResult:
    """Ingest the file of this partition of ``zone`` (or quarantine it), with its contract check.

    Its data version is ``<file hash>:<status>``, so an identical re-ingest changes nothing
    downstream; a run that took no rows is tagged so automation ignores it.
    """
    layout = DataLayout.from_env().ensure()
    partition_key = context.partition_key
    source = find_landing_file(partition_key, zone_location(zone))
    if source is not None:
        outcome = ingest_file(warehouse, source, partition_key, layout=layout, contract=contract,
                              run_id=context.run_id, zone=zone)
    else:
        outcome = recorded_outcome(warehouse, partition_key, zone)
        if outcome is None:
            raise Failure(f"No file for partition {partition_key!r} in {zone_location(zone)} and no record of it; "
                          "land the file again or delete the partition.")
    if outcome.status == "quarantined":
        context.log.warning(f"Quarantined {outcome.file_name!r}: [{outcome.check}] {outcome.reason}")
    if outcome.status != "ingested":
        # No rows reached the warehouse: automation downstream ignores this run (see automation.py).
        context.instance.add_run_tags(context.run_id, {NO_NEW_DATA_TAG: "false"})
    check = AssetCheckResult(
        check_name=check_name,
        passed=outcome.status != "quarantined",
        severity=AssetCheckSeverity.WARN,  # the file is kept out; nothing downstream is affected
        metadata={"status": outcome.status, "failed_check": outcome.check, "reason": outcome.reason,
                  "validation": MetadataValue.json(outcome.validation)},
    )
    return MaterializeResult(
        data_version=DataVersion(f"{outcome.file_hash}:{outcome.status}"),
        metadata={
            "status": outcome.status,
            "file_name": outcome.file_name,
            "file_hash": outcome.file_hash,
            "row_count": outcome.n_rows,
            "blank_lines_skipped": int(outcome.validation.get("blank_lines_skipped", 0)),
            # Every row taken is used; these hold missing cells that are imputed (values fitted on train).
            "rows_with_missing_values": int(outcome.validation.get("rows_with_missing_values", 0)),
            "missing_cells": int(outcome.validation.get("missing_cells", 0)),
            "reason": outcome.reason,
            "quarantined_path": outcome.quarantined_path,
            "library_versions": MetadataValue.json(library_versions()),
        },
        check_results=[check],
    )


class FeaturesConfig(Config):
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0, description="Share of sample ids in the holdout split")
    split_seed: int = Field(default=42, description="Seed of the hash that assigns each sample id to a split")


def features_gate(features: pl.DataFrame, contract: DatasetContract) -> AssetCheckResult:
    """What training needs of the combined features (each file already met the contract): both
    splits usable, and for classification at least two classes in train, each with at least
    ``MIN_TRAIN_ROWS_PER_CLASS`` train rows (the class count is a property of the training set,
    not of each file); for regression a target that varies. Says which task it resolved, and how."""
    if features.is_empty():
        return AssetCheckResult(check_name="features_contract", passed=False,
                                metadata={"reason": "no ingested rows yet; land a valid file"})
    counts = {split: features.filter(pl.col("split") == split).height for split in ("train", "test")}
    resolution = resolve_task(contract, features["label"].unique().to_list())
    reasons = [f"the {split} split is too small ({n} rows)" for split, n in counts.items() if n < 2]
    train = features.filter(pl.col("split") == "train")
    class_counts = dict(train["label"].value_counts().iter_rows())
    if resolution.task == "regression":
        if train["label"].n_unique() < 2:
            reasons.append("the regression target takes a single value in the train split")
    else:
        if len(class_counts) < 2:
            reasons.append(f"the train split has {len(class_counts)} label class(es); classification needs at least 2")
        rare = sorted(label for label, n in class_counts.items() if n < MIN_TRAIN_ROWS_PER_CLASS)
        if rare:
            reasons.append(f"class(es) {quote_samples(rare)} have fewer than {MIN_TRAIN_ROWS_PER_CLASS} train rows; "
                           "land more rows of them")
        if len(class_counts) > contract.max_classes:
            reasons.append(f"the train split has {len(class_counts)} classes, above max_classes {contract.max_classes}")
    return AssetCheckResult(
        check_name="features_contract",
        passed=not reasons,
        metadata={"reasons": MetadataValue.json(reasons), "train_rows": counts["train"], "test_rows": counts["test"],
                  "task": resolution.task, "task_resolution": resolution.how,
                  "train_class_counts": MetadataValue.json(class_counts if resolution.task != "regression" else {})},
    )


@asset(
    automation_condition=ON_NEW_DATA,
    deps=[raw_samples],
    pool="warehouse",
    code_version="1",
    group_name="ingest",
    kinds={"duckdb", "polars"},
    check_specs=[AssetCheckSpec("features_contract", asset="features", blocking=True,
                                description="Combined features meet the contract; both splits usable")],
)
def features(context: AssetExecutionContext, config: FeaturesConfig, warehouse: Warehouse) -> MaterializeResult:
    """Cleaned, deduplicated features of every ingested file, with a split stable per sample id."""
    contract = load_dataset_contract()
    with warehouse.session(read_only=True) as session:  # read, let go, compute, then write
        raw = session.ingested_rows()
        feature_names, category_names = session.established_columns() or ([], [])
    table = build_features(raw, test_fraction=config.test_fraction, seed=config.split_seed)
    with warehouse.session() as session:
        session.replace_features(table)
    digest = hashlib.sha256("\n".join(
        f"{sid},{h},{s}" for sid, h, s in table.select("sample_id", "row_hash", "split").iter_rows()
    ).encode()).hexdigest()
    return MaterializeResult(
        data_version=DataVersion(digest),
        metadata={
            "content_hash": digest,
            "row_count": table.height,
            "feature_count": len(feature_names) + len(category_names),
            "categorical_columns": MetadataValue.json(category_names),
            "missing_values": int(table["features"].list.eval(pl.element().is_nan()).list.sum().sum()) if table.height else 0,
            "files": raw["file_hash"].n_unique() if raw.height else 0,
            "duplicates_dropped": raw.height - table.height,
            "label_counts": MetadataValue.json(dict(table["label"].value_counts().head(50).iter_rows()) if table.height else {}),
            "split_counts": MetadataValue.json(dict(table["split"].value_counts().iter_rows()) if table.height else {}),
            "test_fraction": config.test_fraction,
            "split_seed": config.split_seed,
            "library_versions": MetadataValue.json(library_versions()),
        },
        check_results=[features_gate(table, contract)],
    )
