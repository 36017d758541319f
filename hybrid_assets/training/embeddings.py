"""Features -> model-ready arrays: missing values imputed and categories encoded, then the PCA
embedding scaled into the encoding range; every step fitted on train only.

Everything here is deterministic given its inputs and a seed, so a re-run on the same
data versions reproduces the same artifacts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import polars as pl

from hybrid_resources.data.contract import DatasetContract
from hybrid_resources.data.dataset import resolve_task

ENCODING_RANGE = (0.0, np.pi)
"""Reduced features are scaled into this interval (radians) before the feature map."""


@dataclass(frozen=True)
class Preprocessor:
    """Impute numeric columns and encode categorical ones, with values fitted on train only.

    impute_values: (p,) the fill of each numeric column's missing values (NaN); category_names:
    (c,) str; category_levels: (c,) object arrays of each column's encoded levels (one-hot: the
    ``max_levels`` most frequent train levels, ties by name; ordinal: every train level, sorted);
    category_fill: (c,) str, what a missing category becomes; category_ordinal: (c,) bool.

    A level outside a column's encoded levels (unseen in training, or rarer than the cap) is an
    all-zero one-hot block, or ordinal code -1; :meth:`unseen_categories` counts such cells.
    """

    impute_values: np.ndarray
    category_names: np.ndarray
    category_levels: tuple[np.ndarray, ...]
    category_fill: np.ndarray
    category_ordinal: np.ndarray

    @classmethod
    def fit(cls, numeric: np.ndarray, categories: np.ndarray, category_names: list[str],
            contract: DatasetContract, numeric_names: list[str] | None = None) -> "Preprocessor":
        """Fit on train: numeric (n, p) float64 with NaN for missing; categories (n, c) object (None missing)."""
        names = numeric_names or [f"f{i}" for i in range(numeric.shape[1])]
        impute = np.array([_fill(numeric[:, j], contract.policy_of(names[j])[0], contract.fill_value)
                           for j in range(numeric.shape[1])], dtype=np.float64)
        levels, fills, ordinal = [], [], []
        for j, name in enumerate(category_names):
            present = [value for value in categories[:, j] if value is not None]
            counts = Counter(present)
            is_ordinal = name in contract.ordinal
            ranked = sorted(counts, key=lambda level: (-counts[level], level))
            kept = sorted(counts) if is_ordinal else sorted(ranked[:contract.max_levels])
            strategy = contract.policy_of(name, categorical=True)[0]
            fills.append(ranked[0] if ranked and strategy != "constant" else "missing")
            levels.append(np.array(kept, dtype=object))
            ordinal.append(is_ordinal)
        return cls(impute, np.array(category_names, dtype=str), tuple(levels), np.array(fills, dtype=str),
                   np.array(ordinal, dtype=bool))

    @property
    def width(self) -> int:
        """Columns of :meth:`encode`'s output."""
        return len(self.impute_values) + sum(1 if ordinal else len(levels)
                                             for levels, ordinal in zip(self.category_levels, self.category_ordinal))

    def encode(self, numeric: np.ndarray, categories: np.ndarray | None = None) -> np.ndarray:
        """(n, p) numeric with NaN and (n, c) categories -> (n, width) float64, finite."""
        numeric = np.asarray(numeric, dtype=np.float64)
        blocks = [np.where(np.isnan(numeric), self.impute_values, numeric)]
        if len(self.category_names):
            categories = _category_matrix(categories, len(numeric), len(self.category_names))
            for j, (levels, fill, ordinal) in enumerate(zip(self.category_levels, self.category_fill, self.category_ordinal)):
                index = {level: i for i, level in enumerate(levels)}
                codes = np.array([index.get(fill if value is None else value, -1) for value in categories[:, j]])
                if ordinal:
                    blocks.append(codes[:, None].astype(np.float64))
                else:
                    onehot = np.zeros((len(codes), len(levels)))
                    known = codes >= 0
                    onehot[np.flatnonzero(known), codes[known]] = 1.0
                    blocks.append(onehot)
        return np.hstack(blocks)

    def unseen_categories(self, categories: np.ndarray | None) -> int:
        """Cells (missing ones aside) whose category is not an encoded level: unseen in training, or
        rarer than the one-hot cap."""
        if not len(self.category_names) or categories is None or not len(categories):
            return 0
        categories = _category_matrix(categories, len(categories), len(self.category_names))
        return int(sum(value is not None and value not in set(levels)
                       for j, levels in enumerate(self.category_levels) for value in categories[:, j]))

    def to_bundle(self) -> dict[str, np.ndarray]:
        sizes = np.array([len(levels) for levels in self.category_levels], dtype=np.int64)
        flat = np.concatenate([np.asarray(levels, dtype=str) for levels in self.category_levels]) \
            if self.category_levels else np.array([], dtype=str)
        return {"impute_values": self.impute_values, "category_names": self.category_names,
                "category_levels": flat.astype(str), "category_sizes": sizes, "category_fill": self.category_fill,
                "category_ordinal": self.category_ordinal}

    @classmethod
    def from_bundle(cls, bundle: dict[str, np.ndarray]) -> "Preprocessor | None":
        if "impute_values" not in bundle:
            return None
        sizes = np.asarray(bundle["category_sizes"], dtype=np.int64)
        flat = np.asarray(bundle["category_levels"]).astype(object)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        levels = tuple(flat[bounds[i]:bounds[i + 1]] for i in range(len(sizes)))
        return cls(np.asarray(bundle["impute_values"], dtype=np.float64), np.asarray(bundle["category_names"]).astype(str),
                   levels, np.asarray(bundle["category_fill"]).astype(str),
                   np.asarray(bundle["category_ordinal"], dtype=bool))


