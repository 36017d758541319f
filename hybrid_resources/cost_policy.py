"""Cost policy: a price table, admission before anything is sent, and one ledger of what was sent.

Every device submission, from every stage, goes through one path: :meth:`CostPolicy.ledger`
opens a :class:`SpendLedger` for a step; the step's work is admitted by it before submission
(:meth:`SpendLedger.admit`, refused over the per-run or per-day budget, else reserved so that
concurrent steps cannot jointly overspend) and every task a device creates is recorded by it as
it is created (:meth:`SpendLedger.watch`), journaled before the warehouse write, also when the
step fails midway or its results never arrive. Refusals are one error type, :class:`SubmissionRefused`, which is
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

import functools
import inspect
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, Failure, get_dagster_logger
from pydantic import Field

from hybrid_resources.data.spend_journal import (
    SpendJournal,
    claim_dead_journals,
    journal_dir,
    live_journal_entries,
)
from hybrid_resources.data.warehouse import (
    Warehouse,
    WarehouseLockTimeout,
    WarehouseSession,
    provider_of,
)
from hybrid_resources.lazy_modules import module_on_first_use
from hybrid_resources.price_table import (
    DEFAULT_PRICE_TABLE,
    is_free_device,
    load_price_table,
)
from hybrid_resources.quantum.backends import BackendConfig, is_managed
from hybrid_resources.quantum.latency import (
    LatencyModel,
    default_latency,
    format_duration,
)

qml = module_on_first_use("pennylane")

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
    per_qpu_second: float = 0.0     # USD per second of QPU time (IBM Quantum bills time, not shots)
    qpu_seconds_per_circuit: float = 0.0  # modelled QPU seconds of one circuit's setup (per_qpu_second devices)
    qpu_seconds_per_shot: float = 0.0     # ... and of each shot (repetition delay and circuit)

    @property
    def is_free(self) -> bool:
        return not (self.per_task or self.per_shot or self.per_minute or self.per_qpu_second)

    def qpu_seconds(self, circuits: int, shots_per_circuit: int) -> float:
        """Modelled QPU time of ``circuits`` circuits of ``shots_per_circuit`` shots (0 unless
        the device bills time)."""
        if not self.per_qpu_second:
            return 0.0
        return circuits * (self.qpu_seconds_per_circuit + shots_per_circuit * self.qpu_seconds_per_shot)


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
    qpu_seconds: float = 0.0  # modelled QPU time, on devices billed by the second (IBM Quantum)

    def __post_init__(self) -> None:
        if self.circuits < 0:
            object.__setattr__(self, "circuits", self.tasks)

    @property
    def total_shots(self) -> int:
        return self.circuits * self.shots_per_task

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_shots": self.total_shots}


def device_identity(backend: BackendConfig) -> str:
    """The device a price applies to: the Braket ARN's device path (e.g. ``qpu/ionq/forte-1``)
    for managed Braket devices, ``qpu/ibm/<backend>`` on IBM Quantum, else the PennyLane device name."""
    options = dict(backend.device_options)
    if backend.device_name == "qiskit.remote" and options.get("backend"):
        return f"qpu/ibm/{options['backend'].lower()}"
    arn = options.get("device_arn", "")
    return arn.split("device/", 1)[1].lower() if "device/" in arn else backend.device_name


def price_of(backend: BackendConfig, table: dict[str, Any]) -> Price:
    """The price for a backend; free for local simulators; :class:`UnknownPriceError` otherwise.

    A managed Braket device (``braket.aws.*``) is priced by its ARN: without one (or with one that
    names no ``device/...`` path) the error says to set ``HYBRID_BRAKET_DEVICE_ARN``; a device
    with an ARN but no entry in the table gets the advice to extend a copy of ``prices.json``.
    """
    if is_free_device(backend.device_name, table):
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
    if backend.device_name == "qiskit.remote" and identity == backend.device_name:
        raise UnknownPriceError(
            "Device 'qiskit.remote' needs an IBM Quantum backend name: it names the device and its price. Set "
            "HYBRID_IBM_BACKEND (or the quantum backend resource's ibm_backend), e.g. ibm_torino.")
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
    duration of one task (Braket bills at least 3 s per simulator task). A device priced per QPU
    second (IBM Quantum) bills the modelled time of :meth:`Price.qpu_seconds`.
    """
    price = price_of(backend, table)
    circuits = tasks
    billed = math.ceil(circuits / max(1, programs_per_task))
    minutes = billed * simulator_seconds_per_task / 60.0 if price.per_minute else 0.0
    task_fee, shot_fee = billed * price.per_task, circuits * shots_per_task * price.per_shot
    qpu_seconds = price.qpu_seconds(circuits, shots_per_task)
    usd = task_fee + shot_fee + minutes * price.per_minute + qpu_seconds * price.per_qpu_second
    return CostEstimate(device_identity(backend), billed, shots_per_task, minutes, round(usd, 6), circuits=circuits,
                        task_fee_usd=round(task_fee, 6), shot_fee_usd=round(shot_fee, 6),
                        qpu_seconds=round(qpu_seconds, 6))


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
        recorded = self.warehouse.task_latency(device_identity(backend)) if is_managed(backend.device_name) else None
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


