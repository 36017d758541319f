"""Zones hold regular files only, read once and never through a link: faults and hostile input driven
through the product as a user meets them (files dropped into the zones, the landing job on a real
Dagster instance and DuckDB warehouse, the sensors evaluated with Dagster's own context)."""

from __future__ import annotations

import datetime

import hashlib
import json
import os
import random
import secrets
import stat
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
    serialize_value,
)
from upath import UPath

from hybrid_assets.common.partitions import landing_files_partitions, safe_partition_key
from hybrid_assets.definitions import defs
from hybrid_assets.ingest.ingestion import ingest_file
from hybrid_assets.ingest.sensors import landing_sensor
from hybrid_assets.optimization.maxcut import maxcut_assets
from hybrid_assets.optimization.portfolio import portfolio_assets
from hybrid_assets.optimization.sensors import graph_sensor, returns_sensor
from hybrid_resources.data.contract import DatasetContract, file_sha256
from hybrid_resources.data.paths import zone_entries, zone_files
from hybrid_resources.data.quarantine import SIDECAR_SUFFIX, quarantine_file, read_sidecar
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.data.zones import ZoneRefusal, stage_zone_file
from tests.bad_files import good_frame, write_good_csv
from tests.conftest import REPO
from tests.optimization.test_qaoa import _portfolio_resources
from tests.optimization.test_maxcut_assets import RING

WORKER = REPO / "tests" / "ingest_worker.py"
DAGSTER_INVALID = ["...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0"]


# --------------------------------------------------------------------------------------
# Helpers: the landing job, the sensors, and every place a value could end up
# --------------------------------------------------------------------------------------

def ingest_through_job(instance: DagsterInstance, *names: str) -> dict[str, dict]:
    """Run the job ``ingest_landing_file`` for each name's partition, as the landing sensor's runs do;
    each file's materialization metadata plus its check's ``failed_check``."""
    job = defs.resolve_job_def("ingest_landing_file")
    outcomes = {}
    for name in names:
        key = safe_partition_key(name)
        if not instance.has_dynamic_partition(landing_files_partitions.name, key):
            instance.add_dynamic_partitions(landing_files_partitions.name, [key])
        result = job.execute_in_process(instance=instance, partition_key=key)
        assert result.success  # a hostile file is a recorded outcome, never a crashed run
        metadata = result.asset_materializations_for_node("raw_samples")[-1].metadata
        (check,) = result.get_asset_check_evaluations()
        outcomes[name] = {**{k: v.value for k, v in metadata.items()}, "failed_check": check.metadata["failed_check"].value,
                          "check_reason": check.metadata["reason"].value}
    return outcomes


def tick(sensor, instance: DagsterInstance, cursor: str | None):
    context = build_sensor_context(instance=instance, cursor=cursor)
    result = sensor(context)
    return result, (result.cursor if isinstance(result, SensorResult) else context.cursor)


def two_ticks(sensor, instance: DagsterInstance):
    """A file is handed on once it held still for one tick: the second tick's result and cursor."""
    _, cursor = tick(sensor, instance, None)
    return tick(sensor, instance, cursor)


