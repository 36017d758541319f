"""What model_evaluation states: the report artifact and the Dagster metadata beside it.

Plain functions of plain values (:class:`EvaluationFindings`): no resources, no devices, no files.
The report is content (its hash is the data version); the metadata is what the UI shows, the
verdict first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dagster import MetadataValue

from hybrid_assets.common.gates import GateResult
from hybrid_assets.common.reporting import (
    comparison_table,
    confusion_png,
    device_telemetry_table,
    prediction_scatter_png,
)
from hybrid_assets.evaluation.gates import EvaluationGates
from hybrid_assets.evaluation.verdict import Verdict
from hybrid_assets.training.scale import KernelPlan
from hybrid_assets.training.tasks import is_classification, metric_names, predicted
from hybrid_resources.data.artifacts import TELEMETRY_KEY, content_hash

METRICS = ["accuracy", "f1", "roc_auc"]
"""The binary holdout table's columns (unchanged since before tasks existed); see :func:`holdout_columns`."""
# What each model cost and how fast it is (the holdout metrics are the `comparison` table): few,
# short columns, so the table fits the UI's metadata column. {column: dashboard row field}
DASHBOARD_COLUMNS = {"backend": "backend", "shots": "shots", "tasks": "tasks", "cost_usd": "estimated_cost_usd",
                     "wall_s": "wall_time_s", "latency_ms": "latency_ms"}


def holdout_columns(task: str) -> list[str]:
    """The holdout table's metrics for ``task``: :data:`METRICS` for binary (its reports keep their
    columns), ``tasks.metric_names`` otherwise (accuracy, f1, balanced_accuracy, roc_auc for K
    classes; r2, rmse, mae for regression)."""
    return list(METRICS) if task == "binary" else metric_names(task)


def holdout_table(metrics: dict[str, dict[str, float]], columns: list[str], notes: dict[str, str]) -> str:
    """The holdout comparison as Markdown: one row per model, ``columns``; when a model was refused
    for this task (``notes``: model -> reason) a last ``note`` column says why."""
    if not notes:
        return comparison_table(metrics, columns)
    rows = {model: {**values, "note": f"refused: {notes[model]}" if model in notes else ""}
            for model, values in metrics.items()}
    return comparison_table(rows, [*columns, "note"])


def holdout_plot(task: str, y_test: np.ndarray, decisions: dict[str, np.ndarray],
                 classes: Sequence[str]) -> tuple[str, bytes, str] | None:
    """(name, PNG, alt text) of the holdout plot of the models' test ``decisions`` (shapes of
    ``tasks``): the K x K confusion matrix per model for classification, predicted against actual
    per model for regression; None when no model has decisions."""
    if not decisions:
        return None
    predictions = {model: predicted(decision, task) for model, decision in decisions.items()}
    if is_classification(task):
        png = confusion_png(y_test, predictions, [str(c) for c in classes],
                            f"holdout confusion matrix ({len(y_test)} test rows)")
        return "confusion_matrix", png, "holdout confusion matrix per model"
    png = prediction_scatter_png(y_test, predictions, f"holdout predicted vs actual ({len(y_test)} test rows)")
    return "predicted_vs_actual", png, "holdout predicted against actual per model"


@dataclass(frozen=True)
class EvaluationFindings:
    """Everything the report and the metadata state, gathered by the asset."""

    verdict: Verdict
    plan: KernelPlan
    verdict_sample: dict  # the verdict's stated sample of labelled rows, or {"rows": N, "sampled": False}
    metrics: dict[str, dict[str, float]]  # holdout metrics per model
    infos: dict[str, dict]  # each model artifact's info
    inputs: dict[str, Any]  # the asset's inputs by name, hashed into the report
    degraded_reason: str  # why the quantum stage degraded, "" when it did not
    gates: EvaluationGates
    candidates: list[dict]  # every tuning candidate, the chosen ones marked
    dashboard: dict[str, dict]  # one row per model, latency_ms included
    failed_submissions: int  # this run's failed device submissions
    tasks: int  # this run's device tasks that ran
    devices: list[dict]  # this run's device telemetry rows
    n_train: int
    n_test: int
    circuit_depth: int
    task: str  # binary | multiclass | regression (tasks.task_of the embeddings)
    metric: str  # the judged metric (tasks.judged_metric)
    classes: list[str]  # class names by index (empty for regression)
    notes: dict[str, str]  # model -> why it is absent (refused for this task); {} when every model ran

    @property
    def columns(self) -> list[str]:
        """The holdout table's columns (:func:`holdout_columns`)."""
        return holdout_columns(self.task)


def gate_lines(gates: Sequence[GateResult]) -> str:
    """One Markdown line per gate: its name, whether it passed, and what it says."""
    return "\n".join(f"- **{g.name}**: {'passed' if g.passed else 'FAILED'}: {g.text}" for g in gates)


def verdict_kernel_note(nystrom: bool) -> str:
    """Which kernel the verdict's splits use, and what the fixed holdout judges instead."""
    return ("exact simulator (the tuned spec); the configured device is judged on the fixed holdout"
            + ("; on the Nyström path the verdict's splits fit the exact-kernel SVM on the stated "
               "sample, and the Nyström model itself is judged on the fixed holdout" if nystrom else ""))


