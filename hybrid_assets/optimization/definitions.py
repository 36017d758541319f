"""The optimization slice's Definitions."""

from dagster import Definitions, load_assets_from_modules

from hybrid_assets.optimization import maxcut, portfolio
from hybrid_assets.optimization.maxcut import maxcut_job
from hybrid_assets.optimization.portfolio import portfolio_job
from hybrid_assets.optimization.sensors import graph_sensor, returns_sensor

__all__ = ["defs"]

defs = Definitions(assets=load_assets_from_modules([portfolio, maxcut]), jobs=[portfolio_job, maxcut_job],
                   sensors=[returns_sensor, graph_sensor])
