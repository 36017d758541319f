"""Shared fixtures: every test gets its own data root (HYBRID_DATA_DIR) and small datasets."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hybrid_resources.data.paths import DataLayout


@pytest.fixture
def data_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataLayout:
    """A fresh HYBRID_DATA_DIR with landing/, quarantine/, artifacts/."""
    monkeypatch.setenv("HYBRID_DATA_DIR", str(tmp_path / "data"))
    return DataLayout.from_env().ensure()


def blobs_frame(n_rows: int = 60, n_features: int = 5, seed: int = 0, id_offset: int = 0,
                labels: tuple[str, str] = ("0", "1")) -> pl.DataFrame:
    """Two well-separated Gaussian blobs: a dataset both models should classify well."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_rows) % 2
    X = rng.normal(size=(n_rows, n_features)) + 2.5 * y[:, None]
    frame = pl.DataFrame(X, schema=[f"f{i}" for i in range(n_features)], orient="row")
    return frame.with_columns(
        pl.Series("sample_id", [f"s{id_offset + i:05d}" for i in range(n_rows)]),
        pl.Series("label", [labels[v] for v in y]),
    ).select("sample_id", "label", *[f"f{i}" for i in range(n_features)])


@pytest.fixture
def blobs() -> pl.DataFrame:
    return blobs_frame()


REPO = Path(__file__).parents[1]


