"""The one Definitions of this code location (``dagster dev``, ``workspace.yaml``, ``[tool.dagster]``).

Each domain slice brings its own Definitions (assets, checks, jobs, sensors); they are merged here,
and the cross-cutting policy is applied once: resources from the environment
(:mod:`hybrid_assets.resources`), the step executor (:mod:`hybrid_assets.executors`), the
automation sensor that refreshes downstream assets on new data, the removal of a failed run's
scratch (:mod:`hybrid_assets.common.scratch`), and the one-click refresh job.
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
    define_asset_job,
)

from hybrid_assets import (
    evaluation,
    hardware,
    ingest,
    optimization,
    planning,
    serving,
    training,
)
from hybrid_assets.common.scratch import scratch_cleanup_sensor
from hybrid_assets.executors import executor_from_env
from hybrid_assets.resources import resources_from_env
from hybrid_resources.process_heap import freeze_heap

__all__ = ["SLICES", "all_assets", "automation_sensor", "defs", "refresh_models_job"]

SLICES = (ingest, training, evaluation, serving, planning, hardware, optimization)
all_assets = [asset for domain in SLICES for asset in domain.defs.assets]

refresh_models_job = define_asset_job(
    "refresh_models",
    # The paid-hardware evaluation is launched on purpose only (job hardware_evaluation); serving
    # assets run per scoring or labels file; the pattern-3 groups (portfolio, maxcut) and the route
    # plan (plan_kernel_routes) are their own jobs.
    selection=(AssetSelection.all() - AssetSelection.assets("raw_samples")
               - AssetSelection.groups("hardware", "serving", "portfolio", "maxcut", "planning")),
    description="Refresh every model on all ingested data: features -> embeddings -> circuit -> kernels -> models -> "
                "evaluation -> registry. The one-click refresh: Materialize all on this job's page (no partitions, "
                "no paid hardware).",
)


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

defs = Definitions.merge(
    *(domain.defs for domain in SLICES),
    Definitions(
        jobs=[refresh_models_job],
        sensors=[automation_sensor, scratch_cleanup_sensor],
        resources=resources_from_env(),
        # One process per run unless HYBRID_EXECUTOR says otherwise: each step is seconds of work at
        # small sizes, while a fresh step process would pay the pennylane/dagster imports again.
        executor=executor_from_env(),
    ),
)

# What the code location loaded lives as long as the process: the garbage collector no longer
# walks it, while the process runs or as it exits (hybrid_resources.process_heap).
freeze_heap()