def _fill(column: np.ndarray, strategy: str, constant: float) -> float:
    """The fill of one numeric column's missing values from its train values."""
    present = column[~np.isnan(column)]
    if strategy == "constant" or not len(present):
        return float(constant)
    if strategy == "mean":
        return float(present.mean())
    if strategy == "most_frequent":
        values, counts = np.unique(present, return_counts=True)
        return float(values[counts.argmax()])
    return float(np.median(present))


def _category_matrix(categories: np.ndarray | list | None, n_rows: int, n_columns: int) -> np.ndarray:
    """Categories as an (n, c) object array (None where missing); None stands for every cell missing."""
    if categories is None:
        return np.full((n_rows, n_columns), None, dtype=object)
    matrix = np.empty((n_rows, n_columns), dtype=object)
    for i, row in enumerate(categories):
        matrix[i, :] = list(row) if row is not None and len(row) else [None] * n_columns
    return matrix


@dataclass(frozen=True)
class EmbeddingTransform:
    """Impute and encode (:class:`Preprocessor`), standardize, project on the PCA components, scale
    into ENCODING_RANGE (clipped).

    mean, scale: (width,); components: (d, width); pc_min, pc_max: (d,) the train projections'
    range; fit_ids: (n_fit,) str, the train sample ids it was fit on; preprocessor: None for
    transforms stored before missing values and categories were handled (numeric input as is).
    """

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    pc_min: np.ndarray
    pc_max: np.ndarray
    fit_ids: np.ndarray
    preprocessor: Preprocessor | None = None

    @classmethod
    def fit(cls, train: np.ndarray, ids: np.ndarray, *, n_qubits: int,
            preprocessor: Preprocessor | None = None, categories: np.ndarray | None = None) -> "EmbeddingTransform":
        """Fit on train (n, p) [and its categories (n, c)]; d = min(n_qubits, width, n)."""
        encoded = train if preprocessor is None else preprocessor.encode(train, categories)
        mean = encoded.mean(axis=0)
        scale = encoded.std(axis=0)
        scale[scale == 0.0] = 1.0  # a constant column carries no information; keep it finite
        standardized = (encoded - mean) / scale
        n_components = min(n_qubits, standardized.shape[1], standardized.shape[0])
        # SVD of the centred train matrix; sign fixed so the largest loading is positive (deterministic).
        _, _, vt = np.linalg.svd(standardized, full_matrices=False)
        components = vt[:n_components]
        components *= np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])[:, None]
        projected = standardized @ components.T
        return cls(mean, scale, components, projected.min(axis=0), projected.max(axis=0), np.asarray(ids, dtype=str),
                   preprocessor)

    def encode(self, matrix: np.ndarray, categories: np.ndarray | None = None) -> np.ndarray:
        """(n, p) numeric features (NaN where missing) [and (n, c) categories] -> (n, d) float64 in
        ENCODING_RANGE; values outside the fit range are clipped."""
        if self.preprocessor is not None:
            matrix = self.preprocessor.encode(matrix, categories)
        span = np.where(self.pc_max > self.pc_min, self.pc_max - self.pc_min, 1.0)
        unit = ((matrix - self.mean) / self.scale @ self.components.T - self.pc_min) / span
        low, high = ENCODING_RANGE
        return low + (high - low) * np.clip(unit, 0.0, 1.0)

    def unseen_categories(self, categories: np.ndarray | None) -> int:
        """Cells whose category the transform does not encode (see :meth:`Preprocessor.unseen_categories`)."""
        return 0 if self.preprocessor is None else self.preprocessor.unseen_categories(categories)

    def to_bundle(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "components": self.components,
                "pc_min": self.pc_min, "pc_max": self.pc_max, "fit_ids": self.fit_ids,
                **(self.preprocessor.to_bundle() if self.preprocessor is not None else {})}

    @classmethod
    def from_bundle(cls, bundle: dict[str, np.ndarray]) -> "EmbeddingTransform | None":
        """The transform stored in a reduced-embeddings bundle (None for bundles that predate fit_ids)."""
        names = ("mean", "scale", "components", "pc_min", "pc_max", "fit_ids")
        if not all(name in bundle for name in names):
            return None
        return cls(*(np.asarray(bundle[name]) for name in names), Preprocessor.from_bundle(bundle))


