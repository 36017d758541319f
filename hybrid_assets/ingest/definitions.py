"""The ingest slice's Definitions."""

from dagster import Definitions, load_assets_from_modules

from hybrid_assets.ingest import assets
from hybrid_assets.ingest.jobs import ingest_landing_file_job
from hybrid_assets.ingest.sensors import landing_sensor

__all__ = ["defs"]

defs = Definitions(assets=load_assets_from_modules([assets]), jobs=[ingest_landing_file_job], sensors=[landing_sensor])
