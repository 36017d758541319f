"""Plain functions that take one landing file into the warehouse, or into quarantine.

A file ends in exactly one state, recorded in ``landing_files``:

- ``ingested``: its rows are in ``raw_rows`` keyed by (file hash, row number)
- ``duplicate``: the same bytes were already ingested under another name (ingested once)
- ``quarantined``: moved to ``quarantine/`` with a reason sidecar; zero rows taken. A link or
  anything else that is not a regular file is quarantined unread: its name and reason are
  recorded (check ``symlink`` or ``not_regular_file``), nothing is copied, a link is removed

Either way the file's partition materializes, so no partition stays missing (a missing
partition would stall eager automation downstream; see docs/architecture.md).

A file is read once, with ``O_NOFOLLOW``, into a private staged copy; its hash, its parse and its
quarantine are all of that copy (:mod:`hybrid_resources.data.zones`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from dagster import Failure
from upath import UPath

from hybrid_assets.common.partitions import safe_partition_key
from hybrid_resources.data.contract import (
    ContractViolation,
    DatasetContract,
    LandingTable,
    load_labels_file,
    load_landing_file,
    quote_samples,
    redact_message,
    row_hash,
    target_violations,
)
from hybrid_resources.data.dataset import resolve_task
from hybrid_resources.data.paths import (
    DataLayout,
    landing_location,
    printable_name,
    zone_entries,
)
from hybrid_resources.data.quarantine import quarantine_and_record, refuse_and_record
from hybrid_resources.data.warehouse import LandingRecord, Warehouse, WarehouseSession
from hybrid_resources.data.zones import ZoneRefusal, stage_zone_file


@dataclass(frozen=True)
class IngestOutcome(LandingRecord):
    """What happened to one landing file: its register record, and why when it was quarantined."""

    check: str = ""
    validation: dict[str, Any] = field(default_factory=dict)
    quarantined_path: str = ""


def find_landing_file(partition_key: str, location: UPath | None = None) -> UPath | None:
    """The zone entry (a regular file, or a link or other entry to refuse) whose partition key is
    ``partition_key``, if it is still there. Two names with one key (a 32-bit hash collision of
    names that fold alike, see ``safe_partition_key``) are a :class:`Failure` naming both: neither
    is taken for the other."""
    location = landing_location() if location is None else location
    matches = [entry.path for entry in zone_entries(location) if safe_partition_key(entry.name) == partition_key]
    if len(matches) > 1:
        raise Failure(f"{len(matches)} files in {location} have the partition key {partition_key!r}: "
                      f"{[printable_name(path.name) for path in matches]}; rename one of them")
    return matches[0] if matches else None


def recorded_outcome(warehouse: Warehouse, partition_key: str, zone: str = "landing") -> IngestOutcome | None:
    """The outcome recorded for a partition of a zone (landing or scoring) by an earlier run, if any."""
    record = warehouse.landing_record(partition_key, zone)
    return None if record is None else IngestOutcome(**asdict(record))


def check_against_warehouse(session: WarehouseSession, table: LandingTable, partition_key: str, file_hash: str,
                            zone: str = "landing") -> None:
    """Cross-file rules: the same numeric and categorical feature columns as the training data
    already ingested, and (for training files) no sample id that another file delivered with
    different content. Raises :class:`ContractViolation`."""
    established = session.established_columns(other_than=partition_key if zone == "landing" else None)
    if established is not None:
        expected = sorted(established[0]) + sorted(established[1])
        found = sorted(table.feature_names) + sorted(table.category_names)
        if expected != found:
            missing = sorted(set(expected) - set(found))
            extra = sorted(set(found) - set(expected))
            moved = sorted(set(established[1]) ^ set(table.category_names))
            raise ContractViolation(
                "schema_mismatch",
                f"feature columns differ from the ingested data: missing [{quote_samples(missing)}], "
                f"unexpected [{quote_samples(extra)}]"
                + (f", categorical in one and numeric in the other [{quote_samples(moved)}]" if moved else ""),
                {"missing": missing, "unexpected": extra, "categorical_mismatch": moved},
            )
    if zone != "landing":
        return
    hashes = {sid: row_hash(label, values, categories)
              for sid, label, values, categories in zip(table.sample_ids, table.labels, table.features, table.categories)}
    existing = session.ingested_rows_with_ids(list(hashes), other_than_file=file_hash)
    conflicts = sorted({sid for sid, label, values, categories in existing
                        if row_hash(label, values, categories or ()) != hashes[sid]})
    if conflicts:
        raise ContractViolation(
            "conflicting_sample_id",
            f"{len(conflicts)} sample_id(s) were already ingested with different content, e.g. {quote_samples(conflicts)}",
            {"conflicting_sample_ids": conflicts[:100]},
        )


def check_labels_against_warehouse(session: WarehouseSession, table: LandingTable,
                                   contract: DatasetContract = DatasetContract()) -> None:
    """Cross-file rules of a labels file: every sample id was scored (an ingested scoring row or a
    prediction), and every label is a class of the training data (classification) or a finite
    number (regression). Raises :class:`ContractViolation`."""
    unknown = session.unscored_ids(table.sample_ids)
    if unknown:
        raise ContractViolation("unknown_sample_ids", f"{len(unknown)} sample_id(s) were never scored, e.g. "
                                f"{quote_samples(unknown)}", {"unknown_sample_ids": unknown[:100]})
    training = session.training_classes()
    resolution = resolve_task(contract, training) if training else None
    if resolution is not None and resolution.task == "regression":
        for check, reason, details in target_violations(pl.Series(table.labels, dtype=pl.String),
                                                        replace(contract, task="regression")):
            raise ContractViolation(check, reason, details)
        return
    classes = list(resolution.classes) if resolution else []
    strangers = sorted(set(table.labels) - set(classes))
    if classes and strangers:
        raise ContractViolation("label_classes", f"label(s) {quote_samples(strangers)} are not classes of the training "
                                f"data ({quote_samples(classes)})", {"unexpected_labels": strangers[:100]})


def new_classes(session: WarehouseSession, table: LandingTable, contract: DatasetContract) -> list[str]:
    """Labels of a training file never seen in the ingested training data, for a dataset that does
    not declare its classes (a declared class list refuses them instead); empty for regression."""
    training = session.training_classes()
    if not training or contract.classes or resolve_task(contract, training + table.labels).task == "regression":
        return []
    return sorted(set(table.labels) - set(training))


def _order_columns(table: LandingTable) -> LandingTable:
    """Features (and categories) in sorted column order, so files with the same columns in another
    order align."""
    order = np.argsort(table.feature_names)
    category_order = np.argsort(table.category_names) if table.category_names else np.array([], dtype=int)
    return LandingTable(
        sample_ids=table.sample_ids,
        labels=table.labels,
        feature_names=[table.feature_names[i] for i in order],
        features=table.features[:, order],
        category_names=[table.category_names[i] for i in category_order],
        categories=[[row[i] for i in category_order] for row in table.categories],
    )


@dataclass(frozen=True)
class LandingFile:
    """One file being ingested: its partition, original name (printable), staged copy and its hash,
    the zone it lands in, the run taking it, and the zone's file itself (removed when quarantined)."""

    partition_key: str
    original_name: str
    path: Path
    file_hash: str
    zone: str
    run_id: str
    source: Any = None


