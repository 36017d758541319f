"""Scoring records from a real Redis stream (Debian's redis-server on loopback): predictions for
good records, the dead-letter stream for malformed ones, and at-least-once delivery through a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import polars as pl
from dagster import RunsFilter, build_sensor_context

from hybrid_assets.serving.jobs import score_stream_job
from hybrid_assets.serving.sensors import scoring_stream_sensor
from hybrid_resources.data.stream import ScoringStream
from hybrid_resources.data.warehouse import Warehouse
from tests.bad_files import good_frame, write_good_csv
from tests.conftest import REPO, RESOURCES


def push(stream: ScoringStream, records: list[dict]) -> list[str]:
    client = stream.client()
    return [client.xadd(stream.stream, fields) for fields in records]


def good_records(n: int, id_offset: int = 9000) -> list[dict]:
    frame = good_frame(n_rows=n, seed=13, id_offset=id_offset)
    names = [c for c in frame.columns if c.startswith("f")]
    return [{"sample_id": row["sample_id"], "features": json.dumps({name: row[name] for name in names})}
            for row in frame.iter_rows(named=True)]


def stream_predictions(stream: ScoringStream) -> pl.DataFrame:
    with Warehouse().session(read_only=True) as session:
        return session.predictions().filter(pl.col("source") == f"stream:{stream.stream}")


def run_stream_job(instance, stream: ScoringStream) -> str:
    """Run the stream scoring job once; returns what it logged about the batch."""
    result = score_stream_job.execute_in_process(instance=instance, resources={**RESOURCES, "scoring_stream": stream})
    assert result.success
    return next(e.message for e in instance.all_logs(result.run_id) if f"stream {stream.stream}:" in (e.message or ""))


def test_records_on_the_stream_get_predictions_and_malformed_ones_go_to_the_dead_letter_stream(
        trained, instance, redis_url):
    stream = ScoringStream(url=redis_url, stream="test:scoring")
    skipped = scoring_stream_sensor(build_sensor_context(instance=instance), scoring_stream=stream)
    assert "No records waiting" in skipped.skip_message
    push(stream, good_records(12))
    malformed = push(stream, [{"sample_id": "bad-json", "features": "{not json"},
                              {"features": json.dumps({"f0": 1.0})},
                              {"sample_id": "nan", "features": json.dumps({f"f{i}": "x" for i in range(5)})}])
    request = scoring_stream_sensor(build_sensor_context(instance=instance), scoring_stream=stream)
    assert request.tags["stream/lag"] == "15"
    assert "{'records': 15, 'scored': 12, 'dead_lettered': 3}" in run_stream_job(instance, stream)
    scored = stream_predictions(stream)
    assert scored.filter(pl.col("role") == "champion").height == 12
    # Queue time runs from the entry's arrival in Redis (its id) to scoring: the test took seconds, not hours.
    assert (scored["queue_s"] > 0).all() and (scored["queue_s"] < 600).all()
    dead = stream.client().xrange(stream.dead_letter)
    assert [fields["entry_id"] for _, fields in dead] == malformed
    reasons = [fields["reason"] for _, fields in dead]
    assert "not JSON" in reasons[0] and "no sample_id" in reasons[1] and "not a finite number" in reasons[2]
    assert stream.backlog(stream.client()) == {"pending": 0, "lag": 0}  # everything acknowledged


KILLED_BETWEEN_COMMIT_AND_ACK = """
import os, signal, sys
from dagster import DagsterInstance
from hybrid_assets.serving.jobs import score_stream_job
from hybrid_resources.data.stream import ScoringStream
from tests.conftest import RESOURCES

def die(self, client, entry_ids):  # the predictions are committed; the acknowledgement never happens
    os.kill(os.getpid(), signal.SIGKILL)
ScoringStream.acknowledge = die
with DagsterInstance.get() as instance:
    score_stream_job.execute_in_process(instance=instance, resources={
        **RESOURCES, "scoring_stream": ScoringStream(url=sys.argv[1], stream="test:scoring")})
"""


def test_a_consumer_killed_between_prediction_and_acknowledgement_loses_and_duplicates_nothing(
        local_project, redis_url, monkeypatch):
    write_good_csv(local_project.data / "landing", n_rows=48, n_features=5, seed=4, name="train.csv")
    assert local_project.command("hybrid-demo").returncode == 0
    monkeypatch.setenv("HYBRID_DATA_DIR", str(local_project.data))
    stream = ScoringStream(url=redis_url, stream="test:scoring")
    push(stream, good_records(10))
    killed = subprocess.run([sys.executable, "-c", KILLED_BETWEEN_COMMIT_AND_ACK, redis_url], cwd=REPO,
                            env=local_project.env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert stream_predictions(stream).filter(pl.col("role") == "champion").height == 10  # committed...
    assert stream.backlog(stream.client())["pending"] == 10  # ...but not acknowledged

    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(local_project.home)) as instance:
        # What the daemon's run monitoring does for a run whose process died: mark it failed and free
        # the pool slot it held (pool scoring_stream, limit 1), or the next run waits behind it forever.
        [killed_run] = instance.get_runs(RunsFilter(job_name=score_stream_job.name))
        instance.report_run_failed(killed_run, "its process was killed")
        instance.event_log_storage.free_concurrency_slots_for_run(killed_run.run_id)
        assert "{'records': 10, 'scored': 10, 'dead_lettered': 0}" in run_stream_job(instance, stream)
    scored = stream_predictions(stream).filter(pl.col("role") == "champion")
    assert scored.height == 10 and scored["sample_id"].n_unique() == 10  # re-delivered, not duplicated
    assert stream.backlog(stream.client()) == {"pending": 0, "lag": 0}
