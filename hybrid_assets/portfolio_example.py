"""The bundled example of pattern 3: daily returns of 12 assets in 3 sectors, generated with a fixed
seed (no download), like the demo's example data.

A one-factor market model plus a sector factor plus noise: asset ``i`` of sector ``s`` returns
``alpha_i + beta_i * market + 0.6 * sector_s + eps_i``, so assets of one sector move together (a
risk the covariance sees) and their mean returns differ (a choice worth making).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hybrid_resources.data.paths import atomic_write

EXAMPLE_RETURNS_FILE_NAME = "example_returns.csv"
EXAMPLE_SEED = 20240601
EXAMPLE_SECTORS = {"tech": 4, "energy": 4, "health": 4}


def example_sectors() -> dict[str, str]:
    """Asset name -> sector of the example (``tech_0`` ... ``health_3``)."""
    return {f"{sector}_{i}": sector for sector, count in EXAMPLE_SECTORS.items() for i in range(count)}


def example_returns_frame(*, periods: int = 500, seed: int = EXAMPLE_SEED):
    """The example returns table: ``date`` (business days from 2023-01-02) and one column per asset."""
    import polars as pl

    names = list(example_sectors())
    sector_of = [list(EXAMPLE_SECTORS).index(s) for s in example_sectors().values()]
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0003, 0.01, periods)
    sectors = rng.normal(0.0, 0.006, (periods, len(EXAMPLE_SECTORS)))
    alpha = rng.normal(0.0004, 0.0004, len(names))
    beta = rng.uniform(0.6, 1.4, len(names))
    noise = rng.normal(0.0, 1.0, (periods, len(names))) * rng.uniform(0.008, 0.02, len(names))
    returns = alpha + market[:, None] * beta + 0.6 * sectors[:, sector_of] + noise
    dates = pl.date_range(pl.date(2023, 1, 2), pl.date(2030, 1, 1), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5)[:periods]
    return pl.DataFrame(returns.round(6), schema=names, orient="row").with_columns(
        pl.Series("date", dates)).select("date", *names)


def write_example_returns(path: Path) -> Path:
    """The example returns as a CSV, written whole (never seen half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, example_returns_frame().write_csv)
    return path
