"""The one folder-watching sensor of every zone: landing, scoring, labels, returns and graphs.

A file is handed on once its size and mtime stayed the same for one tick (a file still being
written waits). The cursor holds two signatures per file *now listed*, so it stays as small as
the folder: a name that disappears (quarantined, deleted) is forgotten, and the same name landing
again is new. What a handed-on file starts is the zone's own business (``submit``): one run per
file as a partition (training, scoring, labels) or one run for a folder's new files (pattern 3).

The listing is ``lstat``'s (:func:`hybrid_resources.data.paths.zone_entries`): a link, a folder or
any other entry that is not a regular file is handed on marked ``refused`` and is never read here
(its run records it unread); a file is hashed with ``O_NOFOLLOW``. A name that is not UTF-8 is
keyed by its bytes and shown with ``\\xNN`` escapes, so no name can stop a zone's ticks.
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
from hybrid_resources.data.paths import printable_name, zone_entries, zone_location
from hybrid_resources.data.zones import ZoneRefusal, zone_file_sha256

__all__ = ["MAX_RUNS_PER_TICK", "Submission", "ZoneFile", "ZonePlan", "content_of", "file_partition_sensor",
           "folder_sensor", "ingested_content", "list_zone", "plan_zone"]

MAX_RUNS_PER_TICK = 25


@dataclass(frozen=True)
class ZoneFile:
    """One entry seen in a zone: a regular file, or (``refused`` set to the check, e.g. "symlink")
    an entry the zone refuses unread."""

    name: str
    size: int
    mtime_ns: int
    refused: str = ""

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
    """The entries of ``location`` with their size and mtime (ns) as ``lstat`` gives them (a link's
    own), refused ones marked (see :func:`hybrid_resources.data.paths.zone_entries`)."""
    return [ZoneFile(entry.name, entry.size, entry.mtime_ns, entry.kind if entry.refused else "")
            for entry in zone_entries(location, suffixes=suffixes)]


def content_of(folder, landed: ZoneFile) -> str | None:
    """What a run key says of an entry's content: the SHA-256 of a regular file (read with
    ``O_NOFOLLOW``), else ``refused-<check>-<mtime>`` (nothing read), or
    ``unreadable-<error>-<mtime>`` when the file cannot be read here (its run reports why);
    None when it vanished since the listing (the next tick forgets it)."""
    if landed.refused:
        return f"refused-{landed.refused}-{landed.mtime_ns}"
    try:
        return zone_file_sha256(folder / landed.name)
    except ZoneRefusal as refusal:  # it became a link or a folder since the listing
        return f"refused-{refusal.check}-{landed.mtime_ns}"
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"unreadable-{type(error).__name__}-{landed.mtime_ns}"


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
            content_hash = content_of(folder, landed)
            if content_hash is None:
                continue
            if ingested_content(context.instance, asset, key) == content_hash:
                already += 1  # e.g. by `make demo`: ingesting it again would change nothing
                continue
            if not context.instance.has_dynamic_partition(partitions_def.name, key):
                new_keys.append(key)
            submission.run_requests.append(RunRequest(
                partition_key=key, run_key=f"{key}:{content_hash}:{landed.mtime_ns}",
                tags={f"{zone}/file": printable_name(landed.name)[:200], f"{zone}/sha256": content_hash}))
        if new_keys:
            submission.partitions.append(partitions_def.build_add_request(new_keys))
        if already:
            submission.skipped.append(f"{already} file(s) already ingested with this content")
        return submission

    return folder_sensor(name, zone=zone, location=lambda: zone_location(zone), submit=submit,
                         description=description, job=job)
