"""Jobs: ingest one landing file (one partition), and refresh everything downstream of the landing rows."""

from dagster import AssetSelection, define_asset_job

from hybrid_assets.assets.landing import raw_samples
from hybrid_assets.partitions import landing_files_partitions

ingest_landing_file_job = define_asset_job(
    "ingest_landing_file",
    selection=AssetSelection.assets(raw_samples),
    partitions_def=landing_files_partitions,
    description="Validate one landing file and load its rows, or quarantine it with a reason.",
)

refresh_models_job = define_asset_job(
    "refresh_models",
    # The paid-hardware evaluation is launched on purpose only (job hardware_evaluation).
    selection=AssetSelection.all() - AssetSelection.assets(raw_samples) - AssetSelection.groups("hardware"),
    description="Features -> embeddings -> circuit -> kernels -> models -> evaluation, on all ingested data.",
)
