"""The ingest job: one landing file (one partition) validated and loaded, or quarantined."""

from dagster import AssetSelection, define_asset_job

from hybrid_assets.common.partitions import landing_files_partitions

__all__ = ["ingest_landing_file_job"]

ingest_landing_file_job = define_asset_job(
    "ingest_landing_file",
    selection=AssetSelection.assets("raw_samples"),
    partitions_def=landing_files_partitions,
    description="Validate one landing file and load its rows, or quarantine it with a reason.",
)
