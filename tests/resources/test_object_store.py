"""The shared data root on an S3-compatible server (moto as a process on loopback, through s3fs):
artifacts, their pointer, retention and memory-mapped arrays, checkpoints and the quarantine behave
there as they do on a local disk, and nothing but scratch lands on the local one."""

from __future__ import annotations

import json
import os
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from upath import UPath

from hybrid_resources.data.artifacts import ArtifactStore, content_hash, recorded_base
from hybrid_resources.data.big_arrays import scratch_array
from hybrid_resources.data.checkpoints import CheckpointStore, CheckpointWarning
from hybrid_resources.data.paths import DataLayout, publish_newest
from hybrid_resources.data.quarantine import quarantine_file, read_sidecar
from tests.conftest import BUCKET
from tests.resources.test_warehouse_postgres import warehouse_url


@pytest.fixture
def shared_root(s3_server, tmp_path, monkeypatch) -> DataLayout:
    """HYBRID_DATA_DIR on the bucket, this host's folder under tmp_path."""
    monkeypatch.setenv("HYBRID_DATA_DIR", f"s3://{BUCKET}/data")
    monkeypatch.setenv("HYBRID_SCRATCH_DIR", str(tmp_path / "scratch"))
    return DataLayout.from_env()


def objects(s3_server, prefix: str = "data/") -> set[str]:
    listed = s3_server.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {item["Key"][len(prefix):] for item in listed}


def test_the_layout_splits_shared_and_local(shared_root, tmp_path):
    assert shared_root.shared and isinstance(shared_root.artifacts, UPath)
    assert str(shared_root.artifacts) == f"s3://{BUCKET}/data/artifacts"
    assert shared_root.local == tmp_path / "scratch"
    assert shared_root.scratch.parent == shared_root.kernel_cache.parent == shared_root.staging.parent == tmp_path / "scratch"


def test_artifacts_round_trip_and_keep_their_order_and_retention(shared_root, s3_server):
    ticks = iter(range(1, 100))
    store = ArtifactStore(shared_root.artifacts, clock=lambda: next(ticks))
    values = [np.arange(4.0) + i for i in range(4)]
    versions = [content_hash(value) for value in values]
    for version, value in zip(versions, values):
        store.write(["kernel"], value, version=version, run_id="r")
    assert store.versions(["kernel"]) == versions and store.latest_version(["kernel"]) == versions[-1]
    np.testing.assert_array_equal(store.read(["kernel"]), values[-1])
    np.testing.assert_array_equal(store.read(["kernel"], versions[0]), values[0])
    store.write(["model"], {"w": np.ones(2)}, version="m1")
    store.pin(["kernel"], versions[0], holder="model@m1")
    assert store.prune(["kernel"], keep=1) == versions[1:3]  # the pinned first and the latest stay
    assert store.versions(["kernel"]) == [versions[0], versions[-1]]
    assert {key for key in objects(s3_server) if key.startswith("artifacts/kernel/")} == {
        "artifacts/kernel/latest.json", *(f"artifacts/kernel/{v}/{name}" for v in (versions[0], versions[-1])
                                          for name in ("value.npy", "written.json")),
        f"artifacts/kernel/{versions[0]}/pinned-by-{__import__('hashlib').sha256(b'model@m1').hexdigest()[:16]}.json"}


def test_a_slower_writer_of_an_older_version_never_moves_the_pointer_back(shared_root):
    pointer = shared_root.artifacts / "race" / "latest.json"
    assert publish_newest(pointer, {"version": "new", "written_at_ns": 20})
    assert not publish_newest(pointer, {"version": "old", "written_at_ns": 10})
    assert json.loads(pointer.read_text())["version"] == "new"


def test_a_pointer_another_host_replaced_is_read_whole_not_against_a_stale_etag(shared_root, s3_server):
    # This process lists the key's folder (s3fs caches each object's size and ETag), then another
    # host moves the pointer. Read as a file, the pointer would be fetched against the cached ETag
    # and fail with FileExpired; read whole, it is the other host's.
    ticks = iter(range(1, 100))
    store = ArtifactStore(shared_root.artifacts, clock=lambda: next(ticks))
    store.write(["moving"], np.zeros(2), version="v1")
    assert store.versions(["moving"]) == ["v1"]  # the listing that caches the pointer's ETag
    s3_server.client.put_object(Bucket=BUCKET, Key="data/artifacts/moving/latest.json",
                                Body=json.dumps({"version": "v2", "written_at_ns": 50}).encode())
    assert store.latest_version(["moving"]) == "v2"


