"""A returns file dropped into ``$HYBRID_DATA_DIR/returns/`` launches the ``portfolio_candidates`` job.

The decision is a plain function (:func:`plan_returns`): the files whose content (SHA-256) the
cursor has not seen and that ``returns_landing`` has not already taken are new; one run covers
them all (the asset takes the newest good file and quarantines the bad ones), with a run key made
of their hashes. The cursor keeps every hash seen, so a re-landed file with new content runs
again, and the file the asset itself writes into an empty folder (the bundled example) is
skipped once its materialization recorded it.

Off by default (turn it on in the UI, Automation): the group is launched on purpose, and a
running sensor must not start runs by itself after a manual materialization wrote the example.
"""

import json
from dataclasses import dataclass

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from hybrid_assets.assets.portfolio import portfolio_job, returns_folder
from hybrid_resources.data.contract import file_sha256
from hybrid_resources.optimization.returns_contract import RETURNS_SUFFIXES


@dataclass(frozen=True)
class ReturnsPlan:
    new: dict[str, str]   # file name -> hash of the files that start a run
    cursor: list[str]     # every hash seen so far

    @property
    def run_key(self) -> str:
        return "returns-" + "-".join(sorted(self.new.values()))[:200]


def plan_returns(listing: dict[str, str], seen: list[str], taken: str | None) -> ReturnsPlan:
    """``listing``: file name -> SHA-256 in the folder now; ``seen``: hashes of earlier ticks;
    ``taken``: the hash of the file the latest ``returns_landing`` used."""
    new = {name: digest for name, digest in sorted(listing.items()) if digest not in seen and digest != taken}
    return ReturnsPlan(new, sorted(set(seen) | set(listing.values())))


def _taken_hash(instance) -> str | None:
    event = instance.get_latest_materialization_event(AssetKey("returns_landing"))
    if event is None:
        return None
    value = event.asset_materialization.metadata.get("file_hash")
    return getattr(value, "value", None)


@sensor(name="returns_sensor", job=portfolio_job, minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.STOPPED,
        description="A new returns file in $HYBRID_DATA_DIR/returns/ launches portfolio_candidates (off by default)")
def returns_sensor(context: SensorEvaluationContext):
    folder = returns_folder()
    files = sorted(p for p in folder.iterdir() if p.suffix in RETURNS_SUFFIXES) if folder.is_dir() else []
    listing = {p.name: file_sha256(p) for p in files}
    plan = plan_returns(listing, json.loads(context.cursor) if context.cursor else [], _taken_hash(context.instance))
    context.update_cursor(json.dumps(plan.cursor))
    if not plan.new:
        return SkipReason(f"No new returns file in {folder} ({len(listing)} known).")
    return RunRequest(run_key=plan.run_key, tags={"returns/files": ",".join(plan.new)[:200]})
