"""Cost policy: a price table, an estimate before anything is submitted, budgets per run and per day.

Braket's own Tracker reports cost only after the fact and needs the network for prices; here
the estimate comes from a price table shipped with the project (``prices.json``, overridable
with ``HYBRID_PRICE_TABLE``) and a plan that is over budget is refused before any task is sent.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from hybrid_resources.quantum.backends import BackendConfig

DEFAULT_PRICE_TABLE = Path(__file__).with_name("prices.json")


class BudgetExceededError(RuntimeError):
    """A planned submission would exceed a budget; nothing was sent."""


class UnknownPriceError(RuntimeError):
    """A paid device has no entry in the price table; nothing was sent."""


@dataclass(frozen=True)
class Price:
    per_task: float = 0.0    # USD per quantum task (one circuit)
    per_shot: float = 0.0    # USD per shot
    per_minute: float = 0.0  # USD per simulator minute (managed simulators)


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
    """The price table: ``HYBRID_PRICE_TABLE`` if set, else the one shipped with the project."""
    chosen = path or Path(os.environ.get("HYBRID_PRICE_TABLE", "") or DEFAULT_PRICE_TABLE)
    return json.loads(Path(chosen).read_text())


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
            f"add it to a copy of {DEFAULT_PRICE_TABLE.name} and set HYBRID_PRICE_TABLE to that file."
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
    """Budgets for quantum submissions; the price table ships with the project."""

    run_budget_usd: float = Field(default=10.0, ge=0.0, description="Max estimated USD per Dagster run")
    daily_budget_usd: float = Field(default=50.0, ge=0.0, description="Max estimated USD per UTC day, all runs")
    price_table_path: str = Field(default="", description="Price table JSON; empty = HYBRID_PRICE_TABLE or the shipped one")
    simulator_seconds_per_task: float = Field(default=3.0, gt=0.0, description="Billed seconds per managed-simulator task")

    def estimate(self, backend: BackendConfig, tasks: int, shots_per_task: int) -> CostEstimate:
        table = load_price_table(Path(self.price_table_path) if self.price_table_path else None)
        return estimate_cost(backend, tasks, shots_per_task, table, self.simulator_seconds_per_task)
