"""The DuckDB warehouse under concurrent writers: real processes, a real file, no lost rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hybrid_resources.data.warehouse import Warehouse, open_warehouse
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