def evaluation_report(findings: EvaluationFindings) -> dict[str, Any]:
    """The model_evaluation artifact: verdict, holdout metrics, input hashes, gates, candidates,
    and under TELEMETRY_KEY this run's readings (latency, failure rate, devices, dashboard), which
    are not content, so the same inputs keep the same data version. promoted_model reads its
    ``gates``, ``metrics``, ``inputs`` and ``models``. ``metrics`` holds each model's holdout metrics
    under the task's names; ``task``, ``judged_metric`` and (classification) ``classes`` say what they mean."""
    f, gates = findings, findings.gates
    failed, tasks = f.failed_submissions, f.tasks
    return {
        "task": f.task,
        "judged_metric": f.metric,
        **({"classes": list(f.classes)} if is_classification(f.task) else {}),
        "verdict": f.verdict.to_dict(),
        "verdict_kernel": verdict_kernel_note(f.plan.nystrom),
        "kernel_path": f.plan.to_dict(),
        "verdict_sample": f.verdict_sample,
        "metrics": f.metrics,
        "models": f.infos,
        "inputs": {name: content_hash(value) for name, value in f.inputs.items()},
        "quantum_minus_classical": {name: f.metrics["quantum_svm"][name] - f.metrics["classical_baseline"][name]
                                    for name in f.columns},
        "quantum_stage": "degraded" if f.degraded_reason else "ok",
        "degraded_reason": f.degraded_reason,
        "gates": {gate.name: gate.to_dict() for gate in gates.promotion},
        "gates_other_models": {gate.name: gate.to_dict() for gate in gates.reported},
        "promotable": gates.promotable,
        "candidates": f.candidates,
        "n_train": f.n_train,
        "n_test": f.n_test,
        # How this evaluation ran (clock readings, the run's own submissions): not content, so an
        # evaluation of the same inputs keeps its data version and automation refreshes nothing after it.
        TELEMETRY_KEY: {
            "latency_per_sample_s": gates.latency_s,
            "gates": {gate.name: {"reading": gate.reading, **gate.measured} for gate in gates.every if gate.measured},
            "quantum_failure_rate": {"failed_submissions": failed, "tasks": tasks,
                                     "rate": failed / (failed + tasks) if failed + tasks else 0.0},
            "device_tasks": f.devices,
            "dashboard": f.dashboard,
        },
    }


def evaluation_summary(findings: EvaluationFindings) -> str:
    """The log line: the verdict, the holdout table and one line per promotion gate."""
    gates = findings.gates
    return ("Verdict: " + gates.verdict.message + "\nHoldout comparison\n"
            + holdout_table(findings.metrics, findings.columns, findings.notes)
            + "\n" + "\n".join(f"{g.name}: {g.text}" for g in gates.promotion))


def evaluation_metadata(findings: EvaluationFindings, report: dict[str, Any], plots: dict[str, Any]) -> dict[str, Any]:
    """Dagster metadata in the order the UI shows it: the verdict (its message carries the
    interval) and the holdout table first, then the promotion gates and the reported checks, the
    plots (``plots``, from plots_metadata), the kernel path, cost and candidates, the figures, and
    the input hashes last. ``report`` is :func:`evaluation_report` of the same findings."""
    f, gates = findings, findings.gates
    rows = {name: {column: row[field] for column, field in DASHBOARD_COLUMNS.items()} for name, row in f.dashboard.items()}
    return {
        "verdict": gates.verdict.message,
        "comparison": MetadataValue.md(holdout_table(f.metrics, f.columns, f.notes)),
        "task": f.task,
        "judged_metric": f.metric,
        "gates": MetadataValue.md(gate_lines(gates.promotion)),
        "other_checks": MetadataValue.md("Reported; they never block promotion:\n\n" + gate_lines(gates.reported)),
        **plots,
        "kernel_path": f.plan.path,
        "kernel_path_reason": f.plan.reason,
        "verdict_sample": MetadataValue.json(report["verdict_sample"]),
        "dashboard": MetadataValue.md(comparison_table(rows, list(DASHBOARD_COLUMNS))),
        "device_telemetry": MetadataValue.md(device_telemetry_table(f.devices) if f.devices else
                                             "No device tasks in this run (exact simulator, or no Braket device)."),
        "candidates": MetadataValue.md(comparison_table(
            {f"{c['side']}: {c['model']} {c['params']}": c for c in f.candidates}, ["cv_mean", "cv_std", "chosen"])),
        "quantum_stage": report["quantum_stage"],
        "promotable": report["promotable"],
        "quantum_svm/C": float(f.infos["quantum_svm"]["C"]),
        "quantum_svm/circuit_depth": f.circuit_depth,
        "quantum_failure_rate": report[TELEMETRY_KEY]["quantum_failure_rate"]["rate"],
        **{f"{model}/{name}": value for model, values in f.metrics.items() for name, value in values.items()},
        "inputs": MetadataValue.json(report["inputs"]),
    }
