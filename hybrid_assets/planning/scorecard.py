"""The provider scorecard: for every known device, what the current kernel would cost, how long it
would take, how often the device failed us, how the circuit looks after transpilation to it, and how
far its noise would move the kernel; and the cheapest device that fits the gates. Like
``kernel_route_plan``, it plans and submits nothing."""

from __future__ import annotations

from typing import Any

from hybrid_assets.common.circuits import Ceilings
from hybrid_assets.training.scale import kernel_plan
from hybrid_resources.cost_policy import CostPolicy, UnknownPriceError, device_identity
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.devices import DeviceSnapshot
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.latency import format_duration
from hybrid_resources.quantum.planning import PlanRequest, plan_route

# A device the ledger has no record of: its failure rate is assumed, and said to be.
DEFAULT_FAILURE_RATE = 0.05


def current_route(circuit_artifact: dict, n_train: int, gate_policy: GatePolicy) -> str:
    """The route the current kernel runs: projected for a projected kernel, else nystrom or
    pairwise as the kernel path for ``n_train`` train rows decides."""
    if circuit_artifact.get("kernel", {}).get("family") == "projected":
        return "projected"
    return "nystrom" if kernel_plan(n_train, gate_policy).path == "nystrom" else "pairwise"


def ledger_figures(record: dict[str, Any]) -> dict[str, Any]:
    """The scorecard's telemetry from :meth:`WarehouseSession.device_record`: failure rate (failed
    submissions and tasks over tasks billed and submissions failed), median queue and run time,
    what was spent; ``telemetry`` says whether it is the ledger's or the stated default."""
    attempts = record["tasks"] + record["failed_submissions"]
    failed = record["failed_submissions"] + record["failed_tasks"]
    return {
        "failure_rate": failed / attempts if attempts else DEFAULT_FAILURE_RATE,
        "median_queue_s": record["median_queue_s"], "median_run_s": record["median_run_s"],
        "spent_usd": record["usd"], "tasks_recorded": record["tasks"], "shots_recorded": record["shots"],
        "failed_submissions": record["failed_submissions"],
        "telemetry": (f"ledger: {record['tasks']} tasks, {record['failed_submissions']} failed submissions"
                      if attempts else f"default: no record, failure rate assumed {DEFAULT_FAILURE_RATE:g}"),
    }


def device_row(snapshot: DeviceSnapshot, request: PlanRequest, route: str, shots: int, cost_policy: CostPolicy,
               record: dict[str, Any], transpiled: dict[str, Any] | None, predicted: dict[str, Any] | None,
               ceilings: Ceilings) -> dict[str, Any]:
    """One device's scorecard row (see :func:`score_devices`)."""
    row: dict[str, Any] = {"device": snapshot.name, "provider": snapshot.provider, "identifier": snapshot.identifier,
                           "route": route, **ledger_figures(record)}
    backend = cost_policy.with_program_sets(snapshot.backend_config(shots))
    try:
        plan = plan_route(route, request, backend, cost_policy.price_table(),
                          latency=cost_policy.recorded_latency(backend),
                          simulator_seconds_per_task=cost_policy.simulator_seconds_per_task)
        row |= {"circuits": plan.circuits, "tasks": plan.tasks, "programs_per_task": plan.programs_per_task,
                "shots_per_circuit": plan.shots_per_circuit, "planned_usd": plan.usd,
                "planned_wall_time_s": plan.wall_time_s, "latency_source": plan.latency_source}
    except UnknownPriceError as unpriced:
        row |= {"planned_usd": None, "planned_wall_time_s": None, "unpriced": str(unpriced)}
    if transpiled and transpiled.get("fits"):
        sizes = transpiled["resources"]
        row |= {"transpiled_depth": sizes["depth"], "two_qubit_gates": sizes["two_qubit_gates"],
                "swaps": sizes["swaps"], "within_ceilings": ceilings.judge(sizes).passed}
    else:
        row |= {"transpiled_depth": None, "two_qubit_gates": None, "swaps": None, "within_ceilings": False}
    row["predicted_error"] = predicted.get("predicted_mean_abs_error") if predicted else None
    return row


