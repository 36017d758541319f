"""Landed rows -> features: deduplicated by sample id, each with a deterministic train/test split.

Deterministic given its inputs and a seed, so a re-run on the same data versions reproduces the
same features, and a sample keeps its split as new files land.
"""

from __future__ import annotations

import hashlib

import polars as pl

from hybrid_resources.data.contract import row_hash

__all__ = ["build_features", "split_of"]


def split_of(sample_id: str, *, test_fraction: float, seed: int) -> str:
    """``"test"`` or ``"train"`` from a hash of (seed, sample id).

    The assignment depends on nothing but the id, so a sample keeps its split as new
    files land (no re-shuffling of the holdout set).
    """
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if position < test_fraction else "train"


def build_features(raw_rows: pl.DataFrame, *, test_fraction: float, seed: int) -> pl.DataFrame:
    """Deduplicate landed rows by ``sample_id`` and assign the deterministic split.

    ``raw_rows`` has columns sample_id (str), label (str), features (list[f64], NaN where
    missing), categories (list[str], optional), file_hash (str) and an ``order`` column (earlier
    files first). The first delivery of a sample wins; identical re-deliveries collapse. Returns
    sample_id, label, features, categories, split, row_hash, file_hash sorted by sample_id.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if "categories" not in raw_rows.columns:
        raw_rows = raw_rows.with_columns(categories=pl.lit([], dtype=pl.List(pl.String)))
    deduplicated = raw_rows.sort("order").unique(subset="sample_id", keep="first", maintain_order=True)
    return (
        deduplicated.with_columns(
            pl.struct("label", "features", "categories")
            .map_elements(lambda row: row_hash(row["label"], row["features"], row["categories"] or ()),
                          return_dtype=pl.String)
            .alias("row_hash"),
            pl.col("sample_id")
            .map_elements(lambda sid: split_of(sid, test_fraction=test_fraction, seed=seed), return_dtype=pl.String)
            .alias("split"),
        )
        .select("sample_id", "label", "features", "categories", "split", "row_hash", "file_hash")
        .sort("sample_id")
    )
