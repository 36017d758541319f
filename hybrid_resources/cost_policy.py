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
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pennylane as qml
from dagster import ConfigurableResource, Failure
from pydantic import Field

from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.quantum.backends import BackendConfig

DEFAULT_PRICE_TABLE = Path(__file__).with_name("prices.json")


class SubmissionRefused(Failure):
    """Planned device work was refused before anything was sent (a Dagster ``Failure`` that is
    not retried: re-running the same plan would be refused again)."""

    def __init__(self, message: str):
        super().__init__(description=message, metadata={"refused_before_submission": True}, allow_retries=False)


class BudgetExceededError(SubmissionRefused):
    """A planned submission would exceed a budget; nothing was sent."""


class UnknownPriceError(SubmissionRefused):
    """A paid device has no entry in the price table; nothing was sent."""


@dataclass(frozen=True)
class Price:
    per_task: float = 0.0    # USD per quantum task (one circuit)
    per_shot: float = 0.0    # USD per shot
    per_minute: float = 0.0  # USD per simulator minute (managed simulators)

    @property
    def is_free(self) -> bool:
        return not (self.per_task or self.per_shot or self.per_minute)


@dataclass(frozen=True)
class CostEstimate:
    """Planned cost of one submission: tasks x shots on a device, in USD."""

    device: str
    tasks: int
    shots_per_task: int
    simulator_minutes: float
    usd: float

    @property
    def total_shots(self) -> int:
        return self.tasks * self.shots_per_task

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
    """The price for a backend; free for local simulators; :class:`UnknownPriceError` otherwise."""
    if backend.device_name in table.get("free_devices", []):
        return Price()
    identity = device_identity(backend)
    entry = table.get("devices", {}).get(identity)
    if entry is None:
        raise UnknownPriceError(
            f"No price for device {identity!r} in the price table, so its cost cannot be bounded; "
            f"add it to a copy of {DEFAULT_PRICE_TABLE.name} and point cost_policy.price_table_path "
            "(or HYBRID_PRICE_TABLE) at that file."
        )
    return Price(**entry)


def estimate_cost(
    backend: BackendConfig, tasks: int, shots_per_task: int, table: dict[str, Any],
    simulator_seconds_per_task: float = 3.0,
) -> CostEstimate:
    """Cost of ``tasks`` circuits with ``shots_per_task`` shots each (USD, before submission).

    Managed simulators bill per minute; ``simulator_seconds_per_task`` is the assumed billed
    duration of one task (Braket bills at least 3 s per simulator task).
    """
    price = price_of(backend, table)
    minutes = tasks * simulator_seconds_per_task / 60.0 if price.per_minute else 0.0
    usd = tasks * price.per_task + tasks * shots_per_task * price.per_shot + minutes * price.per_minute
    return CostEstimate(device_identity(backend), tasks, shots_per_task, minutes, round(usd, 6))


