"""The production instance (deploy/dagster.yaml) on a real PostgreSQL server: the pipeline, the
landing sensor and `hybrid-audit` run against it, and a secret in the environment reaches none of it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dagster import (
    DagsterInstance,
    QueuedRunCoordinator,
    SensorResult,
    build_sensor_context,
)

from hybrid_assets.common.partitions import safe_partition_key
from tests.bad_files import write_good_csv
from tests.conftest import (
    REPO,
    LocalProject,
    free_port,
    start_service,
    stop_process_group,
)
from tests.project.test_webserver import graphql

CANARY = "canary-PG-SECRET-5e81b7"


def test_the_pipeline_sensor_and_audit_run_on_a_postgres_instance(postgres_server, tmp_path, monkeypatch):
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    (data / "landing").mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    # The warehouse shares the instance's server and database, in its own schema (password from PGPASSWORD).
    warehouse_url = (f"postgresql://{postgres_server.user}@127.0.0.1:{postgres_server.port}/{postgres_server.db}"
                     "?schema=hybrid")
    env = {"DAGSTER_HOME": str(home), "HYBRID_DATA_DIR": str(data), **postgres_server.env,
           "HYBRID_WAREHOUSE_URL": warehouse_url, "PGPASSWORD": postgres_server.password,
           # Credentials a quantum provider would read from the environment: they must never leak.
           "AWS_SECRET_ACCESS_KEY": CANARY, "HYBRID_QUANTUM_API_TOKEN": CANARY}
    project = LocalProject(home, data, {**os.environ, **env})
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    write_good_csv(data / "landing", n_rows=40, name="first.csv")
    demo = project.command("hybrid-demo")
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]

    from hybrid_assets.definitions import defs
    from hybrid_assets.ingest.sensors import landing_sensor

    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        demo_runs = instance.get_runs()
        assert {run.job_name for run in demo_runs} >= {"ingest_landing_file", "refresh_models"}

        # The landing sensor on this instance: the demo's file is already ingested and starts
        # nothing; a new file becomes one run once its size is stable (two ticks).
        write_good_csv(data / "landing", n_rows=30, id_offset=1000, seed=3, name="second.csv")
        cursor, result = None, None
        for _ in range(2):
            context = build_sensor_context(instance=instance, cursor=cursor)
            result = landing_sensor(context)
            cursor = result.cursor if isinstance(result, SensorResult) else context.cursor
        assert isinstance(result, SensorResult)
        (request,) = result.run_requests
        assert request.partition_key == safe_partition_key("second.csv")
        for partitions in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(partitions.partitions_def_name, list(partitions.partition_keys))
        ingested = defs.resolve_job_def("ingest_landing_file").execute_in_process(
            partition_key=request.partition_key, tags=request.tags, instance=instance)
        assert ingested.success
        run_ids = {run.run_id for run in instance.get_runs()}
        assert len(run_ids) == len(demo_runs) + 1

    # Every run is a row in PostgreSQL, and no SQLite storage was created beside the instance.
    stored = set(postgres_server.client("psql", "-At", "-c", "SELECT run_id FROM runs").split())
    assert stored == run_ids
    assert not (home / "history").exists() and not (home / "schedules").exists()

    # The warehouse is PostgreSQL's too: both landing files, the features and the registered
    # models are rows of schema `hybrid`, and no DuckDB file was written.
    psql = lambda sql: postgres_server.client("psql", "-At", "-c", sql).split()
    assert set(psql("SELECT file_name FROM hybrid.landing_files WHERE status = 'ingested'")) == {"first.csv",
                                                                                                 "second.csv"}
    assert int(psql("SELECT count(*) FROM hybrid.features")[0]) == 40
    assert set(psql("SELECT asset FROM hybrid.model_registry")) >= {"classical_baseline", "quantum_svm"}
    assert not list(data.rglob("*.duckdb")) and not list(data.rglob("*.duckdb.wal"))

    # hybrid-audit reads the lineage from PostgreSQL: the model's trail back to the landing file.
    audit = project.command("hybrid-audit", "--format", "json")
    assert audit.returncode == 0, audit.stderr[-3000:]
    trail = json.loads(audit.stdout)
    assert trail["target"]["asset"] == "quantum_svm" and trail["target"]["run_id"] in stored
    assert {node["asset"] for node in trail["chain"]} >= {"quantum_svm", "features", "raw_samples"}
    assert {f["file_name"] for f in trail["landing_files"]} == {"first.csv"}

    # The canary is nowhere: the whole database (event log, runs, schedules), which does record
    # the work (the landing file's name), the instance folder, the data root and the reports.
    dump = postgres_server.client("pg_dump", "--data-only")
    assert "first.csv" in dump and "second.csv" in dump
    assert CANARY not in dump
    for root in (home, data):
        for path in root.rglob("*"):
            if path.is_file():
                assert CANARY.encode() not in path.read_bytes(), path
    assert CANARY not in audit.stdout + demo.stdout + demo.stderr

    # What the compose file runs, as plain processes: the image's command (a gRPC code server) and
    # a webserver loading it through a grpc_server workspace entry like deploy/workspace.yaml, on
    # this instance. The webserver lists the code location's jobs and the runs stored in PostgreSQL.
    code_port, web_port = free_port(), free_port()
    image_cmd = re.search(r"^CMD (\[.*\])$", (REPO / "Dockerfile").read_text(), re.M).group(1)
    command = [arg.replace("0.0.0.0", "127.0.0.1").replace("4000", str(code_port)) for arg in json.loads(image_cmd)]
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - grpc_server: {{host: 127.0.0.1, port: {code_port}, "
                         "location_name: hybrid_quantum}\n")
    bin_dir = Path(sys.executable).parent
    processes = [start_service([str(bin_dir / command[0]), *command[1:]], cwd=tmp_path, env=project.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                 start_service([str(bin_dir / "dagster-webserver"), "-w", str(workspace), "-p", str(web_port)],
                               cwd=tmp_path, env=project.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    query = ("{ repositoriesOrError { ... on RepositoryConnection { nodes { location { name } jobs { name } } } } "
             "runsOrError { ... on Runs { results { runId status } } } }")
    try:
        deadline, served = time.monotonic() + 180, None
        while time.monotonic() < deadline:
            assert all(process.poll() is None for process in processes), "the code server or webserver exited"
            try:
                served = graphql(web_port, query)["data"]
                if served["repositoriesOrError"].get("nodes"):
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(0.5)
        (repository,) = served["repositoriesOrError"]["nodes"]
        assert repository["location"]["name"] == "hybrid_quantum"
        assert {"refresh_models", "ingest_landing_file"} <= {job["name"] for job in repository["jobs"]}
        listed = served["runsOrError"]["results"]
        assert {run["runId"] for run in listed} == stored and {run["status"] for run in listed} == {"SUCCESS"}
    finally:
        for process in processes:
            stop_process_group(process, timeout_s=60)
