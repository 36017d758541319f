"""The one folder-watching sensor of every zone: landing, scoring, labels, returns and graphs.

A file is handed on once its size and mtime stayed the same for one tick (a file still being
written waits). The cursor holds two signatures per file *now listed*, so it stays as small as
the folder: a name that disappears (quarantined, deleted) is forgotten, and the same name landing
again is new. What a handed-on file starts is the zone's own business (``submit``): one run per
file as a partition (training, scoring, labels) or one run for a folder's new files (pattern 3).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from hybrid_assets.common.partitions import safe_partition_key
from hybrid_resources.data.contract import file_sha256
from hybrid_resources.data.paths import zone_files, zone_location

__all__ = ["MAX_RUNS_PER_TICK", "Submission", "ZoneFile", "ZonePlan", "file_partition_sensor", "folder_sensor",
           "ingested_content", "list_zone", "plan_zone"]

MAX_RUNS_PER_TICK = 25


@dataclass(frozen=True)
class ZoneFile:
    """One file seen in a zone."""

    name: str
    size: int
    mtime_ns: int

    @property
    def signature(self) -> list[int]:
        return [self.size, self.mtime_ns]


@dataclass(frozen=True)
class ZonePlan:
    to_submit: list[ZoneFile]     # stable files not handed on with this signature before
    waiting: list[str]            # new or still-changing files, checked again next tick
    cursor: dict                  # the next cursor


@dataclass
class Submission:
    """What a zone starts for its stable files, and why it skipped others (for the tick's log)."""

    run_requests: list[RunRequest] = field(default_factory=list)
    partitions: list[AddDynamicPartitionsRequest] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def plan_zone(listing: list[ZoneFile], cursor: dict, *, max_files: int = MAX_RUNS_PER_TICK) -> ZonePlan:
    """Decide which files to hand on this tick (pure; no I/O).

    ``cursor`` = ``{"seen": {name: [size, mtime_ns]}, "submitted": {name: [size, mtime_ns]}}``.
    A file goes when its signature equals the one seen last tick and differs from the one last
    handed on, at most ``max_files`` a tick (the rest wait). Only listed names are kept.
    """
    seen, submitted = cursor.get("seen", {}), cursor.get("submitted", {})
    names = {f.name for f in listing}
    next_seen = {f.name: f.signature for f in listing}
    next_submitted = {name: sig for name, sig in submitted.items() if name in names}
    to_submit, waiting = [], []
    for landed in sorted(listing, key=lambda f: f.name):
        if next_submitted.get(landed.name) == landed.signature:
            continue
        if seen.get(landed.name) != landed.signature or len(to_submit) >= max_files:
            waiting.append(landed.name)
            continue
        to_submit.append(landed)
        next_submitted[landed.name] = landed.signature
    return ZonePlan(to_submit, waiting, {"seen": next_seen, "submitted": next_submitted})


def list_zone(location, *, suffixes: tuple[str, ...] = ()) -> list[ZoneFile]:
    """The regular files of ``location`` with their size and mtime (ns)."""
    listing = []
    for path in zone_files(location, suffixes=suffixes):
        stat = path.stat()
        mtime_ns = getattr(stat, "st_mtime_ns", None) or int(float(stat.st_mtime) * 1e9)
        listing.append(ZoneFile(path.name, int(stat.st_size), int(mtime_ns)))
    return listing


def _read_cursor(raw: str | None) -> dict:
    cursor = json.loads(raw) if raw else {}
    return cursor if isinstance(cursor, dict) else {}  # an older cursor format starts afresh


def folder_sensor(name: str, *, zone: str, location: Callable[[], object],
                  submit: Callable[[SensorEvaluationContext, object, list[ZoneFile]], Submission],
                  description: str, suffixes: tuple[str, ...] = (), minimum_interval_seconds: int = 10, **targets):
    """A sensor, RUNNING by default, that hands ``submit`` the stable new or changed files of
    ``location()``, the ``zone``'s folder (see the module docstring). ``targets``: ``job=`` or
    ``asset_selection=``."""

    @sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=DefaultSensorStatus.RUNNING,
            description=description, **targets)
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        folder = location()
        plan = plan_zone(list_zone(folder, suffixes=suffixes), _read_cursor(context.cursor))
        submission = submit(context, folder, plan.to_submit) if plan.to_submit else Submission()
        cursor = json.dumps(plan.cursor)
        if not submission.run_requests:
            context.update_cursor(cursor)
            waiting = f"; waiting for {len(plan.waiting)} file(s) to stop changing" if plan.waiting else ""
            skipped = f"; {'; '.join(submission.skipped)}" if submission.skipped else ""
            return SkipReason(f"No new {zone} files in {folder}{waiting}{skipped}.")
        return SensorResult(run_requests=submission.run_requests,
                            dynamic_partitions_requests=submission.partitions, cursor=cursor)

    return _sensor


def ingested_content(instance, asset: str, partition_key: str | None = None) -> str | None:
    """The content hash (``file_hash`` metadata) that ``asset``'s latest materialization (of
    ``partition_key``) took in, if its status says it took one, whoever ran it: a sensor,
    ``make demo`` or a click in the UI."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition_key] if partition_key else None),
        limit=1).records
    if not records:
        return None
    metadata = records[0].asset_materialization.metadata
    status, file_hash = metadata.get("status"), metadata.get("file_hash")
    if status is not None and status.value not in ("ingested", "landed"):
        return None
    return file_hash.value if file_hash is not None else None


def file_partition_sensor(name: str, *, zone: str, job, partitions_def, asset: str, description: str):
    """A zone whose every file is its own partition of ``asset`` (training, scoring and labels
    files): one run per stable new or changed file, with a run key that carries its content
    hash, skipped when that partition already took the same content."""
    def submit(context: SensorEvaluationContext, folder, files: list[ZoneFile]) -> Submission:
        submission, new_keys, already = Submission(), [], 0
        for landed in files:
            key = safe_partition_key(landed.name)
            content_hash = file_sha256(folder / landed.name)
            if ingested_content(context.instance, asset, key) == content_hash:
                already += 1  # e.g. by `make demo`: ingesting it again would change nothing
                continue
            if not context.instance.has_dynamic_partition(partitions_def.name, key):
                new_keys.append(key)
            submission.run_requests.append(RunRequest(
                partition_key=key, run_key=f"{key}:{content_hash}:{landed.mtime_ns}",
                tags={f"{zone}/file": landed.name[:200], f"{zone}/sha256": content_hash}))
        if new_keys:
            submission.partitions.append(partitions_def.build_add_request(new_keys))
        if already:
            submission.skipped.append(f"{already} file(s) already ingested with this content")
        return submission

    return folder_sensor(name, zone=zone, location=lambda: zone_location(zone), submit=submit,
                         description=description, job=job)
