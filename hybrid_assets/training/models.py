"""Plain functions for the models: fitted models stored as arrays (never pickle) and holdout metrics.

Classical models: an RBF SVM, a logistic regression (ridge regression for a regression task) and
gradient boosting (scikit-learn's ``HistGradientBoosting*``), each fitted by scikit-learn and kept
as the arrays its decision function needs (:func:`fit_classical`, :func:`classical_decision`).
Quantum: an SVM on a precomputed kernel (:func:`fit_precomputed_svm`).

Every model serves the three tasks of :mod:`hybrid_assets.training.tasks`, chosen from the train
labels (:func:`label_task`: float values are a regression target, a class index above 1 means
multi-class) or an explicit ``task``. Decisions: (n,) for binary (positive means class index 1),
(n, K) for multi-class, (n,) in target units for regression. The kernel SVMs are one-vs-rest for
multi-class: K binary SVMs on the same kernel, stored as one union of support rows with a dense
(K, n_support) ``dual_coef`` (zero where a row is not a support vector of that class), so one
kernel row against the support serves every class. Regression SVMs (SVR) fit the standardized
target and store ``target_mean`` and ``target_scale`` to rescale their decisions.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

from hybrid_assets.training.tasks import holdout_metrics, task_of
from hybrid_resources.data.artifacts import info_of
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.kernel_diagnostics import label_task
from hybrid_resources.quantum.nystrom import (
    NystromConfig,
    NystromModel,
    RbfKernel,
    TargetCoding,
    fit_nystrom,
    nystrom_decision,
)
from hybrid_resources.quantum.vqc import VqcConfig, predict_proba

SVR_EPSILON = 0.1
"""The SVR's epsilon-insensitive tube, on the standardized target (a tenth of its std)."""


def svm_arrays(make: Callable[[bool], object], data: np.ndarray, y: np.ndarray, task: str) -> dict[str, np.ndarray]:
    """A scikit-learn SVM fitted for ``task`` as arrays: ``support`` (indices into the rows of
    ``data``), ``dual_coef``, ``intercept``; ``make(regression)`` gives an unfitted SVR or SVC.

    binary: dual_coef (n_support,), intercept (1,). multiclass: one SVC per class (that class
    against the rest, all on the same ``data``), support the sorted union of their support rows,
    dual_coef (K, n_support) with zeros where a row is not a support vector of a class, intercept
    (K,); a class absent from ``y`` scores -1 everywhere. regression: an SVR on the standardized
    target, arrays as binary plus ``target_mean`` and ``target_scale`` (1,).
    """
    if task == "regression":
        coding = TargetCoding.of(y, "regression")
        model = make(True).fit(data, coding.encode(y))
        return {**_dual_arrays(model), "target_mean": np.array([coding.mean]), "target_scale": np.array([coding.scale])}
    if task != "multiclass":
        return _dual_arrays(make(False).fit(data, y))
    # libsvm releases the GIL while it fits: the K fits run side by side, one thread per core.
    with ThreadPoolExecutor(max_workers=max(1, min(int(y.max()) + 1, os.cpu_count() or 1))) as pool:
        fits = list(pool.map(lambda k: make(False).fit(data, y == k) if (y == k).any() else None,
                             range(int(y.max()) + 1)))
    support = np.unique(np.concatenate([fit.support_ for fit in fits if fit is not None])).astype(np.int64)
    dual_coef = np.zeros((len(fits), len(support)))
    intercept = np.full(len(fits), -1.0)
    for k, fit in enumerate(fits):
        if fit is not None:
            dual_coef[k, np.searchsorted(support, fit.support_)] = fit.dual_coef_[0]
            intercept[k] = fit.intercept_[0]
    return {"support": support, "dual_coef": dual_coef, "intercept": intercept}


def _dual_arrays(model) -> dict[str, np.ndarray]:
    return {"support": model.support_.astype(np.int64), "dual_coef": model.dual_coef_[0].astype(np.float64),
            "intercept": np.asarray(model.intercept_, dtype=np.float64)}


