"""Quantum vs classical on the same holdout, the promotion gates, and the promotion itself.

Evaluation and promotion read only their inputs: each model artifact carries what they need
(hyperparameters, kernel statistics, holdout metrics, restart accuracies) in its ``info``, so an
evaluation describes exactly the versions it was given, and the audit trail, which follows
input pointers, shows every one of them.
"""

import math
from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    asset,
)

from hybrid_assets.automation import ON_NEW_DATA
from hybrid_assets.gates import (
    GateResult,
    margin_gate,
    reproducibility_study,
    restart_spread,
)
from hybrid_assets.modeling import comparison_table, heatmap_png, markdown_image
from hybrid_assets.outputs import artifact_output
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.artifacts import content_hash, info_of, telemetry_of
from hybrid_resources.data.paths import DataLayout
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import QuantumBackend
from hybrid_resources.quantum.feature_maps import FeatureMapSpec

METRICS = ["accuracy", "f1", "roc_auc"]
MODELS = ("quantum_svm", "classical_svm", "vqc_model")
PROMOTION_GATES = ("quantum_beats_classical", "reproducibility", "cost_within_budget")
DASHBOARD_COLUMNS = ["accuracy", "f1", "roc_auc", "metric_std", "circuit_depth", "shots", "tasks",
                     "estimated_cost_usd", "wall_time_s", "backend"]


def holdout_of(info: dict) -> dict[str, float]:
    """A model's holdout metrics from its artifact info; NaN when it was degraded."""
    if info.get("degraded") or "holdout" not in info:
        return {name: math.nan for name in METRICS}
    return {name: float(info["holdout"][name]) for name in METRICS}


def dashboard_rows(infos: dict[str, dict], telemetry: dict[str, dict], metrics: dict, reproducibility: GateResult,
                   circuit: dict, metric: str) -> dict[str, dict]:
    """One row per model: holdout metrics with the telemetry of the stage that produced it."""
    kernels = [{**info, **telemetry["quantum_svm"].get("kernels", {}).get(name, {})}
               for name, info in (infos["quantum_svm"].get("kernels") or {}).items()]
    vqc = {**infos["vqc_model"], **telemetry["vqc_model"]}
    return {
        "quantum_svm": {
            **metrics["quantum_svm"],
            "metric_std": reproducibility.figures.get(f"{metric}_std", "n/a"),
            "circuit_depth": circuit["resources"]["depth"],
            "shots": sum(int(k.get("shots_executed", 0)) for k in kernels),
            "tasks": sum(int(k.get("circuits_executed", 0)) for k in kernels),
            "estimated_cost_usd": sum(float(k.get("estimated_cost_usd", 0.0)) for k in kernels),
            "wall_time_s": sum(float(k.get("wall_time_s", 0.0)) for k in kernels),
            "backend": (kernels[0].get("backend") or {}).get("device_name", "n/a") if kernels else "n/a",
        },
        "classical_svm": {
            **metrics["classical_svm"], "metric_std": 0.0, "circuit_depth": "-", "shots": 0, "tasks": 0,
            "estimated_cost_usd": 0.0, "wall_time_s": float(telemetry["classical_svm"].get("wall_time_s", 0.0)),
            "backend": "cpu (sklearn)",
        },
        "vqc_model": {
            **metrics["vqc_model"], "metric_std": "n/a", "circuit_depth": "-",
            "shots": int(vqc.get("shots_executed", 0)), "tasks": int(vqc.get("circuits_executed", 0)),
            "estimated_cost_usd": float(vqc.get("estimated_cost_usd", 0.0)), "wall_time_s": "n/a",
            "backend": (vqc.get("backend") or {}).get("device_name", "n/a"),
        },
    }


def _gate_check(gate: GateResult) -> AssetCheckResult:
    # WARN: a failed gate blocks promotion (promoted_model), not the classical path.
    return AssetCheckResult(check_name=gate.name, passed=gate.passed, severity=AssetCheckSeverity.WARN,
                            metadata={"message": gate.message, **{k: MetadataValue.json(v) if isinstance(v, (list, dict))
                                                                   else v for k, v in gate.figures.items()}})


