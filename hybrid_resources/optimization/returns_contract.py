"""The landing contract of a returns file (pattern 3): what a time series of asset returns must be.

A returns file is CSV (UTF-8, comma) or Parquet with a ``date`` column (ISO dates, unique) and one
numeric column per asset (at least 2), one row per period, at least ``min_periods`` rows, every
value finite and present, and every value a return (|r| < ``max_abs_return``; prices or percents
are refused). A file that breaks it raises
:class:`~hybrid_resources.data.contract.ContractViolation` with the check's name and a reason,
as a training file does, and is quarantined the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from hybrid_resources.data.contract import (
    ContractViolation,
    quote_samples,
    redact_message,
)

RETURNS_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class ReturnsContract:
    date_column: str = "date"
    min_assets: int = 2
    max_assets: int = 20  # brute force and the exact simulator stay within 2^20 states
    min_periods: int = 30
    max_abs_return: float = 1.0


def load_returns_file(path: Path, contract: ReturnsContract = ReturnsContract()) -> pl.DataFrame:
    """The returns table of ``path`` (date sorted ascending), or :class:`ContractViolation`."""
    path = Path(path)
    try:
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, try_parse_dates=True)
    except Exception as error:
        raise ContractViolation("parse", f"{path.name} cannot be read as {path.suffix[1:]}: {redact_message(error)}") from error
    date = contract.date_column
    if date not in frame.columns:
        raise ContractViolation("required_columns", f"no {date!r} column (columns: {quote_samples(frame.columns)})")
    if frame.schema[date] not in (pl.Date, pl.Datetime):
        raise ContractViolation("date_format", f"{date!r} is not a column of ISO dates (read as {frame.schema[date]})")
    assets = [c for c in frame.columns if c != date]
    if not contract.min_assets <= len(assets) <= contract.max_assets:
        raise ContractViolation("asset_columns", f"{len(assets)} asset columns; the contract needs "
                                                 f"{contract.min_assets} to {contract.max_assets}")
    non_numeric = [c for c in assets if not frame.schema[c].is_numeric()]
    if non_numeric:
        raise ContractViolation("numeric_returns", f"asset columns not numeric: {quote_samples(non_numeric)}")
    if frame.height < contract.min_periods:
        raise ContractViolation("row_count", f"{frame.height} periods; at least {contract.min_periods} are needed")
    if frame[date].is_duplicated().any():
        raise ContractViolation("unique_dates", f"{int(frame[date].is_duplicated().sum())} rows repeat a date")
    values = frame.select(assets).cast(pl.Float64).to_numpy()
    if not np.isfinite(values).all() or frame.select(assets).null_count().sum_horizontal()[0]:
        raise ContractViolation("finite_values", "missing or non-finite returns in "
                                f"{quote_samples([a for a, col in zip(assets, values.T) if not np.isfinite(col).all()])}")
    too_big = [a for a, col in zip(assets, values.T) if np.abs(col).max() >= contract.max_abs_return]
    if too_big:
        raise ContractViolation("value_range", f"values of {quote_samples(too_big)} reach |r| >= {contract.max_abs_return:g}: "
                                               "prices or percents, not returns as fractions")
    return frame.sort(date)
