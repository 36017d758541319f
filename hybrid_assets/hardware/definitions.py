"""The hardware slice's Definitions."""

from dagster import Definitions, load_assets_from_modules

from hybrid_assets.hardware import assets, noise
from hybrid_assets.hardware.assets import hardware_evaluation_job

__all__ = ["defs"]

defs = Definitions(assets=load_assets_from_modules([noise, assets]), jobs=[hardware_evaluation_job])
