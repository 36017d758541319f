"""Quantum vs classical on the same holdout, the promotion gates, and the promotion itself."""

import math
from collections.abc import Iterator

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AutomationCondition,
    MetadataValue,
    asset,
)

from hybrid_assets.gates import GateResult, margin_gate, reproducibility_study, restart_spread
from hybrid_assets.modeling import (
    comparison_table,
    heatmap_png,
    holdout_metrics,
    markdown_image,
    precomputed_decision,
    rbf_decision,
)
from hybrid_assets.assets.variational import vqc_model
from hybrid_assets.outputs import artifact_output, latest_metadata
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.data.paths import DataLayout
from hybrid_resources.quantum.backends import QuantumBackend
from hybrid_resources.data.warehouse import Warehouse

METRICS = ["accuracy", "f1", "roc_auc"]
PROMOTION_GATES = ("quantum_beats_classical", "reproducibility", "cost_within_budget")
DASHBOARD_COLUMNS = ["accuracy", "f1", "roc_auc", "metric_std", "circuit_depth", "shots", "tasks",
                     "estimated_cost_usd", "wall_time_s", "backend"]


def evaluate_models(quantum_model: dict, classical_model: dict, kernel_test: np.ndarray,
                    embeddings: dict) -> dict[str, dict[str, float]]:
    """Holdout metrics of both models on the same test split: {model: {metric: value}}; NaN when degraded."""
    y_test = embeddings["y_test"]
    quantum = ({name: math.nan for name in METRICS} if "degraded" in quantum_model
               else holdout_metrics(y_test, precomputed_decision(quantum_model, kernel_test)))
    return {
        "quantum_svm": quantum,
        "classical_svm": holdout_metrics(y_test, rbf_decision(classical_model, embeddings["X_test"])),
    }


def dashboard_rows(metrics: dict, reproducibility: GateResult, circuit: dict, kernel_stats: list[dict],
                   classical_stats: dict, metric: str) -> dict[str, dict]:
    """One row per model combining holdout metrics with the telemetry of the stage that produced it."""
    quantum_row = {
        **metrics["quantum_svm"],
        "metric_std": reproducibility.figures.get(f"{metric}_std", "n/a"),
        "circuit_depth": circuit["resources"]["depth"],
        "shots": sum(int(s.get("shots_executed", 0)) for s in kernel_stats),
        "tasks": sum(int(s.get("circuits_executed", 0)) for s in kernel_stats),
        "estimated_cost_usd": sum(float(s.get("estimated_cost_usd", 0.0)) for s in kernel_stats),
        "wall_time_s": sum(float(s.get("wall_time_s", 0.0)) for s in kernel_stats),
        "backend": (kernel_stats[0].get("backend") or {}).get("device_name", "n/a") if kernel_stats else "n/a",
    }
    classical_row = {
        **metrics["classical_svm"], "metric_std": 0.0, "circuit_depth": "-", "shots": 0, "tasks": 0,
        "estimated_cost_usd": 0.0, "wall_time_s": float(classical_stats.get("wall_time_s", 0.0)), "backend": "cpu (sklearn)",
    }
    return {"quantum_svm": quantum_row, "classical_svm": classical_row}


def vqc_dashboard_row(metrics: dict, vqc: dict) -> dict:
    """The variational classifier's line of the dashboard, from its materialization metadata."""
    training = vqc.get("training") or {}
    return {**metrics["vqc_model"], "metric_std": "n/a", "circuit_depth": "-",
            "shots": 0 if not (vqc.get("config") or {}).get("shots") else "see planned_circuits",
            "tasks": vqc.get("planned_circuits", 0), "estimated_cost_usd": vqc.get("estimated_cost_usd", 0.0),
            "wall_time_s": "n/a", "backend": (vqc.get("config") or {}).get("device_name", "n/a"),
            "steps": training.get("total_steps")}


