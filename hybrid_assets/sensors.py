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
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from hybrid_assets.ingestion import landing_files
from hybrid_assets.jobs import ingest_landing_file_job
from hybrid_assets.partitions import landing_files_partitions, safe_partition_key
from hybrid_resources.data.contract import file_sha256
from hybrid_resources.data.paths import landing_location

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


def list_landing() -> list[LandedFile]:
    listing = []
    for path in landing_files():
        stat = path.stat()
        mtime_ns = getattr(stat, "st_mtime_ns", None) or int(float(stat.st_mtime) * 1e9)
        listing.append(LandedFile(path.name, int(stat.st_size), int(mtime_ns)))
    return listing


@sensor(
    job=ingest_landing_file_job,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Ingests each new or changed landing file as its own partition once it stops growing.",
)
def landing_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    cursor = json.loads(context.cursor) if context.cursor else {}
    plan = plan_landing(list_landing(), cursor)
    requests, new_keys, already = [], [], []
    for landed in plan.to_submit:
        key = safe_partition_key(landed.name)
        content_hash = file_sha256(landing_location() / landed.name)
        if ingested_content(context.instance, key) == content_hash:
            already.append(landed.name)  # e.g. by `make demo`: ingesting it again would change nothing
            continue
        if not context.instance.has_dynamic_partition(landing_files_partitions.name, key):
            new_keys.append(key)
        requests.append(RunRequest(
            partition_key=key,
            run_key=f"{key}:{content_hash}:{landed.mtime_ns}",
            tags={"landing/file": landed.name[:200], "landing/sha256": content_hash},
        ))
    if not requests:
        context.update_cursor(json.dumps(plan.cursor))
        waiting = f"; waiting for {len(plan.waiting)} file(s) to stop changing" if plan.waiting else ""
        known = f"; {len(already)} file(s) already ingested with this content" if already else ""
        return SkipReason(f"No new landing files{waiting}{known}.")
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[landing_files_partitions.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(plan.cursor),
    )


def ingested_content(instance, partition_key: str) -> str | None:
    """The content hash the partition's latest ``raw_samples`` materialization ingested, if any
    (whoever ran it: this sensor, ``make demo``, or a click in the UI)."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("raw_samples"), asset_partitions=[partition_key]), limit=1).records
    if not records:
        return None
    metadata = records[0].asset_materialization.metadata
    status, file_hash = metadata.get("status"), metadata.get("file_hash")
    return file_hash.value if status is not None and status.value == "ingested" and file_hash is not None else None


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
