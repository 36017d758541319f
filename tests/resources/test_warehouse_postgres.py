"""The warehouse on a real PostgreSQL server (``HYBRID_WAREHOUSE_URL``): the module's statements
on PostgreSQL's tables, one writer at a time across processes (and a killed writer's lock given
back), a schema from before upgraded, and the password kept out of every message."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback

import numpy as np
import polars as pl
import pytest

from hybrid_resources.data import warehouse as warehouse_module
from hybrid_resources.data.warehouse import (
    LandingRecord,
    PostgresWarehouse,
    Warehouse,
    WarehouseLockTimeout,
    WarehouseUnavailable,
)
from tests.conftest import REPO, start_when_ready


def warehouse_url(server, schema: str = "hybrid") -> str:
    return f"postgresql://{server.user}@127.0.0.1:{server.port}/{server.db}?schema={schema}"


@pytest.fixture
def pg_warehouse(postgres_server, monkeypatch, tmp_path) -> Warehouse:
    """A Warehouse on the server's database, schema ``hybrid``; the password from PGPASSWORD."""
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    monkeypatch.setenv("HYBRID_DATA_DIR", str(tmp_path / "data"))
    return Warehouse(url=warehouse_url(postgres_server))


def test_a_url_names_the_schema_and_its_password_is_hidden():
    target = PostgresWarehouse.from_url(
        "postgresql://app:p%40ss%3Aw0rd@db.internal:5433/prod?schema=ml&sslmode=require")
    assert target.schema == "ml"
    assert target.url == "postgresql://app:p%40ss%3Aw0rd@db.internal:5433/prod?sslmode=require"
    for text in (target.describe(), target.hide("failed for p%40ss%3Aw0rd and p@ss:w0rd")):
        assert "p%40ss" not in text and "p@ss:w0rd" not in text and "***" in text
    assert PostgresWarehouse.from_url("postgresql://app@db/prod").schema == "hybrid"
    with pytest.raises(ValueError, match="postgresql://"):
        PostgresWarehouse.from_url("mysql://app@db/prod")
    with pytest.raises(ValueError, match="identifier"):
        PostgresWarehouse.from_url("postgresql://app@db/prod?schema=x;drop")


def test_the_url_comes_from_the_environment_unless_a_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("HYBRID_WAREHOUSE_URL", "postgresql://app@db/prod?schema=ml")
    assert Warehouse().target == PostgresWarehouse("postgresql://app@db/prod", "ml")
    assert Warehouse(path=str(tmp_path / "w.duckdb")).target == tmp_path / "w.duckdb"
    monkeypatch.delenv("HYBRID_WAREHOUSE_URL")
    monkeypatch.setenv("HYBRID_DATA_DIR", str(tmp_path))
    assert Warehouse().target == tmp_path / "warehouse.duckdb"


