"""Pattern 3's landing sensors: a file dropped into ``$HYBRID_DATA_DIR/returns/`` (``returns_sensor``)
or ``$HYBRID_DATA_DIR/graphs/`` (``graph_sensor``) launches a run of its landing asset
(``returns_landing``, ``graph_landing``); the automation sensor then refreshes everything after it,
because the landing's data version changed (``ON_NEW_DATA``), as a training file's ingest refreshes
the models.

Both are the one folder sensor (:mod:`hybrid_assets.common.folder_sensor`): a file goes once it
stopped growing. One run covers every new file of a tick (the asset takes the newest good file and
quarantines the bad ones), with a run key made of their hashes. A file whose content the landing
asset already took (the bundled example it writes into an empty folder, e.g. by ``make demo``) is
skipped. A link or a folder named like a file is never read: it starts a run too, which records it
refused (see :func:`hybrid_assets.optimization.route.landing_entries`). RUNNING by default: a
fresh instance under the daemon needs no click.
"""

from dagster import AssetSelection, RunRequest, SensorEvaluationContext

from hybrid_assets.common.folder_sensor import (
    Submission,
    ZoneFile,
    content_of,
    folder_sensor,
    ingested_content,
)
from hybrid_assets.optimization.maxcut import MAXCUT
from hybrid_assets.optimization.portfolio import PORTFOLIO
from hybrid_assets.optimization.route import ProblemKind
from hybrid_resources.data.paths import printable_name

__all__ = ["graph_sensor", "new_contents", "returns_sensor"]


def new_contents(hashes: dict[str, str], taken: str | None) -> dict[str, str]:
    """``hashes``: file name -> SHA-256 of the stable new files; ``taken``: the hash the latest
    landing materialization used. The files that start a run: every one but the one already taken."""
    return {name: digest for name, digest in sorted(hashes.items()) if digest != taken}


def problem_landing_sensor(kind: ProblemKind, name: str):
    """The sensor of ``kind``'s landing folder (see the module docstring)."""
    landing = kind.names["landing"]

    def submit(context: SensorEvaluationContext, folder, files: list[ZoneFile]) -> Submission:
        contents = {printable_name(f.name): content for f in files if (content := content_of(folder, f)) is not None}
        new = new_contents(contents, ingested_content(context.instance, landing))
        if not new:
            return Submission(skipped=[f"{', '.join(contents)} already taken by {landing}"])
        run_key = f"{kind.folder}-" + "-".join(sorted(new.values()))[:200]
        return Submission(run_requests=[RunRequest(run_key=run_key, tags={f"{kind.folder}/files": ",".join(new)[:200]})])

    return folder_sensor(name, zone=kind.folder, location=kind.folder_path, submit=submit, suffixes=kind.suffixes,
                         asset_selection=AssetSelection.assets(landing),
                         description=f"A new file in $HYBRID_DATA_DIR/{kind.folder}/ runs {landing} once it stopped "
                                     "growing; what depends on it refreshes when its data changed")


returns_sensor = problem_landing_sensor(PORTFOLIO, "returns_sensor")
graph_sensor = problem_landing_sensor(MAXCUT, "graph_sensor")
