"""Serving's sensors: scoring and labels files (one partition each, through the one folder
sensor), and the Redis scoring stream (which backs off while its runs keep failing)."""

import itertools
import time
from datetime import datetime, timezone

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRecord,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from hybrid_assets.common.folder_sensor import file_partition_sensor
from hybrid_assets.common.partitions import (
    labels_files_partitions,
    scoring_files_partitions,
)
from hybrid_assets.serving.jobs import (
    ingest_labels_file_job,
    ingest_scoring_file_job,
    score_stream_job,
)
from hybrid_resources.data.stream import ScoringStream

__all__ = ["backoff_seconds", "labels_sensor", "scoring_sensor", "scoring_stream_sensor", "stream_backoff"]

scoring_sensor = file_partition_sensor(
    "scoring_sensor", zone="scoring", job=ingest_scoring_file_job, partitions_def=scoring_files_partitions,
    asset="scoring_batches", description="Ingests each new scoring file as its own partition; predictions follow.")
labels_sensor = file_partition_sensor(
    "labels_sensor", zone="labels", job=ingest_labels_file_job, partitions_def=labels_files_partitions,
    asset="scoring_labels", description="Ingests each labels file (sample_id, label) for rows scored earlier.")

_ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
_FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 300.0
RECENT_RUNS = 20  # enough finished runs to reach the cap: 5 s doubled 6 times is over 300 s


def backoff_seconds(consecutive_failures: int) -> float:
    """How long to wait after that many failed runs in a row: 5 s after one, doubling with each
    further one, at most 5 minutes."""
    return min(BACKOFF_FIRST_S * 2.0 ** (max(consecutive_failures, 1) - 1), BACKOFF_MAX_S)


def stream_backoff(finished: list[RunRecord], unacknowledged: int, now: float) -> str | None:
    """Why the stream sensor should wait now, or None to launch.

    ``finished``: the job's finished runs, newest first. After consecutive failed runs (none since
    the last success), wait ``backoff_seconds(failures)`` from the end of the last one, unless the
    stream's backlog (``unacknowledged``, pending plus lag) differs from the one that run was
    launched for (its ``stream/*`` tags): new records or a record gone are worth a try at once."""
    failed = list(itertools.takewhile(lambda record: record.dagster_run.status == DagsterRunStatus.FAILURE, finished))
    if not failed:
        return None
    last = failed[0]
    tags = last.dagster_run.tags
    if "stream/pending" in tags and int(tags["stream/pending"]) + int(tags.get("stream/lag", 0)) != unacknowledged:
        return None
    wait = backoff_seconds(len(failed))
    retry_at = (last.end_time or last.update_timestamp.timestamp()) + wait
    if now >= retry_at:
        return None
    at = datetime.fromtimestamp(retry_at, tz=timezone.utc).strftime("%H:%M:%S")
    return (f"{len(failed)} {score_stream_job.name} runs failed in a row (last {last.dagster_run.run_id}); "
            f"backing off {wait:.0f} s: next try at {at} UTC, in {retry_at - now:.0f} s, sooner if the backlog "
            f"of {unacknowledged} records changes")


@sensor(job=score_stream_job, minimum_interval_seconds=5, default_status=DefaultSensorStatus.RUNNING,
        description="Launches a scoring run while records wait on the Redis stream (HYBRID_REDIS_URL); backs "
                    "off (5 s doubling to 5 min) while its runs keep failing.")
def scoring_stream_sensor(context: SensorEvaluationContext, scoring_stream: ScoringStream) -> RunRequest | SkipReason:
    if not scoring_stream.url:
        return SkipReason("No Redis stream configured: set HYBRID_REDIS_URL to score records from a stream.")
    active = context.instance.get_runs(RunsFilter(job_name=score_stream_job.name, statuses=_ACTIVE), limit=1)
    if active:
        return SkipReason(f"run {active[0].run_id} is still scoring the stream")
    backlog = scoring_stream.backlog(scoring_stream.client())
    if not backlog["pending"] and not backlog["lag"]:
        return SkipReason(f"No records waiting on {scoring_stream.stream}.")
    finished = context.instance.get_run_records(RunsFilter(job_name=score_stream_job.name, statuses=_FINISHED),
                                                limit=RECENT_RUNS)
    wait = stream_backoff(finished, backlog["pending"] + backlog["lag"], time.time())
    if wait:
        return SkipReason(wait)
    # Pending entries are re-read first: a run that died before acknowledging them is retried here.
    return RunRequest(tags={"stream/pending": str(backlog["pending"]), "stream/lag": str(backlog["lag"])})
