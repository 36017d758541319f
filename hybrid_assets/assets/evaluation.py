"""Quantum vs classical on the same holdout: the report users and gates read."""

import numpy as np
from dagster import AutomationCondition, AssetExecutionContext, MetadataValue, Output, asset

from hybrid_assets.modeling import (
    comparison_table,
    heatmap_png,
    holdout_metrics,
    markdown_image,
    precomputed_decision,
    rbf_decision,
)
from hybrid_assets.outputs import artifact_output
from hybrid_resources.paths import DataLayout
from hybrid_resources.warehouse import Warehouse

METRICS = ["accuracy", "f1", "roc_auc"]


def evaluate_models(
    quantum_model: dict, classical_model: dict, kernel_test: np.ndarray, embeddings: dict
) -> dict[str, dict[str, float]]:
    """Holdout metrics of both models on the same test split: {model: {metric: value}}."""
    y_test = embeddings["y_test"]
    return {
        "quantum_svm": holdout_metrics(y_test, precomputed_decision(quantum_model, kernel_test)),
        "classical_svm": holdout_metrics(y_test, rbf_decision(classical_model, embeddings["X_test"])),
    }


@asset(automation_condition=AutomationCondition.eager(), code_version="1", group_name="models", kinds={"markdown"})
def model_evaluation(
    context: AssetExecutionContext,
    quantum_svm: dict,
    classical_svm: dict,
    quantum_kernel_test: np.ndarray,
    quantum_kernel_train: np.ndarray,
    reduced_embeddings: dict,
    warehouse: Warehouse,
) -> Output:
    """Side-by-side holdout report: accuracy, F1, ROC-AUC of the quantum and classical SVMs."""
    metrics = evaluate_models(quantum_svm, classical_svm, quantum_kernel_test, reduced_embeddings)
    margin = {name: metrics["quantum_svm"][name] - metrics["classical_svm"][name] for name in METRICS}
    report = {
        "metrics": metrics,
        "quantum_minus_classical": margin,
        "n_train": int(reduced_embeddings["y_train"].size),
        "n_test": int(reduced_embeddings["y_test"].size),
    }
    png = heatmap_png(quantum_kernel_train, "quantum kernel (train, first 200)")
    heatmap_path = DataLayout.from_env().artifacts / "model_evaluation" / "kernel_heatmap.png"
    heatmap_path.parent.mkdir(parents=True, exist_ok=True)
    heatmap_path.write_bytes(png)
    warehouse.log_experiment(context.run_id, "model_evaluation", {"n_train": report["n_train"], "n_test": report["n_test"]}, report)
    table = comparison_table(metrics, METRICS)
    context.log.info("Holdout comparison\n" + table)
    return artifact_output(report, {
        "comparison": MetadataValue.md(table),
        "kernel_heatmap": MetadataValue.md(markdown_image(png, "quantum kernel heatmap")),
        "heatmap_path": str(heatmap_path),
        **{f"{model}/{name}": value for model, values in metrics.items() for name, value in values.items()},
    })
