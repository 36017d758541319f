"""Plain functions for the models: fitted models stored as arrays (never pickle), holdout metrics, plots.

Classical models: an RBF SVM, a logistic regression and gradient boosting (scikit-learn's
``HistGradientBoostingClassifier``), each fitted by scikit-learn and kept as the arrays its
decision function needs (:func:`fit_classical`, :func:`classical_decision`). Quantum: an SVM
on a precomputed kernel (:func:`fit_precomputed_svm`).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC

from hybrid_resources.data.artifacts import info_of


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
        from hybrid_resources.quantum.nystrom import NystromModel

        return NystromModel.from_arrays(model).decision(kernel_rows)
    return precomputed_decision(model, kernel_rows)


def support_decision(model: dict[str, np.ndarray], kernel_to_support: np.ndarray) -> np.ndarray:
    """Decision values of a stored quantum_svm from rows' kernel entries against its own support
    points only: the support vectors (columns in ``support`` order) of a kernel SVM, the m
    landmarks of a Nyström model. What scoring a new row needs."""
    if "projection" in model:
        from hybrid_resources.quantum.nystrom import NystromModel

        return NystromModel.from_arrays(model).decision(kernel_to_support)
    return kernel_to_support @ model["dual_coef"] + model["intercept"][0]


def fit_rbf_nystrom(X_train: np.ndarray, y_train: np.ndarray, *, C: float, gamma: float, m: int, rule: str,
                    seed: int, eps: float) -> dict[str, np.ndarray]:
    """The classical counterpart of the Nyström quantum model: the same landmark rule, map and
    least-squares SVM on an RBF kernel. Arrays of :class:`NystromModel` plus ``gamma``."""
    from hybrid_resources.quantum.nystrom import NystromConfig, RbfKernel, fit_nystrom

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
        from hybrid_resources.quantum.nystrom import (
            NystromModel,
            RbfKernel,
            nystrom_decision,
        )

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
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=params["C"], max_iter=2000).fit(X_train, y_train)
        return {"coef": model.coef_[0].astype(np.float64), "intercept": model.intercept_.astype(np.float64)}
    if kind == "gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

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
        from hybrid_resources.quantum.backends import BackendConfig
        from hybrid_resources.quantum.vqc import VqcConfig, predict_proba

        info = info_of(model)
        backend = BackendConfig(device_name=info["backend"]["device_name"], seed=info["backend"]["seed"])
        if info["backend"]["shots"] is not None or not backend.is_exact:
            raise ValueError(f"vqc_model ran on {backend.device_name} with shots={info['backend']['shots']}: "
                             "rescoring it would submit circuits again, so it is not rescored here")
        probabilities = predict_proba(model["params"], float(model["bias"][0]), embeddings["X_test"],
                                      VqcConfig(**info["config"]), backend)
        return holdout_metrics(embeddings["y_test"], probabilities - 0.5)
    raise ValueError(f"{model_asset!r} is not a model; rescorable: quantum_svm, classical_baseline, vqc_model")


DEVICE_TELEMETRY_COLUMNS = ["tasks", "failed_tasks", "failed_submissions", "median_queue_s", "median_run_s",
                            "median_latency_s", "max_latency_s", "failure_reasons"]


def device_telemetry_table(rows: list[dict]) -> str:
    """The warehouse's per-provider device telemetry as a Markdown table ("n/a": not given)."""
    def cell(value):
        if value is None:
            return "n/a"
        return ", ".join(value) or "-" if isinstance(value, list) else value

    return comparison_table({f"{r['provider']} ({r['device']})": {k: cell(v) for k, v in r.items()} for r in rows},
                            DEVICE_TELEMETRY_COLUMNS)