@asset(
    automation_condition=ON_NEW_DATA,
    code_version="3",
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
)
def model_evaluation(
    context: AssetExecutionContext,
    quantum_svm: dict,
    classical_svm: dict,
    vqc_model: dict,
    quantum_kernel_train: dict,
    reduced_embeddings: dict,
    circuit_artifact: dict,
    quantum_backend: QuantumBackend,
    cost_policy: CostPolicy,
    gate_policy: GatePolicy,
    warehouse: Warehouse,
) -> Iterator:
    """Side-by-side holdout report (accuracy, F1, ROC-AUC), the promotion gates, and one telemetry table."""
    inputs = {"quantum_svm": quantum_svm, "classical_svm": classical_svm, "vqc_model": vqc_model,
              "quantum_kernel_train": quantum_kernel_train, "reduced_embeddings": reduced_embeddings,
              "circuit_artifact": circuit_artifact}
    infos = {name: info_of(inputs[name]) for name in MODELS}
    telemetry = {name: telemetry_of(inputs[name]) for name in MODELS}
    metrics = {name: holdout_of(info) for name, info in infos.items()}
    degraded_reason = infos["quantum_svm"].get("degraded_reason", "") if infos["quantum_svm"].get("degraded") else ""
    margin = margin_gate(metrics, metric=gate_policy.metric, min_margin=gate_policy.min_margin,
                         degraded_reason=degraded_reason)
    vqc_margin = margin_gate(metrics, metric=gate_policy.metric, min_margin=gate_policy.min_margin,
                             candidate="vqc_model", name="vqc_beats_classical",
                             degraded_reason=infos["vqc_model"].get("degraded_reason", ""))
    vqc_reproducibility = restart_spread(list(infos["vqc_model"].get("restart_val_accuracy") or []),
                                         metric="accuracy", tolerance=gate_policy.reproducibility_tolerance)
    if degraded_reason:
        reproducibility = GateResult("reproducibility", False, f"quantum stage degraded: {degraded_reason}")
    else:
        backend = quantum_backend.backend_config()
        with cost_policy.ledger(run_id=context.run_id, asset="model_evaluation", backend=backend) as ledger:
            reproducibility = reproducibility_study(
                reduced_embeddings, FeatureMapSpec.from_dict(circuit_artifact["spec"]), backend,
                seeds=gate_policy.reproducibility_seeds, samples=gate_policy.reproducibility_samples,
                C=float(infos["quantum_svm"]["C"]), metric=gate_policy.metric,
                tolerance=gate_policy.reproducibility_tolerance, ledger=ledger)
    spent = warehouse.spent_usd(run_id=context.run_id)
    cost = GateResult("cost_within_budget", spent <= cost_policy.run_budget_usd,
                      f"estimated ${spent:.2f} spent this run of a ${cost_policy.run_budget_usd:.2f} budget",
                      {"spent_usd": spent, "run_budget_usd": cost_policy.run_budget_usd,
                       "spent_today_usd": warehouse.spent_usd(), "daily_budget_usd": cost_policy.daily_budget_usd})
    gates = [margin, reproducibility, cost]

    rows = dashboard_rows(infos, telemetry, metrics, reproducibility, circuit_artifact, gate_policy.metric)
    report = {
        "metrics": metrics,
        "models": infos,
        "inputs": {name: content_hash(value) for name, value in inputs.items()},
        "quantum_minus_classical": {name: metrics["quantum_svm"][name] - metrics["classical_svm"][name]
                                    for name in METRICS},
        "quantum_stage": "degraded" if degraded_reason else "ok",
        "degraded_reason": degraded_reason,
        "gates": {gate.name: gate.to_dict() for gate in gates},
        "gates_other_models": {gate.name: gate.to_dict() for gate in (vqc_margin, vqc_reproducibility)},
        "promotable": all(gate.passed for gate in gates),
        "dashboard": rows,
        "n_train": int(reduced_embeddings["y_train"].size),
        "n_test": int(reduced_embeddings["y_test"].size),
    }
    warehouse.log_experiment(context.run_id, "model_evaluation",
                             {"circuit": circuit_artifact["spec"], "backend": quantum_backend.describe(),
                              "gate_policy": gate_policy.model_dump(), "inputs": report["inputs"]},
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
        "inputs": MetadataValue.json(report["inputs"]),
        "quantum_svm/C": float(infos["quantum_svm"]["C"]),
        **{f"{model}/{name}": value for model, values in metrics.items() for name, value in values.items()},
    }
    kernel = quantum_kernel_train["matrix"]
    if kernel.size:
        png = heatmap_png(kernel, "quantum kernel (train, first 200)")
        heatmap_path = DataLayout.from_env().artifacts / "model_evaluation" / "kernel_heatmap.png"
        heatmap_path.parent.mkdir(parents=True, exist_ok=True)
        heatmap_path.write_bytes(png)
        metadata |= {"kernel_heatmap": MetadataValue.md(markdown_image(png, "quantum kernel heatmap")),
                     "heatmap_path": str(heatmap_path)}
    yield artifact_output(report, metadata)
    for gate in [*gates, vqc_margin, vqc_reproducibility]:
        yield _gate_check(gate)


@asset(automation_condition=ON_NEW_DATA, code_version="2", group_name="models", kinds={"json"},
       output_required=False)
def promoted_model(context: AssetExecutionContext, model_evaluation: dict, circuit_artifact: dict) -> Iterator:
    """The quantum model that passed every gate on the simulator, with its lineage record.

    Materializes only when every promotion gate passed; otherwise logs why and yields nothing.
    The versions it names are pinned: retention never deletes them.
    """
    failed = {name: gate["message"] for name, gate in model_evaluation["gates"].items() if not gate["passed"]}
    if failed:
        context.log.warning("Promotion blocked: " + "; ".join(f"{name}: {message}" for name, message in failed.items()))
        return
    inputs = model_evaluation["inputs"]
    record = {
        "model": "quantum_svm",
        "model_data_version": inputs["quantum_svm"],
        "circuit": circuit_artifact["spec"],
        "circuit_spec_hash": circuit_artifact["spec_hash"],
        "gates": model_evaluation["gates"],
        "metrics": model_evaluation["metrics"],
        "inputs": inputs,
    }
    references = {**inputs, **model_evaluation["models"]["quantum_svm"].get("inputs", {}),
                  "model_evaluation": content_hash(model_evaluation)}
    yield artifact_output(record, {"model_data_version": record["model_data_version"],
                                   "circuit_spec_hash": record["circuit_spec_hash"],
                                   "references": MetadataValue.json(references)})