@functools.cache
def _submission_tracker() -> type:
    """The class ``_SubmissionTracker``, defined on first use: it subclasses PennyLane's Tracker, and
    defining it with this module would import PennyLane in every process that loads the definitions."""

    class _SubmissionTracker(qml.Tracker):
        """A PennyLane device tracker that hands every update to a callback and keeps no history
        (a long run would otherwise hold one record per circuit in memory)."""

        def __init__(self, device: Any, on_update):
            super().__init__(device)
            self._on_update = on_update
            self.active = True

        def update(self, **kwargs: Any) -> None:
            # Only the latest update is kept, as totals and history too: pennylane-qiskit's devices
            # read and delete keys of all three after each execution.
            self.latest, self.totals = kwargs, dict(kwargs)
            self.history = {key: [value] for key, value in kwargs.items()}
            self._on_update(kwargs)

        def record(self) -> None:
            pass

    return _SubmissionTracker


def billed_task(specification: Any, shots: Any) -> tuple[int, int]:
    """(circuits, shots) Braket bills for one quantum task created from ``specification`` with
    ``shots``: a program set (it has ``total_executables``) holds its executables and bills its
    ``total_shots`` (the plugin sends it with a shots placeholder); a circuit is one program of
    ``shots`` shots (0 for an analytic local run)."""
    if hasattr(specification, "total_executables"):
        return int(specification.total_executables), int(specification.total_shots)
    return 1, max(0, int(shots or 0))


