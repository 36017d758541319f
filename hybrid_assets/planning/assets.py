"""The kernel-route plan and the provider scorecard as assets (job ``plan_kernel_routes``): what the
pairwise fidelity, projected and Nyström routes would submit for the current data on the configured
device, in circuits, tasks, dollars and wall time, and which ones the time budget refuses (the same
report as ``hybrid-plan``); and, for every known device, the current route's cost and time, the
ledger's failure rate, the transpiled circuit and the predicted kernel error, with the cheapest
device that fits. Both submit nothing."""

from dagster import (
    AssetSelection,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
    define_asset_job,
)
from pydantic import Field

from hybrid_assets.common.circuits import Ceilings
from hybrid_assets.common.outputs import artifact_output
from hybrid_assets.common.reporting import comparison_table
from hybrid_assets.planning.routes import plan_current_data
from hybrid_assets.planning.scorecard import current_route, request_for, score_devices, scorecard_table
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.artifacts import info_of
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import QuantumBackend
from hybrid_resources.quantum.devices import UnknownDeviceError, device_snapshot, known_devices
from hybrid_resources.quantum.nystrom import NystromConfig
from hybrid_resources.quantum.planning import format_plan
from hybrid_resources.quantum.transpilation import transpile_on_devices


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



class ScorecardConfig(Config):
    devices: str = Field(default="", description="Devices to score, comma-separated (snapshot names, Braket ARNs, IBM "
                                                 "backend names); empty: every known device")
    shots: int = Field(default=1000, ge=1, description="Shots per circuit the plans assume")
    error_tolerance: float = Field(default=0.1, ge=0.0, description="Largest predicted mean |exact - device| kernel "
                                                                     "entry a recommended device may have")


@asset(code_version="1", group_name="planning", kinds={"python"})
def provider_scorecard(config: ScorecardConfig, reduced_embeddings: dict, kernel_tuning: dict, circuit_artifact: dict,
                       noisy_kernel_spread: dict, cost_policy: CostPolicy, gate_policy: GatePolicy,
                       warehouse: Warehouse) -> Output:
    """JSON report: per device (``devices``, fitting ones first, cheapest first) the current kernel
    route's planned circuits, tasks, USD and wall time (s); the ledger's failure rate in [0, 1],
    median queue and run time (s) and spend, or the stated default; the circuit's transpiled depth,
    two-qubit gates and SWAPs (circuit_artifact); the predicted mean kernel error
    (noisy_kernel_spread); ``fits`` and ``reasons``. ``recommended``: the cheapest device whose
    predicted error, time, cost and transpiled circuit fit the gates. Submits nothing."""
    names = [name.strip() for name in config.devices.split(",") if name.strip()] or list(known_devices())
    try:
        snapshots = [device_snapshot(name) for name in names]
        ceilings = Ceilings.of(gate_policy)
    except UnknownDeviceError as unknown:
        raise Failure(description=f"provider_scorecard: {unknown}") from unknown
    route = current_route(circuit_artifact, len(reduced_embeddings["X_train"]), gate_policy)
    transpiled = dict(circuit_artifact.get("transpiled", {}))
    uncovered = [snapshot.name for snapshot in snapshots if snapshot.name not in transpiled]
    if uncovered:  # devices circuit_artifact did not cover: transpiled here, with the same settings
        transpiled |= transpile_on_devices(circuit_artifact["openqasm"], uncovered, gate_policy.transpile_settings())
    scorecard = score_devices(snapshots, request=request_for(reduced_embeddings, kernel_tuning, gate_policy),
                              route=route, shots=config.shots, cost_policy=cost_policy, warehouse=warehouse,
                              transpiled=transpiled, predictions=info_of(noisy_kernel_spread).get("devices", []),
                              ceilings=ceilings, error_tolerance=config.error_tolerance)
    return artifact_output(scorecard, {
        "recommended": scorecard["recommended"] or "none fits the gates",
        "route": route,
        "submitted": "nothing: a plan",
        "scorecard": MetadataValue.md(scorecard_table(scorecard)),
    })


plan_kernel_routes_job = define_asset_job(
    "plan_kernel_routes", selection=AssetSelection.assets(kernel_route_plan, provider_scorecard),
    description="Plan every kernel route on the configured device, and score every known device for the current "
                "kernel, for the current data; submits nothing")
