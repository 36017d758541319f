"""The learning task of a dataset, and what each task means for model outputs and metrics.

Three tasks, declared by the dataset (``hybrid_resources.data.dataset``) or inferred from its
target column:

- ``binary``: two classes. ``y`` holds class indices (int64, 0 or 1). A model's *decision* is
  one real value per row, shape (n,); positive means class index 1.
- ``multiclass``: K > 2 classes. ``y`` holds class indices (int64, 0..K-1). A decision is one
  score per class, shape (n, K); the highest score is the prediction (one-vs-rest scores for the
  kernel SVMs, logits for logistic regression and gradient boosting).
- ``regression``: a numeric target. ``y`` holds target values (float64, target units). A
  decision is the predicted value, shape (n,), in target units.

Every metric here is "higher is better" where a model is ranked or judged on it (tuning, the
verdict): ``r2`` for regression, ``accuracy``, ``f1`` or ``roc_auc`` for classification. RMSE and
MAE are reported beside R²; ``log_loss`` beside the classification metrics when a model's
decisions are log-odds or logits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["TASKS", "CLASSIFICATION_METRICS", "REGRESSION_METRICS", "task_of", "is_classification",
           "judged_metric", "predicted", "holdout_metrics", "probabilities", "metric_names"]

TASKS = ("binary", "multiclass", "regression")
CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc")
"""The metrics tuning and the verdict may rank classifiers by (``f1`` is macro-F1 for K > 2)."""
REGRESSION_METRICS = ("r2",)
"""The metric tuning and the verdict rank regressors by; RMSE and MAE are reported beside it."""


def task_of(embeddings: dict) -> str:
    """The task of a ``reduced_embeddings`` bundle (bundles written before tasks existed are binary)."""
    if "task" in embeddings:
        return str(np.asarray(embeddings["task"]).ravel()[0])
    return "binary"


def is_classification(task: str) -> bool:
    return task in ("binary", "multiclass")


def judged_metric(task: str, configured: str) -> str:
    """The metric tuning and the verdict use for ``task``, given the policy's ``configured`` one:
    the configured metric for classification, ``r2`` for regression (the policy's default names a
    classification metric, and a higher-is-better metric keeps one ranking rule)."""
    if task == "regression":
        return configured if configured in REGRESSION_METRICS else "r2"
    if configured not in CLASSIFICATION_METRICS:
        raise ValueError(f"metric {configured!r} does not apply to {task} classification; "
                         f"one of {CLASSIFICATION_METRICS}")
    return configured


def metric_names(task: str) -> list[str]:
    """The metrics :func:`holdout_metrics` reports for ``task`` (log_loss only for probabilistic models)."""
    if task == "regression":
        return ["r2", "rmse", "mae"]
    return ["accuracy", "f1", "balanced_accuracy", "roc_auc"]


def predicted(decision: np.ndarray, task: str) -> np.ndarray:
    """Predictions from decisions: class indices (int64) for classification, values for regression."""
    decision = np.asarray(decision)
    if task == "regression":
        return decision.astype(np.float64)
    if decision.ndim == 2:
        return decision.argmax(axis=1).astype(np.int64)
    return (decision > 0).astype(np.int64)


def probabilities(decision: np.ndarray) -> np.ndarray:
    """Class probabilities (n, K) from log-odds (n,) or logits (n, K): the sigmoid or the softmax."""
    decision = np.asarray(decision, dtype=np.float64)
    if decision.ndim == 1:
        positive = 1.0 / (1.0 + np.exp(-decision))
        return np.column_stack([1.0 - positive, positive])
    shifted = np.exp(decision - decision.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def holdout_metrics(y_true: np.ndarray, decision: np.ndarray, *, task: str | None = None,
                    probabilistic: bool = False) -> dict[str, float]:
    """The task's metrics of decisions against ``y_true``.

    ``task`` defaults to what the arrays say: float ``y_true`` is regression, a (n, K) decision is
    multi-class, otherwise binary. Classification: ``accuracy``, ``f1`` (of class index 1 for
    binary, macro for K classes), ``balanced_accuracy``, ``roc_auc`` (one-vs-rest macro for K
    classes; NaN when ``y_true`` lacks a class), and ``log_loss`` when ``probabilistic`` (the
    decisions are log-odds or logits). Regression: ``r2``, ``rmse`` and ``mae`` in target units.
    """
    return {name: formula() for name, formula in _formulas(y_true, decision, task, probabilistic).items()}


def holdout_metric(y_true: np.ndarray, decision: np.ndarray, name: str, *, task: str | None = None) -> float:
    """One metric of :func:`holdout_metrics`, the same figure, computed alone: tuning, the verdict
    and the shot planner score hundreds of folds on one metric, and scikit-learn's metric
    functions cost about a millisecond each at fold sizes. KeyError for a metric the task lacks
    (and for ``log_loss``, which only :func:`holdout_metrics` reports)."""
    return _formulas(y_true, decision, task, probabilistic=False)[name]()


def _formulas(y_true: np.ndarray, decision: np.ndarray, task: str | None,
              probabilistic: bool) -> dict[str, Callable[[], float]]:
    """Each metric of the task (see :func:`holdout_metrics`) as a call that computes it."""
    y_true = np.asarray(y_true)
    decision = np.asarray(decision, dtype=np.float64)
    if task is None:
        task = "regression" if y_true.dtype.kind == "f" else "multiclass" if decision.ndim == 2 else "binary"
    if task == "regression":
        return _regression_formulas(y_true, decision)
    return _classification_formulas(y_true, decision, task, probabilistic)


def _regression_formulas(y_true: np.ndarray, decision: np.ndarray) -> dict[str, Callable[[], float]]:
    from sklearn.metrics import mean_absolute_error, r2_score

    error = decision - y_true
    return {"r2": lambda: float(r2_score(y_true, decision)) if len(y_true) > 1 and np.ptp(y_true) > 0
            else float("nan"),
            "rmse": lambda: float(np.sqrt(np.mean(error ** 2))),
            "mae": lambda: float(mean_absolute_error(y_true, decision))}


def _classification_formulas(y_true: np.ndarray, decision: np.ndarray, task: str,
                             probabilistic: bool) -> dict[str, Callable[[], float]]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss, roc_auc_score

    labels = np.arange(decision.shape[1]) if decision.ndim == 2 else np.array([0, 1])
    predictions = predicted(decision, task)
    multiclass = decision.ndim == 2
    formulas = {
        "accuracy": lambda: float(accuracy_score(y_true, predictions)),
        "f1": lambda: float(f1_score(y_true, predictions, labels=labels if multiclass else None,
                                     average="macro" if multiclass else "binary", zero_division=0.0)),
        "balanced_accuracy": lambda: float(balanced_accuracy_score(y_true, predictions)),
        "roc_auc": lambda: float("nan") if not np.isin(labels, y_true).all() else float(
            roc_auc_score(y_true, probabilities(decision), multi_class="ovr", labels=labels) if multiclass
            else roc_auc_score(y_true, decision)),
    }
    if probabilistic:
        formulas["log_loss"] = lambda: float(log_loss(y_true, probabilities(decision), labels=labels))
    return formulas
