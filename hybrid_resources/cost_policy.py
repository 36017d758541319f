"""Cost policy: a price table, admission before anything is sent, and one ledger of what was sent.

Every device submission, from every stage, goes through one path: :meth:`CostPolicy.ledger`
opens a :class:`SpendLedger` for a step; the step's work is admitted by it before submission
(:meth:`SpendLedger.admit`, refused over the per-run or per-day budget) and every circuit a
device runs is recorded by it (:meth:`SpendLedger.watch`, a PennyLane device tracker), also
when the step fails midway. Refusals are one error type, :class:`SubmissionRefused`, which is
itself a Dagster ``Failure``.

Braket's own Tracker reports cost only after the fact and needs the network for prices; here
the estimate comes from a price table shipped with the project (``prices.json``, overridable
with the ``price_table_path`` setting, ``HYBRID_PRICE_TABLE`` in the environment).

Program sets: a device whose price entry has ``max_programs_per_task`` runs up to that many
circuits in one Braket quantum task, billed one per-task fee plus every shot. A backend opts in
with ``programs_per_task`` (:meth:`CostPolicy.with_program_sets` sets it to the device's limit);
estimates, admission and the ledger then count billed tasks, not circuits.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pennylane as qml
from dagster import ConfigurableResource, Failure
from pydantic import Field

from hybrid_resources.data.warehouse import Warehouse, provider_of
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.latency import (
    LatencyModel,
    default_latency,
    format_duration,
)

DEFAULT_PRICE_TABLE = Path(__file__).with_name("prices.json")
# The form of a managed device's ARN, for messages that ask for one.
EXAMPLE_DEVICE_ARN = "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1"


class SubmissionRefused(Failure):
    """Planned device work was refused before anything was sent (a Dagster ``Failure`` that is
    not retried: re-running the same plan would be refused again)."""

    def __init__(self, message: str):
        super().__init__(description=message, metadata={"refused_before_submission": True}, allow_retries=False)


class BudgetExceededError(SubmissionRefused):
    """A planned submission would exceed a budget; nothing was sent."""


class UnknownPriceError(SubmissionRefused):
    """A paid device has no entry in the price table; nothing was sent."""


class TimeBudgetExceededError(SubmissionRefused):
    """A planned submission would take longer than the configured time budget; nothing was sent."""


@dataclass(frozen=True)
class Price:
    per_task: float = 0.0    # USD per quantum task (one circuit, or one program set)
    per_shot: float = 0.0    # USD per shot
    per_minute: float = 0.0  # USD per simulator minute (managed simulators)
    max_programs_per_task: int = 1  # circuits one task may hold (Braket program sets); 1 = no program sets
    max_shots_per_task: int = 0     # total shots one program set may hold; 0 = no limit

    @property
    def is_free(self) -> bool:
        return not (self.per_task or self.per_shot or self.per_minute)


@dataclass(frozen=True)
class CostEstimate:
    """Planned cost of one submission on a device, in USD.

    ``tasks`` are billed quantum tasks; ``circuits`` the circuits (programs) they hold, equal to
    ``tasks`` unless grouped in program sets; ``shots_per_task`` is shots per circuit.
    """

    device: str
    tasks: int
    shots_per_task: int
    simulator_minutes: float
    usd: float
    circuits: int = -1  # -1: one circuit per task
    task_fee_usd: float = 0.0
    shot_fee_usd: float = 0.0

    def __post_init__(self) -> None:
        if self.circuits < 0:
            object.__setattr__(self, "circuits", self.tasks)

    @property
    def total_shots(self) -> int:
        return self.circuits * self.shots_per_task

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_shots": self.total_shots}


def load_price_table(path: Path | None = None) -> dict[str, Any]:
    """The price table at ``path``, else the one shipped with the project."""
    return json.loads(Path(path or DEFAULT_PRICE_TABLE).read_text())


def device_identity(backend: BackendConfig) -> str:
    """The device a price applies to: the Braket ARN's device path (e.g. ``qpu/ionq/forte-1``)
    for managed devices, else the PennyLane device name."""
    arn = dict(backend.device_options).get("device_arn", "")
    return arn.split("device/", 1)[1].lower() if "device/" in arn else backend.device_name


def price_of(backend: BackendConfig, table: dict[str, Any]) -> Price:
    """The price for a backend; free for local simulators; :class:`UnknownPriceError` otherwise.

    A managed Braket device (``braket.aws.*``) is priced by its ARN: without one (or with one that
    names no ``device/...`` path) the error says to set ``HYBRID_BRAKET_DEVICE_ARN``; a device
    with an ARN but no entry in the table gets the advice to extend a copy of ``prices.json``.
    """
    if backend.device_name in table.get("free_devices", []):
        return Price()
    identity = device_identity(backend)
    if backend.device_name.startswith("braket.aws") and identity == backend.device_name:
        arn = dict(backend.device_options).get("device_arn", "")
        raise UnknownPriceError(
            f"Device {backend.device_name!r} needs a Braket device ARN, "
            f"{'got ' + repr(arn) if arn else 'and none is set'}: the ARN names the device and its price. "
            "Set HYBRID_BRAKET_DEVICE_ARN (or the quantum backend resource's device_arn) to the device's ARN, "
            f"e.g. {EXAMPLE_DEVICE_ARN} (format arn:aws:braket:<region>::device/<qpu|quantum-simulator>/<provider>/<device>)."
        )
    entry = table.get("devices", {}).get(identity)
    if entry is None:
        raise UnknownPriceError(
            f"No price for device {identity!r} in the price table, so its cost cannot be bounded; "
            f"add it to a copy of {DEFAULT_PRICE_TABLE.name} and point cost_policy.price_table_path "
            "(or HYBRID_PRICE_TABLE) at that file."
        )
    return Price(**entry)


def program_set_limit(backend: BackendConfig, table: dict[str, Any], shots_per_circuit: int) -> int:
    """Most circuits one quantum task of this device may hold: the price entry's
    ``max_programs_per_task``, lowered so that programs x shots stays within its
    ``max_shots_per_task``; 1 for a device without program sets (or a free one)."""
    price = price_of(backend, table)
    limit = max(1, int(price.max_programs_per_task))
    if price.max_shots_per_task and shots_per_circuit:
        limit = min(limit, max(1, int(price.max_shots_per_task) // int(shots_per_circuit)))
    return limit


def programs_per_task(backend: BackendConfig, table: dict[str, Any], shots_per_circuit: int) -> int:
    """Circuits per billed task for this backend: its ``programs_per_task`` within the device's
    :func:`program_set_limit` (1 unless the backend opted in and the device supports it)."""
    return max(1, min(backend.programs_per_task, program_set_limit(backend, table, shots_per_circuit)))


def estimate_cost(
    backend: BackendConfig, tasks: int, shots_per_task: int, table: dict[str, Any],
    simulator_seconds_per_task: float = 3.0, *, programs_per_task: int = 1,
) -> CostEstimate:
    """Cost of ``tasks`` circuits with ``shots_per_task`` shots each (USD, before submission).

    With ``programs_per_task`` > 1 the circuits go ``programs_per_task`` to a quantum task
    (Braket program sets): ceil(circuits / programs_per_task) per-task fees, every shot billed.
    Managed simulators bill per minute; ``simulator_seconds_per_task`` is the assumed billed
    duration of one task (Braket bills at least 3 s per simulator task).
    """
    price = price_of(backend, table)
    circuits = tasks
    billed = math.ceil(circuits / max(1, programs_per_task))
    minutes = billed * simulator_seconds_per_task / 60.0 if price.per_minute else 0.0
    task_fee, shot_fee = billed * price.per_task, circuits * shots_per_task * price.per_shot
    usd = task_fee + shot_fee + minutes * price.per_minute
    return CostEstimate(device_identity(backend), billed, shots_per_task, minutes, round(usd, 6), circuits=circuits,
                        task_fee_usd=round(task_fee, 6), shot_fee_usd=round(shot_fee, 6))


def program_set_savings(backend: BackendConfig, circuits: int, shots_per_circuit: int,
                        table: dict[str, Any]) -> dict[str, float]:
    """Task fees and totals of a plan without and with program sets (at the device's limit).

    Returns {"circuits", "tasks_without", "tasks_with", "programs_per_task", "task_fees_without_usd",
    "task_fees_with_usd", "usd_without", "usd_with", "task_fee_reduction", "total_reduction"}; the
    reductions are ratios without/with (1.0 on a device without program sets, inf when the fees
    with program sets are zero).

    >>> garnet = BackendConfig(device_name="braket.aws.qubit", shots=1000,
    ...     device_options=(("device_arn", "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"),))
    >>> savings = program_set_savings(garnet, 4950, 1000, load_price_table())
    >>> savings["tasks_with"], savings["task_fees_with_usd"], savings["task_fee_reduction"]
    (50, 15.0, 99.0)
    """
    limit = program_set_limit(backend, table, shots_per_circuit)
    without = estimate_cost(backend, circuits, shots_per_circuit, table)
    grouped = estimate_cost(backend, circuits, shots_per_circuit, table, programs_per_task=limit)

    def ratio(a: float, b: float) -> float:
        return a / b if b else (1.0 if not a else math.inf)

    return {"circuits": circuits, "tasks_without": without.tasks, "tasks_with": grouped.tasks,
            "programs_per_task": limit, "task_fees_without_usd": without.task_fee_usd,
            "task_fees_with_usd": grouped.task_fee_usd, "usd_without": without.usd, "usd_with": grouped.usd,
            "task_fee_reduction": ratio(without.task_fee_usd, grouped.task_fee_usd),
            "total_reduction": ratio(without.usd, grouped.usd)}


def admit(estimate: CostEstimate, *, spent_this_run: float, spent_today: float,
          run_budget_usd: float, daily_budget_usd: float) -> None:
    """Refuse (raise :class:`BudgetExceededError`) a plan that would exceed either budget."""
    for scope, spent, budget, setting in (
        ("per-run", spent_this_run, run_budget_usd, "run_budget_usd / HYBRID_RUN_BUDGET_USD"),
        ("daily", spent_today, daily_budget_usd, "daily_budget_usd / HYBRID_DAILY_BUDGET_USD"),
    ):
        if spent + estimate.usd > budget + 1e-12 and not math.isclose(estimate.usd, 0.0):
            grouped = f" ({estimate.circuits} circuits)" if estimate.circuits != estimate.tasks else ""
            raise BudgetExceededError(
                f"Refused before submission: {estimate.tasks} tasks{grouped} x {estimate.shots_per_task} shots on "
                f"{estimate.device} is estimated at ${estimate.usd:.2f}; with ${spent:.2f} already spent "
                f"the {scope} budget of ${budget:.2f} would be exceeded. Reduce shots or samples, or "
                f"raise the budget ({setting} on the cost_policy resource)."
            )


def admit_time(wall_time_s: float, *, time_budget_s: float, what: str) -> None:
    """Refuse (raise :class:`TimeBudgetExceededError`) planned device work estimated to take longer
    than ``time_budget_s`` (0 = no limit); ``what`` names the work in the message."""
    if time_budget_s and wall_time_s > time_budget_s:
        raise TimeBudgetExceededError(
            f"Refused before submission: {what} is estimated at {format_duration(wall_time_s)} of device time, over the "
            f"time budget of {format_duration(time_budget_s)}. Use fewer samples, a cheaper kernel route (projected or "
            f"Nystrom) or a faster device, or raise the budget (time_budget_s / HYBRID_TIME_BUDGET_S on the "
            f"cost_policy resource; 0 = no limit)."
        )


class CostPolicy(ConfigurableResource):
    """Budgets for quantum submissions, the price table, and the ledger (in the warehouse)."""

    warehouse: Warehouse = Field(default_factory=Warehouse, description="Where the ledger records spend")
    run_budget_usd: float = Field(default=10.0, ge=0.0, description="Max estimated USD per Dagster run")
    daily_budget_usd: float = Field(default=50.0, ge=0.0, description="Max estimated USD per UTC day, all runs")
    price_table_path: str = Field(default="", description="Price table JSON; empty = the shipped prices.json")
    simulator_seconds_per_task: float = Field(default=3.0, gt=0.0, description="Billed seconds per managed-simulator task")
    quantum_rows_per_day: int = Field(default=1000, ge=0, description="Rows a quantum model may score per UTC day "
                                                                     "(scoring; the dollars are daily_budget_usd)")
    time_budget_s: float = Field(default=3600.0, ge=0.0, description="Max estimated device wall time of one step's "
                                                                     "planned circuits, in seconds (0 = no limit)")
    program_sets: bool = Field(default=True, description="Group shot circuits into Braket program sets (one per-task "
                                                         "fee per set) on devices that support them; false: one task "
                                                         "per circuit")

    def price_table(self) -> dict[str, Any]:
        return load_price_table(Path(self.price_table_path) if self.price_table_path else None)

    def estimate(self, backend: BackendConfig, tasks: int, shots_per_task: int) -> CostEstimate:
        """Cost of ``tasks`` circuits x ``shots_per_task`` shots, grouped as ``backend`` groups them."""
        table = self.price_table()
        return estimate_cost(backend, tasks, shots_per_task, table, self.simulator_seconds_per_task,
                             programs_per_task=programs_per_task(backend, table, shots_per_task))

    def with_program_sets(self, backend: BackendConfig) -> BackendConfig:
        """``backend`` with ``programs_per_task`` at its device's program-set limit for its shots
        (unchanged for a device without program sets, a local simulator, shots=None, or with
        ``program_sets`` off). Every asset submits through it, so the grouping follows the device."""
        if not self.program_sets or not backend.device_name.startswith("braket.aws") or not backend.shots:
            return backend
        limit = program_set_limit(backend, self.price_table(), backend.shots)
        return replace(backend, programs_per_task=limit) if limit > 1 else backend

    def recorded_latency(self, backend: BackendConfig) -> LatencyModel | None:
        """A managed device's :class:`~hybrid_resources.quantum.latency.LatencyModel` from the
        ledger: the median creation-to-end time of its recent tasks in ``device_tasks`` (queue
        included), or None before it has run any. Local simulators have none: the planner's
        defaults are measured end to end here, while a local task's own timestamps leave out the
        plugin's per-circuit work, most of a local circuit's time."""
        recorded = self.warehouse.task_latency(device_identity(backend)) \
            if backend.device_name.startswith("braket.aws") else None
        if recorded is None:
            return None
        median, tasks = recorded
        return LatencyModel(per_task_s=median, source=f"ledger: median {median:.3g} s per task over the last "
                                                      f"{tasks} tasks of {device_identity(backend)}")

    def latency(self, backend: BackendConfig, n_qubits: int, route: str = "pairwise") -> LatencyModel:
        """The latency that prices device time: :meth:`recorded_latency`, else the planner's
        documented default for the device, width and route."""
        return self.recorded_latency(backend) or default_latency(backend, n_qubits, route)

    def admit_time(self, wall_time_s: float, what: str) -> None:
        """Refuse planned work estimated over ``time_budget_s`` (see :func:`admit_time`)."""
        admit_time(wall_time_s, time_budget_s=self.time_budget_s, what=what)

    def ledger(self, *, run_id: str, asset: str, backend: BackendConfig) -> SpendLedger:
        """The ledger for one step's work on ``backend`` (use it as a context manager)."""
        return SpendLedger(self, run_id=run_id, asset=asset, backend=backend)


def program_set_size(device: Any) -> int | None:
    """Circuits the Braket plugin packs into one program set (one quantum task) on ``device``, or
    None where it sends one circuit per task. The plugin reads it from the device's properties
    (``_max_program_set_executables``, None without the program-set action);
    :func:`~hybrid_resources.quantum.backends.make_device` may lower it to the backend's
    ``programs_per_task``. Other devices have no such attribute."""
    size = getattr(device, "_max_program_set_executables", None)
    return int(size) if size else None


class _SubmissionTracker(qml.Tracker):
    """A PennyLane device tracker that hands every update to a callback and keeps no history
    (a long run would otherwise hold one record per circuit in memory)."""

    def __init__(self, device: Any, on_update):
        super().__init__(device)
        self._on_update = on_update
        self.active = True

    def update(self, **kwargs: Any) -> None:
        self.latest = kwargs
        self._on_update(kwargs)

    def record(self) -> None:
        pass


def _keep_tasks(braket_device: Any, keep: Any) -> None:
    """Hand every task ``braket_device`` (a Braket ``AwsDevice`` or ``LocalSimulator``, the
    plugin's ``_device``) creates to ``keep``, by wrapping its ``run`` and ``run_batch`` on the
    instance. Anything else (a PennyLane simulator) has no tasks and is left alone."""
    if braket_device is None or not hasattr(braket_device, "run"):
        return
    run, run_batch = braket_device.run, getattr(braket_device, "run_batch", None)

    def run_kept(*args: Any, **kwargs: Any) -> Any:
        task = run(*args, **kwargs)
        keep(task)
        return task

    def run_batch_kept(*args: Any, **kwargs: Any) -> Any:
        batch = run_batch(*args, **kwargs)
        for task in getattr(batch, "tasks", []):
            keep(task)
        return batch

    braket_device.run = run_kept
    if run_batch is not None:
        braket_device.run_batch = run_batch_kept


def _task_state(task: Any) -> str:
    try:
        return str(task.state())
    except Exception as error:  # noqa: BLE001 - telemetry: unknown, never raised
        return f"UNKNOWN ({type(error).__name__})"


def _failure_reason(task: Any) -> str | None:
    try:
        return (task.metadata(use_cached_value=True) or {}).get("failureReason")
    except Exception:  # noqa: BLE001 - a local task has no service metadata
        return None


def _utc(timestamp: str | None) -> datetime | None:
    """A Braket ISO timestamp ("2026-12-03T19:27:56.164Z") as a naive UTC datetime."""
    if not timestamp:
        return None
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)


