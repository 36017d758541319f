"""Gates that several slices share: the result type, the kernel's health and the circuit's ceilings.

Each gate is a plain function that returns a :class:`GateResult` with the figures behind its verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hybrid_resources.data.big_arrays import iter_row_blocks

__all__ = ["GateResult", "circuit_ceilings", "kernel_health"]


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    message: str
    figures: dict[str, Any] = field(default_factory=dict)
    # What a clock measured (a latency): it differs run to run, so people see it with the message
    # (``text``), but an artifact keeps only ``to_dict()``, and the same inputs keep the same data version.
    measured: dict[str, Any] = field(default_factory=dict)
    reading: str = ""

    @property
    def text(self) -> str:
        """The message with this run's reading, for people (the check, the metadata, the demo)."""
        return f"{self.message}, measured {self.reading}" if self.reading else self.message

    def to_dict(self) -> dict[str, Any]:
        """The gate as content: its verdict, message and figures, without the run's measurements."""
        return {"name": self.name, "passed": self.passed, "message": self.message, "figures": self.figures}


def kernel_health(matrix: np.ndarray, *, shots: int | None, symmetry_tolerance: float, psd_tolerance: float,
                  psd_shot_factor: float, square: bool) -> GateResult:
    """Symmetric, unit diagonal (within shot tolerance), PSD within tolerance; entries in [0, 1].

    For a rectangular (test x train) kernel only the entry range is checked, in row blocks (a
    memory-mapped kernel stays on disk).
    """
    in_range = all(bool(np.all((block >= -1e-12) & (block <= 1 + 1e-12))) for _, block in iter_row_blocks(matrix))
    figures: dict[str, Any] = {"shape": list(matrix.shape), "entries_in_unit_interval": in_range}
    problems = [] if in_range else ["entries outside [0, 1]"]
    if square:
        n = matrix.shape[0]
        asymmetry = float(np.max(np.abs(matrix - matrix.T))) if n else 0.0
        diagonal_error = float(np.max(np.abs(np.diag(matrix) - 1.0))) if n else 0.0
        diagonal_tolerance = 1e-9 if shots is None else 3.0 / math.sqrt(shots)
        tolerance = psd_tolerance + (psd_shot_factor * math.sqrt(n / shots) if shots else 0.0)
        min_eigenvalue = float(np.linalg.eigvalsh((matrix + matrix.T) / 2)[0]) if n else 0.0
        figures |= {"max_asymmetry": asymmetry, "max_diagonal_error": diagonal_error,
                    "min_eigenvalue": min_eigenvalue, "psd_tolerance": tolerance}
        if asymmetry > symmetry_tolerance:
            problems.append(f"asymmetric by {asymmetry:.3g} > {symmetry_tolerance:g}")
        if diagonal_error > diagonal_tolerance:
            problems.append(f"diagonal off 1 by {diagonal_error:.3g} > {diagonal_tolerance:.3g}")
        if min_eigenvalue < -tolerance:
            problems.append(f"not PSD: smallest eigenvalue {min_eigenvalue:.3g} < -{tolerance:.3g}")
    message = "well-formed" if not problems else "; ".join(problems)
    return GateResult("kernel_well_formed", not problems, message, figures)


def circuit_ceilings(resources: dict[str, Any], *, max_width: int, max_depth: int,
                     max_two_qubit_gates: int) -> GateResult:
    """Width, depth and two-qubit gate count (after decomposition) under the configured ceilings."""
    limits = {"width": max_width, "depth": max_depth, "two_qubit_gates": max_two_qubit_gates}
    over = [f"{name} {resources[name]} > {limit}" for name, limit in limits.items() if resources[name] > limit]
    figures = {name: resources[name] for name in limits} | {f"max_{name}": limit for name, limit in limits.items()}
    return GateResult("circuit_ceilings", not over, "within ceilings" if not over else "; ".join(over), figures)
