"""Plain functions for the models: fitted models stored as arrays (never pickle) and holdout metrics.

Classical models: an RBF SVM, a logistic regression and gradient boosting (scikit-learn's
``HistGradientBoostingClassifier``), each fitted by scikit-learn and kept as the arrays its
decision function needs (:func:`fit_classical`, :func:`classical_decision`). Quantum: an SVM
on a precomputed kernel (:func:`fit_precomputed_svm`).
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC

from hybrid_resources.data.artifacts import info_of
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.nystrom import (
    NystromConfig,
    NystromModel,
    RbfKernel,
    fit_nystrom,
    nystrom_decision,
)
from hybrid_resources.quantum.vqc import VqcConfig, predict_proba


def fit_precomputed_svm(kernel_train: np.ndarray, y_train: np.ndarray, *, C: float) -> dict[str, np.ndarray]:
    """Fit an SVM on a precomputed (n_train, n_train) Gram matrix.

    Returns the model as arrays: ``support`` (indices into the train set), ``dual_coef``
    (n_support,), ``intercept`` (1,). The decision on new points needs only the kernel
    between them and the support vectors (see :func:`precomputed_decision`).
    """
    model = SVC(kernel="precomputed", C=C).fit(kernel_train, y_train)
    return {
        "support": model.support_.astype(np.int64),
        "dual_coef": model.dual_coef_[0].astype(np.float64),
        "intercept": model.intercept_.astype(np.float64),
    }


def precomputed_decision(model: dict[str, np.ndarray], kernel_rows: np.ndarray) -> np.ndarray:
    """Decision values for rows of a (n, n_train) kernel; positive means class index 1."""
    return kernel_rows[:, model["support"]] @ model["dual_coef"] + model["intercept"][0]


def quantum_svm_decision(model: dict[str, np.ndarray], kernel_rows: np.ndarray) -> np.ndarray:
    """Decision values of a stored quantum_svm (positive means class index 1) from its rows' kernel
    entries: against the train rows for a kernel SVM, against the m landmarks for a Nyström model
    (its arrays hold ``projection``; :class:`NystromModel`)."""
    if "projection" in model:
        return NystromModel.from_arrays(model).decision(kernel_rows)
    return precomputed_decision(model, kernel_rows)


def support_decision(model: dict[str, np.ndarray], kernel_to_support: np.ndarray) -> np.ndarray:
    """Decision values of a stored quantum_svm from rows' kernel entries against its own support
    points only: the support vectors (columns in ``support`` order) of a kernel SVM, the m
    landmarks of a Nyström model. What scoring a new row needs."""
    if "projection" in model:
        return NystromModel.from_arrays(model).decision(kernel_to_support)
    return kernel_to_support @ model["dual_coef"] + model["intercept"][0]


def fit_rbf_nystrom(X_train: np.ndarray, y_train: np.ndarray, *, C: float, gamma: float, m: int, rule: str,
                    seed: int, eps: float) -> dict[str, np.ndarray]:
    """The classical counterpart of the Nyström quantum model: the same landmark rule, map and
    least-squares SVM on an RBF kernel. Arrays of :class:`NystromModel` plus ``gamma``."""
    config = NystromConfig(m=min(m, len(X_train)), rule=rule, seed=seed, eps=eps, C=C)
    return {**fit_nystrom(X_train, y_train, RbfKernel(gamma), config).to_arrays(),
            "gamma": np.array([gamma], dtype=np.float64)}


def fit_rbf_svm(X_train: np.ndarray, y_train: np.ndarray, *, C: float, gamma: float | str = "scale") -> dict[str, np.ndarray]:
    """Fit the classical RBF baseline; returns ``support_vectors``, ``dual_coef``, ``intercept``, ``gamma``."""
    model = SVC(kernel="rbf", C=C, gamma=gamma).fit(X_train, y_train)
    return {
        "support_vectors": model.support_vectors_.astype(np.float64),
        "dual_coef": model.dual_coef_[0].astype(np.float64),
        "intercept": model.intercept_.astype(np.float64),
        "gamma": np.array([model._gamma], dtype=np.float64),
    }


def rbf_decision(model: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Decision values of the stored RBF model for X (n, d); positive means class index 1. A
    Nyström RBF model (:func:`fit_rbf_nystrom`) needs only X's entries against its landmarks."""
    if "projection" in model:
        return nystrom_decision(NystromModel.from_arrays(model), X, RbfKernel(float(model["gamma"][0])))
    kernel = rbf_kernel(X, model["support_vectors"], gamma=float(model["gamma"][0]))
    return kernel @ model["dual_coef"] + model["intercept"][0]


CLASSICAL_KINDS = ("rbf_svm", "logistic_regression", "gradient_boosting")


