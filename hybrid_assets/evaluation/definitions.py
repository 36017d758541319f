"""The evaluation slice's Definitions."""

from dagster import Definitions, load_assets_from_modules

from hybrid_assets.evaluation import assets

__all__ = ["defs"]

defs = Definitions(assets=load_assets_from_modules([assets]))