def dual_decision(model: dict[str, np.ndarray], kernel_to_support: np.ndarray) -> np.ndarray:
    """Decision values of :func:`svm_arrays` arrays from rows' kernel entries against the support
    rows (n, n_support): (n,), (n, K) for multi-class, target units for regression."""
    coef = model["dual_coef"]
    if coef.ndim == 2:
        return kernel_to_support @ coef.T + model["intercept"]
    raw = kernel_to_support @ coef + model["intercept"][0]
    return raw * model["target_scale"][0] + model["target_mean"][0] if "target_scale" in model else raw


def fit_precomputed_svm(kernel_train: np.ndarray, y_train: np.ndarray, *, C: float,
                        task: str | None = None) -> dict[str, np.ndarray]:
    """Fit an SVM on a precomputed (n_train, n_train) Gram matrix for ``task`` (default: from
    ``y_train``, :func:`label_task`): an SVC, one SVC per class on the same matrix, or an SVR.

    Returns the model as arrays (:func:`svm_arrays`): binary ``support`` (indices into the train
    set), ``dual_coef`` (n_support,), ``intercept`` (1,). The decision on new points needs only
    the kernel between them and the support vectors (see :func:`precomputed_decision`).
    """
    from sklearn.svm import SVC, SVR

    def make(regression: bool):
        return SVR(kernel="precomputed", C=C, epsilon=SVR_EPSILON) if regression else SVC(kernel="precomputed", C=C)
    return svm_arrays(make, kernel_train, np.asarray(y_train), task or label_task(y_train))


def precomputed_decision(model: dict[str, np.ndarray], kernel_rows: np.ndarray) -> np.ndarray:
    """Decision values for rows of a (n, n_train) kernel; binary: positive means class index 1."""
    return dual_decision(model, kernel_rows[:, model["support"]])


def quantum_svm_decision(model: dict[str, np.ndarray], kernel_rows: np.ndarray) -> np.ndarray:
    """Decision values of a stored quantum_svm (positive means class index 1) from its rows' kernel
    entries: against the train rows for a kernel SVM, against the m landmarks for a Nyström model
    (its arrays hold ``projection``; :class:`NystromModel`)."""
    if "projection" in model:
        return NystromModel.from_arrays(model).decision(kernel_rows)
    return precomputed_decision(model, kernel_rows)


def support_decision(model: dict[str, np.ndarray], kernel_to_support: np.ndarray) -> np.ndarray:
    """Decision values of a stored quantum_svm from rows' kernel entries against its own support
    points only: the support vectors (columns in ``support`` order; the union over the classes for
    multi-class) of a kernel SVM, the m landmarks of a Nyström model. What scoring a new row needs."""
    if "projection" in model:
        return NystromModel.from_arrays(model).decision(kernel_to_support)
    return dual_decision(model, kernel_to_support)


def fit_rbf_nystrom(X_train: np.ndarray, y_train: np.ndarray, *, C: float, gamma: float, m: int, rule: str,
                    seed: int, eps: float, task: str | None = None) -> dict[str, np.ndarray]:
    """The classical counterpart of the Nyström quantum model: the same landmark rule, map and
    least-squares SVM on an RBF kernel. Arrays of :class:`NystromModel` plus ``gamma``."""
    config = NystromConfig(m=min(m, len(X_train)), rule=rule, seed=seed, eps=eps, C=C)
    return {**fit_nystrom(X_train, y_train, RbfKernel(gamma), config, task=task).to_arrays(),
            "gamma": np.array([gamma], dtype=np.float64)}


