"""Shared fixtures: every test gets its own data root (HYBRID_DATA_DIR) and small datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hybrid_resources.paths import DataLayout


@pytest.fixture
def data_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataLayout:
    """A fresh HYBRID_DATA_DIR with landing/, quarantine/, artifacts/."""
    monkeypatch.setenv("HYBRID_DATA_DIR", str(tmp_path / "data"))
    return DataLayout.from_env().ensure()


def blobs_frame(n_rows: int = 60, n_features: int = 5, seed: int = 0, id_offset: int = 0,
                labels: tuple[str, str] = ("0", "1")) -> pl.DataFrame:
    """Two well-separated Gaussian blobs: a dataset both models should classify well."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_rows) % 2
    X = rng.normal(size=(n_rows, n_features)) + 2.5 * y[:, None]
    frame = pl.DataFrame(X, schema=[f"f{i}" for i in range(n_features)], orient="row")
    return frame.with_columns(
        pl.Series("sample_id", [f"s{id_offset + i:05d}" for i in range(n_rows)]),
        pl.Series("label", [labels[v] for v in y]),
    ).select("sample_id", "label", *[f"f{i}" for i in range(n_features)])


@pytest.fixture
def blobs() -> pl.DataFrame:
    return blobs_frame()
