"""The serving slice's Definitions."""

from dagster import Definitions, load_assets_from_modules

from hybrid_assets.serving import assets
from hybrid_assets.serving.jobs import (
    ingest_labels_file_job,
    ingest_scoring_file_job,
    registry,
    score_stream_job,
    serving_dashboard_job,
)
from hybrid_assets.serving.sensors import (
    labels_sensor,
    scoring_sensor,
    scoring_stream_sensor,
)

__all__ = ["defs"]

defs = Definitions(
    assets=load_assets_from_modules([assets]),
    jobs=[ingest_scoring_file_job, ingest_labels_file_job, registry, score_stream_job, serving_dashboard_job],
    sensors=[scoring_sensor, labels_sensor, scoring_stream_sensor],
)
