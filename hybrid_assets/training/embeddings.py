"""Features -> model-ready arrays: the PCA embedding, fitted on train only, scaled into the encoding range.

Everything here is deterministic given its inputs and a seed, so a re-run on the same
data versions reproduces the same artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

ENCODING_RANGE = (0.0, np.pi)
"""Reduced features are scaled into this interval (radians) before the feature map."""


@dataclass(frozen=True)
class EmbeddingTransform:
    """Standardize, project on the PCA components, scale into ENCODING_RANGE (clipped).

    mean, scale: (n_features,); components: (d, n_features); pc_min, pc_max: (d,) the train
    projections' range; fit_ids: (n_fit,) str, the train sample ids it was fit on.
    """

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    pc_min: np.ndarray
    pc_max: np.ndarray
    fit_ids: np.ndarray

    @classmethod
    def fit(cls, train: np.ndarray, ids: np.ndarray, *, n_qubits: int) -> "EmbeddingTransform":
        """Fit on train (n, n_features); d = min(n_qubits, n_features, n)."""
        mean = train.mean(axis=0)
        scale = train.std(axis=0)
        scale[scale == 0.0] = 1.0  # a constant column carries no information; keep it finite
        standardized = (train - mean) / scale
        n_components = min(n_qubits, standardized.shape[1], standardized.shape[0])
        # SVD of the centred train matrix; sign fixed so the largest loading is positive (deterministic).
        _, _, vt = np.linalg.svd(standardized, full_matrices=False)
        components = vt[:n_components]
        components *= np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])[:, None]
        projected = standardized @ components.T
        return cls(mean, scale, components, projected.min(axis=0), projected.max(axis=0), np.asarray(ids, dtype=str))

    def encode(self, matrix: np.ndarray) -> np.ndarray:
        """(n, n_features) -> (n, d) float64 in ENCODING_RANGE; values outside the fit range are clipped."""
        span = np.where(self.pc_max > self.pc_min, self.pc_max - self.pc_min, 1.0)
        unit = ((matrix - self.mean) / self.scale @ self.components.T - self.pc_min) / span
        low, high = ENCODING_RANGE
        return low + (high - low) * np.clip(unit, 0.0, 1.0)

    def to_bundle(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "components": self.components,
                "pc_min": self.pc_min, "pc_max": self.pc_max, "fit_ids": self.fit_ids}

    @classmethod
    def from_bundle(cls, bundle: dict[str, np.ndarray]) -> "EmbeddingTransform | None":
        """The transform stored in a reduced-embeddings bundle (None for bundles that predate fit_ids)."""
        names = ("mean", "scale", "components", "pc_min", "pc_max", "fit_ids")
        if not all(name in bundle for name in names):
            return None
        return cls(*(np.asarray(bundle[name]) for name in names))


def refit_reason(previous: EmbeddingTransform | None, features: pl.DataFrame, *, n_qubits: int,
                 refit_growth: float) -> str | None:
    """Why the embedding transform must be fit again, or None to keep ``previous``.

    Keeping it keeps every old sample's embedding (and so its cached kernel entries) while
    the train split grows by at most ``refit_growth`` (a fraction) over the rows it was fit
    on. It is fit again when there is none, the feature columns or the number of dimensions
    changed, or a sample it was fit on left the train split.
    """
    if previous is None:
        return "no fitted transform yet"
    train = features.filter(pl.col("split") == "train")
    n_features = len(train["features"][0]) if train.height else 0
    if previous.components.shape[1] != n_features:
        return f"the feature columns changed ({previous.components.shape[1]} -> {n_features})"
    if previous.components.shape[0] != min(n_qubits, n_features, train.height):
        return f"the embedding has {previous.components.shape[0]} dimensions, the config asks for {n_qubits}"
    train_ids = np.asarray(train["sample_id"].to_list(), dtype=str)
    if not np.isin(previous.fit_ids, train_ids).all():
        return "samples the transform was fit on are no longer in the train split"
    growth = train.height / len(previous.fit_ids) - 1.0
    if growth > refit_growth:
        return f"the train split grew {growth:.1%} since the fit (refit_growth {refit_growth:.0%})"
    return None


def reduce_embeddings(features: pl.DataFrame, *, n_qubits: int,
                      transform: EmbeddingTransform | None = None) -> dict[str, np.ndarray]:
    """Embed train and test features with ``transform``, or with PCA fit on the train split.

    Returns an array bundle: ``X_train``/``X_test`` (n, d) float64 in ENCODING_RANGE (points
    outside the fit range are clipped), ``y_train``/``y_test`` int64 class indices,
    ``ids_train``/``ids_test``, ``classes`` (sorted label strings), and the transform's
    arrays (:meth:`EmbeddingTransform.to_bundle`). ``d = min(n_qubits, n_features, n_train)``.
    Rows keep the order of ``features``.
    """
    classes = np.array(sorted(features["label"].unique().to_list()))
    if len(classes) != 2:
        raise ValueError(f"binary classification needs exactly 2 label classes, found {len(classes)}: {classes.tolist()}")
    parts = {name: features.filter(pl.col("split") == name) for name in ("train", "test")}
    for name, part in parts.items():
        if part.height < 2:
            raise ValueError(f"the {name} split has {part.height} samples; land more data or change test_fraction")
    matrices = {name: np.asarray(part["features"].to_list(), dtype=np.float64) for name, part in parts.items()}
    ids = {name: np.asarray(part["sample_id"].to_list(), dtype=str) for name, part in parts.items()}
    if transform is None:
        transform = EmbeddingTransform.fit(matrices["train"], ids["train"], n_qubits=n_qubits)
    bundle = {"X_train": transform.encode(matrices["train"]), "X_test": transform.encode(matrices["test"]),
              "classes": classes, **transform.to_bundle()}
    for name, part in parts.items():
        labels = np.asarray(part["label"].to_list())
        bundle[f"y_{name}"] = np.searchsorted(classes, labels).astype(np.int64)
        bundle[f"ids_{name}"] = ids[name]
    return bundle
