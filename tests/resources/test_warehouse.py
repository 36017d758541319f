"""The DuckDB warehouse under concurrent writers: real processes, a real file, no lost rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hybrid_resources.data import warehouse
from hybrid_resources.data.warehouse import SCHEMA, UPGRADES, Warehouse, open_warehouse, upgrade_schema
from tests.bad_files import write_good_csv

WRITER = """
import sys
from upath import UPath
from hybrid_assets.ingest.ingestion import ingest_file
from hybrid_resources.data.contract import DatasetContract
from hybrid_resources.data.paths import DataLayout
from hybrid_resources.data.warehouse import Warehouse

layout = DataLayout.from_env()
warehouse = Warehouse()
for name in sys.argv[1:]:
    outcome = ingest_file(warehouse, UPath(layout.landing / name), name, layout=layout,
                          contract=DatasetContract(), run_id="writer")
    assert outcome.status == "ingested", outcome
    for step in range(5):
        warehouse.log_experiment("writer", name, {"step": step}, {"ok": True})
print("done")
"""


def test_two_processes_writing_at_once_lose_nothing(data_layout):
    names = [write_good_csv(data_layout.landing, n_rows=25, id_offset=1000 * i, name=f"part{i}.csv").name
             for i in range(8)]
    Warehouse().log_experiment("setup", "setup", {}, {})  # create the file and schema first
    env = {**os.environ, "HYBRID_DATA_DIR": str(data_layout.root)}
    repo = Path(__file__).parents[2]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, *names[i::2]], cwd=repo, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert out.strip() == "done"

    with Warehouse().connect(read_only=True) as connection:
        assert connection.execute("SELECT count(*), count(DISTINCT file_hash) FROM raw_rows").fetchone() == (200, 8)
        assert connection.execute("SELECT count(*) FROM landing_files WHERE status = 'ingested'").fetchone() == (8,)
        assert connection.execute("SELECT count(*) FROM experiment_log WHERE run_id = 'writer'").fetchone() == (40,)


def test_a_held_lock_is_waited_for_not_failed(data_layout):
    """While another process holds the file, opening retries until it is released."""
    path = data_layout.warehouse
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(2); c.close()",
         str(path)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with open_warehouse(path) as connection:  # blocks with backoff until the holder exits
        assert connection.execute("SELECT 1").fetchone() == (1,)
    assert holder.wait(timeout=30) == 0


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    """A real process holding the DuckDB file's lock for ``seconds``."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(float(sys.argv[2]))", str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_lock_held_past_the_wait_fails_with_the_file_and_the_setting_that_waits_longer(data_layout, monkeypatch):
    from hybrid_resources.data.warehouse import WarehouseLockTimeout

    Warehouse().spent_usd()  # the file exists
    holder = _hold(data_layout.warehouse, 30)
    try:
        monkeypatch.setenv("HYBRID_WAREHOUSE_LOCK_WAIT_S", "1")
        try:
            Warehouse().spent_usd()
        except WarehouseLockTimeout as error:
            message = str(error)
        else:
            raise AssertionError("opening a held warehouse did not time out")
        assert str(data_layout.warehouse) in message and "HYBRID_WAREHOUSE_LOCK_WAIT_S" in message
        assert Warehouse(lock_wait_s=1).wait_s == 1 and Warehouse().wait_s == 1
    finally:
        holder.kill()
        holder.wait()
    monkeypatch.delenv("HYBRID_WAREHOUSE_LOCK_WAIT_S")
    assert Warehouse().wait_s == 120 and Warehouse().spent_usd() == 0.0


