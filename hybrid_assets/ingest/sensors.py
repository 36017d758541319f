"""The landing sensor: each new or changed training file is ingested as its own partition.

It watches ``$HYBRID_DATA_DIR/landing`` or any fsspec/UPath URI (``HYBRID_LANDING_URI``, e.g.
``s3://bucket/prefix``) through the one folder sensor (:mod:`hybrid_assets.common.folder_sensor`):
a file goes once it stopped growing, with a run key that includes its content hash, and a file
whose content its partition already ingested (``make demo`` ingests without the sensor) is skipped.
"""

from hybrid_assets.common.folder_sensor import file_partition_sensor
from hybrid_assets.common.partitions import landing_files_partitions
from hybrid_assets.ingest.jobs import ingest_landing_file_job

__all__ = ["landing_sensor"]

landing_sensor = file_partition_sensor(
    "landing_sensor", zone="landing", job=ingest_landing_file_job, partitions_def=landing_files_partitions,
    asset="raw_samples", description="Ingests each new or changed landing file as its own partition once it stops growing.")