def comparison_table(rows: dict[str, dict[str, float | str]], columns: list[str]) -> str:
    """A Markdown table: one row per model, the given columns, floats to 4 decimals."""
    header = "| model | " + " | ".join(columns) + " |"
    rule = "| --- |" + " --- |" * len(columns)
    lines = [header, rule]
    for model, values in rows.items():
        cells = [f"{values[c]:.4f}" if isinstance(values.get(c), float) else str(values.get(c, "")) for c in columns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def code_block(text: str, language: str, *, max_lines: int = 120, whole: str = "") -> str:
    """``text`` as a fenced Markdown code block, cut after ``max_lines`` lines with a note of how
    many lines were left out and where the whole text is (``whole``)."""
    lines = text.rstrip("\n").splitlines()
    block = f"```{language}\n" + "\n".join(lines[:max_lines]) + "\n```"
    if len(lines) > max_lines:
        block += f"\n\n{len(lines) - max_lines} more lines" + (f" in `{whole}`" if whole else "")
    return block


def heatmap_png(matrix: np.ndarray, labels: np.ndarray, classes: list[str], title: str, max_side: int = 200) -> bytes:
    """A PNG heatmap of a square kernel matrix with its samples ordered by class.

    At most ``max_side`` samples are shown, spread evenly over the class-ordered list so each class
    keeps its share. The colour scale spans the off-diagonal entries (1st to 99th percentile): on a
    fixed [0, 1] scale a concentrated kernel, all entries near 1, looks like one flat colour.
    """
    order = np.argsort(labels, kind="stable")
    if len(order) > max_side:
        order = order[np.linspace(0, len(order) - 1, max_side).round().astype(int)]
    shown, ordered = matrix[np.ix_(order, order)], np.asarray(labels)[order]
    off_diagonal = shown[~np.eye(len(shown), dtype=bool)]
    low, high = np.percentile(off_diagonal, [1, 99]) if off_diagonal.size else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5e-12, high + 0.5e-12
    figure, axis = _pyplot().subplots(figsize=(8, 6.8), dpi=100)
    image = axis.imshow(shown, cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
    figure.colorbar(image, ax=axis).set_label("kernel value (off-diagonal 1st to 99th percentile)")
    # One block per class: a line between classes, a tick at each block's middle.
    edges = np.concatenate([[0], np.flatnonzero(np.diff(ordered)) + 1, [len(ordered)]])
    for edge in edges[1:-1]:
        axis.axhline(edge - 0.5, color="white", linewidth=1.2)
        axis.axvline(edge - 0.5, color="white", linewidth=1.2)
    middles = (edges[:-1] + edges[1:] - 1) / 2
    names = [f"class {classes[int(ordered[start])]} ({end - start})" for start, end in zip(edges[:-1], edges[1:])]
    axis.set_xticks(middles, names)
    axis.set_yticks(middles, names, rotation=90, va="center")
    axis.set(xlabel="train sample (ordered by class)", ylabel="train sample (ordered by class)")
    axis.set_title(title, fontsize=10)
    return _png(figure)


def _pyplot():
    """matplotlib's pyplot on the headless Agg backend (imported on first plot: it costs ~0.5 s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    _pyplot().close(figure)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Inline a PNG into Markdown (rendered by the Dagster UI's metadata view)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def training_curves_png(history: list[dict], title: str) -> bytes:
    """A PNG of each restart's per-epoch train loss, validation loss and validation accuracy."""
    figure, (loss_axis, accuracy_axis) = _pyplot().subplots(1, 2, figsize=(7, 3), dpi=90)
    for curve in history:
        epochs = range(1, len(curve["loss"]) + 1)
        loss_axis.plot(epochs, curve["loss"], label=f"train r{curve['restart']}")
        loss_axis.plot(epochs, curve["val_loss"], linestyle="--", label=f"val r{curve['restart']}")
        accuracy_axis.plot(epochs, curve["val_accuracy"], label=f"r{curve['restart']}")
    loss_axis.set(title="loss (BCE)", xlabel="epoch")
    accuracy_axis.set(title="validation accuracy", xlabel="epoch", ylim=(0, 1))
    loss_axis.legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    return _png(figure)


def per_sample_latency(predict, n_samples: int, *, repeats: int = 5) -> float:
    """Median wall time of ``predict()`` over ``repeats`` calls, divided by the samples it scores (s)."""
    import time

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict()
        times.append(time.perf_counter() - started)
    return float(np.median(times)) / max(n_samples, 1)


def verdict_png(differences: list[float], mean: float, low: float, high: float, min_margin: float, title: str) -> bytes:
    """Per-split differences (quantum minus classical) with their mean, interval and the margin."""
    figure, axis = _pyplot().subplots(figsize=(7, 2.8), dpi=100)
    splits = np.arange(1, len(differences) + 1)
    axis.scatter(splits, differences, s=18, color="tab:blue", label="per split")
    axis.axhspan(low, high, color="tab:blue", alpha=0.15, label="confidence interval")
    axis.axhline(mean, color="tab:blue", label=f"mean {mean:+.4f}")
    axis.axhline(min_margin, color="tab:red", linestyle="--", label=f"margin {min_margin:+.4f}")
    axis.set(xlabel="split", ylabel="quantum - classical", title=title)
    axis.legend(fontsize=7, loc="best")
    return _png(figure)


def shot_plan_png(shots: list[int], means: list[float], stds: list[float], errors: list[float], exact: float,
                  metric: str) -> bytes:
    """The holdout metric (mean +- std over seeds) and the mean kernel error against shots."""
    figure, (metric_axis, error_axis) = _pyplot().subplots(1, 2, figsize=(8, 3), dpi=100)
    metric_axis.errorbar(shots, means, yerr=stds, marker="o", capsize=3, label="shot-based")
    metric_axis.axhline(exact, color="gray", linestyle="--", label="exact")
    metric_axis.set(xscale="log", xlabel="shots per circuit", ylabel=metric, title=f"holdout {metric}")
    metric_axis.legend(fontsize=7)
    error_axis.plot(shots, errors, marker="o")
    error_axis.set(xscale="log", yscale="log", xlabel="shots per circuit", ylabel="mean |K - K_exact|",
                   title="kernel error")
    return _png(figure)


def histograms_png(groups: dict[str, np.ndarray], *, xlabel: str, title: str) -> bytes:
    """Overlaid histograms of a few named groups of values."""
    figure, axis = _pyplot().subplots(figsize=(6, 3), dpi=100)
    for name, values in groups.items():
        if len(values):
            axis.hist(values, bins=40, alpha=0.6, label=name)
    axis.set(xlabel=xlabel, ylabel="rows", title=title)
    axis.legend(fontsize=7)
    return _png(figure)
