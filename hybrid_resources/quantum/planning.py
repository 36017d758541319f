"""Plans that submit nothing: circuits, tasks, dollars and wall time of each kernel route.

Three routes compute a train Gram matrix (N rows) and a test x train kernel (T rows) on a shot
device (docs/hardware.md, "Kernel routes"):

=============  =======================================  =====================================
route          circuits                                 what runs
=============  =======================================  =====================================
pairwise       N(N-1)/2 + T N                           compute-uncompute per pair (the engine)
projected      3 (N + T)                                X, Y, Z basis circuits per sample
nystrom        m(m-1)/2 + (N-m) m + T m                 K_mm, then the other rows against m landmarks
=============  =======================================  =====================================

(m: the landmarks, capped at N. A landmark's row of K_nm is its row of K_mm, so only the N - m
other train rows are computed against the landmarks; at m = N the route is pairwise's train Gram
matrix plus T N test entries, pairwise's circuits.)

Dollars come from the cost policy's price table (program sets where the backend groups them);
wall time from a :class:`LatencyModel`: measured per-circuit latency for the local simulators
(:data:`MEASURED_LATENCY_S`, this project's machine), or a stated assumption for a managed
device never measured. :func:`refuse_over_time_budget` turns a plan over the time budget into
the same refusal as an over-budget plan. Latency models live in :mod:`hybrid_resources.quantum.latency`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from hybrid_resources.cost_policy import (
    admit_time,
    device_identity,
    estimate_cost,
    programs_per_task,
)
from hybrid_resources.quantum.backends import BackendConfig, is_managed
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from hybrid_resources.quantum.latency import (
    LatencyModel,
    default_latency,
    format_duration,
)

ROUTES = ("pairwise", "projected", "nystrom")


def nystrom_landmarks(landmarks: int, n_train: int) -> int:
    """Landmarks the Nyström route uses: ``landmarks`` capped at the ``n_train`` train rows (the
    landmarks are train rows; ``fit_nystrom`` and the kernel path cap the same way).

    >>> nystrom_landmarks(1000, 100), nystrom_landmarks(20, 100)
    (100, 20)
    """
    return min(landmarks, n_train)


def route_requests(route: str, n_train: int, n_test: int = 0, landmarks: int = 0) -> list[int]:
    """Circuits of each kernel request a route makes on a shot device, without cache. Each request
    is admitted and grouped into tasks on its own, so program sets are counted per request.

    - pairwise: the train Gram matrix N(N-1)/2, then test x train T N (``quantum_kernel`` twice);
    - projected: 3 (N + T), both kernels from one measurement (``projected_train_test``);
    - nystrom: K_mm m(m-1)/2, K_nm's N - m non-landmark rows (N-m) m (a landmark's row of K_nm is
      its row of K_mm), then the test rows T m (``fit_nystrom``, ``nystrom_decision``; each in one
      request while the rows fit one block of ``NystromConfig.block_rows``), with m the
      ``landmarks`` capped at N (:func:`nystrom_landmarks`). At m = N: pairwise's requests.

    >>> route_requests("pairwise", 100, 25), route_requests("nystrom", 100, 25, landmarks=20)
    ([4950, 2500], [190, 1600, 500])
    >>> route_requests("nystrom", 100, 25, landmarks=1000) == route_requests("pairwise", 100, 25)
    True
    """
    if route == "pairwise":
        parts = [n_train * (n_train - 1) // 2, n_test * n_train]
    elif route == "projected":
        parts = [3 * (n_train + n_test)]
    elif route == "nystrom":
        m = nystrom_landmarks(landmarks, n_train)
        parts = [m * (m - 1) // 2, (n_train - m) * m, n_test * m]
    else:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    return [p for p in parts if p]


def route_circuits(route: str, n_train: int, n_test: int = 0, landmarks: int = 0) -> int:
    """Circuits a route runs on a shot device, without cache (the sum of :func:`route_requests`).

    >>> [route_circuits(r, 100, 25, landmarks=20) for r in ROUTES]
    [7450, 375, 2290]
    """
    return sum(route_requests(route, n_train, n_test, landmarks))


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: ``n_train`` train rows, ``n_test`` test rows, the feature map (its width sets
    the latency), and the Nyström route's landmarks (capped at ``n_train``)."""

    n_train: int
    n_test: int
    spec: FeatureMapSpec
    landmarks: int = 1000

    @property
    def nystrom_m(self) -> int:
        """The landmarks the Nyström route uses: ``landmarks`` capped at ``n_train``."""
        return nystrom_landmarks(self.landmarks, self.n_train)

    def route_note(self, route: str) -> str:
        """What the plan of ``route`` should say about this request: for the Nyström route with at
        least as many landmarks as train rows, that every train row is a landmark (and, above N,
        that m is capped at N): the route then computes the exact kernel in pairwise's circuits
        (K_mm is the train Gram matrix, no other K_nm rows); else "".

        >>> spec = FeatureMapSpec("iqp", 4)
        >>> PlanRequest(100, 25, spec, 1000).route_note("nystrom")
        "m capped at N=100, not 1000: every train row is a landmark, so this is the exact kernel at pairwise's cost"
        >>> PlanRequest(100, 25, spec, 20).route_note("nystrom"), PlanRequest(100, 25, spec, 1000).route_note("pairwise")
        ('', '')
        """
        if route != "nystrom" or self.landmarks < self.n_train:
            return ""
        cap = f"m capped at N={self.n_train}, not {self.landmarks}" if self.landmarks > self.n_train \
            else f"m = N={self.n_train}"
        return f"{cap}: every train row is a landmark, so this is the exact kernel at pairwise's cost"