def test_a_version_another_host_rewrote_while_this_one_read_it_is_read_whole(shared_root, s3_server):
    # Two hosts that materialize the same content both write its version, and their .npz files
    # differ in the zip's timestamps. This host lists the version's folder (s3fs caches each file's
    # ETag), then the other host's copy replaces the file: read in ranges against the cached ETag,
    # the read failed with 412 Precondition Failed (seen in test_two_hosts); read whole, it is the
    # other host's copy of the same arrays.
    import io

    store = ArtifactStore(shared_root.artifacts)
    value = {"weights": np.arange(3.0), "bias": np.ones(2)}
    store.write(["model"], value, version="v1")
    assert {entry.name for entry in (store.folder(["model"]) / "v1").iterdir()} == {"value.npz", "written.json"}
    other_hosts_copy = io.BytesIO()
    np.savez(other_hosts_copy, extra=np.zeros(1), **value)  # other bytes, hence another ETag
    s3_server.client.put_object(Bucket=BUCKET, Key="data/artifacts/model/v1/value.npz",
                                Body=other_hosts_copy.getvalue())
    read = store.read(["model"], "v1")
    np.testing.assert_array_equal(read["weights"], value["weights"])
    assert set(read) == {"weights", "bias", "extra"}  # the other host's copy, read whole


