"""Plain functions from landed rows to model-ready arrays: dedup, split, PCA embedding.

Everything here is deterministic given its inputs and a seed, so a re-run on the same
data versions reproduces the same artifacts.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

ENCODING_RANGE = (0.0, np.pi)
"""Reduced features are scaled into this interval (radians) before the feature map."""


def split_of(sample_id: str, *, test_fraction: float, seed: int) -> str:
    """``"test"`` or ``"train"`` from a hash of (seed, sample id).

    The assignment depends on nothing but the id, so a sample keeps its split as new
    files land (no re-shuffling of the holdout set).
    """
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if position < test_fraction else "train"


def row_hash(label: str, features: list[float]) -> str:
    """Content hash of one sample (label + feature values), 16 hex characters."""
    payload = label.encode() + b"|" + np.asarray(features, dtype=np.float64).tobytes()
    return hashlib.sha256(payload).hexdigest()[:16]


def build_features(raw_rows: pl.DataFrame, *, test_fraction: float, seed: int) -> pl.DataFrame:
    """Deduplicate landed rows by ``sample_id`` and assign the deterministic split.

    ``raw_rows`` has columns sample_id (str), label (str), features (list[f64]), file_hash
    (str) and an ``order`` column (earlier files first). The first delivery of a sample wins;
    identical re-deliveries collapse. Returns sample_id, label, features, split, row_hash,
    file_hash sorted by sample_id.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    deduplicated = raw_rows.sort("order").unique(subset="sample_id", keep="first", maintain_order=True)
    return (
        deduplicated.with_columns(
            pl.struct("label", "features")
            .map_elements(lambda row: row_hash(row["label"], row["features"]), return_dtype=pl.String)
            .alias("row_hash"),
            pl.col("sample_id")
            .map_elements(lambda sid: split_of(sid, test_fraction=test_fraction, seed=seed), return_dtype=pl.String)
            .alias("split"),
        )
        .select("sample_id", "label", "features", "split", "row_hash", "file_hash")
        .sort("sample_id")
    )


def reduce_embeddings(features: pl.DataFrame, *, n_qubits: int) -> dict[str, np.ndarray]:
    """Standardize, PCA (fit on the train split only) to ``n_qubits`` dims, scale into ENCODING_RANGE.

    Returns an array bundle: ``X_train``/``X_test`` (n, d) float64 in ENCODING_RANGE (test
    points outside the train range are clipped), ``y_train``/``y_test`` int64 class indices,
    ``ids_train``/``ids_test``, ``classes`` (sorted label strings), and the fitted transform:
    ``mean``, ``scale``, ``components`` (d, n_features), ``pc_min``, ``pc_max``.
    ``d = min(n_qubits, n_features, n_train)``.
    """
    classes = np.array(sorted(features["label"].unique().to_list()))
    if len(classes) != 2:
        raise ValueError(f"binary classification needs exactly 2 label classes, found {len(classes)}: {classes.tolist()}")
    parts = {name: features.filter(pl.col("split") == name) for name in ("train", "test")}
    for name, part in parts.items():
        if part.height < 2:
            raise ValueError(f"the {name} split has {part.height} samples; land more data or change test_fraction")
    matrices = {name: np.asarray(part["features"].to_list(), dtype=np.float64) for name, part in parts.items()}

    train = matrices["train"]
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale[scale == 0.0] = 1.0  # a constant column carries no information; keep it finite
    standardized = (train - mean) / scale
    n_components = min(n_qubits, standardized.shape[1], standardized.shape[0])
    # SVD of the centred train matrix; sign fixed so the largest loading is positive (deterministic).
    _, _, vt = np.linalg.svd(standardized, full_matrices=False)
    components = vt[:n_components]
    components *= np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])[:, None]

    projected_train = standardized @ components.T
    pc_min, pc_max = projected_train.min(axis=0), projected_train.max(axis=0)
    span = np.where(pc_max > pc_min, pc_max - pc_min, 1.0)
    low, high = ENCODING_RANGE

    def encode(matrix: np.ndarray) -> np.ndarray:
        unit = ((matrix - mean) / scale @ components.T - pc_min) / span
        return low + (high - low) * np.clip(unit, 0.0, 1.0)

    bundle = {
        "X_train": encode(train),
        "X_test": encode(matrices["test"]),
        "classes": classes,
        "mean": mean,
        "scale": scale,
        "components": components,
        "pc_min": pc_min,
        "pc_max": pc_max,
    }
    for name, part in parts.items():
        labels = np.asarray(part["label"].to_list())
        bundle[f"y_{name}"] = np.searchsorted(classes, labels).astype(np.int64)
        bundle[f"ids_{name}"] = np.asarray(part["sample_id"].to_list(), dtype=str)
    return bundle