@dataclass(frozen=True)
class RoutePlan:
    """One route's plan: circuits in billed tasks, shots, dollars (task and shot fees) and time."""

    route: str
    device: str
    circuits: int
    tasks: int
    programs_per_task: int
    shots_per_circuit: int
    usd: float
    task_fee_usd: float
    shot_fee_usd: float
    wall_time_s: float
    latency_source: str
    note: str = ""
    qpu_seconds: float = 0.0  # modelled QPU time billed, on devices priced by the second (IBM Quantum)

    @property
    def total_shots(self) -> int:
        return self.circuits * self.shots_per_circuit

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_shots": self.total_shots}


def plan_route(route: str, request: PlanRequest, backend: BackendConfig, table: dict[str, Any], *,
               latency: LatencyModel | None = None, simulator_seconds_per_task: float = 3.0) -> RoutePlan:
    """Plan one route on ``backend`` with the price ``table`` (see :func:`plan_routes`). The Nyström
    route runs ``request.nystrom_m`` landmarks (capped at the train rows); its ``note`` says when
    the cap applies (:meth:`PlanRequest.route_note`)."""
    shots = backend.shots or 0
    cap = request.route_note(route)
    if backend.is_exact or backend.shot_emulation:
        # Exact and emulated kernels come from statevectors: nothing runs on a device.
        return RoutePlan(route, backend.device_name, 0, 0, 1, shots, 0.0, 0.0, 0.0, 0.0, "no circuits",
                         note="; ".join(filter(None, ["statevector" if backend.is_exact else "shot emulation", cap])))
    group = programs_per_task(backend, table, shots)
    parts = [estimate_cost(backend, circuits, shots, table, simulator_seconds_per_task, programs_per_task=group)
             for circuits in route_requests(route, request.n_train, request.n_test, request.nystrom_m)]
    circuits, tasks = sum(p.circuits for p in parts), sum(p.tasks for p in parts)
    latency = latency or default_latency(backend, request.spec.n_qubits, route)
    wall = latency.wall_time_s(tasks=tasks, circuits=circuits, total_shots=circuits * shots,
                               max_parallel=backend.max_parallel)
    return RoutePlan(route, device_identity(backend), circuits, tasks, group, shots,
                     round(sum(p.usd for p in parts), 6), round(sum(p.task_fee_usd for p in parts), 6),
                     round(sum(p.shot_fee_usd for p in parts), 6), wall, latency.source, note=cap,
                     qpu_seconds=round(sum(p.qpu_seconds for p in parts), 6))