@dataclass(frozen=True)
class LoadedFile:
    """A file read against its contract: its table and validation report, or the violation."""

    table: LandingTable | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    violation: ContractViolation | None = None


def load_file(path: Path, contract: DatasetContract, zone: str) -> LoadedFile:
    """Read a landing file (a labels file for ``zone`` "labels") and check it against ``contract``;
    a violation is returned, not raised. Any other error while reading it (a parser's own, e.g. a
    Parquet column type no check expected) is a ``parse`` violation naming the error: a file can
    be refused, never crash the run."""
    try:
        if zone == "labels":
            table = load_labels_file(path, contract)
            return LoadedFile(table, {"success": True, "n_rows": table.n_rows()})
        table, report = load_landing_file(path, contract)
        return LoadedFile(_order_columns(table), report.to_metadata())
    except ContractViolation as error:
        return LoadedFile(violation=error)
    except Exception as error:  # noqa: BLE001 - whatever a parser raises on hostile bytes
        return LoadedFile(violation=ContractViolation(
            "parse", f"{path.name!r} could not be read: {type(error).__name__}: {redact_message(error)}",
            {"error_type": type(error).__name__}))


def ingest_file(
    warehouse: Warehouse,
    source: UPath,
    partition_key: str,
    *,
    layout: DataLayout,
    contract: DatasetContract,
    run_id: str,
    zone: str = "landing",
) -> IngestOutcome:
    """Validate a landing file and write its rows, or quarantine it with its reason.

    ``zone`` "landing" takes labelled training files into ``raw_rows``; "scoring" takes
    unlabelled files (``contract.labelled`` False) into ``scoring_rows``, whose feature columns
    must be the training data's; "labels" takes (sample_id, label) files into ``labels``.

    The file (local, or any fsspec URI) is first copied once into a private staged copy under
    ``<data root>/staging`` (``O_NOFOLLOW``; a link or anything else that is not a regular file
    is refused unread: recorded as quarantined with check ``symlink`` or ``not_regular_file``).
    The hash recorded, the parse and a quarantined copy are all of that staged copy. The contract
    is checked before the warehouse is opened (Great Expectations takes seconds); the cross-file
    rules and the write then happen under one connection, which DuckDB holds for this process
    alone, so no other writer can slip in between. A quarantined file leaves the zone (a local
    one only while it still holds the bytes judged). Idempotent: re-ingesting the same partition
    replaces its rows.
    """
    try:
        staged = stage_zone_file(source, layout.staging)
    except ZoneRefusal as refusal:
        return refuse_entry(warehouse, source, refusal, partition_key=partition_key, run_id=run_id, zone=zone)
    try:
        landing = LandingFile(partition_key, printable_name(source.name), staged.path, staged.file_hash, zone, run_id,
                              source)
        loaded = load_file(staged.path, established_contract(warehouse, contract, partition_key, zone), zone)
        with warehouse.session() as session:
            return record_file(session, landing, loaded, layout.quarantine, contract)
    finally:
        staged.discard()


