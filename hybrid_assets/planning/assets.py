"""The kernel-route plan as an asset (job ``plan_kernel_routes``): what the pairwise fidelity,
projected and Nyström routes would submit for the current data on the configured device, in
circuits, tasks, dollars and wall time, and which ones the time budget refuses. Submits nothing;
the same report as ``hybrid-plan``."""

from dagster import (
    AssetSelection,
    Config,
    MetadataValue,
    Output,
    asset,
    define_asset_job,
)
from pydantic import Field

from hybrid_assets.common.outputs import artifact_output
from hybrid_assets.common.reporting import comparison_table
from hybrid_assets.planning.routes import plan_current_data
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.quantum.backends import QuantumBackend
from hybrid_resources.quantum.nystrom import NystromConfig
from hybrid_resources.quantum.planning import format_plan


class RoutePlanConfig(Config):
    landmarks: int = Field(default=NystromConfig().m, ge=1, description="Nyström landmarks m of the Nyström route")
    expected_accuracy: bool = Field(default=True, description="Each route's holdout accuracy on the exact simulator")
    max_accuracy_rows: int = Field(default=5000, ge=10, description="Train (and test) rows the expected accuracy runs "
                                   "on: a seeded stratified sample above it (the pairwise route's square kernel)")


@asset(code_version="2", group_name="planning", kinds={"python"})
def kernel_route_plan(config: RoutePlanConfig, reduced_embeddings: dict, kernel_tuning: dict,
                      quantum_backend: QuantumBackend, cost_policy: CostPolicy) -> Output:
    """JSON report: device, shots, rows, and per route (pairwise, projected, nystrom) circuits,
    billed tasks, programs per task, USD (task and shot fees) and estimated wall time (s) from the
    device's measured latency or the stated default; ``refused`` route -> the time-budget
    refusal; ``expected_accuracy`` route -> holdout accuracy in [0, 1] on the exact simulator."""
    plans, report = plan_current_data(reduced_embeddings, kernel_tuning, quantum_backend.backend_config(),
                                      cost_policy, landmarks=config.landmarks,
                                      with_accuracy=config.expected_accuracy,
                                      max_accuracy_rows=config.max_accuracy_rows)
    accuracy = report["expected_accuracy"]
    return artifact_output(report, {
        "device": report["device"],
        "shots": report["shots"] or 0,
        "submitted": "nothing: a plan",
        "routes": MetadataValue.md(format_plan(plans)),
        **{f"usd/{p.route}": p.usd for p in plans},
        **{f"wall_time_s/{p.route}": p.wall_time_s for p in plans},
        "refused_by_time_budget": MetadataValue.json(report["refused"]),
        "time_budget_s": report["time_budget_s"],
        **({"expected_accuracy": MetadataValue.md(comparison_table(
            {route: {report["expected_metric"]: value} for route, value in accuracy.items()}, [report["expected_metric"]])),
            "expected_accuracy_sample": MetadataValue.json(report["expected_accuracy_sample"])} if accuracy else {}),
    })


plan_kernel_routes_job = define_asset_job(
    "plan_kernel_routes", selection=AssetSelection.assets(kernel_route_plan),
    description="Plan every kernel route on the configured device for the current data; submits nothing")