def plan_routes(request: PlanRequest, backend: BackendConfig, table: dict[str, Any], *,
                latency: LatencyModel | None = None, routes: Sequence[str] = ROUTES,
                simulator_seconds_per_task: float = 3.0) -> list[RoutePlan]:
    """Every route's :class:`RoutePlan` on one device; nothing is submitted.

    Args:
        request: rows, feature map and landmarks.
        backend: the device (shots, program sets via ``programs_per_task``, ``max_parallel``).
        table: the cost policy's price table (``CostPolicy.price_table()``).
        latency: measured latency of this device (e.g. from the ledger); default
            :func:`default_latency`.

    Example:
        >>> from hybrid_resources.cost_policy import load_price_table
        >>> garnet = BackendConfig(device_name="braket.aws.qubit", shots=1000,
        ...     device_options=(("device_arn", "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"),))
        >>> plans = plan_routes(PlanRequest(100, 0, FeatureMapSpec("iqp", 4)), garnet, load_price_table())
        >>> [(p.route, p.circuits, round(p.usd, 2)) for p in plans[:2]]
        [('pairwise', 4950, 8662.5), ('projected', 300, 525.0)]
    """
    return [plan_route(route, request, backend, table, latency=latency,
                       simulator_seconds_per_task=simulator_seconds_per_task) for route in routes]


def cost_ratio(plans: Sequence[RoutePlan], route: str, baseline: str = "pairwise") -> float:
    """USD of ``route`` over USD of ``baseline`` in one list of plans (nan when the baseline is free)."""
    by_route = {p.route: p for p in plans}
    base = by_route[baseline].usd
    return by_route[route].usd / base if base else float("nan")


def refuse_over_time_budget(plan: RoutePlan, time_budget_s: float) -> None:
    """Raise :class:`~hybrid_resources.cost_policy.TimeBudgetExceededError` (a ``SubmissionRefused``,
    like an over-budget plan) when ``plan`` would take longer than ``time_budget_s`` (0 = no limit);
    the message names the setting to change."""
    admit_time(plan.wall_time_s, time_budget_s=time_budget_s,
               what=f"the {plan.route} kernel route ({plan.circuits} circuits x {plan.shots_per_circuit} shots "
                    f"on {plan.device}, {plan.latency_source})")


def format_plan(plans: Sequence[RoutePlan]) -> str:
    """A Markdown table of plans (for the plan command and asset metadata); a QPU-time column
    when a device bills by the second."""
    timed = any(p.qpu_seconds for p in plans)
    lines = ["| route | circuits | tasks | programs/task | shots | USD | task fees | shot fees | "
             + ("QPU time | " if timed else "") + "wall time | latency |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | " + ("---: | " if timed else "") + "---: | --- |"]
    for p in plans:
        lines.append(f"| {p.route} | {p.circuits:,} | {p.tasks:,} | {p.programs_per_task} | {p.shots_per_circuit:,} | "
                     f"${p.usd:,.2f} | ${p.task_fee_usd:,.2f} | ${p.shot_fee_usd:,.2f} | "
                     + (f"{format_duration(p.qpu_seconds)} | " if timed else "")
                     + f"{format_duration(p.wall_time_s)} | {p.latency_source}{' (' + p.note + ')' if p.note else ''} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Measuring latency
# ---------------------------------------------------------------------------------------


def measure_circuit_latency(backend: BackendConfig, spec: FeatureMapSpec, *, samples: int = 10,
                            seed: int = 0) -> LatencyModel:
    """Per-circuit latency of ``backend`` on the kernel engine's compute-uncompute circuits: one
    warm-up, then a ``samples`` x ``samples`` symmetric kernel (samples(samples-1)/2 circuits).
    Free devices only: nothing is admitted or recorded (a paid device would be charged)."""
    if is_managed(backend.device_name):
        raise ValueError("measure_circuit_latency runs circuits: measure a paid device from the ledger instead")
    backend = replace(backend, shots=backend.shots or 1000, shot_emulation=False)
    X = np.random.default_rng(seed).uniform(0.0, np.pi, size=(samples, spec.n_qubits))
    quantum_kernel(X[:2], spec=spec, backend=backend)  # imports, device construction, compilation caches
    started = time.perf_counter()
    result = quantum_kernel(X, spec=spec, backend=backend)
    return LatencyModel.from_measurement(time.perf_counter() - started, result.stats.circuits_executed,
                                         source=f"measured: {backend.device_name} at {spec.n_qubits} qubits")
