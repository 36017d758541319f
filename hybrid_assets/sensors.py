"""New data flows in by itself: the landing sensor, and the automation sensor that refreshes downstream.

The landing sensor watches a folder (``$HYBRID_DATA_DIR/landing``) or any fsspec/UPath URI
(``HYBRID_LANDING_URI``, e.g. ``s3://bucket/prefix``). A file is submitted once its size and
mtime have stayed the same for one tick (a file still being written waits), as its own dynamic
partition, with a run key that includes its content hash. The cursor remembers what was
submitted, so an unchanged file is not re-run and a re-landed file with new content is; a file
whose content the instance already ingested under its partition (``make demo`` ingests without
the sensor) is not submitted at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from hybrid_assets.ingestion import landing_files
from hybrid_assets.jobs import (
    ingest_labels_file_job,
    ingest_landing_file_job,
    ingest_scoring_file_job,
    score_stream_job,
)
from hybrid_assets.partitions import (
    labels_files_partitions,
    landing_files_partitions,
    safe_partition_key,
    scoring_files_partitions,
)
from hybrid_resources.data.contract import file_sha256
from hybrid_resources.data.paths import zone_location
from hybrid_resources.data.stream import ScoringStream

MAX_RUNS_PER_TICK = 25


@dataclass(frozen=True)
class LandedFile:
    """One file seen in the landing location."""

    name: str
    size: int
    mtime_ns: int

    @property
    def signature(self) -> list[int]:
        return [self.size, self.mtime_ns]


@dataclass(frozen=True)
class LandingPlan:
    to_submit: list[LandedFile]   # stable files whose content needs ingesting
    waiting: list[str]            # new or still-changing files, checked again next tick
    cursor: dict                  # the next cursor


def plan_landing(listing: list[LandedFile], cursor: dict) -> LandingPlan:
    """Decide which files to hash and submit this tick (pure; no I/O).

    ``cursor`` = ``{"seen": {name: [size, mtime_ns]}, "submitted": {name: [size, mtime_ns]}}``.
    A file is submitted when its signature equals the one seen last tick and differs from the
    one last submitted. Names no longer listed (quarantined, deleted) are forgotten, so the same
    name landing again is treated as new.
    """
    seen, submitted = cursor.get("seen", {}), cursor.get("submitted", {})
    names = {f.name for f in listing}
    next_seen = {f.name: f.signature for f in listing}
    next_submitted = {name: sig for name, sig in submitted.items() if name in names}
    to_submit, waiting = [], []
    for landed in sorted(listing, key=lambda f: f.name):
        if next_submitted.get(landed.name) == landed.signature:
            continue
        if seen.get(landed.name) != landed.signature:
            waiting.append(landed.name)
        elif len(to_submit) < MAX_RUNS_PER_TICK:
            to_submit.append(landed)
            next_submitted[landed.name] = landed.signature
        else:
            waiting.append(landed.name)
    return LandingPlan(to_submit, waiting, {"seen": next_seen, "submitted": next_submitted})


def list_landing(zone: str = "landing") -> list[LandedFile]:
    listing = []
    for path in landing_files(zone_location(zone)):
        stat = path.stat()
        mtime_ns = getattr(stat, "st_mtime_ns", None) or int(float(stat.st_mtime) * 1e9)
        listing.append(LandedFile(path.name, int(stat.st_size), int(mtime_ns)))
    return listing


def file_zone_sensor(name: str, *, zone: str, job, partitions_def, asset: str, description: str):
    """A sensor that submits each new or changed file of ``zone`` as its own partition of ``asset``
    once it stops growing, and skips a file whose content that partition already ingested."""

    @sensor(name=name, job=job, minimum_interval_seconds=10, default_status=DefaultSensorStatus.RUNNING,
            description=description)
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        cursor = json.loads(context.cursor) if context.cursor else {}
        plan = plan_landing(list_landing(zone), cursor)
        requests, new_keys, already = [], [], []
        for landed in plan.to_submit:
            key = safe_partition_key(landed.name)
            content_hash = file_sha256(zone_location(zone) / landed.name)
            if ingested_content(context.instance, key, asset) == content_hash:
                already.append(landed.name)  # e.g. by `make demo`: ingesting it again would change nothing
                continue
            if not context.instance.has_dynamic_partition(partitions_def.name, key):
                new_keys.append(key)
            requests.append(RunRequest(
                partition_key=key,
                run_key=f"{key}:{content_hash}:{landed.mtime_ns}",
                tags={f"{zone}/file": landed.name[:200], f"{zone}/sha256": content_hash},
            ))
        if not requests:
            context.update_cursor(json.dumps(plan.cursor))
            waiting = f"; waiting for {len(plan.waiting)} file(s) to stop changing" if plan.waiting else ""
            known = f"; {len(already)} file(s) already ingested with this content" if already else ""
            return SkipReason(f"No new {zone} files{waiting}{known}.")
        return SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[partitions_def.build_add_request(new_keys)] if new_keys else [],
            cursor=json.dumps(plan.cursor),
        )

    return _sensor


def ingested_content(instance, partition_key: str, asset: str = "raw_samples") -> str | None:
    """The content hash the partition's latest materialization of ``asset`` ingested, if any
    (whoever ran it: a sensor, ``make demo``, or a click in the UI)."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition_key]), limit=1).records
    if not records:
        return None
    metadata = records[0].asset_materialization.metadata
    status, file_hash = metadata.get("status"), metadata.get("file_hash")
    return file_hash.value if status is not None and status.value == "ingested" and file_hash is not None else None