def test_every_kind_of_row_lands_in_postgres_tables(pg_warehouse, postgres_server, tmp_path):
    features = np.arange(6, dtype=np.float64).reshape(3, 2) / 7
    with pg_warehouse.session() as session:
        with session.transaction():
            session.record_landing(LandingRecord("first_csv", "first.csv", "h1", "ingested", 3),
                                   feature_names=["a", "b"], run_id="run-1", category_names=["colour"])
            session.replace_file_rows("h1", ["s1", "s2", "s3"], features, labels=["0", "1", "0"],
                                      categories=[["red"], [None], ["blue"]])
        session.reserve("ledger-1", "run-1", 2.5)
        session.reserve("ledger-1", "run-1", 1.0)
        entry = {"id": "e1", "ledger": "ledger-1", "run_id": "run-1", "asset": "quantum_kernel_train",
                 "device": "qpu/iqm/garnet", "tasks": 2, "shots": 200, "usd": 0.75}
        with session.transaction():
            assert session.record_spend_entries([entry]) == ["e1"]
        with session.transaction():
            assert session.record_spend_entries([entry]) == []  # a replay records nothing twice
        prediction = {"sample_id": ["s1"], "model_version": ["classical_baseline@abc"], "role": ["champion"],
                      "score": [0.4], "decision": ["1"], "decided_by": ["classical_baseline@abc"], "flagged": [None],
                      "latency_s": [0.001], "backend": ["classical"], "queue_s": [0.0], "source": ["new_csv"],
                      "run_id": ["run-2"]}
        session.upsert_predictions(pl.DataFrame(prediction))
        session.upsert_predictions(pl.DataFrame(prediction | {"score": [0.6]}))  # the same key: replaced

    with pg_warehouse.session(read_only=True) as session:
        assert session.landing_record("first_csv").status == "ingested"
        assert session.established_columns() == (["a", "b"], ["colour"])
        rows = session.ingested_rows().sort("sample_id")
        assert rows["sample_id"].to_list() == ["s1", "s2", "s3"]
        np.testing.assert_array_equal(np.array(rows["features"].to_list()), features)
        assert rows["categories"].to_list() == [["red"], [None], ["blue"]]
        (reservation,) = session.open_reservations()
        assert reservation["reserved_usd"] == 3.5 and reservation["spent_usd"] == 0.75
        assert session.spent_usd(run_id="run-1") == 0.75
        assert session.predictions()["score"].to_list() == [0.6]

    # PostgreSQL holds them, in the schema the URL named; the DuckDB file was never created.
    psql = lambda sql: postgres_server.client("psql", "-At", "-c", sql).strip()
    assert psql("SELECT count(*) FROM hybrid.raw_rows") == "3"
    assert psql("SELECT features[2] FROM hybrid.raw_rows WHERE sample_id = 's3'") == repr(float(features[2, 1]))
    assert psql("SELECT count(*) FROM hybrid.predictions") == "1"
    assert psql("SELECT count(*) FROM hybrid.spend_entries") == "1"
    assert psql("SELECT recorded_at IS NOT NULL FROM hybrid.landing_files") == "t"
    assert not pg_warehouse.file.exists()


def test_a_failed_transaction_leaves_nothing(pg_warehouse, postgres_server):
    with pytest.raises(RuntimeError, match="midway"):
        with pg_warehouse.session() as session, session.transaction():
            session.record_landing(LandingRecord("k", "k.csv", "h", "ingested", 1), feature_names=["a"], run_id="r")
            raise RuntimeError("midway")
    assert postgres_server.client("psql", "-At", "-c", "SELECT count(*) FROM hybrid.landing_files").strip() == "0"


HOLDER = """
import sys, time
from pathlib import Path
from hybrid_resources.data.warehouse import Warehouse
with Warehouse(url=sys.argv[1]).session() as session:
    session.log_experiment("holder", "test", {}, {})
    Path(sys.argv[2]).write_text("holding")
    time.sleep(600)
"""


