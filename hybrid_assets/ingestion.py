"""Plain functions that take one landing file into the warehouse, or into quarantine.

A file ends in exactly one state, recorded in ``landing_files``:

- ``ingested``: its rows are in ``raw_rows`` keyed by (file hash, row number)
- ``duplicate``: the same bytes were already ingested under another name (ingested once)
- ``quarantined``: moved to ``quarantine/`` with a reason sidecar; zero rows taken

Either way the file's partition materializes, so no partition stays missing (a missing
partition would stall eager automation downstream; see DESIGN.md).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
from upath import UPath

from hybrid_assets.data_prep import row_hash
from hybrid_resources.data.contract import (
    ContractViolation,
    DatasetContract,
    LandingTable,
    file_sha256,
    load_landing_file,
)
from hybrid_resources.data.paths import DataLayout, landing_location
from hybrid_resources.data.quarantine import quarantine_file, safe_partition_key
from hybrid_resources.data.warehouse import Warehouse

@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one landing file."""

    partition_key: str
    file_name: str
    file_hash: str
    status: str  # ingested | duplicate | quarantined
    n_rows: int
    check: str = ""
    reason: str = ""
    validation: dict[str, Any] = field(default_factory=dict)
    quarantined_path: str = ""


def is_local(location: UPath) -> bool:
    return location.protocol in ("", "file", "local")


def landing_files(location: UPath | None = None) -> list[UPath]:
    """Regular files in the landing location, sorted by name (hidden and temporary files skipped)."""
    location = landing_location() if location is None else location
    if not location.exists():
        return []
    return sorted(
        (path for path in location.iterdir()
         if path.is_file() and not path.name.startswith(".") and not path.name.endswith((".tmp", ".part"))),
        key=lambda path: path.name,
    )


def find_landing_file(partition_key: str, location: UPath | None = None) -> UPath | None:
    """The landing file whose partition key is ``partition_key``, if it is still there."""
    return next((path for path in landing_files(location) if safe_partition_key(path.name) == partition_key), None)


@contextmanager
def local_copy(source: UPath, staging_dir: Path) -> Iterator[Path]:
    """A local path to read ``source`` from: itself when local, else a staged download (removed after)."""
    if is_local(source):
        yield Path(source.path)
        return
    staging_dir.mkdir(parents=True, exist_ok=True)
    staged = staging_dir / safe_partition_key(source.name)
    with source.open("rb") as remote, open(staged, "wb") as local:
        shutil.copyfileobj(remote, local, 1 << 20)
    try:
        yield staged
    finally:
        staged.unlink(missing_ok=True)


def recorded_outcome(connection: duckdb.DuckDBPyConnection, partition_key: str) -> IngestOutcome | None:
    """The outcome recorded for a partition by an earlier run, if any."""
    row = connection.execute(
        "SELECT file_name, file_hash, status, n_rows, reason FROM landing_files WHERE partition_key = ?",
        [partition_key],
    ).fetchone()
    if row is None:
        return None
    return IngestOutcome(partition_key, row[0], row[1], row[2], int(row[3]), reason=row[4] or "")


def _established_feature_names(connection: duckdb.DuckDBPyConnection, partition_key: str) -> list[str] | None:
    row = connection.execute(
        "SELECT feature_names FROM landing_files WHERE status = 'ingested' AND partition_key <> ? "
        "ORDER BY recorded_at LIMIT 1",
        [partition_key],
    ).fetchone()
    return json.loads(row[0]) if row else None


def check_against_warehouse(
    connection: duckdb.DuckDBPyConnection, table: LandingTable, partition_key: str, file_hash: str
) -> None:
    """Cross-file rules: same feature columns as the data already ingested, and no sample id
    that another file delivered with different content. Raises :class:`ContractViolation`."""
    established = _established_feature_names(connection, partition_key)
    if established is not None and sorted(established) != sorted(table.feature_names):
        missing = sorted(set(established) - set(table.feature_names))
        extra = sorted(set(table.feature_names) - set(established))
        raise ContractViolation(
            "schema_mismatch",
            f"feature columns differ from the ingested data: missing {missing[:10]}, unexpected {extra[:10]}",
            {"missing": missing, "unexpected": extra},
        )
    hashes = {sid: row_hash(label, list(values)) for sid, label, values in zip(table.sample_ids, table.labels, table.features)}
    existing = connection.execute(
        "SELECT r.sample_id, r.label, r.features FROM raw_rows r JOIN landing_files f ON r.file_hash = f.file_hash "
        "WHERE f.status = 'ingested' AND r.file_hash <> ? AND r.sample_id IN (SELECT unnest(?))",
        [file_hash, list(hashes)],
    ).fetchall()
    conflicts = sorted({sid for sid, label, values in existing if row_hash(label, values) != hashes[sid]})
    if conflicts:
        raise ContractViolation(
            "conflicting_sample_id",
            f"{len(conflicts)} sample_id(s) were already ingested with different content, e.g. {conflicts[:5]}",
            {"conflicting_sample_ids": conflicts[:100]},
        )