def fit_rbf_svm(X_train: np.ndarray, y_train: np.ndarray, *, C: float, gamma: float | str = "scale",
                task: str | None = None) -> dict[str, np.ndarray]:
    """Fit the classical RBF baseline for ``task`` (default: from ``y_train``); returns
    ``support_vectors``, ``dual_coef``, ``intercept``, ``gamma`` (and ``target_mean``,
    ``target_scale`` for an SVR), laid out as :func:`svm_arrays`."""
    from sklearn.svm import SVC, SVR

    if gamma == "scale":
        gamma = 1.0 / (X_train.shape[1] * X_train.var()) if X_train.var() > 0 else 1.0
    gamma = float(gamma)

    def make(regression: bool):
        return (SVR(kernel="rbf", C=C, gamma=gamma, epsilon=SVR_EPSILON) if regression
                else SVC(kernel="rbf", C=C, gamma=gamma))
    arrays = svm_arrays(make, X_train, np.asarray(y_train), task or label_task(y_train))
    support = arrays.pop("support")
    return {"support_vectors": np.asarray(X_train, dtype=np.float64)[support], **arrays,
            "gamma": np.array([gamma], dtype=np.float64)}


def rbf_decision(model: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Decision values of the stored RBF model for X (n, d); positive means class index 1. A
    Nyström RBF model (:func:`fit_rbf_nystrom`) needs only X's entries against its landmarks."""
    if "projection" in model:
        return nystrom_decision(NystromModel.from_arrays(model), X, RbfKernel(float(model["gamma"][0])))
    from sklearn.metrics.pairwise import rbf_kernel

    return dual_decision(model, rbf_kernel(X, model["support_vectors"], gamma=float(model["gamma"][0])))


CLASSICAL_KINDS = ("rbf_svm", "logistic_regression", "gradient_boosting")
"""The classical suite of a classification task (binary or multi-class)."""
REGRESSION_KINDS = ("rbf_svm", "ridge", "gradient_boosting")
"""The classical suite of a regression task: an RBF SVR, ridge regression, gradient boosting."""


def classical_kinds(task: str) -> tuple[str, ...]:
    """The classical model kinds of ``task``."""
    return REGRESSION_KINDS if task == "regression" else CLASSICAL_KINDS


def is_probabilistic(kind: str, task: str) -> bool:
    """Whether a classical model's decisions are log-odds or logits (so log_loss applies)."""
    return task != "regression" and kind in ("logistic_regression", "gradient_boosting")


def fit_classical(kind: str, params: dict, X_train: np.ndarray, y_train: np.ndarray, *,
                  seed: int = 0, nystrom: dict | None = None, task: str | None = None) -> dict[str, np.ndarray]:
    """Fit one classical candidate (``kind`` in :func:`classical_kinds` of ``task``, default from
    ``y_train``: :func:`label_task`) and keep it as arrays.

    ``params``: rbf_svm {C, gamma_scale} (gamma = gamma_scale / (d * Var(X)), sklearn's "scale"
    when 1); logistic_regression {C} (multinomial for K classes: coef (K, d), intercept (K,));
    ridge {alpha}; gradient_boosting {learning_rate, max_leaf_nodes}.
    ``nystrom`` {m, rule, seed, eps}: the RBF SVM becomes a Nyström least-squares SVM
    (:func:`fit_rbf_nystrom`), for train splits too large for an exact kernel SVM.
    """
    task = task or label_task(y_train)
    if kind not in classical_kinds(task):
        raise ValueError(f"unknown classical model {kind!r} for a {task} task; one of {classical_kinds(task)}")
    if kind == "rbf_svm":
        gamma = params["gamma_scale"] / (X_train.shape[1] * X_train.var()) if X_train.var() > 0 else 1.0
        if nystrom is not None:
            return fit_rbf_nystrom(X_train, y_train, C=params["C"], gamma=gamma, task=task, **nystrom)
        return fit_rbf_svm(X_train, y_train, C=params["C"], gamma=gamma, task=task)
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if kind == "logistic_regression":
        model = LogisticRegression(C=params["C"], max_iter=2000).fit(X_train, y_train)
        coef = model.coef_ if task == "multiclass" else model.coef_[0]
        return {"coef": coef.astype(np.float64), "intercept": model.intercept_.astype(np.float64)}
    if kind == "ridge":
        model = Ridge(alpha=params["alpha"]).fit(X_train, y_train)
        return {"coef": model.coef_.astype(np.float64), "intercept": np.array([model.intercept_], dtype=np.float64)}
    booster = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    model = booster(learning_rate=params["learning_rate"], max_leaf_nodes=params["max_leaf_nodes"], max_iter=100,
                    early_stopping=False, random_state=seed)
    with thread_pools().limit(limits=boosting_threads(len(X_train)), user_api="openmp"):
        model.fit(X_train, y_train)
    return _trees_as_arrays(model)


BOOSTING_SHARED_ROWS = 50_000
"""Gradient boosting fits on more train rows than this use every core (OpenMP); smaller ones one."""


def boosting_threads(n_rows: int) -> int | None:
    """OpenMP threads for a gradient boosting fit on ``n_rows`` rows: 1 up to
    :data:`BOOSTING_SHARED_ROWS`, else None (every core). A small fit's trees take milliseconds,
    and OpenMP's threads spin-wait for each other on every node: on a busy 2-core host (other steps,
    other fits) one thread fitted a 3,200-row model in 0.07 s where two took 0.7 to 1.1 s."""
    return 1 if n_rows <= BOOSTING_SHARED_ROWS else None


def fits_side_by_side(kind: str) -> bool:
    """Whether fits of classical ``kind`` gain from running side by side on threads
    (:func:`~hybrid_assets.training.tuning.map_fits`): libsvm and the linear solvers release the
    GIL while they fit, but gradient boosting grows its trees in Python, and two such fits on two
    threads took longer than one after the other (tuning its four candidates on 455 rows: 1.20 s
    against 0.88 s; on 2,000 rows: 1.82 s against 1.57 s)."""
    return kind != "gradient_boosting"


@functools.cache
def thread_pools() -> ThreadpoolController:
    """threadpoolctl's view of this process's native thread pools, taken once (at the first
    gradient boosting fit, after scikit-learn loaded its OpenMP): taking it scans every loaded
    shared library, about 3 ms with Qiskit, Aer and PennyLane loaded, and a tuning fits dozens
    of models. ``threadpool_limits`` would take it again on every fit."""
    return ThreadpoolController()


def _trees_as_arrays(model) -> dict[str, np.ndarray]:
    """A fitted HistGradientBoosting model as flat node arrays (numerical splits only). A
    multi-class model grows one tree per class each iteration: ``tree_class`` (n_trees,) says
    whose score each tree adds to, and ``baseline`` is (K,)."""
    trees = [(k, predictor) for iteration in model._predictors for k, predictor in enumerate(iteration)]
    nodes = [predictor.nodes for _, predictor in trees]
    offsets = np.cumsum([0] + [len(tree) for tree in nodes])
    flat = np.concatenate(nodes)
    shift = np.repeat(offsets[:-1], [len(tree) for tree in nodes])
    arrays = {
        "tree_roots": offsets[:-1].astype(np.int64),
        "node_feature": flat["feature_idx"].astype(np.int64),
        "node_threshold": flat["num_threshold"].astype(np.float64),
        "node_left": flat["left"].astype(np.int64) + shift,
        "node_right": flat["right"].astype(np.int64) + shift,
        "node_is_leaf": flat["is_leaf"].astype(bool),
        "node_value": flat["value"].astype(np.float64),
        "baseline": np.asarray(model._baseline_prediction, dtype=np.float64).ravel(),
    }
    if len(model._predictors[0]) > 1:
        arrays["tree_class"] = np.array([k for k, _ in trees], dtype=np.int64)
    return arrays


def _trees_decision(model: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Sum of the trees' leaf values plus the baseline (log-odds, logits (n, K) or the value),
    walking every tree at once."""
    rows = np.arange(X.shape[0])[:, None]
    at = np.broadcast_to(model["tree_roots"], (X.shape[0], model["tree_roots"].size)).copy()
    leaf = model["node_is_leaf"][at]
    while not leaf.all():
        left = X[rows, model["node_feature"][at]] <= model["node_threshold"][at]
        at = np.where(leaf, at, np.where(left, model["node_left"][at], model["node_right"][at]))
        leaf = model["node_is_leaf"][at]
    if "tree_class" in model:
        per_class = model["tree_class"][:, None] == np.arange(model["baseline"].size)
        return model["baseline"] + model["node_value"][at] @ per_class
    return model["baseline"][0] + model["node_value"][at].sum(axis=1)


def classical_decision(kind: str, model: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Decision values of a model from :func:`fit_classical`: (n,) positive meaning class index 1,
    (n, K) for multi-class, (n,) in target units for regression."""
    if kind == "rbf_svm":
        return rbf_decision(model, X)
    if kind == "logistic_regression" and model["coef"].ndim == 2:
        return X @ model["coef"].T + model["intercept"]
    if kind in ("logistic_regression", "ridge"):
        return X @ model["coef"] + model["intercept"][0]
    if kind == "gradient_boosting":
        return _trees_decision(model, X)
    raise ValueError(f"unknown classical model {kind!r}; one of {sorted(set(CLASSICAL_KINDS + REGRESSION_KINDS))}")


def model_holdout(model_asset: str, model: dict[str, np.ndarray], inputs: dict) -> dict[str, float]:
    """Holdout metrics of a stored model, from the stored inputs it was trained with.

    What the model assets report and what ``hybrid-audit --rescore`` checks again. ``inputs``
    holds ``reduced_embeddings`` and, for ``quantum_svm``, ``quantum_kernel_test``. The metrics are
    the embeddings' task's (:func:`holdout_metrics`; log_loss for logistic regression and gradient
    boosting). A VQC is rescored only on an exact simulator: on a shot device rescoring would
    submit circuits; a refused or degraded VQC has nothing to rescore (ValueError).
    """
    embeddings = inputs["reduced_embeddings"]
    task, y_test = task_of(embeddings), embeddings["y_test"]
    if model_asset == "quantum_svm":
        return holdout_metrics(y_test, quantum_svm_decision(model, inputs["quantum_kernel_test"]["matrix"]), task=task)
    if model_asset == "classical_baseline":
        kind = info_of(model)["kind"]
        return holdout_metrics(y_test, classical_decision(kind, model, embeddings["X_test"]), task=task,
                               probabilistic=is_probabilistic(kind, task))
    if model_asset == "vqc_model":
        info = info_of(model)
        if info.get("refused") or info.get("degraded"):
            raise ValueError(f"vqc_model has no trained model to rescore: "
                             f"{'refused' if info.get('refused') else 'degraded'}: {info['degraded_reason']}")
        backend = BackendConfig(device_name=info["backend"]["device_name"], seed=info["backend"]["seed"])
        if info["backend"]["shots"] is not None or not backend.is_exact:
            raise ValueError(f"vqc_model ran on {backend.device_name} with shots={info['backend']['shots']}: "
                             "rescoring it would submit circuits again, so it is not rescored here")
        probabilities = predict_proba(model["params"], float(model["bias"][0]), embeddings["X_test"],
                                      VqcConfig(**info["config"]), backend)
        return holdout_metrics(y_test, probabilities - 0.5)
    raise ValueError(f"{model_asset!r} is not a model; rescorable: quantum_svm, classical_baseline, vqc_model")


def per_sample_latency(predict, n_samples: int, *, repeats: int = 5) -> float:
    """Median wall time of ``predict()`` over ``repeats`` calls, divided by the samples it scores (s)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict()
        times.append(time.perf_counter() - started)
    return float(np.median(times)) / max(n_samples, 1)
