"""A landing zone on an S3-compatible server (moto in server mode, a separate process on loopback,
reached through s3fs as a real bucket would be): the landing sensor sees new objects, a good one is
ingested, a bad one is quarantined locally with its reason and leaves the bucket."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import SensorResult

from hybrid_resources.data.warehouse import Warehouse
from tests.bad_files import write_good_csv, write_missing_label
from tests.conftest import free_port, ingest, start_service, stop_process_group
from tests.ingest.test_sensors import tick

BUCKET = "hybrid-landing"
SECRET = "moto-canary-secret-91c2"  # moto accepts any key: a canary that must reach nothing we write


@pytest.fixture
def s3_server(monkeypatch, tmp_path):
    """``moto_server`` on a free loopback port; the AWS variables s3fs and boto3 read point at it."""
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
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    stop_process_group(server)


def test_a_landing_zone_on_s3_ingests_good_objects_and_quarantines_bad_ones(s3_server, data_layout, instance,
                                                                           monkeypatch, tmp_path):
    monkeypatch.setenv("HYBRID_LANDING_URI", f"s3://{BUCKET}/incoming")
    local = tmp_path / "to_upload"
    local.mkdir()
    good, bad = write_good_csv(local, n_rows=40, name="good.csv"), write_missing_label(local)
    for path in (good, bad):
        s3_server.upload_file(str(path), BUCKET, f"incoming/{path.name}")

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
    listed = {item["Key"] for item in s3_server.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert listed == {f"incoming/{good.name}"}
    kept = [path for path in data_layout.quarantine.rglob("*") if path.is_file() and path.read_bytes() == bad.read_bytes()]
    assert kept, f"no quarantined copy of {bad.name} in {data_layout.quarantine}"
    for path in Path(data_layout.root).rglob("*"):  # the warehouse, the quarantine, the staging copies
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path