def refit_reason(previous: EmbeddingTransform | None, features: pl.DataFrame, *, n_qubits: int,
                 refit_growth: float) -> str | None:
    """Why the embedding transform must be fit again, or None to keep ``previous``.

    Keeping it keeps every old sample's embedding (and so its cached kernel entries) while
    the train split grows by at most ``refit_growth`` (a fraction) over the rows it was fit
    on. It is fit again when there is none (or it predates missing-value handling), the feature
    columns or the number of dimensions changed, or a sample it was fit on left the train split.
    """
    if previous is None:
        return "no fitted transform yet"
    if previous.preprocessor is None:
        return "the stored transform predates missing-value and category handling"
    train = features.filter(pl.col("split") == "train")
    n_features = len(train["features"][0]) if train.height else 0
    n_categories = len(train["categories"][0]) if train.height and "categories" in train.columns else 0
    known = (len(previous.preprocessor.impute_values), len(previous.preprocessor.category_names))
    if known != (n_features, n_categories):
        return f"the feature columns changed ({sum(known)} -> {n_features + n_categories})"
    if previous.components.shape[0] != min(n_qubits, previous.components.shape[1], train.height):
        return f"the embedding has {previous.components.shape[0]} dimensions, the config asks for {n_qubits}"
    train_ids = np.asarray(train["sample_id"].to_list(), dtype=str)
    if not np.isin(previous.fit_ids, train_ids).all():
        return "samples the transform was fit on are no longer in the train split"
    growth = train.height / len(previous.fit_ids) - 1.0
    if growth > refit_growth:
        return f"the train split grew {growth:.1%} since the fit (refit_growth {refit_growth:.0%})"
    return None


