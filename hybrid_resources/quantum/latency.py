"""How long device work takes: latency models for planning and admission, progress with an ETA,
and the one duration format of messages and plans.

Wall time comes from a :class:`LatencyModel`: measured per-circuit latency for the local
simulators (:data:`MEASURED_LATENCY_S`, this project's machine), a stated assumption for a
managed device never measured (:func:`default_latency`), or the ledger's measured figures once a
device has run (:meth:`LatencyModel.from_measurement`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from hybrid_resources.quantum.backends import BackendConfig, is_managed

__all__ = ["MANAGED_SHOT_S", "MANAGED_TASK_OVERHEAD_S", "MEASURED_LATENCY_S", "LatencyModel", "ProgressETA",
           "default_latency", "format_duration"]

# Seconds per circuit measured on this project's 2-core machine, 1,000 shots, IQP map reps=2, median
# of 3 runs (bench/hardware_economics_bench.py, 2026-11-25; other test suites were running, so
# expect +-30%): "pair" = the engine's compute-uncompute circuits (pairwise and Nystrom routes),
# "projected" = U(x) plus basis rotations (about half as deep).
MEASURED_LATENCY_S: dict[str, dict[str, dict[int, float]]] = {
    "default.qubit": {"pair": {4: 0.0038, 5: 0.0040, 6: 0.0042, 7: 0.0049, 8: 0.0057},
                      "projected": {4: 0.0019, 5: 0.0019, 6: 0.0023, 7: 0.0026, 8: 0.0031}},
    "braket.local.qubit": {"pair": {4: 0.0387, 5: 0.0607, 6: 0.0829, 7: 0.0790, 8: 0.0949},
                           "projected": {4: 0.0214, 5: 0.0283, 6: 0.0387, 7: 0.0426, 8: 0.0595}},
}
# A managed device never measured: assumptions, not measurements (queue time excluded). Replace
# them with the ledger's measured figures as soon as a device has run.
MANAGED_TASK_OVERHEAD_S = 5.0  # create, compile, run setup and result retrieval per quantum task
MANAGED_SHOT_S = 0.001  # per shot (superconducting QPUs repeat at ~kHz; trapped ions are slower)


@dataclass(frozen=True)
class LatencyModel:
    """Wall time of device work: ``per_task_s`` per billed task (shared by ``max_parallel``
    concurrent tasks), ``per_circuit_s`` per circuit and ``per_shot_s`` per shot. ``source``
    says where the figures come from ("measured: ...", "default: ...", "ledger: ...")."""

    per_circuit_s: float = 0.0
    per_task_s: float = 0.0
    per_shot_s: float = 0.0
    source: str = "given"

    def wall_time_s(self, *, tasks: int, circuits: int, total_shots: int, max_parallel: int = 1) -> float:
        return tasks * self.per_task_s / max(1, max_parallel) + circuits * self.per_circuit_s + total_shots * self.per_shot_s

    @classmethod
    def from_measurement(cls, wall_time_s: float, circuits: int, source: str = "ledger") -> LatencyModel:
        """Per-circuit latency of a finished run (e.g. a kernel step's wall time and circuits)."""
        return cls(per_circuit_s=wall_time_s / max(1, circuits), source=source)


def default_latency(backend: BackendConfig, n_qubits: int, route: str = "pairwise") -> LatencyModel:
    """The documented default for a device not measured here yet.

    Local simulators: :data:`MEASURED_LATENCY_S` for the route's circuits at the nearest measured
    width (doubled per qubit above 8, as a statevector doubles); an unknown local simulator gets
    the slower Braket figure. Managed devices: :data:`MANAGED_TASK_OVERHEAD_S` per task and
    :data:`MANAGED_SHOT_S` per shot (assumptions).
    """
    if is_managed(backend.device_name):
        return LatencyModel(per_task_s=MANAGED_TASK_OVERHEAD_S, per_shot_s=MANAGED_SHOT_S,
                            source=f"default: assumed {MANAGED_TASK_OVERHEAD_S:g} s/task + {MANAGED_SHOT_S:g} s/shot")
    name = backend.device_name if backend.device_name in MEASURED_LATENCY_S else "braket.local.qubit"
    kind = "projected" if route == "projected" else "pair"
    table = MEASURED_LATENCY_S[name][kind]
    width = min(max(n_qubits, min(table)), max(table))
    seconds = table[width] * 2.0 ** max(0, n_qubits - max(table))
    return LatencyModel(per_circuit_s=seconds, source=f"default: measured {name} {kind} circuits at {width} qubits")


def format_duration(seconds: float) -> str:
    """'42.0 s' below two minutes, '12.5 min' below two hours, else '3.2 h'.

    Example:
        >>> format_duration(42), format_duration(750), format_duration(11520)
        ('42.0 s', '12.5 min', '3.2 h')
    """
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


class ProgressETA:
    """Progress of a long device step, logged with an ETA at most every ``every_s`` seconds.

    ``log`` is any ``str -> None`` callable (``context.log.info``, ``logger.info``); ``advance(n)``
    after each finished batch. The last batch is always logged.

    Example:
        >>> lines = []
        >>> clock = iter([0.0, 2.0, 10.0, 11.0]).__next__
        >>> progress = ProgressETA(100, lines.append, label="pair circuits", every_s=5.0, clock=clock)
        >>> progress.advance(10); progress.advance(40); progress.advance(50)
        >>> lines
        ['pair circuits: 50/100 (50%), 10.0 s elapsed, ETA 10.0 s', 'pair circuits: 100/100 (100%), 11.0 s elapsed, done']
    """

    def __init__(self, total: int, log: Callable[[str], None], *, label: str = "circuits", every_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.log, self.label, self.every_s, self.clock = int(total), log, label, every_s, clock
        self.done = 0
        self.started = clock()
        self._last_log = self.started

    def advance(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + int(n))
        now = self.clock()
        if self.done >= self.total or now - self._last_log >= self.every_s:
            self._last_log = now
            self.log(self.message(now))

    def eta_s(self, now: float | None = None) -> float:
        """Seconds left at the mean rate so far (inf before any progress)."""
        elapsed = (self.clock() if now is None else now) - self.started
        return math.inf if not self.done else elapsed / self.done * (self.total - self.done)

    def message(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        percent = 100.0 * self.done / self.total if self.total else 100.0
        tail = "done" if self.done >= self.total else f"ETA {format_duration(self.eta_s(now))}"
        return f"{self.label}: {self.done}/{self.total} ({percent:.0f}%), {format_duration(now - self.started)} elapsed, {tail}"
