"""Scoring records from a real Redis stream (Debian's redis-server on loopback): predictions for
good records, the dead-letter stream for malformed and hostile ones (and for a record delivered too
often), at-least-once delivery through a kill, and the sensor backing off while runs keep failing."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys

import polars as pl
import redis
from dagster import DagsterRunStatus, RunRequest, RunsFilter, SkipReason, build_sensor_context

from hybrid_assets.serving.jobs import score_stream_job
from hybrid_assets.serving.sensors import backoff_seconds, scoring_stream_sensor, stream_backoff
from hybrid_resources.data.stream import ScoringStream
from hybrid_resources.data.warehouse import Warehouse
from tests.bad_files import good_frame, write_good_csv
from tests.conftest import REPO, RESOURCES, ingest, refresh


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


def hostile_records() -> dict[str, dict]:
    """Records that must not stop a stream, by the words their dead-letter reason must hold."""
    good = json.loads(good_records(1, id_offset=9900)[0]["features"])
    return {
        "not JSON": {"sample_id": "bad-json", "features": "{not json"},
        "no sample_id": {"features": json.dumps({"f0": 1.0})},
        "'f0' is not a finite number: 'x'": {"sample_id": "string", "features": json.dumps({**good, "f0": "x"})},
        "an integer of 400 digits": {"sample_id": "huge", "features": json.dumps({**good, "f1": 10 ** 399})},
        "nested too deeply": {"sample_id": "deep", "features": '{"f0": ' + "[" * 10_000 + "]" * 10_000 + "}"},
        "missing ['f4']": {"sample_id": "missing", "features": json.dumps({k: v for k, v in good.items() if k != "f4"})},
        "over the cap of 65536": {"sample_id": "mega", "features": json.dumps({**good, "note": "x" * 2 ** 20})},
        "more than 100 features": {"sample_id": "wide", "features": json.dumps({f"g{i}": 0.0 for i in range(101)})},
        "'f2' is not a finite number: nan": {"sample_id": "nan", "features": json.dumps({**good, "f2": float("nan")})},
    }


def push_hostile(stream: ScoringStream) -> dict[str, str]:
    """XADD every hostile record, and one whose sample id is not UTF-8; {entry id: expected reason}."""
    records = hostile_records()
    expected = dict(zip(push(stream, list(records.values())), records))
    raw = redis.Redis.from_url(stream.url)  # bytes as they come, not text
    undecodable = raw.xadd(stream.stream, {"sample_id": b"\xff\xfe", "features": b"{}"}).decode()
    return expected | {undecodable: "sample_id is not valid UTF-8"}


def dead_letters(stream: ScoringStream) -> dict[str, dict]:
    return {fields["entry_id"]: fields for _, fields in stream.client().xrange(stream.dead_letter)}


def test_records_on_the_stream_get_predictions_and_hostile_ones_go_to_the_dead_letter_stream(
        trained, instance, redis_url):
    # Capped at 100 features: at the default 10,000 a record reaches the 64 KiB cap first.
    stream = ScoringStream(url=redis_url, stream="test:scoring", max_features=100)
    skipped = scoring_stream_sensor(build_sensor_context(instance=instance), scoring_stream=stream)
    assert "No records waiting" in skipped.skip_message
    good = good_records(12)
    push(stream, good[:6])
    hostile = push_hostile(stream)
    push(stream, good[6:])  # good records behind the hostile ones flow too
    request = scoring_stream_sensor(build_sensor_context(instance=instance), scoring_stream=stream)
    assert request.tags["stream/lag"] == str(12 + len(hostile))
    summary = f"{{'records': {12 + len(hostile)}, 'scored': 12, 'dead_lettered': {len(hostile)}}}"
    assert summary in run_stream_job(instance, stream)
    scored = stream_predictions(stream).filter(pl.col("role") == "champion")
    assert sorted(scored["sample_id"]) == sorted(r["sample_id"] for r in good)
    # Queue time runs from the entry's arrival in Redis (its id) to scoring: the test took seconds, not hours.
    assert (scored["queue_s"] > 0).all() and (scored["queue_s"] < 600).all()
    dead = dead_letters(stream)
    assert set(dead) == set(hostile)
    wrong = {entry_id: dead[entry_id]["reason"] for entry_id, reason in hostile.items()
             if reason not in dead[entry_id]["reason"]}
    assert wrong == {}
    mega = next(letter for letter in dead.values() if "over the cap" in letter["reason"])
    assert len(mega["fields"]) == stream.max_record_bytes and int(mega["fields_chars"]) > 2 ** 20  # kept, cut
    assert stream.backlog(stream.client()) == {"pending": 0, "lag": 0}  # everything acknowledged

    # The same records again: the next run dead-letters them again and scores the good ones, it does not fail.
    again = push_hostile(stream)
    push(stream, good_records(2, id_offset=9500))
    assert f"{{'records': {len(again) + 2}, 'scored': 2, 'dead_lettered': {len(again)}}}" in run_stream_job(
        instance, stream)
    assert set(again) <= set(dead_letters(stream))
    assert stream.backlog(stream.client()) == {"pending": 0, "lag": 0}


def test_a_record_delivered_too_often_goes_to_the_dead_letter_stream_and_the_stream_moves_on(
        trained, instance, redis_url):
    stream = ScoringStream(url=redis_url, stream="test:scoring")
    client = stream.client()
    [poison] = push(stream, good_records(1, id_offset=9100))
    for _ in range(stream.max_deliveries):  # a scorer read it, and died before acknowledging it, three times
        assert [entry.entry_id for entry in stream.read(client)] == [poison]
    assert client.xpending_range(stream.stream, stream.group, "-", "+", 10)[0]["times_delivered"] == 3
    push(stream, good_records(2, id_offset=9200))
    # The fourth delivery is not attempted: the record goes to the dead-letter stream, acknowledged.
    assert "{'records': 1, 'scored': 0, 'dead_lettered': 1}" in run_stream_job(instance, stream)
    assert "delivered 3 times without an acknowledgement" in dead_letters(stream)[poison]["reason"]
    assert stream.backlog(stream.client()) == {"pending": 0, "lag": 2}
    assert "{'records': 2, 'scored': 2, 'dead_lettered': 0}" in run_stream_job(instance, stream)
    scored = stream_predictions(stream).filter(pl.col("role") == "champion")
    assert sorted(scored["sample_id"]) == ["s09200", "s09201"]
    assert stream.backlog(stream.client()) == {"pending": 0, "lag": 0}


def test_the_sensor_backs_off_while_runs_fail_and_resumes_after_a_success_or_a_new_record(
        data_layout, instance, redis_url):
    stream = ScoringStream(url=redis_url, stream="test:scoring")
    resources = {**RESOURCES, "scoring_stream": stream}

    def evaluate() -> RunRequest | SkipReason:
        return scoring_stream_sensor(build_sensor_context(instance=instance), scoring_stream=stream)

    push(stream, good_records(3))
    request = evaluate()
    for _ in range(5):  # records arrived before any model: each run fails ("No champion ...")
        failed = score_stream_job.execute_in_process(instance=instance, resources=resources, tags=request.tags,
                                                     raise_on_error=False)
        assert not failed.success
        assert "No champion" in failed.get_step_failure_events()[0].event_specific_data.error.message
    assert stream.backlog(stream.client()) == {"pending": 0, "lag": 3}  # a run that cannot score reads nothing
    waiting = evaluate()
    assert isinstance(waiting, SkipReason), waiting
    assert "5 score_stream_job runs failed in a row" in waiting.skip_message
    assert "backing off 80 s: next try at" in waiting.skip_message

    finished = instance.get_run_records(RunsFilter(job_name=score_stream_job.name), limit=20)
    last_end = finished[0].end_time
    assert stream_backoff(finished, 3, last_end + 79) is not None
    assert stream_backoff(finished, 3, last_end + 81) is None  # the wait is over
    assert stream_backoff(finished, 4, last_end + 1) is None  # the backlog changed
    assert [backoff_seconds(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]

    push(stream, good_records(1, id_offset=9003))  # a new record: the sensor tries again at once
    request = evaluate()
    assert isinstance(request, RunRequest) and request.tags["stream/lag"] == "4"

    write_good_csv(data_layout.landing, n_rows=48, n_features=5, seed=4, name="train.csv")
    ingest(instance, "train.csv")
    assert refresh(instance).success  # now there is a champion
    assert "{'records': 4, 'scored': 4, 'dead_lettered': 0}" in run_stream_job(instance, stream)
    finished = instance.get_run_records(RunsFilter(job_name=score_stream_job.name), limit=20)
    assert [r.dagster_run.status for r in finished[:2]] == [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE]
    # After a success the failures before it no longer count, even with the backlog they failed on.
    assert stream_backoff(finished, 3, finished[1].end_time + 1) is None
    assert stream_backoff(finished[1:], 3, finished[1].end_time + 1) is not None


def test_a_record_deleted_before_delivery_does_not_hide_the_others(instance, redis_url):
    stream = ScoringStream(url=redis_url, stream="test:scoring")
    entries = push(stream, good_records(3))
    stream.backlog(stream.client())  # the group exists
    stream.client().xdel(stream.stream, entries[1])  # now Redis reports no lag for the group
    request = scoring_stream_sensor(build_sensor_context(instance=instance), scoring_stream=stream)
    assert isinstance(request, RunRequest), request


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
        trained_project, redis_url, monkeypatch):
    local_project = trained_project  # a champion to score with, in an instance other processes open
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


def test_a_record_may_carry_categories_and_missing_values_as_a_file_may():
    from hybrid_resources.data.stream import parse_record

    fields = {"sample_id": "r1", "features": json.dumps({"tenure": None, "spend": 3.5, "plan": "pro", "region": None})}
    record = parse_record("1-0", fields, ["spend", "tenure"], category_names=["plan", "region"])
    assert not record.error and record.categories == ["pro", None]
    assert record.features["spend"] == 3.5 and math.isnan(record.features["tenure"])  # imputed when scored
    wrong = parse_record("1-1", {**fields, "features": json.dumps({"tenure": 1, "spend": 3.5, "plan": ["x"],
                                                                   "region": "n"})},
                         ["spend", "tenure"], category_names=["plan", "region"])
    assert "'plan' is not a text value" in wrong.error
    numeric_only = parse_record("1-2", fields, ["spend", "tenure", "plan", "region"])
    assert "not a finite number" in numeric_only.error  # a text where the dataset has a number
