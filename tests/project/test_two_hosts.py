"""Two hosts that share only a PostgreSQL server (the Dagster instance's storage and the warehouse)
and an S3-compatible object store (the data root): each is a separate process tree with its own
DAGSTER_HOME, working folder and local scratch. They run the demo at the same time, then the second
audits (re-scoring the model from the object store), consumes the Redis scoring stream and rolls
the champion back; nothing but scratch and the instance's config file is written to either host's
disk."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import redis
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from hybrid_assets.executors import POOLS
from tests.conftest import BUCKET, REPO, S3_SECRET, make_signers
from tests.resources.test_warehouse_postgres import warehouse_url


@dataclass
class Host:
    """One host: its own folder (DAGSTER_HOME, working folder, scratch) and environment."""

    folder: Path
    env: dict[str, str]

    def start(self, name: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(Path(sys.executable).with_name(name)), *args], env=self.env,
                                cwd=self.folder / "work", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess:
        process = self.start(name, *args)
        stdout, stderr = process.communicate(timeout=600)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def local_files(self) -> set[str]:
        """Every file on this host's disk outside its scratch folder, relative to the host folder."""
        return {str(path.relative_to(self.folder)) for path in self.folder.rglob("*")
                if path.is_file() and not path.is_relative_to(self.folder / "scratch")}


def make_host(tmp_path: Path, name: str, shared: dict[str, str]) -> Host:
    folder = tmp_path / name
    for sub in ("home", "work", "scratch"):
        (folder / sub).mkdir(parents=True)
    (folder / "home" / "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text()
                                                  + (REPO / "deploy" / "compute_logs_s3.yaml").read_text())
    env = {**os.environ, **shared, "DAGSTER_HOME": str(folder / "home"), "HYBRID_SCRATCH_DIR": str(folder / "scratch")}
    env.pop("HYBRID_WAREHOUSE_PATH", None)
    return Host(folder, env)


def consume_five_streamed_records(host: Host, s3_server, redis_url: str) -> None:
    """Five rows of the example scoring file, pushed to the Redis stream (new sample ids
    ``streamed-*``) and consumed by one ``score_stream_job`` run on ``host``."""
    scoring = pl.read_csv(s3_server.client.get_object(Bucket=BUCKET, Key="shared/scoring/breast_cancer_new.csv")["Body"])
    stream = redis.Redis.from_url(redis_url, decode_responses=True)
    for row in scoring.head(5).iter_rows(named=True):
        features = {name: value for name, value in row.items() if name != "sample_id"}
        stream.xadd("hybrid:scoring", {"sample_id": f"streamed-{row['sample_id']}", "features": json.dumps(features)})
    consumed = host.run("dagster", "job", "execute", "-m", "hybrid_assets.definitions", "-j", "score_stream_job")
    assert consumed.returncode == 0, consumed.stderr[-3000:]


def hand_in_signed(host: Host, signers, action: str, target: str, *, by: str) -> None:
    """``hybrid-registry sign`` as ``by``, then ``hybrid-registry ACTION --statement``, both on ``host``."""
    statement = signers.folder / f"{action}.json"
    signed = host.run("hybrid-registry", *signers.sign_args(action, target, by=by, out=statement))
    assert signed.returncode == 0, signed.stderr
    handed = host.run("hybrid-registry", action, "--statement", str(statement))
    assert handed.returncode == 0, handed.stdout + handed.stderr


