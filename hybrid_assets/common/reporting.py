"""How results read in the UI: Markdown tables, code blocks and PNG plots inlined into metadata.

Plots use matplotlib's headless Agg backend, imported on the first plot (it costs about 0.5 s).
"""

from __future__ import annotations

import base64
import io

import numpy as np

__all__ = ["DEVICE_TELEMETRY_COLUMNS", "code_block", "comparison_table", "confusion_counts", "confusion_figure",
           "confusion_png", "device_telemetry_table", "heatmap_png", "histograms_png", "markdown_image",
           "prediction_scatter_figure", "prediction_scatter_png", "shot_plan_png", "training_curves_png", "verdict_png"]

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
    """A PNG heatmap of a square kernel matrix with its samples ordered by class (by target value
    when ``classes`` is empty: a regression target has no classes).

    At most ``max_side`` samples are shown, spread evenly over the ordered list so each class
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
    if len(classes):
        _class_blocks(axis, ordered, classes)
    else:
        axis.set(xlabel="train sample (ordered by target value)", ylabel="train sample (ordered by target value)")
    axis.set_title(title, fontsize=10)
    return _png(figure)


def _class_blocks(axis, ordered: np.ndarray, classes: list[str]) -> None:
    """One block per class on a class-ordered heatmap: a line between classes, a tick at each block's middle."""
    edges = np.concatenate([[0], np.flatnonzero(np.diff(ordered)) + 1, [len(ordered)]])
    for edge in edges[1:-1]:
        axis.axhline(edge - 0.5, color="white", linewidth=1.2)
        axis.axvline(edge - 0.5, color="white", linewidth=1.2)
    middles = (edges[:-1] + edges[1:] - 1) / 2
    names = [f"class {classes[int(ordered[start])]} ({end - start})" for start, end in zip(edges[:-1], edges[1:])]
    axis.set_xticks(middles, names)
    axis.set_yticks(middles, names, rotation=90, va="center")
    axis.set(xlabel="train sample (ordered by class)", ylabel="train sample (ordered by class)")


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) int64 counts: row = true class index, column = predicted class index.

    >>> confusion_counts(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    """
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return counts


def confusion_figure(y_true: np.ndarray, predictions: dict[str, np.ndarray], classes: list[str], title: str):
    """One K x K confusion matrix panel per model (``predictions``: class indices per model), the
    axes named by ``classes``, each cell its count. Returns the matplotlib figure."""
    k = len(classes)
    side = max(3.4, 1.2 + 0.45 * k)
    figure, axes = _pyplot().subplots(1, len(predictions), figsize=(side * len(predictions) + 0.6, side + 0.8),
                                      dpi=100, squeeze=False)
    for axis, (model, predicted) in zip(axes[0], predictions.items()):
        counts = confusion_counts(y_true, predicted, k)
        axis.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
        for (row, column), count in np.ndenumerate(counts):
            axis.text(column, row, str(count), ha="center", va="center", fontsize=8,
                      color="white" if count > counts.max() / 2 else "black")
        axis.set_xticks(range(k), classes, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
        axis.set_yticks(range(k), classes)
        accuracy = float(np.trace(counts)) / max(int(counts.sum()), 1)
        axis.set(xlabel="predicted class", ylabel="true class")
        axis.set_title(f"{model}\naccuracy {accuracy:.3f}", fontsize=9)
    figure.suptitle(title, fontsize=9)
    return figure


def confusion_png(y_true: np.ndarray, predictions: dict[str, np.ndarray], classes: list[str], title: str) -> bytes:
    """:func:`confusion_figure` as PNG bytes."""
    return _png(confusion_figure(y_true, predictions, classes, title))


def prediction_scatter_figure(y_true: np.ndarray, predictions: dict[str, np.ndarray], title: str):
    """One predicted-vs-actual scatter panel per model (``predictions``: values in target units),
    with the identity line; the same limits on every panel. Returns the matplotlib figure."""
    values = np.concatenate([np.asarray(y_true, dtype=np.float64).ravel()]
                            + [np.asarray(p, dtype=np.float64).ravel() for p in predictions.values()])
    low, high = float(np.min(values)), float(np.max(values))
    pad = 0.05 * (high - low) or 0.5
    figure, axes = _pyplot().subplots(1, len(predictions), figsize=(3.6 * len(predictions), 3.6), dpi=100,
                                      squeeze=False)
    for axis, (model, predicted) in zip(axes[0], predictions.items()):
        axis.scatter(y_true, predicted, s=12, alpha=0.7, color="tab:blue")
        axis.plot([low - pad, high + pad], [low - pad, high + pad], color="gray", linestyle="--", label="predicted = actual")
        rmse = float(np.sqrt(np.mean((np.asarray(predicted, dtype=np.float64) - y_true) ** 2)))
        axis.set(xlim=(low - pad, high + pad), ylim=(low - pad, high + pad), xlabel="actual", ylabel="predicted")
        axis.set_title(f"{model}\nRMSE {rmse:.4g}", fontsize=9)
        axis.legend(fontsize=7, loc="upper left")
    figure.suptitle(title, fontsize=9)
    return figure


def prediction_scatter_png(y_true: np.ndarray, predictions: dict[str, np.ndarray], title: str) -> bytes:
    """:func:`prediction_scatter_figure` as PNG bytes."""
    return _png(prediction_scatter_figure(y_true, predictions, title))


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