@dataclass(frozen=True)
class LocalProject:
    """What `make demo` sets up: a DAGSTER_HOME with our dagster.yaml and a data root with landing/."""

    home: Path
    data: Path
    env: dict[str, str]

    def command(self, name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        """Run one of the venv's console scripts (hybrid-demo, hybrid-audit, ...) in this project."""
        executable = Path(sys.executable).with_name(name)
        return subprocess.run([str(executable), *args], env=self.env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)


@pytest.fixture
def local_project(tmp_path: Path) -> LocalProject:
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    (data / "landing").mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    # The demo skips pattern 3 (about 5 s of CPU per demo on a 2-core CI running three workers):
    # these tests look at the models. A test about pattern 3 or the whole demo sets the variable
    # (tests/cli/test_demo.py runs it beside the refresh and after the scoring; the daemon test
    # after `make demo` runs it after the scoring).
    return LocalProject(home, data, {**os.environ, "DAGSTER_HOME": str(home), "HYBRID_DATA_DIR": str(data),
                                     "HYBRID_DEMO_PATTERN3": "off"})


def priced_like_a_qpu(tmp_path: Path, device: str = "default.qubit", per_task: float = 0.30,
                      per_shot: float = 0.08) -> Path:
    """A copy of the shipped price table in which a local simulator is priced like a QPU, so the
    real cost machinery (admission, ledger, budgets) runs against a device that costs nothing."""
    from hybrid_resources.cost_policy import load_price_table

    table = load_price_table()
    table["free_devices"] = [name for name in table["free_devices"] if name != device]
    table["devices"][device] = {"per_task": per_task, "per_shot": per_shot}
    path = tmp_path / "priced_prices.json"
    path.write_text(json.dumps(table))
    return path


@pytest.fixture
def priced_policy(tmp_path: Path):
    """A CostPolicy with default.qubit priced like a QPU, its own warehouse file, $1,000 budgets."""
    from hybrid_resources.cost_policy import CostPolicy
    from hybrid_resources.data.warehouse import Warehouse

    return CostPolicy(warehouse=Warehouse(path=str(tmp_path / "ledger.duckdb")), run_budget_usd=1000.0,
                      daily_budget_usd=1000.0, price_table_path=str(priced_like_a_qpu(tmp_path)))


def latest_artifact(artifacts_root: Path, asset: str):
    """The value an asset's latest materialization stored (its newest version)."""
    from hybrid_resources.data.artifacts import ArtifactStore

    return ArtifactStore(artifacts_root).read([asset])


# ---------------------------------------------------------------------------------------
# Materializing the graph on a real (test) instance
# ---------------------------------------------------------------------------------------

def _resources() -> dict:
    from hybrid_resources.compute import DaskCluster
    from hybrid_resources.cost_policy import CostPolicy
    from hybrid_resources.data.artifacts import ArtifactIOManager
    from hybrid_resources.data.warehouse import Warehouse
    from hybrid_resources.gate_policy import GatePolicy
    from hybrid_resources.quantum.backends import QuantumBackend

    warehouse = Warehouse()
    return {"io_manager": ArtifactIOManager(), "warehouse": warehouse, "quantum_backend": QuantumBackend(),
            "cost_policy": CostPolicy(warehouse=warehouse), "gate_policy": GatePolicy(),
            "hardware_backend": QuantumBackend(device_name="braket.aws.qubit", shots=100), "dask": DaskCluster()}


RESOURCES = _resources()
SMALL_RUN_CONFIG = {"ops": {"reduced_embeddings": {"config": {"n_qubits": 3}}}}


def _downstream():
    """What refresh_models refreshes: everything downstream of the landing rows but the groups
    with jobs of their own."""
    from hybrid_assets.definitions import refresh_models_job

    return refresh_models_job.selection


DOWNSTREAM = _downstream()


def ingest(instance, *names: str) -> dict[str, str]:
    """Materialize the raw_samples partition of each landing file; returns {file: status}."""
    from dagster import materialize

    from hybrid_assets.common.partitions import (
        landing_files_partitions,
        safe_partition_key,
    )
    from hybrid_assets.ingest.assets import raw_samples

    keys = [safe_partition_key(name) for name in names]
    instance.add_dynamic_partitions(landing_files_partitions.name, keys)
    statuses = {}
    for name, key in zip(names, keys):
        result = materialize([raw_samples], partition_key=key, instance=instance, resources=RESOURCES)
        assert result.success
        statuses[name] = result.asset_materializations_for_node("raw_samples")[0].metadata["status"].value
    return statuses


def refresh(instance, run_config: dict = SMALL_RUN_CONFIG, **resources):
    """Materialize everything downstream of the landing rows (the hardware job excepted)."""
    from dagster import materialize

    from hybrid_assets.definitions import all_assets

    return materialize(all_assets, selection=DOWNSTREAM, instance=instance, resources={**RESOURCES, **resources},
                       run_config=run_config)


def ingest_and_refresh(instance, data: Path, *landing_files: str, **resources) -> None:
    """``landing_files`` (in ``data``'s landing zone) ingested and every model refreshed in
    ``instance``, with ``data`` as HYBRID_DATA_DIR."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HYBRID_DATA_DIR", str(data))
        ingest(instance, *landing_files)
        assert refresh(instance, **resources).success


def train_in_process(project: LocalProject, *landing_files: str) -> None:
    """:func:`ingest_and_refresh` in ``project``'s on-disk instance and data folder, in this
    process: the models a demo would leave there, for a test whose other processes start from
    them (without the demo's own imports, scoring and reports)."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(project.home)) as on_disk:
        ingest_and_refresh(on_disk, project.data, *landing_files)


@pytest.fixture
def instance(request, tmp_path):
    """A real, temporary Dagster instance: in memory (``DagsterInstance.ephemeral()``: its SQLite
    event log keeps one connection, where the on-disk one opens a connection per event, about 20%
    of a small refresh); for a test of a trained project (the ``trained`` fixture), its own
    on-disk copy of the trained template's instance. Tests whose instance another process opens
    make their own (``local_project``, ``instance_for_test``)."""
    from dagster import DagsterInstance, instance_for_test

    if "trained" not in request.fixturenames:
        with DagsterInstance.ephemeral() as test_instance:
            yield test_instance
        return
    folder = tmp_path / "instance"
    shutil.copytree(request.getfixturevalue("trained_template") / "instance", folder)
    with instance_for_test(temp_dir=str(folder)) as test_instance:
        yield test_instance


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Hermetic AWS environment: no profile or config files, no instance metadata lookups."""
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def free_port() -> int:
    """A free TCP port on loopback (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    """A real redis-server on a free loopback port, in a temporary folder, stopped after the test."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed: `make test` installs Debian's redis-server "
                    "(apt-get install redis-server); the stream tests need a real one")
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 20
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server on loopback, with one database for a Dagster instance."""

    bin_dir: Path
    port: int
    user: str = "dagster"
    password: str = "pg-test-password"
    db: str = "dagster"

    @property
    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads its storage credentials from."""
        return {"DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": str(self.port),
                "DAGSTER_POSTGRES_DB": self.db, "DAGSTER_POSTGRES_USER": self.user,
                "DAGSTER_POSTGRES_PASSWORD": self.password}

    def client(self, program: str, *args: str, database: str | None = None) -> str:
        """Run a PostgreSQL client program (psql, pg_dump) against a database (ours unless
        ``database``); returns its stdout."""
        completed = subprocess.run([str(self.bin_dir / program), "-h", "127.0.0.1", "-p", str(self.port),
                                    "-U", self.user, "-d", database or self.db, *args],
                                   env={**os.environ, "PGPASSWORD": self.password},
                                   capture_output=True, text=True, timeout=120)
        assert completed.returncode == 0, completed.stderr
        return completed.stdout


def postgres_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


BUCKET = "hybrid-data"
S3_SECRET = "moto-canary-secret-91c2"  # moto accepts any key: a canary that must reach nothing we write


@dataclass
class S3Server:
    """A running S3-compatible server: a boto3 ``client`` and the AWS variables (``env``) that
    point s3fs and boto3 at it, for subprocesses."""

    client: object
    env: dict[str, str]


@pytest.fixture
def s3_server(monkeypatch, tmp_path) -> S3Server:
    """``moto_server`` (an S3-compatible server) as a process on a free loopback port, with bucket
    BUCKET; this process's AWS variables point at it."""
    import urllib.request

    port = free_port()
    server = start_service([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=(tmp_path / "moto.log").open("w"))
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "moto.log").read_text()[-2000:]
            time.sleep(0.2)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": S3_SECRET,
           "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import boto3
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # fsspec keeps filesystems (and their endpoint) per process
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield S3Server(client, env)
    s3fs.S3FileSystem.clear_instance_cache()
    stop_process_group(server)


@pytest.fixture
def postgres_server():
    """A real PostgreSQL server (initdb + pg_ctl) with password authentication on a free loopback
    port, in a temporary directory, stopped and removed after the test."""
    import tempfile

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are not installed: `make test` installs "
                    "Debian's postgresql package (apt-get install postgresql)")
    # PostgreSQL refuses to run as root: then the server runs as the `postgres` user, in a folder
    # outside pytest's tmp (which only root may enter).
    root = Path(tempfile.mkdtemp(prefix="hybrid-pg-"))
    as_server_user: list[str] = []
    if os.geteuid() == 0:
        as_server_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    server = PostgresServer(bin_dir=bin_dir, port=free_port())
    password_file = root / "password"
    password_file.write_text(server.password)
    if as_server_user:
        shutil.chown(password_file, "postgres")

    def run(*args: str) -> None:
        completed = subprocess.run([*as_server_user, *args], capture_output=True, text=True, timeout=120)
        assert completed.returncode == 0, completed.stdout + completed.stderr

    data = root / "data"
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", server.user, "--auth=scram-sha-256",
        f"--pwfile={password_file}", "-E", "UTF8", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
        "-o", f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        server.client("psql", "-c", f"CREATE DATABASE {server.db}", database="postgres")
        yield server
    finally:
        subprocess.run([*as_server_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory) -> Path:
    """One trained project per test session, ``data/`` and ``instance/`` under the returned
    folder: training data ingested and every model evaluated and registered; the quantum model
    passes its gates (margin -1), so it scores in shadow beside the classical champion. Tests never
    touch it: ``trained`` and ``instance`` give each test its own copy (training is the slow part).

    Under pytest-xdist the first worker that needs it trains it, under a lock, in the folder the
    workers share; the others wait for it and read the same one, instead of each training its own."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # this session's folder, above each worker's own
    root = shared / "trained_template"
    with open(shared / "trained_template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (root / "trained").exists():
            shutil.rmtree(root, ignore_errors=True)  # what a worker that failed to train left
            train_template(root)
            (root / "trained").touch()
    return root


def train_template(root: Path) -> None:
    """:func:`trained_template`'s project, trained in ``root``."""
    from dagster import instance_for_test

    from hybrid_resources.gate_policy import GatePolicy
    from tests.bad_files import write_good_csv

    (root / "instance").mkdir(parents=True)
    layout = DataLayout(root / "data").ensure()
    write_good_csv(layout.landing, n_rows=48, n_features=5, seed=4, name="train.csv")
    with instance_for_test(temp_dir=str(root / "instance")) as template:
        ingest_and_refresh(template, layout.root, "train.csv", gate_policy=GatePolicy(min_margin=-1.0))


@pytest.fixture
def trained(trained_template, data_layout, instance):
    """This test's copy of :func:`trained_template`: its data folder (HYBRID_DATA_DIR) and, through
    the ``instance`` fixture, its Dagster instance."""
    shutil.copytree(trained_template / "data", data_layout.root, dirs_exist_ok=True)
    return data_layout


@pytest.fixture
def trained_project(local_project, trained_template) -> LocalProject:
    """:func:`local_project` holding a copy of :func:`trained_template`: its instance (under our
    dagster.yaml) and its data. For a test whose processes start from trained models, instead of
    running a demo of its own first."""
    shutil.copytree(trained_template / "instance", local_project.home, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("dagster.yaml"))
    shutil.copytree(trained_template / "data", local_project.data, dirs_exist_ok=True)
    return local_project


def start_when_ready(command: list[str], ready, *, env: dict[str, str] | None = None,
                     timeout_s: float = 60.0) -> subprocess.Popen:
    """Start a worker process in the repository and return it as soon as ``ready()`` is true (or
    the file ``ready`` exists); its stderr if it exits first. The caller stops it (a worker not
    ready in time is killed here)."""
    is_ready = ready.exists if isinstance(ready, Path) else ready
    worker = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout_s
        while not is_ready():
            assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, f"the worker was not ready within {timeout_s:.0f} s"
            time.sleep(0.02)
    except BaseException:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stderr.close()
        raise
    return worker


def kill_when_ready(command: list[str], ready, *, env: dict[str, str] | None = None, timeout_s: float = 60.0) -> None:
    """Start a worker process in the repository, SIGKILL it as soon as ``ready()`` is true (or
    the file ``ready`` exists), and check it died of the signal; its stderr if it exits first."""
    worker = start_when_ready(command, ready, env=env, timeout_s=timeout_s)
    try:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stderr.close()
    assert worker.returncode == -signal.SIGKILL


def start_service(command: list[str], **popen_kwargs) -> subprocess.Popen:
    """Start a long-running Dagster process (webserver, daemon, code server) in its own process
    group, so ``stop_process_group`` reaches its children too. Dagster maps SIGTERM to SIGINT's
    handler: a SIGINT ignored by whoever started the tests (a job started in the background by a
    non-interactive shell) would make the service ignore SIGTERM too, so SIGINT is reset here."""
    return subprocess.Popen(command, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen_kwargs)


def stop_process_group(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its children (a daemon and its
    code server); SIGKILL them if they are still running after ``timeout_s``."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# ---------------------------------------------------------------------------------------
# People who sign registry statements, with real Ed25519 keys
# ---------------------------------------------------------------------------------------

# Who is listed in the test approvers file, with which roles (mallory has a key but is not listed).
PEOPLE = {"alice": ["model_approver", "hardware_approver"], "bob": ["operator"],
          "carol": ["operator", "model_approver"]}


@dataclass(frozen=True)
class Signers:
    """An approvers file ($HYBRID_APPROVERS_FILE) listing PEOPLE, each with an Ed25519 key pair made
    by ssh-keygen; statements are signed and handed in through ``hybrid-registry`` itself."""

    folder: Path

    @property
    def file(self) -> Path:
        return self.folder / "approvers.json"

    def key(self, name: str) -> Path:
        return self.folder / name

    def sign_args(self, action: str, target: str = "", *, by: str, out: Path, reason: str = "test",
                  expires_in: str = "", key: str | None = None) -> list[str]:
        """The arguments of ``hybrid-registry sign`` as ``by`` with ``key``'s private key (default
        their own), writing ``out``."""
        return ["sign", action, target, "--key", str(self.key(key or by)), "--as", by, "--reason", reason,
                "--out", str(out)] + (["--expires-in", expires_in] if expires_in else [])

    def sign(self, action: str, target: str = "", *, by: str, reason: str = "test", expires_in: str = "",
             key: str | None = None) -> Path:
        """``hybrid-registry sign`` (in this process, see :meth:`sign_args`); the signed statement's file."""
        from hybrid_assets.cli.registry import main

        out = self.folder / f"{action}-{time.time_ns()}.json"
        assert main(self.sign_args(action, target, by=by, out=out, reason=reason, expires_in=expires_in, key=key)) == 0
        return out

    def hand_in(self, action: str, statement: Path) -> int:
        """``hybrid-registry ACTION --statement FILE``; its exit status."""
        from hybrid_assets.cli.registry import main

        return main([action, "--statement", str(statement)])

    def approve_and_promote(self, version: str, *, approver: str = "alice", requester: str = "bob") -> None:
        """``approver`` approves ``version``, then ``requester`` promotes it (both signed)."""
        assert self.hand_in("approve", self.sign("approve", f"promote:{version}", by=approver)) == 0
        assert self.hand_in("promote", self.sign("promote", version, by=requester)) == 0


def make_signers(folder: Path) -> Signers:
    """Keys for PEOPLE and mallory under ``folder``, and the approvers file listing PEOPLE."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*PEOPLE, "mallory"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)],
                       check=True, capture_output=True)
    people = {name: {"key": (folder / f"{name}.pub").read_text().strip(), "roles": roles}
              for name, roles in PEOPLE.items()}
    signers = Signers(folder)
    signers.file.write_text(json.dumps({"people": people}, indent=2))
    return signers


@pytest.fixture
def signers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Signers:
    """PEOPLE's keys and approvers file, which $HYBRID_APPROVERS_FILE names for this test."""
    made = make_signers(tmp_path / "keys")
    monkeypatch.setenv("HYBRID_APPROVERS_FILE", str(made.file))
    return made


# The longest scenarios (1 to 3.5 minutes each on 2 cores, most of it waiting on a daemon's ticks
# or a subprocess), longest first. pytest-xdist's worksteal hands each worker a contiguous share of
# the collected tests and lets an idle worker steal from the end of another's share: putting these
# at the head of the shares, dealt in turn, starts them at once on different workers, instead of
# one of them starting after the others ran out of work.
LONGEST_FIRST = (
    "tests/project/test_two_hosts.py::test_two_hosts_share_postgres_and_the_object_store_only",
    "tests/project/test_daemon_e2e.py::test_dropped_files_refresh_the_model_without_a_click",
    "tests/cli/test_audit.py::test_audit_trail_follows_the_event_log_across_new_data",
    "tests/project/test_ui_browser.py::test_a_person_opens_the_ui_after_the_demo_and_materializes_from_it",
    "tests/project/test_daemon_e2e.py::test_promote_and_score_files_and_stream_records_without_a_click",
    "tests/project/test_daemon_e2e.py::test_a_worker_killed_mid_ingest_is_retried_and_the_file_is_ingested_exactly_once",
    "tests/project/test_daemon_e2e.py::test_starting_the_daemon_after_make_demo_starts_no_run",
    "tests/project/test_postgres.py::test_the_pipeline_sensor_and_audit_run_on_a_postgres_instance",
    "tests/cli/test_demo.py::test_demo_fills_an_empty_landing_zone_and_prints_both_models",
)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, each worker's share of the tests starts with its turn of
    :data:`LONGEST_FIRST` (the shares sized as worksteal sizes them); in one process, nothing moves."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers < 2:
        return
    rank = {nodeid: i for i, nodeid in enumerate(LONGEST_FIRST)}
    longest = sorted((item for item in items if item.nodeid in rank), key=lambda item: rank[item.nodeid])
    others = [item for item in items if item.nodeid not in rank]
    ordered, remaining = [], len(items)
    for worker in range(workers):
        share = remaining // (workers - worker)  # worksteal's first distribution
        head = longest[worker::workers]
        ordered += head + others[:share - len(head)]
        others = others[share - len(head):]
        remaining -= share
    items[:] = ordered + others