landing_sensor = file_zone_sensor(
    "landing_sensor", zone="landing", job=ingest_landing_file_job, partitions_def=landing_files_partitions,
    asset="raw_samples", description="Ingests each new or changed landing file as its own partition once it stops growing.")
scoring_sensor = file_zone_sensor(
    "scoring_sensor", zone="scoring", job=ingest_scoring_file_job, partitions_def=scoring_files_partitions,
    asset="scoring_batches", description="Ingests each new scoring file as its own partition; predictions follow.")
labels_sensor = file_zone_sensor(
    "labels_sensor", zone="labels", job=ingest_labels_file_job, partitions_def=labels_files_partitions,
    asset="scoring_labels", description="Ingests each labels file (sample_id, label) for rows scored earlier.")


@sensor(job=score_stream_job, minimum_interval_seconds=5, default_status=DefaultSensorStatus.RUNNING,
        description="Launches a scoring run while records wait on the Redis stream (HYBRID_REDIS_URL).")
def scoring_stream_sensor(context: SensorEvaluationContext, scoring_stream: ScoringStream) -> RunRequest | SkipReason:
    if not scoring_stream.url:
        return SkipReason("No Redis stream configured: set HYBRID_REDIS_URL to score records from a stream.")
    active = context.instance.get_runs(RunsFilter(job_name=score_stream_job.name, statuses=[
        DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]),
        limit=1)
    if active:
        return SkipReason(f"run {active[0].run_id} is still scoring the stream")
    backlog = scoring_stream.backlog(scoring_stream.client())
    if not backlog["pending"] and not backlog["lag"]:
        return SkipReason(f"No records waiting on {scoring_stream.stream}.")
    # Pending entries are re-read first: a run that died before acknowledging them is retried here.
    return RunRequest(tags={"stream/pending": str(backlog["pending"]), "stream/lag": str(backlog["lag"])})


# Declarative automation acts only while this sensor runs; RUNNING by default so a fresh
# instance refreshes downstream assets with no click.
automation_sensor = AutomationConditionSensorDefinition(
    "refresh_on_new_data",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=10,
    emit_backfills=False,
    description="Materializes assets whose automation condition fires (eager refresh after new data).",
)