def fit_classical(kind: str, params: dict, X_train: np.ndarray, y_train: np.ndarray, *,
                  seed: int = 0, nystrom: dict | None = None) -> dict[str, np.ndarray]:
    """Fit one classical candidate (``kind`` in :data:`CLASSICAL_KINDS`) and keep it as arrays.

    ``params``: rbf_svm {C, gamma_scale} (gamma = gamma_scale / (d * Var(X)), sklearn's "scale"
    when 1); logistic_regression {C}; gradient_boosting {learning_rate, max_leaf_nodes}.
    ``nystrom`` {m, rule, seed, eps}: the RBF SVM becomes a Nyström least-squares SVM
    (:func:`fit_rbf_nystrom`), for train splits too large for an exact kernel SVM.
    """
    if kind == "rbf_svm":
        gamma = params["gamma_scale"] / (X_train.shape[1] * X_train.var()) if X_train.var() > 0 else 1.0
        if nystrom is not None:
            return fit_rbf_nystrom(X_train, y_train, C=params["C"], gamma=gamma, **nystrom)
        return fit_rbf_svm(X_train, y_train, C=params["C"], gamma=gamma)
    if kind == "logistic_regression":
        model = LogisticRegression(C=params["C"], max_iter=2000).fit(X_train, y_train)
        return {"coef": model.coef_[0].astype(np.float64), "intercept": model.intercept_.astype(np.float64)}
    if kind == "gradient_boosting":
        model = HistGradientBoostingClassifier(learning_rate=params["learning_rate"],
                                               max_leaf_nodes=params["max_leaf_nodes"], max_iter=100,
                                               early_stopping=False, random_state=seed).fit(X_train, y_train)
        return _trees_as_arrays(model)
    raise ValueError(f"unknown classical model {kind!r}; one of {CLASSICAL_KINDS}")


def _trees_as_arrays(model) -> dict[str, np.ndarray]:
    """A fitted binary HistGradientBoostingClassifier as flat node arrays (numerical splits only)."""
    nodes = [predictor.nodes for (predictor,) in model._predictors]
    offsets = np.cumsum([0] + [len(tree) for tree in nodes])
    flat = np.concatenate(nodes)
    shift = np.repeat(offsets[:-1], [len(tree) for tree in nodes])
    return {
        "tree_roots": offsets[:-1].astype(np.int64),
        "node_feature": flat["feature_idx"].astype(np.int64),
        "node_threshold": flat["num_threshold"].astype(np.float64),
        "node_left": flat["left"].astype(np.int64) + shift,
        "node_right": flat["right"].astype(np.int64) + shift,
        "node_is_leaf": flat["is_leaf"].astype(bool),
        "node_value": flat["value"].astype(np.float64),
        "baseline": np.asarray(model._baseline_prediction, dtype=np.float64).ravel(),
    }


def _trees_decision(model: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Sum of the trees' leaf values plus the baseline (log-odds), walking every tree at once."""
    rows = np.arange(X.shape[0])[:, None]
    at = np.broadcast_to(model["tree_roots"], (X.shape[0], model["tree_roots"].size)).copy()
    leaf = model["node_is_leaf"][at]
    while not leaf.all():
        left = X[rows, model["node_feature"][at]] <= model["node_threshold"][at]
        at = np.where(leaf, at, np.where(left, model["node_left"][at], model["node_right"][at]))
        leaf = model["node_is_leaf"][at]
    return model["baseline"][0] + model["node_value"][at].sum(axis=1)


def classical_decision(kind: str, model: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Decision values (positive means class index 1) of a model from :func:`fit_classical`."""
    if kind == "rbf_svm":
        return rbf_decision(model, X)
    if kind == "logistic_regression":
        return X @ model["coef"] + model["intercept"][0]
    if kind == "gradient_boosting":
        return _trees_decision(model, X)
    raise ValueError(f"unknown classical model {kind!r}; one of {CLASSICAL_KINDS}")


def holdout_metrics(y_true: np.ndarray, decision: np.ndarray) -> dict[str, float]:
    """Accuracy, F1 (class index 1 positive) and ROC-AUC from decision values, all in [0, 1]."""
    predicted = (decision > 0).astype(np.int64)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "f1": float(f1_score(y_true, predicted, zero_division=0.0)),
        "roc_auc": float(roc_auc_score(y_true, decision)) if both_classes else float("nan"),
    }


def model_holdout(model_asset: str, model: dict[str, np.ndarray], inputs: dict) -> dict[str, float]:
    """Holdout metrics of a stored model, from the stored inputs it was trained with.

    What the model assets report and what ``hybrid-audit --rescore`` checks again. ``inputs``
    holds ``reduced_embeddings`` and, for ``quantum_svm``, ``quantum_kernel_test``. A VQC is
    rescored only on an exact simulator: on a shot device rescoring would submit circuits.
    """
    embeddings = inputs["reduced_embeddings"]
    if model_asset == "quantum_svm":
        return holdout_metrics(embeddings["y_test"], quantum_svm_decision(model, inputs["quantum_kernel_test"]["matrix"]))
    if model_asset == "classical_baseline":
        kind = info_of(model)["kind"]
        return holdout_metrics(embeddings["y_test"], classical_decision(kind, model, embeddings["X_test"]))
    if model_asset == "vqc_model":
        info = info_of(model)
        backend = BackendConfig(device_name=info["backend"]["device_name"], seed=info["backend"]["seed"])
        if info["backend"]["shots"] is not None or not backend.is_exact:
            raise ValueError(f"vqc_model ran on {backend.device_name} with shots={info['backend']['shots']}: "
                             "rescoring it would submit circuits again, so it is not rescored here")
        probabilities = predict_proba(model["params"], float(model["bias"][0]), embeddings["X_test"],
                                      VqcConfig(**info["config"]), backend)
        return holdout_metrics(embeddings["y_test"], probabilities - 0.5)
    raise ValueError(f"{model_asset!r} is not a model; rescorable: quantum_svm, classical_baseline, vqc_model")


def per_sample_latency(predict, n_samples: int, *, repeats: int = 5) -> float:
    """Median wall time of ``predict()`` over ``repeats`` calls, divided by the samples it scores (s)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict()
        times.append(time.perf_counter() - started)
    return float(np.median(times)) / max(n_samples, 1)