def _gate_check(gate: GateResult) -> AssetCheckResult:
    # WARN: a failed gate blocks promotion (promoted_model), not the classical path.
    return AssetCheckResult(check_name=gate.name, passed=gate.passed, severity=AssetCheckSeverity.WARN,
                            metadata={"message": gate.message, **{k: MetadataValue.json(v) if isinstance(v, (list, dict))
                                                                   else v for k, v in gate.figures.items()}})


@asset(
    automation_condition=AutomationCondition.eager(),
    code_version="2",
    group_name="models",
    pool="quantum",  # the reproducibility repeats submit quantum work
    kinds={"markdown"},
    check_specs=[
        AssetCheckSpec("quantum_beats_classical", asset="model_evaluation",
                       description="Quantum beats the classical baseline by the configured margin on the holdout"),
        AssetCheckSpec("reproducibility", asset="model_evaluation",
                       description="Kernel and holdout metric stable across repeated runs with different seeds"),
        AssetCheckSpec("cost_within_budget", asset="model_evaluation",
                       description="Estimated quantum spend of this run within the run budget"),
        AssetCheckSpec("vqc_beats_classical", asset="model_evaluation",
                       description="The variational classifier beats the classical baseline by the same margin"),
        AssetCheckSpec("vqc_reproducibility", asset="model_evaluation",
                       description="The variational classifier's validation metric is stable across seeded restarts"),
    ],
    deps=[vqc_model],
)
def model_evaluation(
    context: AssetExecutionContext,
    quantum_svm: dict,
    classical_svm: dict,
    quantum_kernel_test: np.ndarray,
    quantum_kernel_train: np.ndarray,
    reduced_embeddings: dict,
    circuit_artifact: dict,
    quantum_backend: QuantumBackend,
    cost_policy: CostPolicy,
    gate_policy: GatePolicy,
    warehouse: Warehouse,
) -> Iterator:
    """Side-by-side holdout report (accuracy, F1, ROC-AUC), the promotion gates, and one telemetry table."""
    instance = context.instance
    kernel_stats = [latest_metadata(instance, name) for name in ("quantum_kernel_train", "quantum_kernel_test")]
    degraded_reason = next((s.get("degraded_reason") for s in kernel_stats if s.get("degraded")), "")
    metrics = evaluate_models(quantum_svm, classical_svm, quantum_kernel_test, reduced_embeddings)
    vqc = latest_metadata(instance, "vqc_model")
    metrics["vqc_model"] = {name: float(vqc.get(f"holdout/{name}", math.nan)) for name in METRICS}
    vqc_margin = margin_gate(metrics, metric=gate_policy.metric, min_margin=gate_policy.min_margin,
                             candidate="vqc_model", name="vqc_beats_classical")
    vqc_reproducibility = restart_spread(list(vqc.get("restart_val_accuracy") or []), metric="accuracy",
                                         tolerance=gate_policy.reproducibility_tolerance)

    margin = margin_gate(metrics, metric=gate_policy.metric, min_margin=gate_policy.min_margin,
                         degraded_reason=degraded_reason)
    if degraded_reason:
        reproducibility = GateResult("reproducibility", False, f"quantum stage degraded: {degraded_reason}")
    else:
        backend = quantum_backend.backend_config()
        with cost_policy.ledger(run_id=context.run_id, asset="model_evaluation", backend=backend) as ledger:
            reproducibility = reproducibility_study(
                reduced_embeddings, FeatureMapSpec.from_dict(circuit_artifact["spec"]), backend,
                seeds=gate_policy.reproducibility_seeds, samples=gate_policy.reproducibility_samples,
                C=float(latest_metadata(instance, "quantum_svm").get("C", 1.0)), metric=gate_policy.metric,
                tolerance=gate_policy.reproducibility_tolerance, ledger=ledger)
    spent = warehouse.spent_usd(run_id=context.run_id)
    cost = GateResult("cost_within_budget", spent <= cost_policy.run_budget_usd,
                      f"estimated ${spent:.2f} spent this run of a ${cost_policy.run_budget_usd:.2f} budget",
                      {"spent_usd": spent, "run_budget_usd": cost_policy.run_budget_usd,
                       "spent_today_usd": warehouse.spent_usd(), "daily_budget_usd": cost_policy.daily_budget_usd})
    gates = [margin, reproducibility, cost]

    rows = dashboard_rows(metrics, reproducibility, circuit_artifact, kernel_stats,
                          latest_metadata(instance, "classical_svm"), gate_policy.metric)
    rows["vqc_model"] = vqc_dashboard_row(metrics, vqc)
    report = {
        "metrics": metrics,
        "quantum_minus_classical": {name: metrics["quantum_svm"][name] - metrics["classical_svm"][name]
                                    for name in METRICS},
        "quantum_stage": "degraded" if degraded_reason else "ok",
        "degraded_reason": degraded_reason,
        "gates": {gate.name: gate.to_dict() for gate in gates},
        "promotable": all(gate.passed for gate in gates),
        "dashboard": rows,
        "n_train": int(reduced_embeddings["y_train"].size),
        "n_test": int(reduced_embeddings["y_test"].size),
    }
    warehouse.log_experiment(context.run_id, "model_evaluation",
                             {"circuit": circuit_artifact["spec"], "backend": quantum_backend.describe(),
                              "gate_policy": gate_policy.model_dump() if hasattr(gate_policy, "model_dump") else {}},
                             {"metrics": metrics, "gates": report["gates"]})
    table = comparison_table(metrics, METRICS)
    context.log.info("Holdout comparison\n" + table + "\n" + "\n".join(f"{g.name}: {g.message}" for g in gates))
    metadata = {
        "comparison": MetadataValue.md(table),
        "dashboard": MetadataValue.md(comparison_table(rows, DASHBOARD_COLUMNS)),
        "gates": MetadataValue.md("\n".join(f"- **{g.name}**: {'passed' if g.passed else 'FAILED'}: {g.message}"
                                            for g in gates)),
        "quantum_stage": report["quantum_stage"],
        "promotable": report["promotable"],
        **{f"{model}/{name}": value for model, values in metrics.items() for name, value in values.items()},
    }
    if quantum_kernel_train.size:
        png = heatmap_png(quantum_kernel_train, "quantum kernel (train, first 200)")
        heatmap_path = DataLayout.from_env().artifacts / "model_evaluation" / "kernel_heatmap.png"
        heatmap_path.parent.mkdir(parents=True, exist_ok=True)
        heatmap_path.write_bytes(png)
        metadata |= {"kernel_heatmap": MetadataValue.md(markdown_image(png, "quantum kernel heatmap")),
                     "heatmap_path": str(heatmap_path)}
    report["gates_other_models"] = {gate.name: gate.to_dict() for gate in (vqc_margin, vqc_reproducibility)}
    yield artifact_output(report, metadata)
    for gate in [*gates, vqc_margin, vqc_reproducibility]:
        yield _gate_check(gate)


@asset(automation_condition=AutomationCondition.eager(), code_version="1", group_name="models", kinds={"json"},
       output_required=False)
def promoted_model(context: AssetExecutionContext, model_evaluation: dict, circuit_artifact: dict) -> Iterator:
    """The quantum model that passed every gate on the simulator, with its lineage record.

    Materializes only when every promotion gate passed; otherwise logs why and yields nothing.
    """
    failed = {name: gate["message"] for name, gate in model_evaluation["gates"].items() if not gate["passed"]}
    if failed:
        context.log.warning("Promotion blocked: " + "; ".join(f"{name}: {message}" for name, message in failed.items()))
        return
    instance = context.instance
    record = {
        "model": "quantum_svm",
        "model_data_version": latest_metadata(instance, "quantum_svm").get("content_hash"),
        "circuit": circuit_artifact["spec"],
        "circuit_spec_hash": circuit_artifact["spec_hash"],
        "gates": model_evaluation["gates"],
        "metrics": model_evaluation["metrics"],
    }
    yield artifact_output(record, {"model_data_version": record["model_data_version"],
                                   "circuit_spec_hash": record["circuit_spec_hash"]})
