"""A landing zone on an S3-compatible server (moto in server mode, a separate process on loopback,
reached through s3fs as a real bucket would be): the landing sensor sees new objects, a good one is
ingested, a bad one is quarantined locally with its reason and leaves the bucket."""

from __future__ import annotations

from pathlib import Path

from dagster import SensorResult

from hybrid_resources.data.warehouse import Warehouse
from tests.bad_files import write_good_csv, write_missing_label
from tests.conftest import BUCKET, ingest
from tests.conftest import S3_SECRET as SECRET
from tests.ingest.test_sensors import tick


def test_a_landing_zone_on_s3_ingests_good_objects_and_quarantines_bad_ones(s3_server, data_layout, instance,
                                                                           monkeypatch, tmp_path):
    monkeypatch.setenv("HYBRID_LANDING_URI", f"s3://{BUCKET}/incoming")
    local = tmp_path / "to_upload"
    local.mkdir()
    good, bad = write_good_csv(local, n_rows=40, name="good.csv"), write_missing_label(local)
    for path in (good, bad):
        s3_server.client.upload_file(str(path), BUCKET, f"incoming/{path.name}")

    # The sensor lists the prefix through s3fs: two ticks (sizes stable), one run per object.
    result, cursor = tick(instance, None)
    result, cursor = tick(instance, cursor)
    assert isinstance(result, SensorResult)
    assert sorted(request.tags["landing/file"] for request in result.run_requests) == sorted([good.name, bad.name])

    statuses = ingest(instance, good.name, bad.name)
    assert statuses == {good.name: "ingested", bad.name: "quarantined"}
    with Warehouse().connect(read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM raw_rows").fetchone() == (40,)
        (check, reason), = connection.execute("SELECT check_name, reason FROM quarantine").fetchall()
    assert reason and check

    # The bad object left the bucket for the local quarantine, byte for byte; the good one stays.
    listed = {item["Key"] for item in s3_server.client.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert listed == {f"incoming/{good.name}"}
    kept = [path for path in data_layout.quarantine.rglob("*") if path.is_file() and path.read_bytes() == bad.read_bytes()]
    assert kept, f"no quarantined copy of {bad.name} in {data_layout.quarantine}"
    for path in Path(data_layout.root).rglob("*"):  # the warehouse, the quarantine, the staging copies
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path