def admit(estimate: CostEstimate, *, spent_this_run: float, spent_today: float,
          run_budget_usd: float, daily_budget_usd: float) -> None:
    """Refuse (raise :class:`BudgetExceededError`) a plan that would exceed either budget."""
    for scope, spent, budget, setting in (
        ("per-run", spent_this_run, run_budget_usd, "run_budget_usd / HYBRID_RUN_BUDGET_USD"),
        ("daily", spent_today, daily_budget_usd, "daily_budget_usd / HYBRID_DAILY_BUDGET_USD"),
    ):
        if spent + estimate.usd > budget + 1e-12 and not math.isclose(estimate.usd, 0.0):
            raise BudgetExceededError(
                f"Refused before submission: {estimate.tasks} tasks x {estimate.shots_per_task} shots on "
                f"{estimate.device} is estimated at ${estimate.usd:.2f}; with ${spent:.2f} already spent "
                f"the {scope} budget of ${budget:.2f} would be exceeded. Reduce shots or samples, or "
                f"raise the budget ({setting} on the cost_policy resource)."
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

    def price_table(self) -> dict[str, Any]:
        return load_price_table(Path(self.price_table_path) if self.price_table_path else None)

    def estimate(self, backend: BackendConfig, tasks: int, shots_per_task: int) -> CostEstimate:
        return estimate_cost(backend, tasks, shots_per_task, self.price_table(), self.simulator_seconds_per_task)

    def ledger(self, *, run_id: str, asset: str, backend: BackendConfig) -> SpendLedger:
        """The ledger for one step's work on ``backend`` (use it as a context manager)."""
        return SpendLedger(self, run_id=run_id, asset=asset, backend=backend)


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


class SpendLedger:
    """Admission before submission and a record of what one step's devices ran.

    - :meth:`admit` prices planned work and refuses it (:class:`BudgetExceededError`, or
      :class:`UnknownPriceError` for an unpriced paid device) when the run's or the day's
      recorded spend plus the plan would exceed its budget.
    - :meth:`watch` attaches a tracker to a device: every circuit it executes is counted,
      with its shots and estimated USD, as the device reports it, so a step that fails midway
      still records what it sent and nothing planned-but-unsent is recorded.
    - Records go to the warehouse's ``quantum_spend`` at once for a priced device (a killed
      process then loses no paid record), in batches for a free one, and on :meth:`close`;
      :meth:`failed` records each failed submission in ``device_failures``.
    """

    FREE_FLUSH_INTERVAL_S = 10.0

    def __init__(self, policy: CostPolicy, *, run_id: str, asset: str, backend: BackendConfig):
        self.policy, self.run_id, self.asset, self.backend = policy, run_id, asset, backend
        self._table = policy.price_table()
        self._lock = threading.Lock()
        self._pending = {"tasks": 0, "shots": 0, "usd": 0.0}
        self._last_flush = time.monotonic()
        self.tasks = self.shots = 0
        self.usd = 0.0
        self.device = device_identity(backend)

    def __enter__(self) -> SpendLedger:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def admit(self, circuits: int, shots_per_circuit: int) -> CostEstimate:
        """Refuse planned work over budget before anything is sent; returns the estimate."""
        estimate = self.policy.estimate(self.backend, circuits, shots_per_circuit)
        warehouse = self.policy.warehouse
        unflushed = self._pending["usd"]
        admit(estimate, spent_this_run=warehouse.spent_usd(run_id=self.run_id) + unflushed,
              spent_today=warehouse.spent_usd() + unflushed,
              run_budget_usd=self.policy.run_budget_usd, daily_budget_usd=self.policy.daily_budget_usd)
        return estimate

    def watch(self, device: Any) -> None:
        """Record every circuit ``device`` executes from now on."""
        price_of(self.backend, self._table)  # an unpriced paid device is refused before it can run
        _SubmissionTracker(device, self._on_update)

    def _on_update(self, update: dict[str, Any]) -> None:
        executions = int(update.get("executions") or 0)
        if not executions:
            return
        shots = int(update.get("shots") or 0)
        usd = estimate_cost(self.backend, executions, shots // executions, self._table,
                            self.policy.simulator_seconds_per_task).usd
        with self._lock:
            self.tasks += executions
            self.shots += shots
            self.usd += usd
            self._pending["tasks"] += executions
            self._pending["shots"] += shots
            self._pending["usd"] += usd
            if usd > 0 or time.monotonic() - self._last_flush > self.FREE_FLUSH_INTERVAL_S:
                self._flush()

    def failed(self, error: BaseException) -> None:
        """Record one failed submission at once (failure rate by provider, in the warehouse)."""
        self.policy.warehouse.record_failure(self.run_id, self.asset, self.device, f"{type(error).__name__}: {error}")

    def close(self) -> None:
        """Write what is still pending (call on success and on failure alike)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        pending = self._pending
        if pending["tasks"]:
            self.policy.warehouse.record_spend(self.run_id, self.asset, self.device, pending["tasks"],
                                               pending["shots"], pending["usd"])
        self._pending = {"tasks": 0, "shots": 0, "usd": 0.0}
        self._last_flush = time.monotonic()