class SpendLedger:
    """Admission before submission and a record of what one step's devices ran.

    - :meth:`admit` prices planned work and refuses it (:class:`BudgetExceededError`, or
      :class:`UnknownPriceError` for an unpriced paid device) when the run's or the day's
      recorded spend plus the plan would exceed its budget.
    - :meth:`watch` attaches a tracker to a device: every circuit it executes is counted,
      with its shots and estimated USD, as the device reports it, so a step that fails midway
      still records what it sent and nothing planned-but-unsent is recorded. On a device that
      packs circuits into Braket program sets, a report of n circuits is the ceil(n / set size)
      tasks the plugin created for them (``tasks`` counts billed tasks, ``circuits`` circuits).
    - Records go to the warehouse's ``quantum_spend`` at once for a priced device (a killed
      process then loses no paid record), in batches for a free one, and on :meth:`close`;
      :meth:`failed` records each failed submission in ``device_failures``.
    - Each Braket task a watched device creates becomes a ``device_tasks`` row on :meth:`close`:
      status, the task's own created and ended timestamps (its result's ``task_metadata``), the
      execution time a simulator reports, and the queue time between them; a failed task also
      goes to ``device_failures`` with its reason.
    """

    FREE_FLUSH_INTERVAL_S = 10.0

    def __init__(self, policy: CostPolicy, *, run_id: str, asset: str, backend: BackendConfig):
        self.policy, self.run_id, self.asset, self.backend = policy, run_id, asset, backend
        self._table = policy.price_table()
        self._lock = threading.Lock()
        self._pending = {"tasks": 0, "shots": 0, "usd": 0.0}
        self._last_flush = time.monotonic()
        self.tasks = self.shots = self.circuits = 0
        self.usd = 0.0
        self.device = device_identity(backend)
        self._tasks: list[Any] = []  # the Braket tasks the watched devices created

    def __enter__(self) -> SpendLedger:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def admit(self, circuits: int, shots_per_circuit: int, *, n_qubits: int = 0,
              route: str = "pairwise") -> CostEstimate:
        """Refuse planned work over the dollar budgets, or over the time budget, before anything
        is sent; returns the estimate.

        The time is the planner's latency for the device (:func:`~hybrid_resources.quantum.latency.
        default_latency`) for circuits of ``n_qubits`` qubits of ``route`` ("pairwise" or
        "projected"); ``n_qubits = 0`` takes the narrowest width measured, so the estimate is then
        a lower bound and a refusal is certain to be warranted.
        """
        estimate = self.policy.estimate(self.backend, circuits, shots_per_circuit)
        warehouse = self.policy.warehouse
        unflushed = self._pending["usd"]
        admit(estimate, spent_this_run=warehouse.spent_usd(run_id=self.run_id) + unflushed,
              spent_today=warehouse.spent_usd() + unflushed,
              run_budget_usd=self.policy.run_budget_usd, daily_budget_usd=self.policy.daily_budget_usd)
        if circuits and not self.backend.is_exact:
            latency = self.policy.latency(self.backend, n_qubits, route)
            wall_time_s = latency.wall_time_s(tasks=estimate.tasks, circuits=circuits,
                                              total_shots=circuits * shots_per_circuit,
                                              max_parallel=self.backend.max_parallel)
            self.policy.admit_time(wall_time_s, what=f"{self.asset}: {circuits} circuits x {shots_per_circuit} shots "
                                                     f"on {self.device} ({latency.source})")
        return estimate

    def watch(self, device: Any) -> None:
        """Record every circuit ``device`` executes from now on."""
        price_of(self.backend, self._table)  # an unpriced paid device is refused before it can run
        _keep_tasks(getattr(device, "_device", None), self._keep_task)
        per_task = program_set_size(device) or 1
        _SubmissionTracker(device, lambda update: self._on_update(update, per_task))

    def _on_update(self, update: dict[str, Any], per_task: int = 1) -> None:
        executions = int(update.get("executions") or 0)
        if not executions:
            return
        shots = int(update.get("shots") or 0)
        estimate = estimate_cost(self.backend, executions, shots // executions, self._table,
                                 self.policy.simulator_seconds_per_task, programs_per_task=per_task)
        usd = estimate.usd
        with self._lock:
            self.tasks += estimate.tasks
            self.circuits += executions
            self.shots += shots
            self.usd += usd
            self._pending["tasks"] += estimate.tasks
            self._pending["shots"] += shots
            self._pending["usd"] += usd
            if usd > 0 or time.monotonic() - self._last_flush > self.FREE_FLUSH_INTERVAL_S:
                self._flush()

    def _keep_task(self, task: Any) -> None:
        with self._lock:
            self._tasks.append(task)

    def failed(self, error: BaseException) -> None:
        """Record one failed submission at once (failure rate by provider, in the warehouse)."""
        self.policy.warehouse.record_failure(self.run_id, self.asset, self.device, f"{type(error).__name__}: {error}")

    def close(self) -> None:
        """Write what is still pending (call on success and on failure alike)."""
        with self._lock:
            self._flush()
            tasks, self._tasks = self._tasks, []
        rows = [self._task_row(task) for task in tasks]
        self.policy.warehouse.record_tasks(rows)
        for row in rows:
            if row["status"] != "COMPLETED":
                self.policy.warehouse.record_failure(self.run_id, self.asset, self.device,
                                                     f"task {row['status']}: {row['reason'] or 'no reason given'}")

    def _task_row(self, task: Any) -> dict[str, Any]:
        """One ``device_tasks`` row from a Braket task the plugin created and waited for. The
        timestamps are the task's own (its result's ``task_metadata``); telemetry never fails a
        step, so whatever the task cannot tell stays empty."""
        row = {"run_id": self.run_id, "asset": self.asset, "device": self.device, "provider": provider_of(self.device),
               "task_id": str(getattr(task, "id", "")), "status": _task_state(task), "created_at": None,
               "ended_at": None, "latency_s": None, "run_s": None, "queue_s": None, "reason": None}
        if row["status"] != "COMPLETED":
            row["reason"] = _failure_reason(task)
            return row
        try:
            result = task.result()
        except Exception as error:  # noqa: BLE001 - recorded, never raised
            row["reason"] = f"no result: {type(error).__name__}"
            return row
        meta = result.task_metadata
        created, ended = _utc(meta.createdAt), _utc(meta.endedAt)
        simulator = getattr(getattr(result, "additional_metadata", None), "simulatorMetadata", None)
        run_ms = getattr(simulator, "executionDuration", None)
        row |= {"created_at": created, "ended_at": ended,
                "latency_s": (ended - created).total_seconds() if created and ended else None,
                "run_s": run_ms / 1e3 if run_ms is not None else None}
        if self.backend.device_name == "braket.local.qubit":
            # A local simulator starts a task when it is created: all of its time is run time.
            row |= {"queue_s": 0.0, "run_s": row["run_s"] if row["run_s"] is not None else row["latency_s"]}
        elif row["latency_s"] is not None and row["run_s"] is not None:
            row["queue_s"] = max(0.0, row["latency_s"] - row["run_s"])
        return row

    def _flush(self) -> None:
        pending = self._pending
        if pending["tasks"]:
            self.policy.warehouse.record_spend(self.run_id, self.asset, self.device, pending["tasks"],
                                               pending["shots"], pending["usd"])
        self._pending = {"tasks": 0, "shots": 0, "usd": 0.0}
        self._last_flush = time.monotonic()
