"""The DuckDB warehouse: landing-file register, raw rows, features, quarantine, experiment log.

DuckDB locks its file per process, and sensors, runs, tests and the audit command are
separate processes. So every use is short (open, work, close) and opening retries on the
lock error with backoff; writing steps are additionally serialized by the Dagster pool
``warehouse`` (limit 1 in ``dagster.yaml``).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

from hybrid_resources.data.paths import DataLayout

SCHEMA = """
CREATE TABLE IF NOT EXISTS landing_files (
    partition_key VARCHAR PRIMARY KEY,
    file_name     VARCHAR NOT NULL,
    file_hash     VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,          -- ingested | quarantined | duplicate
    n_rows        BIGINT NOT NULL,
    feature_names VARCHAR,                   -- JSON list, ingested files only
    reason        VARCHAR,
    run_id        VARCHAR,
    recorded_at   TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS raw_rows (
    file_hash  VARCHAR NOT NULL,
    row_number BIGINT NOT NULL,
    sample_id  VARCHAR NOT NULL,
    label      VARCHAR NOT NULL,
    features   DOUBLE[] NOT NULL,
    PRIMARY KEY (file_hash, row_number)
);
CREATE TABLE IF NOT EXISTS features (
    sample_id   VARCHAR PRIMARY KEY,
    label       VARCHAR NOT NULL,
    features    DOUBLE[] NOT NULL,
    split       VARCHAR NOT NULL,            -- train | test
    row_hash    VARCHAR NOT NULL,            -- content hash of (label, features)
    file_hash   VARCHAR NOT NULL             -- first file that delivered the row
);
CREATE TABLE IF NOT EXISTS quarantine (
    file_hash        VARCHAR NOT NULL,
    original_name    VARCHAR NOT NULL,
    quarantined_path VARCHAR NOT NULL,
    check_name       VARCHAR NOT NULL,
    reason           VARCHAR NOT NULL,
    quarantined_at   TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS quantum_spend (
    run_id        VARCHAR NOT NULL,
    asset         VARCHAR NOT NULL,
    device        VARCHAR NOT NULL,
    tasks         BIGINT NOT NULL,
    shots         BIGINT NOT NULL,
    estimated_usd DOUBLE NOT NULL,
    recorded_at   TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS experiment_log (
    run_id    VARCHAR NOT NULL,
    asset     VARCHAR NOT NULL,
    params    VARCHAR NOT NULL,              -- JSON
    figures   VARCHAR NOT NULL,              -- JSON
    logged_at TIMESTAMP DEFAULT current_timestamp
);
"""


def _is_lock_error(error: Exception) -> bool:
    text = str(error).lower()
    return "lock" in text and ("could not set" in text or "conflicting" in text)


@contextmanager
def open_warehouse(
    path: Path, *, read_only: bool = False, attempts: int = 12, backoff_s: float = 0.1
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the DuckDB file briefly, creating the schema; retry while another process holds it.

    Backoff doubles from ``backoff_s`` with jitter (about 40 s in all with the defaults).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    read_only = read_only and path.exists()  # a missing file is created (with the schema) first
    for attempt in range(attempts):
        try:
            connection = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as error:
            if not _is_lock_error(error) or attempt == attempts - 1:
                raise
            time.sleep(min(backoff_s * 2**attempt, 5.0) * (0.5 + random.random()))
    try:
        if not read_only:
            connection.execute(SCHEMA)
        yield connection
    finally:
        connection.close()


class Warehouse(ConfigurableResource):
    """The DuckDB warehouse file (default ``$HYBRID_DATA_DIR/warehouse.duckdb``)."""

    path: str = Field(default="", description="DuckDB file; empty means $HYBRID_DATA_DIR/warehouse.duckdb")

    @property
    def file(self) -> Path:
        return Path(self.path) if self.path else DataLayout.from_env().warehouse

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_warehouse(self.file, read_only=read_only) as connection:
            yield connection

    def log_experiment(self, run_id: str, asset: str, params: dict[str, Any], figures: dict[str, Any]) -> None:
        """Append one row to the experiment log (every kernel/model run, its params and figures)."""
        with self.connect() as connection:
            connection.execute(
                "INSERT INTO experiment_log (run_id, asset, params, figures) VALUES (?, ?, ?, ?)",
                [run_id, asset, json.dumps(params, sort_keys=True, default=str),
                 json.dumps(figures, sort_keys=True, default=str)],
            )

    def record_spend(self, run_id: str, asset: str, device: str, tasks: int, shots: int, estimated_usd: float) -> None:
        """Record what a quantum step actually submitted (tasks, shots, estimated USD)."""
        with self.connect() as connection:
            connection.execute(
                "INSERT INTO quantum_spend (run_id, asset, device, tasks, shots, estimated_usd) VALUES (?, ?, ?, ?, ?, ?)",
                [run_id, asset, device, tasks, shots, estimated_usd],
            )

    def spent_usd(self, *, run_id: str | None = None) -> float:
        """Estimated USD recorded for one run (``run_id``) or, without it, today (UTC) across runs."""
        with self.connect() as connection:
            if run_id is not None:
                row = connection.execute("SELECT sum(estimated_usd) FROM quantum_spend WHERE run_id = ?", [run_id]).fetchone()
            else:
                row = connection.execute(
                    "SELECT sum(estimated_usd) FROM quantum_spend "
                    "WHERE CAST(recorded_at AS DATE) = current_date"
                ).fetchone()
        return float(row[0] or 0.0)