@pytest.mark.parametrize("where", ["s3", "local"])
def test_concurrent_writers_leave_the_pointer_on_the_newest(where, shared_root, tmp_path):
    pointer = (shared_root.artifacts if where == "s3" else tmp_path / "artifacts") / "contended" / "latest.json"
    stamps = list(range(1, 17))
    np.random.default_rng(0).shuffle(stamps)
    threads = [threading.Thread(target=publish_newest, args=(pointer, {"version": f"v{s}", "written_at_ns": s}))
               for s in stamps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert json.loads(pointer.read_text()) == {"version": "v16", "written_at_ns": 16}


def test_a_memory_mapped_array_is_uploaded_and_mapped_back_from_a_local_copy(shared_root, s3_server):
    kernel = scratch_array(shared_root.scratch, 300, 7)
    kernel[:] = np.arange(2100.0).reshape(300, 7)
    bundle = {"train_kernel": kernel, "labels": np.arange(300)}
    version = content_hash(bundle)
    ArtifactStore(shared_root.artifacts).write(["quantum_svm"], bundle, version=version)
    assert not list(shared_root.scratch.iterdir())  # the scratch file was uploaded, then removed
    assert f"artifacts/quantum_svm/{version}/value.train_kernel.npy" in objects(s3_server)
    loaded = ArtifactStore(shared_root.artifacts).read(["quantum_svm"], version)
    assert isinstance(loaded["train_kernel"], np.memmap) and Path(loaded["train_kernel"].filename).is_relative_to(
        shared_root.local)
    assert content_hash(loaded) == version


def test_a_materialization_resolves_its_version_under_this_hosts_root(shared_root):
    ArtifactStore(shared_root.artifacts).write(["features"], np.ones(3), version="abc")
    recorded = {"artifact_root": "/some/other/host/data/artifacts", "artifact_version": "abc"}
    assert str(recorded_base(recorded, ["features"])) == f"s3://{BUCKET}/data/artifacts/features/abc/value"


def test_checkpoints_save_prune_and_fall_back_past_a_corrupt_newest(shared_root, s3_server):
    store = CheckpointStore(shared_root.checkpoints, "vqc-a", keep=2)
    for step in (1, 2, 3):
        store.save(step, {"params": np.full(3, float(step))}, {"step": step})
    assert store.steps_on_disk() == [2, 3]
    (shared_root.checkpoints / "vqc-a" / "step-000003.npz").write_bytes(b"truncated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = CheckpointStore(shared_root.checkpoints, "vqc-a", keep=2).latest()
    assert found.step == 2 and found.meta == {"step": 2}
    assert any(issubclass(w.category, CheckpointWarning) for w in caught)
    assert {key for key in objects(s3_server) if key.startswith("checkpoints/")} == {
        f"checkpoints/vqc-a/step-00000{s}.{suffix}" for s in (2, 3) for suffix in ("npz", "json")}


def test_a_quarantined_file_is_kept_on_the_object_store_with_its_reason(shared_root, s3_server, tmp_path):
    staged = tmp_path / "staged" / "bad.csv"
    staged.parent.mkdir()
    staged.write_bytes(b"id,label\n1,\n")
    record = quarantine_file(staged, shared_root.quarantine, check="missing_label", reason="a row has no label")
    assert record.quarantined_path == f"s3://{BUCKET}/data/quarantine/bad.csv"
    assert UPath(record.quarantined_path).read_bytes() == b"id,label\n1,\n"
    assert read_sidecar(record.quarantined_path)["reason"] == "a row has no label"
    assert not staged.exists() and not list(staged.parent.iterdir())  # no local temporary left


KILLED_HOST = """
import sys, time
from pathlib import Path
import numpy as np, pytest
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data import spend_journal
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from tests.fake_braket import install_fake_braket
from tests.resources.test_ledger import paid_backend

count_file, ready = sys.argv[1:3]
install_fake_braket(pytest.MonkeyPatch(), count_file=count_file)
append, journaled = spend_journal.SpendJournal.append, []
def append_then_wait(self, entry):
    append(self, entry)
    journaled.append(entry)
    if len(journaled) == 5:  # the test kills this host here: 5 paid tasks journaled, none recorded
        Path(ready).write_text("5 journaled")
        time.sleep(600)
spend_journal.SpendJournal.append = append_then_wait
backend = paid_backend().backend_config()
policy = CostPolicy(warehouse=Warehouse(), run_budget_usd=5000.0, daily_budget_usd=5000.0)
with policy.ledger(run_id="killed-host", asset="kernel", backend=backend) as ledger:
    ledger.FLUSH_EVERY, ledger.FLUSH_INTERVAL_S = 10**6, 10**6  # nothing reaches the warehouse before the kill
    quantum_kernel(np.random.default_rng(0).uniform(0, np.pi, size=(6, 2)), spec=FeatureMapSpec("iqp", 2, reps=1),
                   backend=backend, ledger=ledger)
"""


def test_a_killed_hosts_paid_spend_is_recorded_by_another_host(shared_root, s3_server, postgres_server, aws_env,
                                                              tmp_path, monkeypatch):
    from hybrid_resources.cost_policy import replay_spend_journals
    from hybrid_resources.data.spend_journal import journal_dir
    from hybrid_resources.data.warehouse import Warehouse
    from tests.conftest import REPO, kill_when_ready
    from tests.fake_braket import counted_tasks
    from tests.resources.test_ledger import recorded

    url = warehouse_url(postgres_server)
    for name, value in {**s3_server.env, "PGPASSWORD": postgres_server.password, "HYBRID_WAREHOUSE_URL": url}.items():
        monkeypatch.setenv(name, value)  # s3_server's AWS variables again: aws_env removed the keys
    warehouse = Warehouse()
    assert str(journal_dir(warehouse)) == f"s3://{BUCKET}/data/spend-journal/hybrid"
    count_file, ready = tmp_path / "device_tasks.txt", tmp_path / "ready"
    other_host = {**os.environ, "PYTHONPATH": str(REPO), "HYBRID_SCRATCH_DIR": str(tmp_path / "host-a")}
    kill_when_ready([sys.executable, "-c", KILLED_HOST, str(count_file), str(ready)], ready, env=other_host,
                    timeout_s=300)
    sent_before_kill, _ = counted_tasks(count_file)
    assert sent_before_kill == 5 and recorded(warehouse)[0] == 0
    assert len(objects(s3_server, "data/spend-journal/hybrid/")) == 5  # one object per journaled task

    # This host (its own scratch) replays the dead host's journal: its lease died with its connection.
    assert replay_spend_journals(warehouse) == 5
    assert recorded(warehouse, "killed-host")[0] == 5 and replay_spend_journals(warehouse) == 0
    assert not objects(s3_server, "data/spend-journal/")


HOLD_A_READ = """
import sys, time
from pathlib import Path
from hybrid_resources.data.warehouse import Warehouse
url, name, ready = sys.argv[1:4]
release = Warehouse(url=url).lease(name, shared=True)  # a reader on another host, in the middle of its read
Path(ready).write_text("reading")
time.sleep(600)  # the test kills this reader here
"""


def test_retention_keeps_a_version_a_reader_on_another_host_holds(shared_root, postgres_server, tmp_path, monkeypatch):
    from tests.conftest import REPO, start_when_ready

    url = warehouse_url(postgres_server)
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    monkeypatch.setenv("HYBRID_WAREHOUSE_URL", url)
    store = ArtifactStore.at(shared_root.artifacts)
    assert store.readers is not None  # an object store with a PostgreSQL warehouse: reads hold leases
    versions = []
    for i in range(3):
        value = np.full(3, float(i))
        versions.append(content_hash(value))
        store.write(["kernel"], value, version=versions[-1])
    assert store.versions(["kernel"]) == versions  # ordered by the server's clock
    np.testing.assert_array_equal(store.read(["kernel"], versions[0]), np.zeros(3))  # a read's lease ends with it
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reader = start_when_ready([sys.executable, "-c", HOLD_A_READ, url, store.lease_name(["kernel"], versions[0]),
                               str(tmp_path / "reading")], tmp_path / "reading", env=env)
    try:
        assert store.prune(["kernel"], keep=1) == [versions[1]]  # the version being read stays
    finally:
        reader.kill()
        reader.wait()
        reader.stderr.close()
    assert store.prune(["kernel"], keep=1) == [versions[0]]  # its reader is gone
    assert store.versions(["kernel"]) == [versions[2]]