def test_one_writer_at_a_time_across_processes_and_a_killed_writer_lets_go(pg_warehouse, postgres_server, tmp_path):
    holding = tmp_path / "holding"
    holder = start_when_ready([sys.executable, "-c", HOLDER, warehouse_url(postgres_server), str(holding)], holding,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        with pytest.raises(WarehouseLockTimeout, match="HYBRID_WAREHOUSE_LOCK_WAIT_S") as refused:
            with pg_warehouse.session(wait_s=0.5):
                pass
        assert postgres_server.password not in str(refused.value)
        with pg_warehouse.session(read_only=True) as reader:  # readers take no lock
            assert reader.connection.execute("SELECT count(*) FROM experiment_log").fetchone()[0] == 1
    finally:
        holder.kill()  # SIGKILL: its sockets close with it
        holder.wait()
        holder.stderr.close()
    with pg_warehouse.session(wait_s=60) as session:  # the kill closed its socket: the lock is free
        session.log_experiment("after", "test", {}, {})
    with pg_warehouse.session(read_only=True) as reader:
        assert reader.connection.execute("SELECT count(*) FROM experiment_log").fetchone()[0] == 2


def test_a_schema_from_before_gets_the_added_columns(pg_warehouse, postgres_server, monkeypatch):
    with pg_warehouse.session() as session:
        session.replace_file_rows("h1", ["s1"], np.ones((1, 2)), labels=["0"])
    postgres_server.client("psql", "-c", "ALTER TABLE hybrid.raw_rows DROP COLUMN categories",
                           "-c", "ALTER TABLE hybrid.approvals DROP COLUMN signed")
    monkeypatch.setattr(warehouse_module, "_PREPARED", set())  # a new process: its first writer upgrades
    with pg_warehouse.session():
        pass
    with pg_warehouse.session(read_only=True) as session:
        assert session.ingested_rows_with_ids(["s1"], other_than_file="x") == []
        assert session.connection.execute("SELECT categories FROM raw_rows").fetchall() == [([],)]
        assert session.approvals() == []


def test_a_wrong_password_fails_with_a_message_that_does_not_carry_it(postgres_server, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    secret = "not-the-password-7f3a"
    url = f"postgresql://{postgres_server.user}:{secret}@127.0.0.1:{postgres_server.port}/{postgres_server.db}"
    for read_only in (False, True):
        monkeypatch.setattr(warehouse_module, "_FOUND", {PostgresWarehouse(url)} if read_only else set())
        with pytest.raises(WarehouseUnavailable, match=r"cannot reach the warehouse .*\(1 attempt;") as failed:
            with Warehouse(url=url).session(read_only=read_only):
                pass  # a wrong password is not waited out
        shown = "".join(traceback.format_exception(failed.value))
        assert secret not in shown and "***" in shown


RESERVE_ON_ANOTHER_HOST = """
import sys, time
from pathlib import Path
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.quantum.backends import BackendConfig

url, prices, ready = sys.argv[1:4]
policy = CostPolicy(warehouse=Warehouse(url=url), run_budget_usd=5.0, daily_budget_usd=5.0, price_table_path=prices)
ledger = policy.ledger(run_id="other-host", asset="k", backend=BackendConfig("braket.local.qubit", shots=100))
ledger.admit(3, 100)
Path(ready).write_text("reserved")
time.sleep(600)  # the test kills this process here
"""


def test_a_reservation_on_another_host_holds_the_budget_until_that_host_dies(pg_warehouse, postgres_server,
                                                                            tmp_path):
    """Two hosts: separate data folders (so separate spend journals), one PostgreSQL warehouse. A
    live ledger on the other host is seen through its lease, not released for want of a journal
    here; once that host is killed its reservation no longer holds the budget."""
    from hybrid_resources.cost_policy import BudgetExceededError, CostPolicy
    from hybrid_resources.quantum.backends import BackendConfig
    from tests.conftest import priced_like_a_qpu

    prices = priced_like_a_qpu(tmp_path, device="braket.local.qubit", per_task=0.3, per_shot=0.01)  # $1.30 a task
    policy = CostPolicy(warehouse=pg_warehouse, run_budget_usd=5.0, daily_budget_usd=5.0, price_table_path=str(prices))
    backend = BackendConfig("braket.local.qubit", shots=100)
    other = tmp_path / "other-host"
    other.mkdir()
    holder = start_when_ready([sys.executable, "-c", RESERVE_ON_ANOTHER_HOST, warehouse_url(postgres_server),
                               str(prices), str(other / "ready")], other / "ready",
                              env={**os.environ, "PYTHONPATH": str(REPO), "HYBRID_DATA_DIR": str(other)})
    try:
        with policy.ledger(run_id="this-host", asset="k", backend=backend) as ledger:
            with pytest.raises(BudgetExceededError):
                ledger.admit(3, 100)  # $3.90 here + $3.90 reserved there > $5
    finally:
        holder.kill()  # SIGKILL: its sockets close with it
        holder.wait()
        holder.stderr.close()
    with policy.ledger(run_id="this-host", asset="k", backend=backend) as ledger:
        assert ledger.admit(3, 100).usd == pytest.approx(3.9)  # the dead host's reservation was released


INGEST_ON_A_HOST = """
import json, sys
from upath import UPath
from hybrid_assets.ingest.ingestion import ingest_file
from hybrid_resources.data.contract import DatasetContract
from hybrid_resources.data.paths import DataLayout
from hybrid_resources.data.warehouse import Warehouse

layout, warehouse, statuses = DataLayout.from_env(), Warehouse(), {}
for name in sys.argv[1:]:
    outcome = ingest_file(warehouse, UPath(layout.landing / name), name, layout=layout, contract=DatasetContract(),
                          run_id=str(layout.root))
    statuses[name] = outcome.status
    for step in range(5):
        warehouse.log_experiment(str(layout.root), name, {"step": step}, {"ok": True})
print(json.dumps(statuses))
"""


def test_two_hosts_ingesting_at_once_lose_nothing_and_take_a_shared_file_once(pg_warehouse, postgres_server,
                                                                            tmp_path):
    """Two "hosts" (own data folders, own landing zones) ingest at once into one PostgreSQL
    warehouse: every row lands once, and the same bytes landed on both are ingested by one and
    recorded as a duplicate by the other (the cross-file rule runs under the writer lock)."""
    import json

    from tests.bad_files import write_good_csv

    hosts, names = [tmp_path / "host-a", tmp_path / "host-b"], []
    for h, host in enumerate(hosts):
        (host / "landing").mkdir(parents=True)
        names.append([write_good_csv(host / "landing", n_rows=25, id_offset=1000 * (4 * h + i), seed=4 * h + i,
                                     name=f"{host.name}-{i}.csv").name for i in range(4)])
        names[h].append(write_good_csv(host / "landing", n_rows=25, id_offset=90000, seed=99,
                                       name=f"shared-{host.name}.csv").name)
    with pg_warehouse.session():
        pass  # the schema first, as make demo's first step does
    writers = [subprocess.Popen([sys.executable, "-c", INGEST_ON_A_HOST, *names[h]], cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(REPO), "HYBRID_DATA_DIR": str(host),
                                     "HYBRID_WAREHOUSE_URL": warehouse_url(postgres_server)})
               for h, host in enumerate(hosts)]
    statuses = {}
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err[-3000:]
        statuses |= json.loads(out.strip().splitlines()[-1])
    shared = {name: status for name, status in statuses.items() if name.startswith("shared-")}
    assert sorted(shared.values()) == ["duplicate", "ingested"], statuses
    assert [status for name, status in statuses.items() if name not in shared] == ["ingested"] * 8
    with pg_warehouse.session(read_only=True) as session:
        count = lambda sql: session.connection.execute(sql).fetchone()
        rows = "SELECT count(*), count(DISTINCT file_hash), count(DISTINCT sample_id) FROM raw_rows"
        assert count(rows) == (225, 9, 225)
        assert count("SELECT count(*) FROM landing_files WHERE status = 'ingested'") == (9,)
        assert count("SELECT count(*) FROM experiment_log") == (50,)


def test_a_server_that_cannot_be_reached_is_retried_then_named_without_its_password(monkeypatch):
    """Nothing listens on the port: the session retries with backoff for the wait it was given,
    then fails saying where, after how many attempts, and what waits longer."""
    from tests.conftest import free_port

    url = f"postgresql://app:not-the-password-5d1e@127.0.0.1:{free_port()}/warehouse"
    for read_only in (False, True):
        with pytest.raises(WarehouseUnavailable, match=r"\(\d+ attempts;.*HYBRID_WAREHOUSE_LOCK_WAIT_S") as failed:
            with Warehouse(url=url, lock_wait_s=1.0).session(read_only=read_only):
                pass
        message = str(failed.value)
        assert "127.0.0.1" in message and "not-the-password" not in message
        assert int(re.search(r"\((\d+) attempts;", message).group(1)) >= 2


def test_reader_leases_survive_a_dropped_connection(pg_warehouse, postgres_server):
    """Artifact reads lease their version on one kept connection; a server that drops it (a restart,
    an administrator) loses those leases, and the next read or clock opens it again."""
    def leased(*names):
        with pg_warehouse.session(read_only=True) as session:
            return session.leased(list(names))

    release = pg_warehouse.lease("artifact:kernel@v1", shared=True)
    assert leased("artifact:kernel@v1") == {"artifact:kernel@v1"}
    terminated = postgres_server.client("psql", "-At", "-c", "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                                        "WHERE locktype = 'advisory' AND mode = 'ShareLock'")
    assert terminated.strip() == "1"
    release()  # its lease went with the connection: nothing to give back, no error
    assert pg_warehouse.clock_ns() > 0  # opened again
    again = pg_warehouse.lease("artifact:kernel@v2", shared=True)
    assert leased("artifact:kernel@v1", "artifact:kernel@v2") == {"artifact:kernel@v2"}
    again()
    assert leased("artifact:kernel@v2") == set()
