"""Plain functions for the models: SVMs stored as arrays (never pickle), holdout metrics, plots."""

from __future__ import annotations

import base64
import io

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC


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
    """Decision values of the stored RBF model for X (n, d); positive means class index 1."""
    kernel = rbf_kernel(X, model["support_vectors"], gamma=float(model["gamma"][0]))
    return kernel @ model["dual_coef"] + model["intercept"][0]


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
        return holdout_metrics(embeddings["y_test"], precomputed_decision(model, inputs["quantum_kernel_test"]["matrix"]))
    if model_asset == "classical_svm":
        return holdout_metrics(embeddings["y_test"], rbf_decision(model, embeddings["X_test"]))
    if model_asset == "vqc_model":
        from hybrid_resources.data.artifacts import info_of
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
    raise ValueError(f"{model_asset!r} is not a model; rescorable: quantum_svm, classical_svm, vqc_model")


def comparison_table(rows: dict[str, dict[str, float | str]], columns: list[str]) -> str:
    """A Markdown table: one row per model, the given columns, floats to 4 decimals."""
    header = "| model | " + " | ".join(columns) + " |"
    rule = "| --- |" + " --- |" * len(columns)
    lines = [header, rule]
    for model, values in rows.items():
        cells = [f"{values[c]:.4f}" if isinstance(values.get(c), float) else str(values.get(c, "")) for c in columns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def heatmap_png(matrix: np.ndarray, title: str, max_side: int = 200) -> bytes:
    """A PNG heatmap of (the top-left ``max_side`` corner of) a kernel matrix."""
    figure, axis = _pyplot().subplots(figsize=(4, 3.4), dpi=90)
    image = axis.imshow(matrix[:max_side, :max_side], cmap="viridis", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axis)
    axis.set_title(title, fontsize=9)
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