def _call_arguments(method: Any, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """(first argument, ``shots``) of a call to a Braket device's ``run`` / ``run_batch``, whatever
    the device's signature (``LocalSimulator`` takes shots second, ``AwsDevice`` third)."""
    signature = inspect.signature(method)
    bound = signature.bind_partial(*args, **kwargs)
    first = next(iter(signature.parameters))
    shots = bound.arguments.get("shots", signature.parameters["shots"].default
                                if "shots" in signature.parameters else 0)
    return bound.arguments.get(first), shots


def _billed_batch(specifications: Any, shots: Any) -> list[tuple[int, int]]:
    specifications = specifications if isinstance(specifications, (list, tuple)) else [specifications]
    shot_list = list(shots) if isinstance(shots, (list, tuple)) else [shots] * len(specifications)
    return [billed_task(specification, one) for specification, one in zip(specifications, shot_list)]


def _count_tasks(braket_device: Any, ledger: SpendLedger) -> bool:
    """Make ``ledger`` count every task ``braket_device`` (a Braket ``AwsDevice`` or
    ``LocalSimulator``, the plugin's ``_device``) creates, when it creates it, by wrapping its
    ``run`` and ``run_batch`` on the instance: :meth:`SpendLedger._before_send` sees what is about
    to be billed (and may refuse it), :meth:`SpendLedger._created` records each task the call
    returns. True when wrapped; anything else (a PennyLane simulator) has no tasks (False)."""
    if braket_device is None or not hasattr(braket_device, "run"):
        return False
    if getattr(braket_device, "_counted_by", None) is ledger:
        return True  # watched twice: counted once
    run, run_batch = braket_device.run, getattr(braket_device, "run_batch", None)

    def run_counted(*args: Any, **kwargs: Any) -> Any:
        billed = [billed_task(*_call_arguments(run, args, kwargs))]
        ledger._before_send(billed)
        task = run(*args, **kwargs)
        ledger._created(task, billed[0])
        return task

    def run_batch_counted(*args: Any, **kwargs: Any) -> Any:
        billed = _billed_batch(*_call_arguments(run_batch, args, kwargs))
        ledger._before_send(billed)
        batch = run_batch(*args, **kwargs)
        for task, one in zip(getattr(batch, "tasks", []), billed):
            ledger._created(task, one)
        return batch

    braket_device.run = run_counted
    if run_batch is not None:
        braket_device.run_batch = run_batch_counted
    braket_device._counted_by = ledger
    return True


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


def committed_spend(session: WarehouseSession, live: dict[str, list[dict[str, Any]]],
                    run_id: str) -> tuple[float, float]:
    """(this run, today) in USD: recorded in ``quantum_spend``, plus journaled by live ledgers but
    not recorded yet (``live``: {ledger id: journal entries}), plus what each open reservation
    may still spend (reserved, less what its ledger recorded or journaled)."""
    recorded = session.recorded_entry_ids([entry["id"] for entries in live.values() for entry in entries])
    unrecorded = {ledger: [e for e in entries if e["id"] not in recorded] for ledger, entries in live.items()}
    today = journal_day()
    run_usd = session.spent_usd(run_id=run_id)
    day_usd = session.spent_usd()
    for entries in unrecorded.values():
        run_usd += sum(entry["usd"] for entry in entries if entry["run_id"] == run_id)
        day_usd += sum(entry["usd"] for entry in entries if entry["day"] == today)
    for reservation in session.open_reservations():
        journaled = sum(entry["usd"] for entry in unrecorded.get(reservation["ledger_id"], []))
        left = max(0.0, reservation["reserved_usd"] - reservation["spent_usd"] - journaled)
        run_usd += left if reservation["run_id"] == run_id else 0.0
        day_usd += left if reservation["today"] else 0.0
    return run_usd, day_usd


def journal_day() -> str:
    """The day a journal entry counts for: the warehouse's ``current_date`` (the local calendar
    day, UTC on the servers), as ISO text."""
    return date.today().isoformat()


def replay_spend_journals(warehouse: Warehouse, session: WarehouseSession | None = None) -> int:
    """Record what dead ledgers journaled but never got into the warehouse (a locked file, a
    killed process); returns the entries newly recorded. Idempotent: an entry recorded before is
    skipped. Every admission and every ledger's last write does this; tools may call it too."""
    if session is None:
        with warehouse.session() as opened:
            return replay_spend_journals(warehouse, opened)
    claimed = claim_dead_journals(journal_dir(warehouse), claim=warehouse.try_lease)
    recorded: list[str] = []
    try:
        with session.transaction():
            for journal in claimed:
                recorded += session.record_spend_entries(journal.entries)
    except BaseException:
        for journal in claimed:
            journal.done(recorded=False)
        raise
    for journal in claimed:
        journal.done(recorded=True)
    return len(recorded)


class SpendLedger:
    """Admission before submission and a record of what one step's devices were billed for.

    - :meth:`admit` prices planned work and, in one warehouse transaction (the warehouse's one
      writer at a time serializes processes: DuckDB's file lock, or PostgreSQL's advisory lock
      across hosts), reads the run's and the day's committed spend (recorded, journaled
      but not yet recorded, and what other open ledgers reserved and may still spend: see
      :func:`committed_spend`), refuses the plan over a budget (:class:`BudgetExceededError`;
      :class:`UnknownPriceError` for an unpriced paid device), else reserves its estimate. Two
      steps admitted at once cannot jointly overspend. :meth:`close` releases the reservation; a
      ledger whose process died is found out by the next admission (its journal file is no
      longer locked, and on PostgreSQL its lease is no longer held: another host's live ledger
      keeps its reservation) or, at the latest, after :attr:`RESERVATION_TTL_S`, and released then.
    - Billing is counted when a Braket device creates a task (:meth:`watch` wraps the device's
      ``run`` / ``run_batch``): a task created is a task billed, priced from the price table by
      its shots, one task per program set, whether its result ever comes back or not. PennyLane's
      tracker (which the plugin updates only after a result arrived) then only reports circuits
      that returned (``reported_circuits``). Devices without Braket tasks (priced PennyLane
      simulators, in tests) are counted from the tracker.
    - Retries are checked, not pre-paid: every task is checked before it is sent, and one that
      would take the ledger's spend past what it admitted (a retry re-sending work the device
      already billed, or a plan that grew) is admitted on its own against the budgets and
      refused with :class:`BudgetExceededError` when it does not fit; nothing is sent then.
    - Every paid task is first appended to the ledger's spend journal (one fsync'd JSON line,
      :mod:`hybrid_resources.data.spend_journal`), then recorded in ``quantum_spend`` in batches
      (every :attr:`FLUSH_EVERY` entries or :attr:`FLUSH_INTERVAL_S` seconds, and on close). A
      batch the warehouse refuses (locked by another process) stays journaled and is recorded
      later: nothing paid is lost, and nothing is recorded twice.
    - Each Braket task a watched device creates becomes a ``device_tasks`` row on :meth:`close`
      (status, the task's own created and ended timestamps, run and queue time); a failed task
      also goes to ``device_failures`` with its reason. :meth:`failed` records each failed
      submission.
    """

    FLUSH_EVERY = 256          # journal entries per warehouse write
    FLUSH_INTERVAL_S = 10.0    # ... or at most this long after the last one
    WRITE_WAIT_S = 1.0         # seconds at a locked warehouse before leaving a batch to the journal
    TELEMETRY_WAIT_S = 40.0    # ... before giving up device_tasks / device_failures rows
    RESERVATION_TTL_S = 24 * 3600.0  # an unreleased reservation older than this holds no budget

    def __init__(self, policy: CostPolicy, *, run_id: str, asset: str, backend: BackendConfig):
        self.policy, self.run_id, self.asset, self.backend = policy, run_id, asset, backend
        self._table = policy.price_table()
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []  # entries not yet in the warehouse (paid ones journaled)
        self._last_flush = time.monotonic()
        self.tasks = self.shots = self.circuits = self.reported_circuits = 0
        self.usd = 0.0
        self.reserved_usd = 0.0
        self.device = device_identity(backend)
        self.ledger_id = uuid.uuid4().hex
        self._journal: SpendJournal | None = None
        self._end_lease: Callable[[], None] = lambda: None
        self._prices: dict[int, float] = {}
        self._tasks: list[Any] = []  # the Braket tasks the watched devices created

    def __enter__(self) -> SpendLedger:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def admit(self, circuits: int, shots_per_circuit: int, *, n_qubits: int = 0,
              route: str = "pairwise") -> CostEstimate:
        """Refuse planned work over the dollar budgets, or over the time budget, before anything
        is sent, else reserve its estimate (see the class docstring); returns the estimate.

        The time is the planner's latency for the device (:func:`~hybrid_resources.quantum.latency.
        default_latency`) for circuits of ``n_qubits`` qubits of ``route`` ("pairwise" or
        "projected"); ``n_qubits = 0`` takes the narrowest width measured, so the estimate is then
        a lower bound and a refusal is certain to be warranted.
        """
        estimate = self.policy.estimate(self.backend, circuits, shots_per_circuit)
        if circuits and not self.backend.is_exact:
            latency = self.policy.latency(self.backend, n_qubits, route)
            wall_time_s = latency.wall_time_s(tasks=estimate.tasks, circuits=circuits,
                                              total_shots=circuits * shots_per_circuit,
                                              max_parallel=self.backend.max_parallel)
            self.policy.admit_time(wall_time_s, what=f"{self.asset}: {circuits} circuits x {shots_per_circuit} shots "
                                                     f"on {self.device} ({latency.source})")
        if estimate.usd > 0:
            self._reserve(estimate)
        return estimate

    def _reserve(self, estimate: CostEstimate) -> None:
        """Admit ``estimate`` against the committed spend and reserve it, in one transaction."""
        self._open_journal()  # locked first: a reservation whose journal is unlocked is a dead one
        directory = journal_dir(self.policy.warehouse)
        with self.policy.warehouse.session() as session:
            replay_spend_journals(self.policy.warehouse, session)
            with session.transaction():
                live = live_journal_entries(directory, leased=session.leased)
                reservations = session.open_reservations()
                # Alive: its journal is locked here, or its process holds its lease (another host).
                leased = session.leased([r["ledger_id"] for r in reservations if r["ledger_id"] not in live])
                session.release_reservations([r["ledger_id"] for r in reservations
                                              if (r["ledger_id"] not in live and r["ledger_id"] not in leased)
                                              or r["age_s"] > self.RESERVATION_TTL_S])
                spent_run, spent_today = committed_spend(session, live, self.run_id)
                admit(estimate, spent_this_run=spent_run, spent_today=spent_today,
                      run_budget_usd=self.policy.run_budget_usd, daily_budget_usd=self.policy.daily_budget_usd)
                session.reserve(self.ledger_id, self.run_id, estimate.usd)
        with self._lock:
            self.reserved_usd += estimate.usd

    def watch(self, device: Any) -> None:
        """Record every task ``device`` creates (every circuit it executes, for a device without
        Braket tasks) from now on."""
        price_of(self.backend, self._table)  # an unpriced paid device is refused before it can run
        counted = _count_tasks(getattr(device, "_device", None), self)
        per_task = program_set_size(device) or 1
        _submission_tracker()(device, lambda update: self._on_update(update, per_task, counted))

    def _task_price(self, shots: int) -> float:
        price = self._prices.get(shots)
        if price is None:
            price = self._prices[shots] = estimate_cost(self.backend, 1, shots, self._table,
                                                        self.policy.simulator_seconds_per_task).usd
        return price

    def _before_send(self, billed: list[tuple[int, int]]) -> None:
        """Check tasks about to be created against what this ledger admitted; admit the excess
        (a retry, re-sent work) on its own, or refuse it (:class:`BudgetExceededError`)."""
        usd = sum(self._task_price(shots) for _, shots in billed)
        with self._lock:
            excess = self.usd + usd - self.reserved_usd
        if usd <= 0 or excess <= 1e-6:  # float sums of per-task prices against a rounded plan
            return
        circuits, shots = sum(c for c, _ in billed), sum(s for _, s in billed)
        extra = replace(estimate_cost(self.backend, len(billed), shots // max(1, circuits), self._table,
                                      self.policy.simulator_seconds_per_task), usd=round(excess, 6))
        try:
            self._reserve(extra)
        except BudgetExceededError as refused:
            raise BudgetExceededError(
                f"{refused.description} These tasks go beyond the ${self.reserved_usd:.2f} admitted for "
                f"{self.asset} (${self.usd:.2f} billed so far): a retry re-sends work the device already "
                "created and billed. Lower max_retries on the quantum backend resource, or raise the budget."
            ) from None

    def _created(self, task: Any, billed: tuple[int, int]) -> None:
        """A task the device created: billed now, whatever becomes of its result."""
        circuits, shots = billed
        with self._lock:
            self._tasks.append(task)
        self._charge(1, circuits, shots, self._task_price(shots))

    def _on_update(self, update: dict[str, Any], per_task: int = 1, counted: bool = False) -> None:
        executions = int(update.get("executions") or 0)
        if not executions:
            return
        if counted:  # billed when created: the tracker only reports what came back
            with self._lock:
                self.reported_circuits += executions
            return
        shots = int(update.get("shots") or 0)
        estimate = estimate_cost(self.backend, executions, shots // executions, self._table,
                                 self.policy.simulator_seconds_per_task, programs_per_task=per_task)
        self._charge(estimate.tasks, executions, shots, estimate.usd)

    def _charge(self, tasks: int, circuits: int, shots: int, usd: float) -> None:
        """Count billed work; a paid entry is journaled (fsync'd) before anything else."""
        entry = {"id": uuid.uuid4().hex if usd > 0 else None, "ledger": self.ledger_id, "run_id": self.run_id,
                 "asset": self.asset, "device": self.device, "tasks": tasks, "shots": shots, "usd": usd,
                 "day": journal_day()}
        with self._lock:
            if usd > 0:
                self._open_journal().append(entry)
            self.tasks, self.circuits, self.shots, self.usd = (self.tasks + tasks, self.circuits + circuits,
                                                               self.shots + shots, self.usd + usd)
            self._pending.append(entry)
            due = len(self._pending) >= self.FLUSH_EVERY or \
                time.monotonic() - self._last_flush > self.FLUSH_INTERVAL_S
        if due:
            self._write(release=False)

    def _open_journal(self) -> SpendJournal:
        """The ledger's journal, opened (and locked) on first use, with its lease in the warehouse,
        which proves to other hosts' admissions that this ledger lives."""
        if self._journal is None:
            # The lease first: on an object store it is the only proof that this journal's ledger lives.
            self._end_lease = self.policy.warehouse.lease(self.ledger_id)
            self._journal = SpendJournal(journal_dir(self.policy.warehouse), self.ledger_id)
        return self._journal

    def _write(self, *, release: bool) -> bool:
        """Record the pending entries (and, with ``release``, release the reservation) in one
        transaction; False when the warehouse stayed locked: the entries stay pending here and in
        the journal, for the next write or the next ledger's replay."""
        with self._lock:
            entries = list(self._pending)
            self._last_flush = time.monotonic()
        if not entries and not (release and self.reserved_usd):
            return True  # nothing to record, no reservation to release: no warehouse open
        try:
            with self.policy.warehouse.session(wait_s=self.WRITE_WAIT_S) as session:
                replay_spend_journals(self.policy.warehouse, session)
                with session.transaction():
                    session.record_spend_entries(entries)
                    session.release_reservations([self.ledger_id] if release else [])
        except WarehouseLockTimeout:  # only a locked warehouse is left to the journal
            get_dagster_logger("hybrid_quantum.ledger").warning(
                f"{self.asset}: warehouse locked, {len(entries)} spend entries stay in the journal "
                f"{journal_dir(self.policy.warehouse)} and are recorded by the next ledger")
            return False
        with self._lock:
            del self._pending[:len(entries)]  # entries added meanwhile stay pending
        return True

    def failed(self, error: BaseException) -> None:
        """Record one failed submission at once (failure rate by provider, in the warehouse)."""
        self._record_telemetry([], [f"{type(error).__name__}: {error}"])

    def close(self) -> None:
        """Record what is still pending, release the reservation, write the task telemetry (call
        on success and on failure alike). A locked warehouse leaves the spend in the journal."""
        recorded = self._write(release=True)
        if self._journal is not None:
            self._journal.close(recorded=recorded)
            self._end_lease()
        with self._lock:
            tasks, self._tasks = self._tasks, []
        rows = [self._task_row(task) for task in tasks]
        self._record_telemetry(rows, [f"task {row['status']}: {row['reason'] or 'no reason given'}"
                                      for row in rows if row["status"] != "COMPLETED"])

    def _record_telemetry(self, rows: list[dict[str, Any]], failures: list[str]) -> None:
        """``device_tasks`` rows and ``device_failures``, in one session: telemetry never fails a
        step, so a warehouse locked by another process for :attr:`TELEMETRY_WAIT_S` seconds only
        loses it (with a warning)."""
        if not rows and not failures:
            return
        try:
            with self.policy.warehouse.session(wait_s=self.TELEMETRY_WAIT_S) as session:
                if rows:
                    session.record_tasks(rows)
                for failure in failures:
                    session.record_failure(self.run_id, self.asset, self.device, failure)
        except WarehouseLockTimeout:  # only a locked warehouse is tolerated
            get_dagster_logger("hybrid_quantum.ledger").warning(
                f"{self.asset}: warehouse locked, {len(rows)} device_tasks rows and {len(failures)} failures "
                "not recorded")

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
