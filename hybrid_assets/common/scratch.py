"""Scratch is this host's own: a step's memory-mapped kernels are written under
``<scratch>/<run id>/<step>/`` (:meth:`~hybrid_resources.data.paths.DataLayout.scratch_for`), then
moved into the artifact store (or uploaded to it) when the step's output is stored, which removes
the emptied folders. A failed step removes its own folder; a run whose process was killed leaves
it behind, and :data:`scratch_cleanup_sensor` removes it when Dagster marks the run failed (run
monitoring, on the host that runs the daemon). On Kubernetes scratch is the pod's ``emptyDir``,
which goes with the pod.
"""

from __future__ import annotations

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    SkipReason,
    run_failure_sensor,
)

from hybrid_resources.data.paths import DataLayout, remove_tree


@run_failure_sensor(name="scratch_cleanup", default_status=DefaultSensorStatus.RUNNING, minimum_interval_seconds=10,
                    description="Removes a failed run's scratch folder (its memory-mapped kernels) on this host.")
def scratch_cleanup_sensor(context: RunFailureSensorContext):
    folder = DataLayout.from_env().scratch_for(context.dagster_run.run_id)
    if not folder.exists():
        return SkipReason(f"run {context.dagster_run.run_id} left no scratch on this host")
    remove_tree(folder)
    context.log.info(f"removed the scratch of failed run {context.dagster_run.run_id}: {folder}")
    return None