def reasons_against(row: dict[str, Any], *, error_tolerance: float, time_budget_s: float,
                    run_budget_usd: float) -> list[str]:
    """Why a device does not fit the gates (empty: it fits)."""
    reasons = []
    if row["planned_usd"] is None:
        reasons.append("no price")
    elif row["planned_usd"] > run_budget_usd:
        reasons.append(f"${row['planned_usd']:,.2f} over the run budget ${run_budget_usd:,.2f}")
    if row["planned_wall_time_s"] is not None and time_budget_s and row["planned_wall_time_s"] > time_budget_s:
        reasons.append(f"{format_duration(row['planned_wall_time_s'])} over the time budget")
    if not row["within_ceilings"]:
        reasons.append("transpiled circuit over the ceilings" if row["transpiled_depth"] is not None
                       else "circuit not transpiled to it")
    if row["predicted_error"] is None:
        reasons.append("kernel error not predicted")
    elif row["predicted_error"] > error_tolerance:
        reasons.append(f"predicted kernel error {row['predicted_error']:.3f} > {error_tolerance:g}")
    return reasons


def score_devices(snapshots: list[DeviceSnapshot], *, request: PlanRequest, route: str, shots: int,
                  cost_policy: CostPolicy, warehouse: Warehouse, transpiled: dict[str, dict],
                  predictions: list[dict], ceilings: Ceilings, error_tolerance: float) -> dict[str, Any]:
    """The scorecard: one row per device (planned circuits, tasks, USD and wall time of ``route``
    for ``request``; the ledger's failure rate, median queue and run time and spend on it; the
    circuit's transpiled depth, two-qubit gates and SWAPs from ``transpiled`` (circuit_artifact's);
    the predicted mean kernel error from ``predictions`` (noisy_kernel_spread's); ``fits`` and
    ``reasons``), ranked fitting devices first, cheapest first; ``recommended``: the cheapest
    device that fits, or None."""
    by_device = {entry["device"]: entry for entry in predictions if "error" not in entry}
    with warehouse.session(read_only=True) as session:
        records = {snapshot.name: session.device_record(device_identity(snapshot.backend_config(shots)))
                   for snapshot in snapshots}
    rows = []
    for snapshot in snapshots:
        row = device_row(snapshot, request, route, shots, cost_policy, records[snapshot.name],
                         transpiled.get(snapshot.name), by_device.get(snapshot.name), ceilings)
        row["reasons"] = reasons_against(row, error_tolerance=error_tolerance, time_budget_s=cost_policy.time_budget_s,
                                         run_budget_usd=cost_policy.run_budget_usd)
        row["fits"] = not row["reasons"]
        rows.append(row)
    rows.sort(key=lambda r: (not r["fits"], r["planned_usd"] if r["planned_usd"] is not None else float("inf"),
                             r["predicted_error"] if r["predicted_error"] is not None else float("inf")))
    fitting = [row for row in rows if row["fits"]]
    return {"route": route, "shots_per_circuit": shots, "train_rows": request.n_train, "test_rows": request.n_test,
            "error_tolerance": error_tolerance, "time_budget_s": cost_policy.time_budget_s,
            "run_budget_usd": cost_policy.run_budget_usd, "devices": rows,
            "recommended": fitting[0]["device"] if fitting else None, "submitted": "nothing: a plan"}


def scorecard_table(scorecard: dict[str, Any]) -> str:
    """Markdown: the scorecard's rows as the UI shows them."""
    lines = ["| device | fits | planned USD | wall time | failure rate | depth | 2q gates | SWAPs | "
             "predicted error | why not |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in scorecard["devices"]:
        usd = f"${row['planned_usd']:,.2f}" if row["planned_usd"] is not None else "no price"
        wall = format_duration(row["planned_wall_time_s"]) if row["planned_wall_time_s"] is not None else "-"
        error = f"{row['predicted_error']:.4f}" if row["predicted_error"] is not None else "-"
        lines.append(f"| {row['device']} | {'yes' if row['fits'] else 'no'} | {usd} | {wall} | "
                     f"{row['failure_rate']:.3f} | {row['transpiled_depth']} | {row['two_qubit_gates']} | "
                     f"{row['swaps']} | {error} | {'; '.join(row['reasons'])} |")
    return "\n".join(lines)


def request_for(reduced_embeddings: dict, kernel_tuning: dict, gate_policy: GatePolicy) -> PlanRequest:
    """The plan request of the current data: its train and test rows, the tuned feature map, the
    gate policy's Nyström landmarks."""
    return PlanRequest(len(reduced_embeddings["X_train"]), len(reduced_embeddings["X_test"]),
                       FeatureMapSpec.from_dict(kernel_tuning["spec"]), gate_policy.nystrom_landmarks)