def category_matrix(rows: pl.DataFrame) -> np.ndarray:
    """The ``categories`` list column of warehouse rows (features, scoring rows) as an (n, c)
    object array, None where missing; c = 0 for a dataset without categorical columns."""
    values = rows["categories"].to_list() if "categories" in rows.columns else [[] for _ in range(rows.height)]
    return _category_matrix(values, rows.height, max((len(row) for row in values), default=0))


def split_arrays(part: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(numeric (n, p) float64 with NaN where missing, categories (n, c) object with None) of a
    features frame's rows."""
    numeric = np.asarray(part["features"].to_list(), dtype=np.float64).reshape(part.height, -1)
    return numeric, category_matrix(part)


def task_targets(labels: list[str], task: str, classes: np.ndarray) -> np.ndarray:
    """Labels (strings) -> y: int64 class indices into ``classes``, or float64 values for regression."""
    if task == "regression":
        return np.asarray([float(label) for label in labels], dtype=np.float64)
    index = {label: i for i, label in enumerate(classes)}
    return np.asarray([index[label] for label in labels], dtype=np.int64)


def reduce_embeddings(features: pl.DataFrame, *, n_qubits: int, transform: EmbeddingTransform | None = None,
                      contract: DatasetContract = DatasetContract(),
                      columns: tuple[list[str], list[str]] | None = None) -> dict[str, np.ndarray]:
    """Embed train and test features with ``transform``, or with one fit on the train split.

    Returns an array bundle: ``X_train``/``X_test`` (n, d) float64 in ENCODING_RANGE (points
    outside the fit range are clipped), ``task`` (1,) str (binary | multiclass | regression, see
    :func:`resolve_task`), ``y_train``/``y_test`` (int64 class indices, or float64 targets for
    regression), ``ids_train``/``ids_test``, ``classes`` (the label strings, in class-index order;
    empty for regression), and the transform's arrays (:meth:`EmbeddingTransform.to_bundle`).
    ``d = min(n_qubits, width, n_train)``. Rows keep the order of ``features``. ``columns``:
    the (numeric, categorical) column names of the features' arrays, for the contract's per-column
    policies and ordinal columns.
    """
    resolution = resolve_task(contract, features["label"].unique().to_list())
    observed = set(features["label"].unique().to_list())
    classes = np.array([c for c in resolution.classes if c in observed], dtype=str)
    if resolution.task != "regression" and len(classes) < 2:
        raise ValueError(f"classification needs at least 2 label classes, found {len(classes)}: {classes.tolist()}")
    parts = {name: features.filter(pl.col("split") == name) for name in ("train", "test")}
    for name, part in parts.items():
        if part.height < 2:
            raise ValueError(f"the {name} split has {part.height} samples; land more data or change test_fraction")
    arrays = {name: split_arrays(part) for name, part in parts.items()}
    ids = {name: np.asarray(part["sample_id"].to_list(), dtype=str) for name, part in parts.items()}
    if transform is None:
        numeric, categories = arrays["train"]
        names, category_names = columns or ([f"f{i}" for i in range(numeric.shape[1])],
                                            [f"c{i}" for i in range(categories.shape[1])])
        preprocessor = Preprocessor.fit(numeric, categories, category_names, contract, names)
        transform = EmbeddingTransform.fit(numeric, ids["train"], n_qubits=n_qubits, preprocessor=preprocessor,
                                           categories=categories)
    bundle = {"X_train": transform.encode(*arrays["train"]), "X_test": transform.encode(*arrays["test"]),
              "task": np.array([resolution.task]), "classes": classes, **transform.to_bundle()}
    for name, part in parts.items():
        bundle[f"y_{name}"] = task_targets(part["label"].to_list(), resolution.task, classes)
        bundle[f"ids_{name}"] = ids[name]
    return bundle
