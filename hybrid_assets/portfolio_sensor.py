"""Pattern 3's landing sensors: a file dropped into ``$HYBRID_DATA_DIR/returns/`` (``returns_sensor``)
or ``$HYBRID_DATA_DIR/graphs/`` (``graph_sensor``) launches a run of its landing asset
(``returns_landing``, ``graph_landing``); the automation sensor then refreshes everything after it,
because the landing's data version changed (``ON_NEW_DATA``), as a training file's ingest refreshes
the models. An identical file, or a new file that is not the newest good one, refreshes nothing.

The decision is a plain function (:func:`plan_files`): the files whose content (SHA-256) the
cursor has not seen and that the landing asset has not already taken are new; one run covers
them all (the asset takes the newest good file and quarantines the bad ones), with a run key made
of their hashes. The cursor keeps every hash seen, so a re-landed file with new content runs
again, and the file the asset itself writes into an empty folder (the bundled example, e.g. by
``make demo``) is skipped once its materialization recorded it.

Running by default, like the training landing sensor: a fresh instance under the daemon needs no
click, and an empty or missing folder starts nothing.
"""

import json
from dataclasses import dataclass

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from hybrid_assets.assets.maxcut import MAXCUT
from hybrid_assets.assets.portfolio import PORTFOLIO
from hybrid_assets.assets.qaoa_route import ProblemKind
from hybrid_resources.data.contract import file_sha256


@dataclass(frozen=True)
class FilesPlan:
    new: dict[str, str]   # file name -> hash of the files that start a run
    cursor: list[str]     # every hash seen so far

    def run_key(self, prefix: str) -> str:
        return f"{prefix}-" + "-".join(sorted(self.new.values()))[:200]


def plan_files(listing: dict[str, str], seen: list[str], taken: str | None) -> FilesPlan:
    """``listing``: file name -> SHA-256 in the folder now; ``seen``: hashes of earlier ticks;
    ``taken``: the hash of the file the latest landing materialization used."""
    new = {name: digest for name, digest in sorted(listing.items()) if digest not in seen and digest != taken}
    return FilesPlan(new, sorted(set(seen) | set(listing.values())))


def _taken_hash(instance, key: AssetKey) -> str | None:
    event = instance.get_latest_materialization_event(key)
    if event is None:
        return None
    value = event.asset_materialization.metadata.get("file_hash")
    return getattr(value, "value", None)


def landing_file_sensor(kind: ProblemKind, name: str):
    """The sensor of ``kind``'s landing folder (see the module docstring)."""
    landing = AssetKey(kind.names["landing"])

    @sensor(name=name, asset_selection=AssetSelection.assets(landing), minimum_interval_seconds=30,
            default_status=DefaultSensorStatus.RUNNING,
            description=f"A new file in $HYBRID_DATA_DIR/{kind.folder}/ runs {kind.names['landing']}; what depends "
                        "on it refreshes when its data changed")
    def _sensor(context: SensorEvaluationContext):
        listing = {p.name: file_sha256(p) for p in kind.landing_files()}
        plan = plan_files(listing, json.loads(context.cursor) if context.cursor else [],
                          _taken_hash(context.instance, landing))
        context.update_cursor(json.dumps(plan.cursor))
        if not plan.new:
            return SkipReason(f"No new file in {kind.folder_path()} ({len(listing)} known).")
        return RunRequest(run_key=plan.run_key(kind.folder), tags={f"{kind.folder}/files": ",".join(plan.new)[:200]})

    return _sensor


returns_sensor = landing_file_sensor(PORTFOLIO, "returns_sensor")
graph_sensor = landing_file_sensor(MAXCUT, "graph_sensor")