def established_contract(warehouse: Warehouse, contract: DatasetContract, partition_key: str,
                         zone: str) -> DatasetContract:
    """``contract`` with the categorical columns the ingested training data established, when the
    dataset does not declare them: every later file (training or scoring) reads those columns as
    the first file did, so a column is never categorical in one file and numeric in another."""
    if contract.categorical is not None or zone == "labels":
        return contract
    with warehouse.session(read_only=True) as session:
        established = session.established_columns(other_than=partition_key if zone == "landing" else None)
    return contract if established is None else replace(contract, categorical=tuple(established[1]))


def refuse_entry(warehouse: Warehouse, source: UPath, refusal: ZoneRefusal, *, partition_key: str, run_id: str,
                 zone: str) -> IngestOutcome:
    """Record a zone entry that was refused unread (``refuse_and_record``) as this partition's outcome."""
    outcome = IngestOutcome(partition_key, printable_name(source.name), "", "quarantined", 0, reason=refusal.reason,
                            check=refusal.check)
    with warehouse.session() as session, session.transaction():
        refuse_and_record(session, source, refusal)
        session.record_landing(outcome, feature_names=None, run_id=run_id, zone=zone)
    return outcome


def record_file(session: WarehouseSession, landing: LandingFile, loaded: LoadedFile,
                quarantine_dir: Path, contract: DatasetContract = DatasetContract()) -> IngestOutcome:
    """Under one warehouse session: record a duplicate of an ingested file, or quarantine a file that
    breaks its contract or the cross-file rules, or write its rows."""
    duplicate_of = session.ingested_partition_with_hash(landing.file_hash, other_than=landing.partition_key,
                                                        zone=landing.zone)
    if duplicate_of:
        outcome = IngestOutcome(landing.partition_key, landing.original_name, landing.file_hash, "duplicate", 0,
                                reason=f"same bytes already ingested as partition {duplicate_of!r}")
        session.record_landing(outcome, feature_names=None, run_id=landing.run_id, zone=landing.zone)
        return outcome
    violation = loaded.violation
    if violation is None:
        try:
            if landing.zone == "labels":
                check_labels_against_warehouse(session, loaded.table, contract)
            else:
                check_against_warehouse(session, loaded.table, landing.partition_key, landing.file_hash, landing.zone)
        except ContractViolation as error:
            violation = error
    if violation is not None:
        return _quarantine(session, landing, violation, loaded.validation, quarantine_dir)
    if landing.zone == "landing":
        loaded = replace(loaded, validation={**loaded.validation, "new_classes": new_classes(session, loaded.table, contract)})
    return _write_rows(session, landing, loaded)


def missing_summary(table: LandingTable) -> dict[str, int]:
    """How many cells of a file's rows are missing (NaN numbers, empty categories), and in how many
    rows: the values imputed later, with values fitted on train."""
    numeric = np.isnan(table.features) if table.features.size else np.zeros((table.n_rows(), 0), dtype=bool)
    categorical = np.array([[value is None for value in row] for row in table.categories], dtype=bool) \
        if table.category_names else np.zeros((table.n_rows(), 0), dtype=bool)
    missing = np.hstack([numeric, categorical.reshape(table.n_rows(), -1)])
    return {"missing_cells": int(missing.sum()), "rows_with_missing_values": int(missing.any(axis=1).sum())}


def _write_rows(session: WarehouseSession, landing: LandingFile, loaded: LoadedFile) -> IngestOutcome:
    table, zone = loaded.table, landing.zone
    validation = {**loaded.validation, **(missing_summary(table) if zone != "labels" else {})}
    outcome = IngestOutcome(landing.partition_key, landing.original_name, landing.file_hash, "ingested",
                            table.n_rows(), validation=validation)
    with session.transaction():
        if zone in ("landing", "scoring"):
            session.replace_file_rows(landing.file_hash, table.sample_ids, table.features,
                                      labels=table.labels if zone == "landing" else None, categories=table.categories)
        else:
            session.upsert_labels(table.sample_ids, table.labels, landing.file_hash)
        session.record_landing(outcome, feature_names=table.feature_names, run_id=landing.run_id, zone=zone,
                               category_names=table.category_names)
    return outcome


def _quarantine(session: WarehouseSession, landing: LandingFile, violation: ContractViolation,
                validation: dict[str, Any], quarantine_dir: Path) -> IngestOutcome:
    """Quarantine the file and record it with its landing row in one transaction."""
    with session.transaction():
        record = quarantine_and_record(session, landing.path, quarantine_dir, violation,
                                       original_name=landing.original_name, original=landing.source,
                                       expected_hash=landing.file_hash)
        outcome = IngestOutcome(landing.partition_key, landing.original_name, landing.file_hash, "quarantined", 0,
                                check=violation.check, reason=violation.reason, validation=validation,
                                quarantined_path=record.quarantined_path)
        session.record_landing(outcome, feature_names=None, run_id=landing.run_id, zone=landing.zone)
    return outcome