def test_features_are_computed_with_the_warehouse_let_go(data_layout, instance, monkeypatch):
    """While ``features`` builds its table, another process can write to the warehouse: the step
    holds the file only to read its input and to write its result."""
    from dagster import materialize

    from hybrid_assets.definitions import all_assets
    from hybrid_assets.ingest import assets as ingest_assets
    from tests.conftest import RESOURCES, ingest

    write_good_csv(data_layout.landing, n_rows=30, n_features=4, seed=2, name="train.csv")
    ingest(instance, "train.csv")
    writes = []
    real_build = ingest_assets.build_features

    def build_while_another_process_writes(*args, **kwargs):
        writer = subprocess.run(
            [sys.executable, "-c", "import sys; from hybrid_resources.data.warehouse import Warehouse; "
             "Warehouse(path=sys.argv[1], lock_wait_s=5).log_experiment('other', 'writer', {}, {})",
             str(data_layout.warehouse)], capture_output=True, text=True, timeout=120)
        writes.append(writer.returncode)
        assert writer.returncode == 0, writer.stderr
        return real_build(*args, **kwargs)

    monkeypatch.setattr(ingest_assets, "build_features", build_while_another_process_writes)
    assert materialize(all_assets, selection=["features"], instance=instance, resources=RESOURCES).success
    assert writes == [0]
    with Warehouse().connect(read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM experiment_log WHERE run_id = 'other'").fetchone() == (1,)
        assert connection.execute("SELECT count(*) FROM features").fetchone() == (30,)


KILLED_AFTER_OPEN = """
import os, signal, sys
from pathlib import Path
from hybrid_resources.data.warehouse import open_warehouse
with open_warehouse(Path(sys.argv[1])):
    os.kill(os.getpid(), signal.SIGKILL)  # before any checkpoint: what the schema wrote is in the WAL only
"""


def killed_right_after_opening(path: Path) -> None:
    """Open the warehouse at ``path`` in another process that is SIGKILLed as soon as it is open."""
    done = subprocess.run([sys.executable, "-c", KILLED_AFTER_OPEN, str(path)], cwd=Path(__file__).parents[2],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr[-2000:]


def test_a_process_killed_right_after_creating_the_warehouse_leaves_one_that_opens(tmp_path):
    """DuckDB could not replay an ALTER ... DEFAULT [] from its write-ahead log: a worker killed in
    its first seconds left a warehouse that no run could open again."""
    path = tmp_path / "warehouse.duckdb"
    killed_right_after_opening(path)
    with open_warehouse(path) as connection:
        columns = set(connection.execute("SELECT table_name, column_name FROM duckdb_columns()").fetchall())
    assert {(table, column) for table, column, _, _ in UPGRADES} <= columns


def test_a_warehouse_from_before_the_added_columns_is_upgraded_once_and_survives_a_kill(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with open_warehouse(path) as connection:
        connection.execute("INSERT INTO raw_rows (file_hash, row_number, sample_id, label, features) "
                           "VALUES ('f', 0, 's0', '1', [1.0, 2.0])")
        for table, column, _, _ in UPGRADES:  # as the first release created the tables
            connection.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        connection.execute("DROP TABLE warehouse_schema")  # which recorded no fingerprint
        connection.execute("CHECKPOINT")
    killed_right_after_opening(path)  # the upgrade ran in it, then the kill
    with open_warehouse(path) as connection:
        assert connection.execute("SELECT sample_id, categories FROM raw_rows").fetchall() == [("s0", [])]
        assert upgrade_schema(connection) == []  # nothing left to add


def test_a_file_that_records_this_schema_is_not_prepared_again_and_one_from_another_is(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    has_log = "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'experiment_log'"
    with open_warehouse(path) as connection:
        assert connection.execute("SELECT * FROM warehouse_schema").fetchall() == [(warehouse.SCHEMA_FINGERPRINT,)]
        connection.execute("DROP TABLE experiment_log")  # behind the fingerprint's back
    with open_warehouse(path) as connection:  # the fingerprint matches: the schema is not run again
        assert connection.execute(has_log).fetchone() == (0,)
    monkeypatch.setattr(warehouse, "SCHEMA_FINGERPRINT", "another-schema")  # code with other tables
    with open_warehouse(path) as connection:
        assert connection.execute(has_log).fetchone() == (1,)
        assert connection.execute("SELECT * FROM warehouse_schema").fetchall() == [("another-schema",)]


def test_a_reader_of_a_file_whose_first_writer_died_creating_the_tables_creates_them(tmp_path):
    """Each CREATE TABLE of the schema commits on its own: a first writer killed halfway leaves a
    file with some tables. A read-only session on it (the first thing an ingest does) creates the
    rest, as for a missing file, instead of failing on every retry (seen under load in the daemon
    kill test)."""
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute(SCHEMA.split(";")[0])  # the first table, and then killed
    with Warehouse(path=str(path)).session(read_only=True) as session:
        assert session.established_columns() is None
        assert session.spent_usd() == 0.0
    with open_warehouse(path, read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM experiment_log").fetchone() == (0,)