def _order_columns(table: LandingTable) -> LandingTable:
    """Features in sorted column order, so files with the same columns in another order align."""
    order = np.argsort(table.feature_names)
    return LandingTable(
        sample_ids=table.sample_ids,
        labels=table.labels,
        feature_names=[table.feature_names[i] for i in order],
        features=table.features[:, order],
    )


def ingest_file(
    warehouse: Warehouse,
    source: UPath,
    partition_key: str,
    *,
    layout: DataLayout,
    contract: DatasetContract,
    run_id: str,
) -> IngestOutcome:
    """Validate a landing file and write its rows, or quarantine it with its reason.

    The contract is checked before the warehouse is opened (Great Expectations takes
    seconds); the cross-file rules and the write then happen under one connection, which
    DuckDB holds for this process alone, so no other writer can slip in between.
    A remote file (any fsspec URI) is staged locally first; when quarantined, the verified
    copy goes to the local quarantine and the remote original leaves the landing location.
    Idempotent: re-ingesting the same partition replaces its rows.
    """
    with local_copy(source, layout.root / "staging") as path:
        file_hash = file_sha256(path)
        table, validation, violation = None, {}, None
        try:
            table, report = load_landing_file(path, contract)
            table, validation = _order_columns(table), report.to_metadata()
        except ContractViolation as error:
            violation = error
        with warehouse.connect() as connection:
            duplicate_of = connection.execute(
                "SELECT partition_key FROM landing_files WHERE file_hash = ? AND status = 'ingested' "
                "AND partition_key <> ?",
                [file_hash, partition_key],
            ).fetchone()
            if duplicate_of:
                outcome = IngestOutcome(partition_key, source.name, file_hash, "duplicate", 0,
                                        reason=f"same bytes already ingested as partition {duplicate_of[0]!r}")
                _record(connection, outcome, feature_names=None, run_id=run_id)
                return outcome
            if violation is None:
                try:
                    check_against_warehouse(connection, table, partition_key, file_hash)
                except ContractViolation as error:
                    violation = error
            if violation is not None:
                outcome = _quarantine(connection, path, source.name, partition_key, file_hash, violation,
                                      validation, layout.quarantine, run_id)
            else:
                outcome = _write_rows(connection, table, source.name, partition_key, file_hash, validation, run_id)
    if outcome.status == "quarantined" and not is_local(source):
        source.unlink()  # the verified copy is in quarantine now
    return outcome


def _quarantine(
    connection: duckdb.DuckDBPyConnection, path: Path, original_name: str, partition_key: str, file_hash: str,
    violation: ContractViolation, validation: dict[str, Any], quarantine_dir: Path, run_id: str,
) -> IngestOutcome:
    record = quarantine_file(path, quarantine_dir, check=violation.check, reason=violation.reason,
                             details={**violation.details, "original_name": original_name})
    outcome = IngestOutcome(partition_key, original_name, file_hash, "quarantined", 0, check=violation.check,
                            reason=violation.reason, validation=validation, quarantined_path=record.quarantined_path)
    connection.execute("BEGIN TRANSACTION")
    connection.execute(
        "INSERT INTO quarantine (file_hash, original_name, quarantined_path, check_name, reason) VALUES (?, ?, ?, ?, ?)",
        [file_hash, original_name, record.quarantined_path, violation.check, violation.reason],
    )
    _record(connection, outcome, feature_names=None, run_id=run_id)
    connection.execute("COMMIT")
    return outcome


def _write_rows(
    connection: duckdb.DuckDBPyConnection, table: LandingTable, file_name: str, partition_key: str,
    file_hash: str, validation: dict[str, Any], run_id: str,
) -> IngestOutcome:
    incoming = pl.DataFrame({
        "file_hash": [file_hash] * table.n_rows(),
        "row_number": np.arange(table.n_rows(), dtype=np.int64),
        "sample_id": table.sample_ids,
        "label": table.labels,
        "features": pl.Series(table.features).cast(pl.List(pl.Float64)),
    })
    outcome = IngestOutcome(partition_key, file_name, file_hash, "ingested", table.n_rows(), validation=validation)
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute("DELETE FROM raw_rows WHERE file_hash = ?", [file_hash])
        connection.register("incoming_rows", incoming.to_arrow())
        connection.execute("INSERT INTO raw_rows SELECT * FROM incoming_rows")
        connection.unregister("incoming_rows")
        _record(connection, outcome, feature_names=table.feature_names, run_id=run_id)
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    return outcome


def _record(
    connection: duckdb.DuckDBPyConnection, outcome: IngestOutcome, *, feature_names: list[str] | None, run_id: str,
) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO landing_files "
        "(partition_key, file_name, file_hash, status, n_rows, feature_names, reason, run_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [outcome.partition_key, outcome.file_name, outcome.file_hash, outcome.status, outcome.n_rows,
         json.dumps(feature_names) if feature_names is not None else None, outcome.reason, run_id],
    )