def warehouse_rows(sql: str, path: Path | None = None) -> list[tuple]:
    with duckdb.connect(str(path or Warehouse().file), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def warehouse_text(path: Path) -> str:
    """Every row of every table of the DuckDB warehouse, as text."""
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = [row[0] for row in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return "\n".join(f"{table}: {connection.execute(f'SELECT * FROM {table}').fetchall()!r}" for table in tables)


def files_bytes(root: Path) -> bytes:
    """The bytes of every regular file under ``root`` (links are not followed)."""
    found = [path for path in root.rglob("*") if stat.S_ISREG(os.lstat(path).st_mode)]
    return b"\n".join(path.read_bytes() for path in found)


def instance_text(instance: DagsterInstance) -> str:
    """Every run and every event of the instance (materializations, checks, their metadata, logs)."""
    parts = []
    for run in instance.get_runs():
        parts.append(serialize_value(run))
        parts += [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    return "\n".join(parts)


# --------------------------------------------------------------------------------------
# 1. Links are refused unread: the canary never leaves its process
# --------------------------------------------------------------------------------------

def test_links_to_a_secret_are_refused_unread_and_the_secret_reaches_nothing(local_project, tmp_path):
    canary = "canary" + secrets.token_hex(16)
    landing = local_project.data / "landing"
    outside = tmp_path / "outside"
    outside.mkdir()
    secret_csv = outside / "secret.csv"  # a CSV outside the zone with the canary as a cell value
    secret_csv.write_text("sample_id,label,f0,f1\n" + "".join(f"s{i},{i % 2},{i}.5,{canary}\n" for i in range(8)))
    secret_before = secret_csv.read_bytes()
    os.symlink("/proc/self/environ", landing / "report.csv")
    os.symlink(secret_csv, landing / "outside.csv")
    write_good_csv(landing, name="good.csv", n_rows=40)

    env = {**local_project.env, "CANARY": canary, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(WORKER), "report.csv", "outside.csv", "good.csv"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    reported = json.loads(done.stdout.strip().splitlines()[-1])
    assert reported["environ_holds_canary"] is True  # the link pointed at a real secret
    assert reported["statuses"] == {"report.csv": "quarantined", "outside.csv": "quarantined", "good.csv": "ingested"}

    # Refused unread: the links are gone, their targets untouched, nothing of them was kept.
    assert not os.path.lexists(landing / "report.csv") and not os.path.lexists(landing / "outside.csv")
    assert secret_csv.read_bytes() == secret_before
    assert list((local_project.data / "quarantine").iterdir()) == []
    warehouse = local_project.data / "warehouse.duckdb"
    refused = warehouse_rows("SELECT original_name, check_name, file_hash, quarantined_path FROM quarantine "
                             "ORDER BY original_name", warehouse)
    assert refused == [("outside.csv", "symlink", "", ""), ("report.csv", "symlink", "", "")]
    assert warehouse_rows("SELECT file_name, status, n_rows FROM landing_files ORDER BY file_name", warehouse) == [
        ("good.csv", "ingested", 40), ("outside.csv", "quarantined", 0), ("report.csv", "quarantined", 0)]

    # The canary (and the 16 characters a reason may quote) is nowhere: data root, warehouse, instance.
    with DagsterInstance.from_config(str(local_project.home)) as instance:
        events = instance_text(instance)
    places = {"data root files": files_bytes(local_project.data).decode("utf-8", "replace"),
              "warehouse tables": warehouse_text(warehouse), "event log": events,
              "DAGSTER_HOME files": files_bytes(local_project.home).decode("utf-8", "replace")}
    for place, text in places.items():
        assert canary not in text and canary[:16] not in text, place
    assert "symbolic link" in places["warehouse tables"] and "symbolic link" in events  # the reasons were recorded
    assert "good.csv" in events and events.count("ASSET_MATERIALIZATION") >= 3


# --------------------------------------------------------------------------------------
# 2. Every zone: links, folders and other entries are handed on unread and recorded
# --------------------------------------------------------------------------------------

def test_the_landing_sensor_hands_links_and_folders_on_unread_and_their_runs_record_them(data_layout, instance,
                                                                                        tmp_path):
    landing = data_layout.landing
    target = write_good_csv(tmp_path, name="target.csv", id_offset=5000)  # a valid file outside the zone
    os.symlink(target, landing / "link.csv")
    os.symlink(tmp_path, landing / "folder_link.csv")
    os.symlink(tmp_path / "missing.csv", landing / "dangling.csv")
    (landing / "folder.csv").mkdir()
    (landing / "folder.csv" / "inside.csv").write_text("kept")
    write_good_csv(landing, name="good.csv", n_rows=40)
    assert [path.name for path in zone_files(landing)] == ["good.csv"]
    assert {e.name: e.kind for e in zone_entries(landing)} == {
        "dangling.csv": "symlink", "folder.csv": "not_regular_file", "folder_link.csv": "symlink",
        "good.csv": "file", "link.csv": "symlink"}

    result, cursor = two_ticks(landing_sensor, instance)
    requests = {request.tags["landing/file"]: request for request in result.run_requests}
    assert set(requests) == {"dangling.csv", "folder.csv", "folder_link.csv", "good.csv", "link.csv"}
    assert requests["good.csv"].tags["landing/sha256"] == file_sha256(landing / "good.csv")
    for name in ("dangling.csv", "folder_link.csv", "link.csv"):
        assert requests[name].tags["landing/sha256"].startswith("refused-symlink-")
    assert requests["folder.csv"].tags["landing/sha256"].startswith("refused-not_regular_file-")
    assert file_sha256(target) not in json.dumps([(r.run_key, r.tags) for r in result.run_requests])  # never read

    outcomes = ingest_through_job(instance, *sorted(requests))
    assert {name: (o["status"], o["failed_check"]) for name, o in outcomes.items()} == {
        "dangling.csv": ("quarantined", "symlink"), "folder.csv": ("quarantined", "not_regular_file"),
        "folder_link.csv": ("quarantined", "symlink"), "good.csv": ("ingested", ""),
        "link.csv": ("quarantined", "symlink")}
    assert "symbolic link" in outcomes["link.csv"]["reason"] and outcomes["link.csv"]["file_hash"] == ""
    # Links are removed (never their targets); a folder is left as it is; nothing was copied.
    assert sorted(path.name for path in landing.iterdir()) == ["folder.csv", "good.csv"]
    assert (landing / "folder.csv" / "inside.csv").read_text() == "kept" and target.exists()
    assert list(data_layout.quarantine.iterdir()) == []
    assert warehouse_rows("SELECT count(*) FROM raw_rows") == [(40,)]
    assert warehouse_rows("SELECT count(*) FROM quarantine WHERE file_hash = '' AND quarantined_path = ''") == [(4,)]
    again, _ = tick(landing_sensor, instance, cursor)
    assert isinstance(again, SkipReason)  # the folder is not handed on again until it changes


def test_links_and_folders_in_the_returns_and_graph_zones_are_refused_without_crashing_their_sensors(data_layout,
                                                                                                     tmp_path):
    from hybrid_assets.common.examples import write_example_returns

    graphs, returns = data_layout.root / "graphs", data_layout.root / "returns"
    graphs.mkdir()
    returns.mkdir()
    (tmp_path / "ring.csv").write_text(RING)
    os.symlink(tmp_path / "ring.csv", graphs / "a_link.csv")  # a valid graph, but through a link
    (graphs / "z_folder.csv").mkdir()  # a folder named like a graph file, newest by name
    (graphs / "ring.csv").write_text(RING.replace("a,d,0.5", "a,d,2"))
    outside_returns = write_example_returns(tmp_path / "returns.csv")
    os.symlink(outside_returns, returns / "r.csv")  # the returns zone holds only a link

    landing = {key: [a for a in assets if a.key == AssetKey(key)]
               for key, assets in (("graph_landing", maxcut_assets), ("returns_landing", portfolio_assets))}
    with DagsterInstance.ephemeral() as instance:
        for sensor in (graph_sensor, returns_sensor):
            result, _ = two_ticks(sensor, instance)  # lists the zone without reading through the link
            (request,) = result.run_requests
            assert "refused-symlink-" in request.run_key and file_sha256(tmp_path / "ring.csv") not in request.run_key
        graph = materialize(landing["graph_landing"], resources=_portfolio_resources(), instance=instance)
        held = materialize(landing["returns_landing"], resources=_portfolio_resources(), instance=instance)
    assert graph.success and held.success
    accepted = graph.output_for_node("graph_landing")
    assert accepted["file"] == "ring.csv" and accepted["file_hash"] == file_sha256(graphs / "ring.csv")
    turned_away = graph.asset_materializations_for_node("graph_landing")[0].metadata["quarantined"].value
    assert {(q["file"], q["check"]) for q in turned_away} == {("a_link.csv", "symlink"), ("z_folder.csv", "not_regular_file")}
    assert sorted(p.name for p in graphs.iterdir()) == ["ring.csv", "z_folder.csv"]  # the link went, the folder stays
    assert held.output_for_node("returns_landing")["file"] != "r.csv"  # the bundled example, not the link's target
    assert not os.path.lexists(returns / "r.csv") and outside_returns.exists()
    assert sorted(warehouse_rows("SELECT original_name, check_name FROM quarantine")) == [
        ("a_link.csv", "symlink"), ("r.csv", "symlink"), ("z_folder.csv", "not_regular_file")]


# --------------------------------------------------------------------------------------
# 3. Names that are not UTF-8; partition keys that cannot collide
# --------------------------------------------------------------------------------------

def _create(folder: Path, raw_name: bytes, content: bytes) -> str:
    """A file whose name is raw bytes (maybe not UTF-8), created through a bytes path; its str name."""
    descriptor = os.open(os.fsencode(folder) + b"/" + raw_name, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    return os.fsdecode(raw_name)


def test_a_name_that_is_not_utf8_never_stops_the_sensor_and_is_ingested_or_quarantined(data_layout, instance):
    landing = data_layout.landing
    good = _create(landing, b"caf\xff.csv", good_frame(n_rows=30).write_csv().encode())
    bad = _create(landing, b"bad\xfe.csv", b"\x00\x01 not a csv \x00")
    write_good_csv(landing, name="plain.csv", id_offset=1000)

    result, _ = two_ticks(landing_sensor, instance)  # the sensor crashed on every tick before
    requests = {request.tags["landing/file"]: request for request in result.run_requests}
    assert set(requests) == {"caf\\xff.csv", "bad\\xfe.csv", "plain.csv"}
    keys = {request.partition_key for request in result.run_requests}
    assert len(keys) == 3 and all(key.isascii() for key in keys) and "plain.csv" in keys

    outcomes = ingest_through_job(instance, good, bad, "plain.csv")
    assert outcomes[good]["status"] == "ingested" and outcomes[good]["file_name"] == "caf\\xff.csv"
    assert outcomes[good]["row_count"] == 30 and outcomes["plain.csv"]["status"] == "ingested"
    assert outcomes[bad]["status"] == "quarantined" and outcomes[bad]["failed_check"] == "parse"
    (kept,) = [p for p in data_layout.quarantine.iterdir() if not p.name.endswith(SIDECAR_SUFFIX)]
    assert kept.name.startswith("renamed-") and kept.name.endswith(".csv") and kept.name.isascii()
    assert kept.read_bytes() == b"\x00\x01 not a csv \x00"
    assert read_sidecar(kept)["details"]["original_name"] == "bad\\xfe.csv"
    assert sorted(os.listdir(os.fsencode(landing))) == [b"caf\xff.csv", b"plain.csv"]  # the bad one left the zone
    assert sorted(warehouse_rows("SELECT file_name FROM landing_files")) == [("bad\\xfe.csv",), ("caf\\xff.csv",),
                                                                           ("plain.csv",)]


def _tricky_names(count: int, seed: int = 0) -> set[str]:
    """Names built to fold alike: separators, accents, non-Latin text, undecodable bytes, dots, and
    endings that look like a changed name's key."""
    rng = random.Random(seed)
    pieces = ["a", "b", "1", "_", "-", ".", " ", "é", "e", "日", "/", "\t", "..", "\udcff", "\udcfe", "É", "ｅ",
              "-4bca0352", "-0000000f", "-ffffffff", "-deadbeef", ".csv", "_1.csv", " 1.csv"]
    names = {"", ".", "..", "batch 1.csv", "batch_1.csv", "batch_1.csv-4bca0352", "breast_cancer.csv",
             "x" * 300 + ".csv", "x" * 120, "x" * 121}
    while len(names) < count:
        names.add("".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))))
    return names


def test_partition_keys_are_injective_over_many_tricky_names_and_their_own_keys():
    names = _tricky_names(20_000)
    keys = {name: safe_partition_key(name) for name in names}
    names |= set(keys.values())  # a file may be named exactly like another file's key
    keys = {name: safe_partition_key(name) for name in names}
    assert len(set(keys.values())) == len(names)  # injective: no two names share a key
    for name, key in keys.items():
        assert key == safe_partition_key(name)  # deterministic
        assert key and key.isascii() and "/" not in key and ".." not in key and not key.startswith(".")
        assert not any(bad in key for bad in DAGSTER_INVALID) and len(key) <= 130
    assert keys["batch 1.csv"] != keys["batch_1.csv-4bca0352"]  # the collision of the issue
    assert keys["batch_1.csv"] == "batch_1.csv" and keys["breast_cancer.csv"] == "breast_cancer.csv"


# --------------------------------------------------------------------------------------
# 4. One staged copy: hash, parse and quarantine always agree; copies are private
# --------------------------------------------------------------------------------------

def test_quarantine_copies_and_sidecars_are_private_whatever_the_umask(data_layout, instance):
    (data_layout.landing / "broken.csv").write_bytes(b"\x00\xff\x00garbage")
    previous = os.umask(0)
    try:
        outcomes = ingest_through_job(instance, "broken.csv")
    finally:
        os.umask(previous)
    kept = Path(outcomes["broken.csv"]["quarantined_path"])
    assert kept.read_bytes() == b"\x00\xff\x00garbage"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.with_name(kept.name + SIDECAR_SUFFIX).stat().st_mode) == 0o600


def test_the_staged_copy_is_what_is_hashed_and_judged_even_when_the_original_changes(tmp_path):
    zone = tmp_path / "landing"
    zone.mkdir()
    original = write_good_csv(zone, name="batch.csv", n_rows=10)
    first = original.read_bytes()
    staged = stage_zone_file(original, tmp_path / "staging")
    try:
        original.write_bytes(b"rewritten after staging")
        assert staged.path.read_bytes() == first and staged.file_hash == hashlib.sha256(first).hexdigest()
        assert stat.S_IMODE(staged.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(staged.path.parent.stat().st_mode) == 0o700
        # Quarantining the judged copy keeps it, and leaves the rewritten original to be judged again.
        record = quarantine_file(staged.path, tmp_path / "quarantine", check="parse", reason="test",
                                 expected_hash=staged.file_hash)
        assert Path(record.quarantined_path).read_bytes() == first and record.file_hash == staged.file_hash
        assert original.read_bytes() == b"rewritten after staging"
    finally:
        staged.discard()
    assert not staged.path.parent.exists()
    os.symlink(original, zone / "link.csv")
    with pytest.raises(ZoneRefusal) as refused:
        stage_zone_file(zone / "link.csv", tmp_path / "staging")
    assert refused.value.check == "symlink" and list((tmp_path / "staging").iterdir()) == []


def test_a_file_rewritten_while_it_is_ingested_is_recorded_under_the_hash_of_the_rows_taken(data_layout):
    """A writer swaps two valid versions of one file while it is ingested again and again: whatever
    version each ingest took, the recorded hash is that version's and the rows are its rows."""
    versions = [good_frame(n_rows=20, seed=seed, id_offset=500 * seed).write_csv().encode() for seed in (1, 2)]
    hashes = {hashlib.sha256(v).hexdigest(): pl.read_csv(v)["sample_id"].to_list() for v in versions}
    path = data_layout.landing / "moving.csv"
    path.write_bytes(versions[0])
    stop = threading.Event()

    def rewrite() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            spare = path.with_name(f".moving.{n}.tmp")
            spare.write_bytes(versions[n % 2])
            os.replace(spare, path)
            stop.wait(0.001)  # let the ingest have the CPU too

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    warehouse = Warehouse()
    try:
        taken = [ingest_file(warehouse, UPath(path), "moving.csv", layout=data_layout, contract=DatasetContract(),
                             run_id=f"run-{i}") for i in range(4)]
    finally:
        stop.set()
        writer.join()
    for outcome in taken:
        assert outcome.status == "ingested" and outcome.file_hash in hashes
    stored = warehouse_rows("SELECT file_hash, list(sample_id ORDER BY row_number) FROM raw_rows GROUP BY file_hash")
    assert stored and all(ids == hashes[file_hash] for file_hash, ids in stored)  # each hash holds its own rows
    (recorded,) = warehouse_rows("SELECT file_hash FROM landing_files WHERE partition_key = 'moving.csv'")
    assert recorded[0] == taken[-1].file_hash


# --------------------------------------------------------------------------------------
# 5. Unexpected parser errors are quarantines; reasons quote only a short sample of a value
# --------------------------------------------------------------------------------------

def test_an_unexpected_parser_error_quarantines_the_file_with_check_parse(data_layout, instance):
    frame = pl.DataFrame({"label": ["0", "1"] * 3, "f0": [1.0, 2.0] * 3,
                          "f1": [datetime.timedelta(days=1)] * 6})  # the converter raises on a duration
    frame.write_parquet(data_layout.landing / "durations.parquet")
    write_good_csv(data_layout.landing, name="good.csv")
    outcomes = ingest_through_job(instance, "durations.parquet", "good.csv")
    assert outcomes["durations.parquet"]["status"] == "quarantined"
    assert outcomes["durations.parquet"]["failed_check"] == "parse"
    assert "could not be read" in outcomes["durations.parquet"]["reason"]
    assert (data_layout.quarantine / "durations.parquet").exists() and outcomes["good.csv"]["status"] == "ingested"


@pytest.mark.parametrize("column", [[[1, 2]] * 6, [{"a": 1}] * 6, [b"\x00\x01"] * 6], ids=["list", "struct", "binary"])
def test_a_parquet_column_of_non_primitive_cells_is_a_column_types_violation(data_layout, instance, column):
    frame = pl.DataFrame({"label": ["0", "1"] * 3, "f0": [1.0, 2.0] * 3, "f1": column})
    frame.write_parquet(data_layout.landing / "nested.parquet")
    write_good_csv(data_layout.landing, name="good.csv")
    outcomes = ingest_through_job(instance, "nested.parquet", "good.csv")
    assert outcomes["nested.parquet"]["status"] == "quarantined"
    assert outcomes["nested.parquet"]["failed_check"] == "column_types" and "'f1'" in outcomes["nested.parquet"]["reason"]
    assert (data_layout.quarantine / "nested.parquet").exists() and outcomes["good.csv"]["status"] == "ingested"


def test_reasons_quote_at_most_a_short_sample_of_a_value_wherever_they_are_recorded(data_layout, instance):
    secret = "AKIA" + secrets.token_hex(18)  # 40 characters, like a cloud secret
    frame = good_frame(n_rows=12).with_columns(pl.col("f1").cast(pl.String))
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(secret)).otherwise(pl.col("f1"))
                               .alias("f1"))
    frame.write_csv(data_layout.landing / "leaky.csv")
    outcome = ingest_through_job(instance, "leaky.csv")["leaky.csv"]
    assert outcome["status"] == "quarantined" and outcome["failed_check"] == "numeric_features"
    assert f"'{secret[:16]}…'" in outcome["reason"]  # a sample, so the reason still says what is wrong
    recorded = {"metadata": outcome["reason"], "check": outcome["check_reason"], "event log": instance_text(instance),
                "warehouse": warehouse_text(Warehouse().file)}
    for place, text in recorded.items():
        assert secret not in text and secret[:17] not in text, place
    assert secret.encode() in Path(outcome["quarantined_path"]).read_bytes()  # the bytes themselves are kept as they were
