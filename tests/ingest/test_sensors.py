"""The landing sensor evaluated with Dagster's own context on a real instance and real files."""

from __future__ import annotations

from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context

from hybrid_assets.common.partitions import safe_partition_key
from hybrid_assets.ingest.sensors import landing_sensor
from tests.bad_files import write_good_csv
from tests.conftest import ingest


def tick(instance: DagsterInstance, cursor: str | None) -> tuple[SensorResult | SkipReason, str | None]:
    """One sensor evaluation; returns its result and the cursor the daemon would store."""
    context = build_sensor_context(instance=instance, cursor=cursor)
    result = landing_sensor(context)
    next_cursor = result.cursor if isinstance(result, SensorResult) else context.cursor
    return result, next_cursor


def test_nothing_new_is_a_skip(data_layout, instance):
    result, _ = tick(instance, None)
    assert isinstance(result, SkipReason) and "No new landing files" in result.skip_message


def test_a_stable_file_becomes_one_partition_and_one_run_keyed_by_its_hash(data_layout, instance):
    write_good_csv(data_layout.landing, name="batch 1.csv")
    first, cursor = tick(instance, None)
    assert isinstance(first, SkipReason) and "waiting for 1 file" in first.skip_message
    second, cursor = tick(instance, cursor)
    (request,) = second.run_requests
    key = safe_partition_key("batch 1.csv")
    assert request.partition_key == key
    assert request.tags["landing/sha256"] in request.run_key
    assert second.dynamic_partitions_requests[0].partition_keys == [key]
    third, _ = tick(instance, cursor)
    assert isinstance(third, SkipReason)


def test_a_growing_file_waits_and_new_content_under_the_same_name_runs_again(data_layout, instance):
    path = write_good_csv(data_layout.landing, name="grow.csv", n_rows=10)
    _, cursor = tick(instance, None)
    with path.open("a") as handle:  # still being written
        handle.write("s99999,1,0,0,0,0,0\n")
    waiting, cursor = tick(instance, cursor)
    assert isinstance(waiting, SkipReason) and "waiting for 1 file" in waiting.skip_message
    stable, cursor = tick(instance, cursor)
    (request,) = stable.run_requests

    write_good_csv(data_layout.landing, name="grow.csv", n_rows=12, seed=5)  # re-landed, new content
    _, cursor = tick(instance, cursor)
    again, _ = tick(instance, cursor)
    (second_request,) = again.run_requests
    assert second_request.partition_key == request.partition_key
    assert second_request.run_key != request.run_key
    assert second_request.tags["landing/sha256"] != request.tags["landing/sha256"]


def test_a_file_whose_content_is_already_ingested_is_not_submitted_again(data_layout, instance):
    write_good_csv(data_layout.landing, name="demo.csv")
    ingest(instance, "demo.csv")  # as `make demo` does, without the sensor
    _, cursor = tick(instance, None)  # a fresh sensor (the UI's first start): no cursor yet
    skipped, cursor = tick(instance, cursor)
    assert isinstance(skipped, SkipReason) and "1 file(s) already ingested" in skipped.skip_message
    # New content under the same name is new data.
    write_good_csv(data_layout.landing, name="demo.csv", n_rows=30, seed=5)
    _, cursor = tick(instance, cursor)
    changed, _ = tick(instance, cursor)
    (request,) = changed.run_requests
    assert request.partition_key == "demo.csv"
