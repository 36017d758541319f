"""The planning slice's Definitions."""

from dagster import Definitions, load_assets_from_modules

from hybrid_assets.planning import assets
from hybrid_assets.planning.assets import plan_kernel_routes_job

__all__ = ["defs"]

defs = Definitions(assets=load_assets_from_modules([assets]), jobs=[plan_kernel_routes_job])
