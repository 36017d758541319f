"""The DuckDB warehouse: landing-file register, raw rows, features, quarantine, spend, device failures,
experiment log.

This is the only module that knows table names or writes SQL. Assets call :class:`Warehouse`
methods for single operations, or open a :meth:`Warehouse.session` when several reads and
writes must happen under one connection (DuckDB holds its file for one process at a time,
so a session is also a lock: the cross-file landing rules and the row write of one file
cannot be interleaved with another writer).

DuckDB locks its file per process, and sensors, runs, tests and the audit command are
separate processes. So the rule for every user is the same: open a session only to read
inputs or to write results, never while computing (a step reads, closes, computes, then opens
again to write), and opening waits for another holder with backoff (:func:`open_warehouse`,
up to ``HYBRID_WAREHOUSE_LOCK_WAIT_S``, 120 s by default). The ingest steps are additionally
serialized by the Dagster pool ``warehouse`` (limit 1 in ``dagster.yaml``); the steps that
submit circuits sit in pool ``quantum`` instead and rely on the short holds alone.

In production the same tables live in a PostgreSQL schema (``HYBRID_WAREHOUSE_URL``, see
:class:`PostgresWarehouse`): the statements stay DuckDB's, run by an in-memory DuckDB with the
schema attached through DuckDB's postgres extension, so PostgreSQL holds every row and this
module stays the only SQL. A writing session then holds a PostgreSQL advisory lock instead of
the file lock (the same one-writer rule, across hosts); reading sessions take none.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import duckdb
import numpy as np
import polars as pl
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
    recorded_at   TIMESTAMP DEFAULT current_timestamp,
    category_names VARCHAR                  -- JSON list, ingested files only
);
CREATE TABLE IF NOT EXISTS raw_rows (
    file_hash  VARCHAR NOT NULL,
    row_number BIGINT NOT NULL,
    sample_id  VARCHAR NOT NULL,
    label      VARCHAR NOT NULL,
    features   DOUBLE[] NOT NULL,
    categories VARCHAR[] DEFAULT [],     -- categorical values (NULL where missing), in category_names order
    PRIMARY KEY (file_hash, row_number)
);
CREATE TABLE IF NOT EXISTS features (
    sample_id   VARCHAR PRIMARY KEY,
    label       VARCHAR NOT NULL,
    features    DOUBLE[] NOT NULL,
    split       VARCHAR NOT NULL,            -- train | test
    row_hash    VARCHAR NOT NULL,            -- content hash of (label, features)
    file_hash   VARCHAR NOT NULL,            -- first file that delivered the row
    categories  VARCHAR[] DEFAULT []
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
CREATE TABLE IF NOT EXISTS spend_entries (
    entry_id    VARCHAR PRIMARY KEY,         -- a spend journal entry already in quantum_spend (replay skips it)
    ledger_id   VARCHAR NOT NULL,
    recorded_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS spend_reservations (
    ledger_id    VARCHAR PRIMARY KEY,        -- one open ledger (one step's device work)
    run_id       VARCHAR NOT NULL,
    reserved_usd DOUBLE NOT NULL,            -- admitted so far
    spent_usd    DOUBLE NOT NULL,            -- of it, recorded in quantum_spend so far
    created_at   TIMESTAMP DEFAULT current_timestamp,
    released_at  TIMESTAMP                   -- closed, or found dead by a later admission
);
CREATE TABLE IF NOT EXISTS device_failures (
    run_id      VARCHAR NOT NULL,
    asset       VARCHAR NOT NULL,
    device      VARCHAR NOT NULL,
    error       VARCHAR NOT NULL,            -- exception type: message (first 500 characters)
    recorded_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS device_tasks (
    run_id      VARCHAR NOT NULL,
    asset       VARCHAR NOT NULL,
    device      VARCHAR NOT NULL,            -- device identity (qpu/iqm/garnet, braket.local.qubit)
    provider    VARCHAR NOT NULL,            -- iqm, ionq, amazon, ...; local for a local simulator
    task_id     VARCHAR NOT NULL,
    status      VARCHAR NOT NULL,            -- COMPLETED, FAILED, CANCELLED
    created_at  TIMESTAMP,                   -- the task's own timestamps, where the device gives them
    ended_at    TIMESTAMP,
    latency_s   DOUBLE,                      -- ended_at - created_at: queue + run
    run_s       DOUBLE,                      -- execution time the device reports (simulators)
    queue_s     DOUBLE,                      -- latency_s - run_s; 0 on a local simulator
    reason      VARCHAR,                     -- failure reason of a failed task
    recorded_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS scoring_files (
    partition_key VARCHAR PRIMARY KEY,
    file_name     VARCHAR NOT NULL,
    file_hash     VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,          -- ingested | quarantined | duplicate
    n_rows        BIGINT NOT NULL,
    feature_names VARCHAR,
    reason        VARCHAR,
    run_id        VARCHAR,
    recorded_at   TIMESTAMP DEFAULT current_timestamp,
    category_names VARCHAR
);
CREATE TABLE IF NOT EXISTS labels_files (
    partition_key VARCHAR PRIMARY KEY,
    file_name     VARCHAR NOT NULL,
    file_hash     VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,
    n_rows        BIGINT NOT NULL,
    feature_names VARCHAR,
    reason        VARCHAR,
    run_id        VARCHAR,
    recorded_at   TIMESTAMP DEFAULT current_timestamp,
    category_names VARCHAR
);
CREATE TABLE IF NOT EXISTS scoring_rows (
    file_hash  VARCHAR NOT NULL,
    row_number BIGINT NOT NULL,
    sample_id  VARCHAR NOT NULL,
    features   DOUBLE[] NOT NULL,
    categories VARCHAR[] DEFAULT [],
    PRIMARY KEY (file_hash, row_number)
);
CREATE TABLE IF NOT EXISTS predictions (
    sample_id     VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,          -- the registry version that produced this row
    role          VARCHAR NOT NULL,          -- champion (acted on) | shadow (logged only)
    score         DOUBLE NOT NULL,           -- decision value; > 0 means the second class
    decision      VARCHAR NOT NULL,          -- the class label
    decided_by    VARCHAR NOT NULL,          -- the registry version whose output this row is
    flagged       VARCHAR,                   -- why an uncertain row kept its classical decision
    latency_s     DOUBLE NOT NULL,           -- per-row inference time of this row's scorer
    backend       VARCHAR NOT NULL,          -- where this row's score was computed: classical | a device name
    queue_s       DOUBLE NOT NULL,           -- seconds from arrival (run requested, stream entry) to scoring
    source        VARCHAR NOT NULL,          -- scoring partition key, or stream:<name>
    run_id        VARCHAR NOT NULL,
    scored_at     TIMESTAMP DEFAULT current_timestamp,
    class_scores  DOUBLE[],                  -- multi-class: each class's score, in class order
    lower         DOUBLE,                    -- regression: the 90% conformal interval; NULL where none
    upper         DOUBLE,
    PRIMARY KEY (sample_id, model_version, role)
);
CREATE TABLE IF NOT EXISTS labels (
    sample_id   VARCHAR PRIMARY KEY,
    label       VARCHAR NOT NULL,
    file_hash   VARCHAR NOT NULL,
    recorded_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS model_registry (
    version_id    VARCHAR PRIMARY KEY,       -- <asset>@<first 12 of its data version>
    asset         VARCHAR NOT NULL,          -- classical_baseline | quantum_svm
    kind          VARCHAR NOT NULL,          -- rbf_svm | logistic_regression | gradient_boosting | quantum_kernel_svm
    status        VARCHAR NOT NULL,          -- candidate | shadow | champion | retired
    artifacts     VARCHAR NOT NULL,          -- JSON {asset: data version} of the model and what it needs to score
    metrics       VARCHAR NOT NULL,          -- JSON holdout metrics
    gates         VARCHAR NOT NULL,          -- JSON gate verdicts at registration
    versions      VARCHAR NOT NULL,          -- JSON data, circuit and code versions
    run_id        VARCHAR NOT NULL,
    registered_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS registry_events (
    version_id  VARCHAR NOT NULL,
    action      VARCHAR NOT NULL,            -- register | shadow | promote | demote | rollback | retire
    from_status VARCHAR,
    to_status   VARCHAR NOT NULL,
    actor       VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL,
    happened_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS approvals (
    approval_id VARCHAR PRIMARY KEY,
    subject     VARCHAR NOT NULL,            -- promote:<version_id> | hardware_evaluation
    actor       VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL,
    approved_at TIMESTAMP DEFAULT current_timestamp,
    used_by     VARCHAR,                     -- the action or run that consumed it
    signed      VARCHAR                      -- the signed statement (JSON); NULL: unsigned, never valid
);
CREATE TABLE IF NOT EXISTS experiment_log (
    run_id    VARCHAR NOT NULL,
    asset     VARCHAR NOT NULL,
    params    VARCHAR NOT NULL,              -- JSON
    figures   VARCHAR NOT NULL,              -- JSON
    logged_at TIMESTAMP DEFAULT current_timestamp
);
"""


