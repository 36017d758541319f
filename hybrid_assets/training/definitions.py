"""The training slice's Definitions."""

from dagster import Definitions, load_assets_from_modules

from hybrid_assets.training import classical, quantum, variational

__all__ = ["defs"]

defs = Definitions(assets=load_assets_from_modules([quantum, classical, variational]))
