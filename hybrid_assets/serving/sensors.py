"""Serving's sensors: scoring and labels files (one partition each, through the one folder
sensor), and the Redis scoring stream."""

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
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

__all__ = ["labels_sensor", "scoring_sensor", "scoring_stream_sensor"]

scoring_sensor = file_partition_sensor(
    "scoring_sensor", zone="scoring", job=ingest_scoring_file_job, partitions_def=scoring_files_partitions,
    asset="scoring_batches", description="Ingests each new scoring file as its own partition; predictions follow.")
labels_sensor = file_partition_sensor(
    "labels_sensor", zone="labels", job=ingest_labels_file_job, partitions_def=labels_files_partitions,
    asset="scoring_labels", description="Ingests each labels file (sample_id, label) for rows scored earlier.")

_ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


@sensor(job=score_stream_job, minimum_interval_seconds=5, default_status=DefaultSensorStatus.RUNNING,
        description="Launches a scoring run while records wait on the Redis stream (HYBRID_REDIS_URL).")
def scoring_stream_sensor(context: SensorEvaluationContext, scoring_stream: ScoringStream) -> RunRequest | SkipReason:
    if not scoring_stream.url:
        return SkipReason("No Redis stream configured: set HYBRID_REDIS_URL to score records from a stream.")
    active = context.instance.get_runs(RunsFilter(job_name=score_stream_job.name, statuses=_ACTIVE), limit=1)
    if active:
        return SkipReason(f"run {active[0].run_id} is still scoring the stream")
    backlog = scoring_stream.backlog(scoring_stream.client())
    if not backlog["pending"] and not backlog["lag"]:
        return SkipReason(f"No records waiting on {scoring_stream.stream}.")
    # Pending entries are re-read first: a run that died before acknowledging them is retried here.
    return RunRequest(tags={"stream/pending": str(backlog["pending"]), "stream/lag": str(backlog["lag"])})