def test_two_hosts_share_postgres_and_the_object_store_only(postgres_server, s3_server, redis_url, tmp_path,
                                                           monkeypatch):
    signers = make_signers(tmp_path / "keys")
    shared = {**postgres_server.env, **s3_server.env, "PGPASSWORD": postgres_server.password,
              "HYBRID_DATA_DIR": f"s3://{BUCKET}/shared", "DAGSTER_COMPUTE_LOGS_BUCKET": BUCKET,
              "HYBRID_WAREHOUSE_URL": warehouse_url(postgres_server),
              "HYBRID_APPROVERS_FILE": str(signers.file),
              "HYBRID_MIN_MARGIN": "-1", "HYBRID_REDIS_URL": redis_url}  # the quantum model passes its gates: it scores in shadow, and may be promoted
    first, second = make_host(tmp_path, "host-a", shared), make_host(tmp_path, "host-b", shared)

    # Deploying sets every pool's limit once (as deploy/docker-compose.yaml's daemon does): Dagster
    # creates a pool's row on first use otherwise, and two hosts doing that at once on PostgreSQL
    # collide (dagster-io/dagster#33552).
    for pool in POOLS:
        assert first.run("dagster", "instance", "concurrency", "set", pool, "1").returncode == 0

    # Both hosts run the whole demo at once on the same (empty) shared root.
    demos = [host.start("hybrid-demo") for host in (first, second)]
    outputs = [process.communicate(timeout=900) for process in demos]
    for process, (stdout, stderr) in zip(demos, outputs):
        assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
        assert not re.search(r"\block(ed|s)?\b", stdout + stderr, re.IGNORECASE), stdout[-3000:] + stderr[-3000:]
        assert f"data, artifacts: s3://{BUCKET}/shared" in stdout

    psql = lambda sql: postgres_server.client("psql", "-At", "-c", sql).split()
    # No lost and no duplicated rows: the example landed once, its rows once, each scored row once per role.
    assert psql("SELECT file_name || ':' || status FROM hybrid.landing_files") == ["breast_cancer.csv:ingested"]
    assert psql("SELECT count(*), count(DISTINCT sample_id) FROM hybrid.raw_rows")[0] == "569|569"
    assert psql("SELECT count(*) FROM (SELECT sample_id, role, model_version FROM hybrid.predictions "
                "GROUP BY 1, 2, 3 HAVING count(*) > 1) AS duplicated") == ["0"]
    assert sorted(psql("SELECT role || ':' || count(*) FROM hybrid.predictions GROUP BY role")) == [
        "champion:200", "shadow:200"]
    # The same models: both hosts' refreshes computed the same content, so one version per model.
    registered = psql("SELECT asset || '@' || count(DISTINCT version_id) FROM hybrid.model_registry GROUP BY asset")
    assert sorted(registered) == ["classical_baseline@1", "quantum_svm@1"]

    # The second host audits the model the first host may have written, re-scored from the object store.
    audit = second.run("hybrid-audit", "quantum_svm", "--rescore", "--format", "json")
    assert audit.returncode == 0, audit.stderr[-3000:]
    rescored = json.loads(audit.stdout)
    assert rescored["reproduced"] is True and rescored["rescored"] == rescored["recorded"]

    # ... consumes the scoring stream with the models the bucket holds ...
    consume_five_streamed_records(second, s3_server, redis_url)
    assert psql("SELECT count(*) FROM hybrid.predictions WHERE source = 'stream:hybrid:scoring' "
                "AND role = 'champion' AND sample_id LIKE 'streamed-%'") == ["5"]

    # ... and, signed by two people, promotes the quantum model, then rolls back to the classical one.
    quantum, classical = (psql(f"SELECT version_id FROM hybrid.model_registry WHERE asset = '{asset}'")[0]
                          for asset in ("quantum_svm", "classical_baseline"))
    for action, target, by in (("approve", f"promote:{quantum}", "alice"), ("promote", quantum, "bob"),
                               ("rollback", "", "bob")):
        hand_in_signed(second, signers, action, target, by=by)
    assert psql("SELECT version_id FROM hybrid.model_registry WHERE status = 'champion'") == [classical]
    assert {"rollback"} <= set(psql("SELECT action FROM hybrid.registry_events WHERE actor = 'bob'"))

    # Nothing but scratch on either host: its instance config file, no warehouse, artifact or log.
    for host in (first, second):
        assert host.local_files() == {"home/dagster.yaml"}, host.local_files()
    stored = {item["Key"] for item in s3_server.client.list_objects_v2(Bucket=BUCKET, Prefix="shared/",
                                                                        MaxKeys=1000)["Contents"]}
    assert {"shared/landing/breast_cancer.csv", "shared/artifacts/quantum_svm/latest.json"} <= stored
    assert any(key.startswith("shared/predictions/") for key in stored)
    for name, value in {**shared, "HYBRID_SCRATCH_DIR": first.env["HYBRID_SCRATCH_DIR"]}.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.from_config(str(first.folder / "home")) as instance:  # step logs go to the bucket
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        # One refresh of the models per host, and every refresh_models run succeeded: besides those
        # two, a host's second process runs the noise spread (a run of that asset alone) when its
        # host's refresh wrote the newest materializations of what it reads, which the other
        # host's refresh, running at the same time, may have overwritten.
        refreshes = instance.get_runs(RunsFilter(job_name="refresh_models"))
        assert {run.status for run in refreshes} == {DagsterRunStatus.SUCCESS}
        models = [run for run in refreshes if AssetKey("quantum_svm") in (run.asset_selection or ())]
        assert len(models) == 2
        assert all(run.asset_selection == {AssetKey("noisy_kernel_spread")} for run in refreshes if run not in models)
    dump = postgres_server.client("pg_dump", "--data-only")
    assert S3_SECRET not in dump and S3_SECRET not in "".join(out + err for out, err in outputs) + audit.stdout