UPGRADES: tuple[tuple[str, str, str, str | None], ...] = (
    ("approvals", "signed", "VARCHAR", None),
    ("raw_rows", "categories", "VARCHAR[]", "[]"),
    ("features", "categories", "VARCHAR[]", "[]"),
    ("scoring_rows", "categories", "VARCHAR[]", "[]"),
    ("landing_files", "category_names", "VARCHAR", None),
    ("scoring_files", "category_names", "VARCHAR", None),
    ("labels_files", "category_names", "VARCHAR", None),
    ("predictions", "class_scores", "DOUBLE[]", None),
    ("predictions", "lower", "DOUBLE", None),
    ("predictions", "upper", "DOUBLE", None),
)
"""(table, column, type, value for the rows already there) of every column added to a table after
its first release: :data:`SCHEMA` creates them, a warehouse made before gets them from
:func:`upgrade_schema`."""


def upgrade_schema(connection: duckdb.DuckDBPyConnection, *, checkpoint: bool = True) -> list[str]:
    """Add the :data:`UPGRADES` columns a warehouse lacks, in one transaction, then checkpoint
    (a DuckDB file; ``checkpoint=False`` on PostgreSQL); returns them as ``table.column`` (empty
    when there were none: nothing is written).

    Added without a DEFAULT, existing rows set to the value instead: DuckDB cannot replay from its
    write-ahead log an ``ALTER ... ADD COLUMN`` whose default is an expression such as ``[]``, so a
    process killed before the next checkpoint would leave a warehouse that never opens again. The
    checkpoint right after folds the change into the file."""
    present = set()
    for table in {upgrade[0] for upgrade in UPGRADES}:  # the columns as the connection sees them (either engine)
        present |= {(table, column[0]) for column in connection.execute(f"SELECT * FROM {table} LIMIT 0").description}
    missing = [upgrade for upgrade in UPGRADES if (upgrade[0], upgrade[1]) not in present]
    if not missing:
        return []
    connection.execute("BEGIN TRANSACTION")
    try:
        for table, column, kind, value in missing:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            if value is not None:
                connection.execute(f"UPDATE {table} SET {column} = {value}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    if checkpoint:
        connection.execute("CHECKPOINT")
    return [f"{table}.{column}" for table, column, _, _ in missing]


def _is_lock_error(error: Exception) -> bool:
    text = str(error).lower()
    return "lock" in text and ("could not set" in text or "conflicting" in text)


DEFAULT_LOCK_WAIT_S = 120.0


class WarehouseLockTimeout(RuntimeError):
    """Another process held the warehouse file for longer than the wait allowed."""


class WarehouseUnavailable(RuntimeError):
    """The PostgreSQL warehouse could not be reached (the message never carries its password)."""


def _backoff(attempt: int, backoff_s: float, remaining: float) -> None:
    """Sleep before retry ``attempt``: doubling from ``backoff_s``, capped at 2 s and at ``remaining``, jittered."""
    time.sleep(min(backoff_s * 2**attempt, 2.0, remaining) * (0.5 + random.random()))


def _timed_out(where: str, wait_s: float) -> WarehouseLockTimeout:
    return WarehouseLockTimeout(
        f"the warehouse {where} was held by another process for more than {wait_s:.0f} s: see which run "
        "or command holds it (dagster runs in progress, hybrid-audit), or wait longer with HYBRID_WAREHOUSE_LOCK_WAIT_S")


@contextmanager
def open_warehouse(
    target: Path | PostgresWarehouse, *, read_only: bool = False, wait_s: float = DEFAULT_LOCK_WAIT_S,
    backoff_s: float = 0.1,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse briefly, creating the schema; wait while another process holds it.

    ``target``: the DuckDB file, or a :class:`PostgresWarehouse` (see :func:`open_postgres`).
    DuckDB lets one process hold a file. Every holder here only reads inputs or writes results
    (never computes while holding), so a hold lasts seconds; opening retries the lock error with
    backoff doubling from ``backoff_s`` (capped at 2 s, with jitter) for up to ``wait_s`` seconds,
    then raises :class:`WarehouseLockTimeout` naming the file and the setting that waits longer.
    """
    if isinstance(target, PostgresWarehouse):
        with open_postgres(target, read_only=read_only, wait_s=wait_s, backoff_s=backoff_s) as connection:
            yield connection
        return
    path = target
    path.parent.mkdir(parents=True, exist_ok=True)
    writable = not (read_only and path.exists())  # a missing file is created (with the schema) first
    connection = _connect_file(path, read_only=not writable, wait_s=wait_s, backoff_s=backoff_s)
    try:
        if not writable and not connection.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'experiment_log'").fetchone()[0]:
            # A file without the tables: its first writer was killed while it created them. A
            # reader creates them first, as for a missing file.
            connection.close()
            connection = _connect_file(path, read_only=False, wait_s=wait_s, backoff_s=backoff_s)
            writable = True
        if writable:
            prepare_schema(connection)
        yield connection
    finally:
        connection.close()


SCHEMA_FINGERPRINT = hashlib.sha256((SCHEMA + repr(UPGRADES)).encode()).hexdigest()[:16]
"""Names this module's :data:`SCHEMA` and :data:`UPGRADES`: a DuckDB file that records it (table
``warehouse_schema``) has every table and column, so opening it runs neither again."""


def prepare_schema(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the tables a DuckDB file lacks and add the columns of :data:`UPGRADES`, unless the
    file records this code's :data:`SCHEMA_FINGERPRINT` (about 10 ms of the 20 it takes to open
    the file for writing, paid on every open otherwise: a paid device's budget is reserved in one
    per task). The fingerprint is written last, so a writer killed before it leaves a file whose
    next writer does the whole preparation again; every step of it is idempotent."""
    try:
        recorded = connection.execute("SELECT fingerprint FROM warehouse_schema").fetchone()
    except duckdb.CatalogException:  # a new file, or one from before the fingerprint
        recorded = None
    if recorded == (SCHEMA_FINGERPRINT,):
        return
    connection.execute(SCHEMA)
    upgrade_schema(connection)
    connection.execute("CREATE OR REPLACE TABLE warehouse_schema AS SELECT ? AS fingerprint", [SCHEMA_FINGERPRINT])


def _connect_file(path: Path, *, read_only: bool, wait_s: float, backoff_s: float) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` retrying the lock error with backoff for up to ``wait_s`` (see :func:`open_warehouse`)."""
    deadline, attempt = time.monotonic() + wait_s, 0
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as error:
            remaining = deadline - time.monotonic()
            if not _is_lock_error(error):
                raise
            if remaining <= 0:
                raise _timed_out(str(path), wait_s) from error
            _backoff(attempt, backoff_s, remaining)
            attempt += 1


WAREHOUSE_URL_ENV = "HYBRID_WAREHOUSE_URL"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class PostgresWarehouse:
    """The warehouse in one schema of a PostgreSQL database.

    ``url``: a libpq URI, ``postgresql://user@host:port/database``; the password comes from
    ``PGPASSWORD`` or ``~/.pgpass`` (libpq's own rules), or from the URI, and never appears in a
    message (:meth:`hide`). ``schema``: where the tables live (created on first use), so the
    warehouse can share a server, even a database, with the Dagster instance's storage.
    """

    url: str
    schema: str = "hybrid"

    @classmethod
    def from_url(cls, url: str) -> PostgresWarehouse:
        """From ``postgresql://...[?schema=name]`` (the ``schema`` parameter is ours; the others go to libpq)."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"{WAREHOUSE_URL_ENV} must be a postgresql:// URL, got a {parts.scheme or 'schemeless'} one")
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((value for key, value in query if key == "schema"), cls.schema)
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"warehouse schema {schema!r} must be a lower-case SQL identifier")
        rest = urlencode([(key, value) for key, value in query if key != "schema"])
        return cls(urlunsplit(parts._replace(query=rest)), schema)

    def hide(self, text: str) -> str:
        """``text`` with the URL's password (raw and decoded) replaced by ``***``."""
        password = urlsplit(self.url).password
        for secret in {password, unquote(password)} if password else ():
            text = text.replace(secret, "***")
        return text

    def describe(self) -> str:
        """Where the warehouse is, safe to print or log."""
        return self.hide(f"{self.url} (schema {self.schema})")

    @property
    def lock_key(self) -> int:
        """The advisory lock id of this schema's writers."""
        return advisory_key(f"hybrid-warehouse:{self.schema}")

    def connect(self, *, wait_s: float = 0.0, backoff_s: float = 0.1) -> Any:
        """A plain psycopg2 connection (for advisory locks), through :func:`reach`."""
        import psycopg2

        return reach(self, lambda: psycopg2.connect(self.url), wait_s=wait_s, backoff_s=backoff_s)


# Connection failures worth waiting out (libpq's words): the server down, restarting or full.
_TRANSIENT = ("could not connect", "connection refused", "starting up", "shutting down", "timeout expired",
              "too many clients", "server closed the connection", "no route to host")


def reach(target: PostgresWarehouse, connect: Callable[[], Any], *, wait_s: float, backoff_s: float) -> Any:
    """``connect()``, retried with backoff while ``target``'s server cannot be reached (refused,
    starting up, out of connections) for up to ``wait_s`` seconds; then, and at once for any other
    failure (a wrong password, a missing database), :class:`WarehouseUnavailable`, its message
    free of the password and saying how many attempts were made."""
    import psycopg2

    deadline, attempt = time.monotonic() + wait_s, 0
    while True:
        try:
            return connect()
        except (psycopg2.Error, duckdb.Error) as error:
            text, remaining = target.hide(str(error)).strip(), deadline - time.monotonic()
            if remaining <= 0 or not any(word in text.lower() for word in _TRANSIENT):
                plural = "s" if attempt else ""
                raise WarehouseUnavailable(f"cannot reach the warehouse {target.describe()} ({attempt + 1} attempt"
                                           f"{plural}; a server that is down is waited for up to "
                                           f"HYBRID_WAREHOUSE_LOCK_WAIT_S): {text}") from None
        _backoff(attempt, backoff_s, remaining)
        attempt += 1


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock id for ``name``: 63 bits of its hash (never negative)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little") >> 1


def postgres_extension() -> str:
    """The postgres extension file of the installed DuckDB (the ``duckdb-extension-postgres_scanner``
    wheel of the same version, in the lock), loaded by path: nothing is downloaded at run time."""
    import duckdb_extension_postgres_scanner as extension

    path = Path(extension.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "postgres_scanner.duckdb_extension"
    if not path.exists():
        raise WarehouseUnavailable(f"DuckDB {duckdb.__version__} has no postgres extension installed: install "
                                   f"duckdb-extension-postgres_scanner=={duckdb.__version__} (requirements.lock pins both)")
    return str(path)


@contextmanager
def writer_lock(target: PostgresWarehouse, *, wait_s: float, backoff_s: float) -> Iterator[None]:
    """Hold the schema's writer lock (a session-level ``pg_advisory_lock``) on a connection of its
    own: what DuckDB's file lock is for the file, across processes and hosts. It is released when
    the connection closes, so a killed process gives it back with its socket."""
    connection = target.connect(wait_s=wait_s, backoff_s=backoff_s)
    try:
        deadline, attempt = time.monotonic() + wait_s, 0
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (target.lock_key,))
                if cursor.fetchone()[0]:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _timed_out(target.describe(), wait_s)
                _backoff(attempt, backoff_s, remaining)
                attempt += 1
        yield
    finally:
        connection.close()


_READERS: dict[PostgresWarehouse, tuple[Any, threading.Lock]] = {}  # each server's reader-lease connection


def _reader_connection(target: PostgresWarehouse, wait_s: float) -> tuple[Any, threading.Lock]:
    """This process's connection for shared (reader) leases on ``target``, autocommit, opened once;
    the lock serializes its use across threads. A killed process's leases go with its socket."""
    with _READERS_LOCK:
        if target not in _READERS or _READERS[target][0].closed:
            connection = target.connect(wait_s=wait_s)
            connection.autocommit = True
            _READERS[target] = (connection, threading.Lock())
        return _READERS[target]


def _on_reader_connection(target: PostgresWarehouse, wait_s: float, sql: str, args: tuple = ()) -> tuple[Any, Any]:
    """(the connection, the first row) of ``sql`` run on this process's reader connection; one
    the server dropped (a restart, an administrator) is opened again once, and its leases are gone."""
    import psycopg2

    for attempt in (0, 1):
        connection, lock = _reader_connection(target, wait_s)
        try:
            with lock, connection.cursor() as cursor:
                cursor.execute(sql, args)
                return connection, cursor.fetchone()
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            with _READERS_LOCK:
                if _READERS.get(target, (None,))[0] is connection:
                    del _READERS[target]
            connection.close()
            if attempt:
                raise
    raise AssertionError("unreachable")


_READERS_LOCK = threading.Lock()
_PREPARED: set[PostgresWarehouse] = set()  # schemas this process created or upgraded already
_FOUND: set[PostgresWarehouse] = set()  # schemas this process found with their tables


def _has_tables(target: PostgresWarehouse, *, wait_s: float, backoff_s: float) -> bool:
    """Whether ``target``'s schema has its tables (the last one :data:`SCHEMA` creates)."""
    if target in _FOUND or target in _PREPARED:
        return True
    connection = target.connect(wait_s=wait_s, backoff_s=backoff_s)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{target.schema}.experiment_log",))
            found = bool(cursor.fetchone()[0])
    finally:
        connection.close()
    if found:
        _FOUND.add(target)
    return found


@contextmanager
def open_postgres(target: PostgresWarehouse, *, read_only: bool = False, wait_s: float = DEFAULT_LOCK_WAIT_S,
                  backoff_s: float = 0.1) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with ``target``'s schema attached (``READ_ONLY`` for a reader) and in
    use, so every statement of this module runs unchanged on PostgreSQL's tables. A writer holds
    :func:`writer_lock` meanwhile; the first writing session of a process creates and upgrades the
    tables (under the lock). A reader never waits for a writer: it only creates the tables (as a
    writer) when there are none yet, as a reader of a missing DuckDB file does."""
    if read_only and not _has_tables(target, wait_s=wait_s, backoff_s=backoff_s):
        with open_postgres(target, wait_s=wait_s, backoff_s=backoff_s):
            pass
    with nullcontext() if read_only else writer_lock(target, wait_s=wait_s, backoff_s=backoff_s):
        connection = duckdb.connect()
        try:
            connection.execute(f"LOAD '{postgres_extension()}'")
            quoted = target.url.replace("'", "''")
            attach = f"ATTACH '{quoted}' AS warehouse (TYPE postgres{', READ_ONLY' if read_only else ''})"
            reach(target, lambda: connection.execute(attach), wait_s=wait_s, backoff_s=backoff_s)
            prepare = not read_only and target not in _PREPARED
            if prepare:
                connection.execute(f"CREATE SCHEMA IF NOT EXISTS warehouse.{target.schema}")
            connection.execute(f"USE warehouse.{target.schema}")
            if prepare:
                # PostgreSQL takes an empty array default as its literal, not DuckDB's [] (list_value()).
                connection.execute(SCHEMA.replace("DEFAULT []", "DEFAULT '{}'"))
                upgrade_schema(connection, checkpoint=False)
                _PREPARED.add(target)
            yield connection
        finally:
            connection.close()


@dataclass(frozen=True)
class LandingRecord:
    """One landing file's final state in the register (``landing_files``)."""

    partition_key: str
    file_name: str
    file_hash: str
    status: str  # ingested | duplicate | quarantined
    n_rows: int
    reason: str = ""


_TASK_COLUMNS = ("run_id", "asset", "device", "provider", "task_id", "status", "created_at", "ended_at", "latency_s",
                 "run_s", "queue_s", "reason")
_TASK_SCHEMA = {**{c: pl.Utf8 for c in ("run_id", "asset", "device", "provider", "task_id", "status", "reason")},
                "created_at": pl.Datetime("us"), "ended_at": pl.Datetime("us"),
                **{c: pl.Float64 for c in ("latency_s", "run_s", "queue_s")}}


def provider_of(device: str) -> str:
    """The provider of a device identity (``cost_policy.device_identity``): ``qpu/iqm/garnet`` ->
    ``iqm``, ``quantum-simulator/amazon/sv1`` -> ``amazon``; a local simulator -> ``local``."""
    return device.split("/")[1] if device.count("/") >= 2 else "local"


_REGISTER = {"landing": "landing_files", "scoring": "scoring_files", "labels": "labels_files"}  # zone -> register


class WarehouseSession:
    """The warehouse's statements, on one open connection (see :meth:`Warehouse.session`);
    ``postgres``: the connection has a PostgreSQL warehouse attached (:func:`open_postgres`)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, *, postgres: bool = False):
        self.connection = connection
        self.postgres = postgres

    def leased(self, names: list[str]) -> set[str]:
        """Which of ``names`` some process, on any host, holds a :meth:`Warehouse.lease` on: the
        advisory locks granted on the PostgreSQL server. Always empty on a DuckDB file (no process
        there holds one; its spend ledgers prove they live by their journal files' locks)."""
        if not self.postgres or not names:
            return set()
        held = {int(row[0]) for row in self.connection.execute(
            "SELECT * FROM postgres_query('warehouse', 'SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
            "WHERE locktype = ''advisory'' AND objsubid = 1 AND granted')").fetchall()}
        return {name for name in names if advisory_key(f"hybrid-lease:{name}") in held}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together, or none (rolled back on any error)."""
        self.connection.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    # -- landing register ---------------------------------------------------------------

    def landing_record(self, partition_key: str, zone: str = "landing") -> LandingRecord | None:
        """What an earlier run recorded for a partition of a zone (landing or scoring), if anything."""
        row = self.connection.execute(
            f"SELECT partition_key, file_name, file_hash, status, n_rows, reason FROM {_REGISTER[zone]} "
            "WHERE partition_key = ?", [partition_key],
        ).fetchone()
        return None if row is None else LandingRecord(row[0], row[1], row[2], row[3], int(row[4]), row[5] or "")

    def ingested_partition_with_hash(self, file_hash: str, *, other_than: str, zone: str = "landing") -> str | None:
        """The partition of a zone that already ingested these exact bytes, other than ``other_than``."""
        row = self.connection.execute(
            f"SELECT partition_key FROM {_REGISTER[zone]} WHERE file_hash = ? AND status = 'ingested' "
            "AND partition_key <> ?", [file_hash, other_than],
        ).fetchone()
        return row[0] if row else None

    def established_feature_names(self, *, other_than: str | None = None) -> list[str] | None:
        """The numeric feature columns of the first ingested file (other than partition ``other_than``)."""
        established = self.established_columns(other_than=other_than)
        return None if established is None else established[0]

    def established_columns(self, *, other_than: str | None = None) -> tuple[list[str], list[str]] | None:
        """(numeric feature columns, categorical columns) of the first ingested training file (other
        than partition ``other_than``); None before any."""
        row = self.connection.execute(
            "SELECT feature_names, category_names FROM landing_files WHERE status = 'ingested' AND partition_key <> ? "
            "ORDER BY recorded_at LIMIT 1", [other_than or ""],
        ).fetchone()
        return (json.loads(row[0]), json.loads(row[1] or "[]")) if row else None

    def ingested_rows_with_ids(self, sample_ids: list[str], *, other_than_file: str) -> list[tuple[str, str, list, list]]:
        """(sample_id, label, features, categories) of rows other ingested files delivered under these ids."""
        return self.connection.execute(
            "SELECT r.sample_id, r.label, r.features, r.categories FROM raw_rows r JOIN landing_files f ON r.file_hash = f.file_hash "
            "WHERE f.status = 'ingested' AND r.file_hash <> ? AND r.sample_id IN (SELECT unnest(?))",
            [other_than_file, sample_ids],
        ).fetchall()

    def record_landing(self, record: LandingRecord, *, feature_names: list[str] | None, run_id: str,
                       zone: str = "landing", category_names: list[str] | None = None) -> None:
        self.connection.execute(
            f"INSERT OR REPLACE INTO {_REGISTER[zone]} "
            "(partition_key, file_name, file_hash, status, n_rows, feature_names, reason, run_id, category_names) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [record.partition_key, record.file_name, record.file_hash, record.status, record.n_rows,
             json.dumps(feature_names) if feature_names is not None else None, record.reason, run_id,
             json.dumps(category_names or []) if feature_names is not None else None],
        )

    def record_quarantine(self, *, file_hash: str, original_name: str, quarantined_path: str, check: str,
                          reason: str) -> None:
        self.connection.execute(
            "INSERT INTO quarantine (file_hash, original_name, quarantined_path, check_name, reason) "
            "VALUES (?, ?, ?, ?, ?)", [file_hash, original_name, quarantined_path, check, reason],
        )

    def replace_file_rows(self, file_hash: str, sample_ids: list[str], features: np.ndarray, *,
                          labels: list[str] | None = None, categories: list[list[str | None]] | None = None) -> None:
        """The rows of one file, keyed by (file hash, row number): into ``raw_rows`` for a labelled
        (training) file, ``scoring_rows`` for an unlabelled one; a re-ingest replaces them.
        ``categories``: per row, its categorical values (None where missing)."""
        table = "raw_rows" if labels is not None else "scoring_rows"
        incoming = pl.DataFrame({
            "file_hash": [file_hash] * len(sample_ids),
            "row_number": np.arange(len(sample_ids), dtype=np.int64),
            "sample_id": sample_ids,
            **({"label": labels} if labels is not None else {}),
            "features": pl.Series(features).cast(pl.List(pl.Float64)),
            "categories": pl.Series("categories", categories or [[] for _ in sample_ids], dtype=pl.List(pl.String)),
        })
        self.connection.execute(f"DELETE FROM {table} WHERE file_hash = ?", [file_hash])
        self.connection.register("incoming_rows", incoming.to_arrow())
        self.connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
        self.connection.unregister("incoming_rows")

    def scoring_rows(self, partition_key: str) -> pl.DataFrame:
        """sample_id, features and categories of an ingested scoring partition, in file order (empty otherwise)."""
        return self.connection.execute(
            "SELECT r.sample_id, r.features, r.categories FROM scoring_rows r JOIN scoring_files f USING (file_hash) "
            "WHERE f.partition_key = ? AND f.status = 'ingested' ORDER BY r.row_number", [partition_key]).pl()

    # -- predictions, labels ------------------------------------------------------------

    def upsert_predictions(self, frame: pl.DataFrame) -> None:
        """Write predictions; a row already there for (sample_id, model_version, role) is replaced, so
        re-scoring the same rows with the same model writes no duplicates."""
        columns = ["sample_id", "model_version", "role", "score", "decision", "decided_by", "flagged", "latency_s",
                   "backend", "queue_s", "source", "run_id"]
        columns += [name for name in ("class_scores", "lower", "upper") if name in frame.columns]  # per task
        self.connection.register("new_predictions", frame.select(columns).to_arrow())
        self.connection.execute(f"INSERT OR REPLACE INTO predictions ({', '.join(columns)}) "
                                f"SELECT {', '.join(columns)} FROM new_predictions")
        self.connection.unregister("new_predictions")

    def predictions_recorded(self, source: str) -> int:
        """How many prediction rows came from ``source`` (a scoring partition, or ``stream:<name>``)."""
        return int(self.connection.execute("SELECT count(*) FROM predictions WHERE source = ?", [source]).fetchone()[0])

    def quantum_rows_today(self) -> int:
        """Rows a quantum model scored today (UTC), champion and shadow: what the daily row quota counts."""
        return int(self.connection.execute(
            "SELECT count(*) FROM predictions WHERE decided_by LIKE 'quantum_svm@%' "
            "AND CAST(scored_at AS DATE) = current_date").fetchone()[0])

    def predictions(self) -> pl.DataFrame:
        """Every prediction with the label that arrived for its sample since (null if none)."""
        return self.connection.execute(
            "SELECT p.*, l.label FROM predictions p LEFT JOIN labels l USING (sample_id) ORDER BY p.scored_at").pl()

    def scored_features(self) -> pl.DataFrame:
        """The features of every ingested scoring row (for drift against the training data)."""
        return self.connection.execute(
            "SELECT r.features, r.categories FROM scoring_rows r JOIN scoring_files f USING (file_hash) "
            "WHERE f.status = 'ingested'"
        ).pl()

    def spend_per_day(self) -> dict[str, float]:
        """Estimated USD the ledger recorded per UTC day."""
        rows = self.connection.execute("SELECT CAST(recorded_at AS DATE) AS day, sum(estimated_usd) FROM quantum_spend "
                                       "GROUP BY day ORDER BY day").fetchall()
        return {str(day): float(usd) for day, usd in rows}

    def unscored_ids(self, sample_ids: list[str]) -> list[str]:
        """Those of ``sample_ids`` that no ingested scoring row and no prediction has (sorted)."""
        self.connection.register("label_ids", pl.DataFrame({"sample_id": sample_ids}).to_arrow())
        try:
            return [row[0] for row in self.connection.execute(
                "SELECT sample_id FROM label_ids WHERE sample_id NOT IN (SELECT r.sample_id FROM scoring_rows r "
                "JOIN scoring_files f USING (file_hash) WHERE f.status = 'ingested' UNION SELECT sample_id FROM "
                "predictions) ORDER BY sample_id").fetchall()]
        finally:
            self.connection.unregister("label_ids")

    def training_classes(self) -> list[str]:
        """The labels of the ingested training rows (sorted; empty before any)."""
        return [row[0] for row in self.connection.execute("SELECT DISTINCT label FROM raw_rows ORDER BY 1").fetchall()]

    def upsert_labels(self, sample_ids: list[str], labels: list[str], file_hash: str) -> None:
        frame = pl.DataFrame({"sample_id": sample_ids, "label": labels, "file_hash": [file_hash] * len(labels)})
        self.connection.register("new_labels", frame.to_arrow())
        self.connection.execute("INSERT OR REPLACE INTO labels (sample_id, label, file_hash) "
                                "SELECT sample_id, label, file_hash FROM new_labels")
        self.connection.unregister("new_labels")

    # -- model registry and approvals ---------------------------------------------------

    def register_model(self, version_id: str, asset: str, kind: str, status: str, *, artifacts: dict, metrics: dict,
                       gates: dict, versions: dict, run_id: str) -> bool:
        """Add a model version (once; False when it is already registered)."""
        if self.connection.execute("SELECT 1 FROM model_registry WHERE version_id = ?", [version_id]).fetchone():
            return False
        self.connection.execute(
            "INSERT INTO model_registry (version_id, asset, kind, status, artifacts, metrics, gates, versions, run_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [version_id, asset, kind, status, *(json.dumps(v, sort_keys=True, default=str)
                                                 for v in (artifacts, metrics, gates, versions)), run_id])
        return True

    def models(self, *, status: str | None = None, asset: str | None = None) -> list[dict[str, Any]]:
        """Registered versions, newest first, with their JSON fields parsed."""
        clauses = [(f"{column} = ?", value) for column, value in (("status", status), ("asset", asset)) if value]
        where = (" WHERE " + " AND ".join(c for c, _ in clauses)) if clauses else ""
        rows = self.connection.execute(f"SELECT * FROM model_registry{where} ORDER BY registered_at DESC, version_id",
                                       [v for _, v in clauses])
        names = [d[0] for d in rows.description]
        return [{**dict(zip(names, row)), **{k: json.loads(dict(zip(names, row))[k])
                                               for k in ("artifacts", "metrics", "gates", "versions")}}
                for row in rows.fetchall()]

    def set_status(self, version_id: str, status: str, *, action: str, actor: str, reason: str) -> None:
        """Move a version to ``status`` and record who did it, when and why."""
        row = self.connection.execute("SELECT status FROM model_registry WHERE version_id = ?", [version_id]).fetchone()
        self.connection.execute("UPDATE model_registry SET status = ? WHERE version_id = ?", [status, version_id])
        self.connection.execute(
            "INSERT INTO registry_events (version_id, action, from_status, to_status, actor, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)", [version_id, action, row[0] if row else None, status, actor, reason])

    def registry_events(self) -> list[dict[str, Any]]:
        rows = self.connection.execute("SELECT * FROM registry_events ORDER BY happened_at, rowid")
        names = [d[0] for d in rows.description]
        return [dict(zip(names, row)) for row in rows.fetchall()]

    def add_approval(self, approval_id: str, subject: str, actor: str, reason: str, *, signed: str) -> None:
        """Record an approval: ``actor`` is its verified signer, ``signed`` the signed statement (JSON)."""
        self.connection.execute("INSERT INTO approvals (approval_id, subject, actor, reason, signed) "
                                "VALUES (?, ?, ?, ?, ?)", [approval_id, subject, actor, reason, signed])

    def approvals(self, *, subject: str | None = None, unused: bool = False) -> list[dict[str, Any]]:
        clauses = (["subject = ?"] if subject else []) + (["used_by IS NULL"] if unused else [])
        rows = self.connection.execute("SELECT * FROM approvals" + (" WHERE " + " AND ".join(clauses) if clauses else "")
                                       + " ORDER BY approved_at", [subject] if subject else [])
        names = [d[0] for d in rows.description]
        return [dict(zip(names, row)) for row in rows.fetchall()]

    def use_approval(self, approval_id: str, used_by: str | None) -> None:
        """Mark an approval used by a run (``None`` hands it back unused)."""
        self.connection.execute("UPDATE approvals SET used_by = ? WHERE approval_id = ?", [used_by, approval_id])

    # -- features -----------------------------------------------------------------------

    def ingested_rows(self) -> pl.DataFrame:
        """Rows of every ingested file: sample_id, label, features, file_hash, and ``order``
        (files in the order they were recorded, then row number)."""
        return self.connection.execute(
            'SELECT r.sample_id, r.label, r.features, r.categories, r.file_hash, '
            'row_number() OVER (ORDER BY f.recorded_at, r.file_hash, r.row_number) AS "order" '
            "FROM raw_rows r JOIN landing_files f ON r.file_hash = f.file_hash AND f.status = 'ingested'"
        ).pl()

    def replace_features(self, table: pl.DataFrame) -> None:
        """Replace the features table with ``table`` (its columns in table order), atomically."""
        with self.transaction():
            self.connection.execute("DELETE FROM features")
            self.connection.register("new_features", table.to_arrow())
            self.connection.execute("INSERT INTO features BY NAME SELECT * FROM new_features")
            self.connection.unregister("new_features")

    def features_in_arrival_order(self) -> pl.DataFrame:
        """sample_id, label, features, split; ordered by the file that first delivered each
        sample (when it landed), then sample id, so new samples come after old ones."""
        return self.connection.execute(
            "SELECT f.sample_id, f.label, f.features, f.categories, f.split FROM features f "
            "LEFT JOIN (SELECT file_hash, min(recorded_at) AS landed_at FROM landing_files GROUP BY file_hash) l "
            "USING (file_hash) ORDER BY l.landed_at, f.file_hash, f.sample_id"
        ).pl()

    # -- spend and experiments ----------------------------------------------------------

    def record_spend(self, run_id: str, asset: str, device: str, tasks: int, shots: int, estimated_usd: float) -> None:
        self.connection.execute(
            "INSERT INTO quantum_spend (run_id, asset, device, tasks, shots, estimated_usd) VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, asset, device, tasks, shots, estimated_usd],
        )

    def spent_usd(self, *, run_id: str | None = None) -> float:
        if run_id is not None:
            row = self.connection.execute(
                "SELECT sum(estimated_usd) FROM quantum_spend WHERE run_id = ?", [run_id]).fetchone()
        else:
            row = self.connection.execute(
                "SELECT sum(estimated_usd) FROM quantum_spend WHERE CAST(recorded_at AS DATE) = current_date"
            ).fetchone()
        return float(row[0] or 0.0)

    def record_failure(self, run_id: str, asset: str, device: str, error: str) -> None:
        self.connection.execute("INSERT INTO device_failures (run_id, asset, device, error) VALUES (?, ?, ?, ?)",
                                [run_id, asset, device, error[:500]])

    def record_tasks(self, rows: list[dict[str, Any]]) -> None:
        """Per-task telemetry rows (the ``device_tasks`` columns, recorded_at excepted)."""
        if not rows:
            return
        # One insert of a frame: executemany costs DuckDB milliseconds per row, as much as a circuit.
        frame = pl.DataFrame({c: [row.get(c) for row in rows] for c in _TASK_COLUMNS}, schema=_TASK_SCHEMA)
        self.connection.register("new_device_tasks", frame.to_arrow())
        self.connection.execute(f"INSERT INTO device_tasks ({', '.join(_TASK_COLUMNS)}) "
                                f"SELECT {', '.join(_TASK_COLUMNS)} FROM new_device_tasks")
        self.connection.unregister("new_device_tasks")

    def device_telemetry(self, *, run_id: str | None = None) -> list[dict[str, Any]]:
        """Per provider and device, for one run or today (UTC) across runs: tasks, failed tasks and
        failed submissions, median queue, run and total latency (s), and the failure reasons."""
        where, args = ("run_id = ?", [run_id]) if run_id is not None else ("CAST(recorded_at AS DATE) = current_date", [])
        tasks = self.connection.execute(f"""
            SELECT provider, device, count(*) AS tasks, count(*) FILTER (WHERE status != 'COMPLETED') AS failed_tasks,
                   median(queue_s) AS median_queue_s, median(run_s) AS median_run_s,
                   median(latency_s) AS median_latency_s, max(latency_s) AS max_latency_s
            FROM device_tasks WHERE {where} GROUP BY provider, device""", args).fetchall()
        failures = self.connection.execute(f"""
            SELECT device, count(*), list(DISTINCT split_part(error, ':', 1))
            FROM device_failures WHERE {where} GROUP BY ALL""", args).fetchall()
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for provider, device, n, failed, queue, run, latency, worst in tasks:
            rows[(provider, device)] = {"provider": provider, "device": device, "tasks": n, "failed_tasks": failed,
                                        "median_queue_s": queue, "median_run_s": run, "median_latency_s": latency,
                                        "max_latency_s": worst, "failed_submissions": 0, "failure_reasons": []}
        for device, n, reasons in failures:
            provider = provider_of(device)
            row = rows.setdefault((provider, device), {
                "provider": provider, "device": device, "tasks": 0, "failed_tasks": 0, "median_queue_s": None,
                "median_run_s": None, "median_latency_s": None, "max_latency_s": None})
            row |= {"failed_submissions": n, "failure_reasons": sorted(reasons)}
        return sorted(rows.values(), key=lambda r: (r["provider"], r["device"]))

    def device_record(self, device: str) -> dict[str, Any]:
        """What the ledger holds on ``device`` (an identity such as ``qpu/iqm/garnet``), all time:
        billed tasks, shots and USD (``quantum_spend``), failed submissions (``device_failures``),
        and from ``device_tasks`` the tasks timed, failed tasks and median queue, run and total
        latency (s, None when no task was timed)."""
        tasks, shots, usd = self.connection.execute(
            "SELECT coalesce(sum(tasks), 0), coalesce(sum(shots), 0), coalesce(sum(estimated_usd), 0) "
            "FROM quantum_spend WHERE device = ?", [device]).fetchone()
        failed_submissions = self.connection.execute(
            "SELECT count(*) FROM device_failures WHERE device = ?", [device]).fetchone()[0]
        timed, failed_tasks, queue, run, latency = self.connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE status != 'COMPLETED'), median(queue_s), median(run_s), "
            "median(latency_s) FROM device_tasks WHERE device = ?", [device]).fetchone()
        return {"tasks": int(tasks), "shots": int(shots), "usd": float(usd),
                "failed_submissions": int(failed_submissions), "tasks_timed": int(timed),
                "failed_tasks": int(failed_tasks or 0), "median_queue_s": queue, "median_run_s": run,
                "median_latency_s": latency}

    def task_latency(self, device: str, *, last: int = 1000) -> tuple[float, int] | None:
        """(median seconds from creation to end, tasks) of the ``last`` completed tasks recorded for
        ``device`` (an identity such as ``qpu/iqm/garnet``), or None when none was recorded."""
        median, tasks = self.connection.execute(
            "SELECT median(latency_s), count(*) FROM (SELECT latency_s FROM device_tasks WHERE device = ? AND "
            "status = 'COMPLETED' AND latency_s IS NOT NULL ORDER BY recorded_at DESC LIMIT ?)",
            [device, last]).fetchone()
        return (float(median), int(tasks)) if tasks else None

    def failure_rate(self, *, run_id: str | None = None) -> tuple[int, int]:
        """(failed submissions, tasks that ran) for one run, or today (UTC) across runs."""
        where, args = ("run_id = ?", [run_id]) if run_id is not None else ("CAST(recorded_at AS DATE) = current_date", [])
        failures = self.connection.execute(f"SELECT count(*) FROM device_failures WHERE {where}", args).fetchone()[0]
        tasks = self.connection.execute(f"SELECT coalesce(sum(tasks), 0) FROM quantum_spend WHERE {where}", args).fetchone()[0]
        return int(failures), int(tasks)

    def log_experiment(self, run_id: str, asset: str, params: dict[str, Any], figures: dict[str, Any]) -> None:
        self.connection.execute(
            "INSERT INTO experiment_log (run_id, asset, params, figures) VALUES (?, ?, ?, ?)",
            [run_id, asset, json.dumps(params, sort_keys=True, default=str),
             json.dumps(figures, sort_keys=True, default=str)],
        )

    # -- spend journal and reservations (the cost policy's ledger) ----------------------

    def record_spend_entries(self, entries: list[dict[str, Any]]) -> list[str]:
        """Record spend journal entries in ``quantum_spend`` (one row per run, asset and device),
        each once: an entry whose ``id`` is in ``spend_entries`` already is skipped (a replay), an
        entry without one (a free device's counts, never journaled) is always recorded. The
        reservation of each entry's ``ledger`` counts what was recorded. Returns the ids newly
        recorded; call it inside :meth:`transaction` so rows, ids and reservations commit together.
        An entry: {"id", "ledger", "run_id", "asset", "device", "tasks", "shots", "usd"}."""
        done = self.recorded_entry_ids([e["id"] for e in entries if e.get("id")])
        fresh = {e.get("id") or f"free:{n}": e for n, e in enumerate(entries) if e.get("id") not in done}
        totals: dict[tuple[str, str, str], list] = {}
        per_ledger: dict[str, float] = {}
        for entry in fresh.values():
            total = totals.setdefault((entry["run_id"], entry["asset"], entry["device"]), [0, 0, 0.0])
            total[0], total[1], total[2] = total[0] + entry["tasks"], total[1] + entry["shots"], total[2] + entry["usd"]
            per_ledger[entry["ledger"]] = per_ledger.get(entry["ledger"], 0.0) + entry["usd"]
        for (run_id, asset, device), (tasks, shots, usd) in totals.items():
            self.record_spend(run_id, asset, device, tasks, shots, usd)
        recorded = [(entry["id"], entry["ledger"]) for entry in fresh.values() if entry.get("id")]
        if recorded:
            self.connection.executemany("INSERT INTO spend_entries (entry_id, ledger_id) VALUES (?, ?)", recorded)
        for ledger_id, usd in per_ledger.items():
            self.connection.execute("UPDATE spend_reservations SET spent_usd = spent_usd + ? WHERE ledger_id = ?",
                                    [usd, ledger_id])
        return [entry_id for entry_id, _ in recorded]

    def recorded_entry_ids(self, entry_ids: list[str]) -> set[str]:
        """Which of these spend journal entry ids are recorded already."""
        if not entry_ids:
            return set()
        rows = self.connection.execute("SELECT entry_id FROM spend_entries WHERE entry_id IN (SELECT unnest(?))",
                                       [entry_ids]).fetchall()
        return {row[0] for row in rows}

    def open_reservations(self) -> list[dict[str, Any]]:
        """Reservations not released: ledger_id, run_id, reserved_usd, spent_usd, today (created
        this UTC day, like ``spent_usd``'s day) and age_s."""
        rows = self.connection.execute(
            "SELECT ledger_id, run_id, reserved_usd, spent_usd, CAST(created_at AS DATE) = current_date, "
            "date_diff('second', created_at, CAST(current_timestamp AS TIMESTAMP)) "
            "FROM spend_reservations WHERE released_at IS NULL").fetchall()
        names = ("ledger_id", "run_id", "reserved_usd", "spent_usd", "today", "age_s")
        return [dict(zip(names, row)) for row in rows]

    def reserve(self, ledger_id: str, run_id: str, usd: float) -> None:
        """Add ``usd`` to a ledger's reservation (opened on its first admission)."""
        self.connection.execute(
            "INSERT INTO spend_reservations (ledger_id, run_id, reserved_usd, spent_usd) VALUES (?, ?, ?, 0) "
            "ON CONFLICT (ledger_id) DO UPDATE SET reserved_usd = reserved_usd + excluded.reserved_usd",
            [ledger_id, run_id, usd])

    def release_reservations(self, ledger_ids: list[str]) -> None:
        """Release reservations (their ledgers closed, or died): they no longer hold budget."""
        if ledger_ids:
            self.connection.execute("UPDATE spend_reservations SET released_at = current_timestamp "
                                    "WHERE ledger_id IN (SELECT unnest(?)) AND released_at IS NULL", [ledger_ids])


class Warehouse(ConfigurableResource):
    """The warehouse: the DuckDB file (default ``$HYBRID_DATA_DIR/warehouse.duckdb``), or a
    PostgreSQL schema when ``url`` or ``$HYBRID_WAREHOUSE_URL`` names one (an explicit ``path``
    keeps the file)."""

    path: str = Field(default="", description="DuckDB file; empty means $HYBRID_DATA_DIR/warehouse.duckdb")
    url: str = Field(default="", description="postgresql://user@host:port/database[?schema=name] (default schema "
                     "hybrid; the password from PGPASSWORD): the warehouse on PostgreSQL. Empty means "
                     "$HYBRID_WAREHOUSE_URL, and without it (or with `path` set) the DuckDB file")
    lock_wait_s: float = Field(default=0.0, ge=0, description="Seconds to wait while another process holds the "
                               "file; 0 means $HYBRID_WAREHOUSE_LOCK_WAIT_S, else 120")

    @property
    def file(self) -> Path:
        """The DuckDB file; on PostgreSQL, where it would be, beside which local state such as the
        spend journal lives."""
        return Path(self.path) if self.path else DataLayout.from_env().warehouse

    @property
    def target(self) -> Path | PostgresWarehouse:
        """What :func:`open_warehouse` opens: the PostgreSQL schema, or the DuckDB file."""
        url = self.url or ("" if self.path else os.environ.get(WAREHOUSE_URL_ENV, "").strip())
        return PostgresWarehouse.from_url(url) if url else self.file

    def describe(self) -> str:
        """Where the warehouse is, safe to print (a URL's password hidden)."""
        target = self.target
        return target.describe() if isinstance(target, PostgresWarehouse) else str(target)

    def exists(self) -> bool:
        """Whether there is a warehouse to read (a PostgreSQL schema is created on first use)."""
        target = self.target
        return isinstance(target, PostgresWarehouse) or target.exists()

    @property
    def wait_s(self) -> float:
        """How long opening waits for another holder (see :func:`open_warehouse`)."""
        return self.lock_wait_s or float(os.environ.get("HYBRID_WAREHOUSE_LOCK_WAIT_S") or DEFAULT_LOCK_WAIT_S)

    @contextmanager
    def connect(self, read_only: bool = False, *, wait_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A raw connection, for tools and tests that query the tables directly. ``wait_s``: how
        long to wait for another holder (default :attr:`wait_s`), then :class:`WarehouseLockTimeout`."""
        with open_warehouse(self.target, read_only=read_only,
                            wait_s=self.wait_s if wait_s is None else wait_s) as connection:
            yield connection

    @contextmanager
    def session(self, read_only: bool = False, *, wait_s: float | None = None) -> Iterator[WarehouseSession]:
        """Several statements under one connection (one process holds the file, or the writer lock,
        meanwhile); ``wait_s`` as for :meth:`connect` (the spend ledger waits briefly: its journal
        keeps what it could not write)."""
        with self.connect(read_only=read_only, wait_s=wait_s) as connection:
            yield WarehouseSession(connection, postgres=isinstance(self.target, PostgresWarehouse))

    def clock_ns(self) -> int:
        """Now, in nanoseconds since the epoch, on the warehouse's clock: the PostgreSQL server's
        (microsecond resolution), which orders writes from several hosts whatever their own clocks
        say; this host's for a DuckDB file (one host holds it)."""
        target = self.target
        if not isinstance(target, PostgresWarehouse):
            return time.time_ns()
        _, (micros,) = _on_reader_connection(target, self.wait_s,
                                             "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
        return int(micros) * 1000

    def lease(self, name: str, *, shared: bool = False) -> Callable[[], None]:
        """Hold a lease on ``name`` (an open spend ledger's id; ``shared``: one of many readers of
        an artifact version) until the returned function is called or the process dies: on
        PostgreSQL a session advisory lock on a connection of its own, which
        :meth:`WarehouseSession.leased` sees from every host, and which the server drops with a
        killed process's socket. On a DuckDB file there is nothing to hold."""
        target = self.target
        if not isinstance(target, PostgresWarehouse):
            return lambda: None
        key = advisory_key(f"hybrid-lease:{name}")
        if shared:  # many short reads: one connection per process holds them all
            holder, _ = _on_reader_connection(target, self.wait_s, "SELECT pg_advisory_lock_shared(%s)", (key,))

            def release() -> None:
                if _READERS.get(target, (None,))[0] is holder:  # else the lease went with its connection
                    _on_reader_connection(target, self.wait_s, "SELECT pg_advisory_unlock_shared(%s)", (key,))
            return release
        connection = target.connect(wait_s=self.wait_s)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
        return connection.close

    def try_lease(self, name: str) -> Any:
        """The lease on ``name`` when no process holds it: a connection whose ``close()`` gives it
        back; None when another process holds it, and always on a DuckDB file (see :meth:`lease`)."""
        target = self.target
        if not isinstance(target, PostgresWarehouse):
            return None
        connection = target.connect(wait_s=self.wait_s)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (advisory_key(f"hybrid-lease:{name}"),))
            if cursor.fetchone()[0]:
                return connection
        connection.close()
        return None

    def landing_record(self, partition_key: str, zone: str = "landing") -> LandingRecord | None:
        with self.session(read_only=True) as session:
            return session.landing_record(partition_key, zone)

    def features_in_arrival_order(self) -> pl.DataFrame:
        with self.session(read_only=True) as session:
            return session.features_in_arrival_order()

    def log_experiment(self, run_id: str, asset: str, params: dict[str, Any], figures: dict[str, Any]) -> None:
        """Append one row to the experiment log (every kernel/model run, its params and figures)."""
        with self.session() as session:
            session.log_experiment(run_id, asset, params, figures)

    def spent_usd(self, *, run_id: str | None = None) -> float:
        """Estimated USD recorded for one run (``run_id``) or, without it, today (UTC) across runs."""
        with self.session(read_only=True) as session:
            return session.spent_usd(run_id=run_id)

    def failure_rate(self, *, run_id: str | None = None) -> tuple[int, int]:
        """(failed submissions, tasks that ran) for one run, or today (UTC) across runs."""
        with self.session(read_only=True) as session:
            return session.failure_rate(run_id=run_id)

    def task_latency(self, device: str, *, last: int = 1000) -> tuple[float, int] | None:
        """Median creation-to-end seconds of ``device``'s recent completed tasks, and how many."""
        with self.session(read_only=True) as session:
            return session.task_latency(device, last=last)

    def device_telemetry(self, *, run_id: str | None = None) -> list[dict[str, Any]]:
        """Queue and run times and failures per provider and device (see the session's method)."""
        with self.session(read_only=True) as session:
            return session.device_telemetry(run_id=run_id)
