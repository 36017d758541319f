"""One entry point for the kernel families a circuit artifact can name.

- **fidelity** (the default): k(x, x') = |<phi(x)|phi(x')>|^2 of a feature map,
  :mod:`hybrid_resources.quantum.kernel_engine`; a stored spec is a feature-map dict;
- **projected**: k(x, x') = exp(-gamma sum_q ||rho_q(x) - rho_q(x')||_F^2),
  :mod:`hybrid_resources.quantum.projected_kernel`; a stored spec has ``"family": "projected"``.

Assets, gates, scoring and the hardware run call :func:`compute_kernel` with the spec
:func:`kernel_spec` reads back from a circuit artifact, so switching family is configuration
(``kernel_tuning``'s ``kernel``), not code.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Union

import numpy as np

from hybrid_resources.data.big_arrays import release, row_blocks
from hybrid_resources.quantum import kernel_engine, projected_kernel
from hybrid_resources.quantum.backends import BackendConfig, SubmissionLedger
from hybrid_resources.quantum.dask_kernel import dask_quantum_kernel
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.kernel_engine import KernelResult
from hybrid_resources.quantum.planning import route_circuits
from hybrid_resources.quantum.projected_kernel import ProjectedKernelSpec

if TYPE_CHECKING:
    from distributed import Client

KernelSpec = Union[FeatureMapSpec, ProjectedKernelSpec]
FAMILIES = ("fidelity", "projected")


def kernel_spec(d: dict[str, Any]) -> KernelSpec:
    """The spec a stored dict describes: a feature map, or ``"family": "projected"``. Stored
    versions are pinned: a spec of an older version than this code computes is refused."""
    if d.get("family") == projected_kernel.FAMILY:
        return ProjectedKernelSpec.from_dict(d)
    return FeatureMapSpec.from_dict(d)


def family_of(spec: KernelSpec) -> str:
    return "projected" if isinstance(spec, ProjectedKernelSpec) else "fidelity"


def circuit_version(spec: KernelSpec) -> str:
    """``iqp@1.0.0`` for a fidelity kernel, ``projected@1.0.0+iqp@1.0.0`` for a projected one."""
    if isinstance(spec, ProjectedKernelSpec):
        return spec.code_version
    return f"{spec.name}@{spec.resolved_version}"


def planned_circuits(spec: KernelSpec, n_rows: int, n_cols: int | None) -> int:
    """Circuits a shot device runs for one (n_rows, n_cols) kernel request (n_cols None:
    symmetric) with nothing cached: the pairs for the fidelity kernel, 3 per row and column
    for the projected kernel."""
    if isinstance(spec, ProjectedKernelSpec):
        return projected_kernel.planned_circuits(n_rows, n_cols)
    return kernel_engine.planned_circuits(n_rows, n_cols)


def run_circuits(spec: KernelSpec, n_train: int, n_test: int, landmarks: int | None = None) -> int:
    """Circuits the train and test kernel assets run together on a shot device, sharing one
    cache: the planner's route for the family and path (:func:`~hybrid_resources.quantum.planning.
    route_circuits`): projected (3 per train and test row, whatever the path: landmarks are train
    rows), Nyström (``landmarks`` given) or pairwise."""
    route = "projected" if isinstance(spec, ProjectedKernelSpec) else "nystrom" if landmarks else "pairwise"
    return route_circuits(route, n_train, n_test, landmarks or 0)


def compute_kernel(X: np.ndarray, Y: np.ndarray | None = None, *, spec: KernelSpec,
                   backend: BackendConfig = BackendConfig(), cache: KernelCache | None = None,
                   ledger: SubmissionLedger | None = None, out: np.ndarray | None = None,
                   on_call: Callable[[int], None] | None = None) -> KernelResult:
    """Kernel matrix (N, M) between rows of X (N, n_qubits) and Y (M, n_qubits), Y None: X with
    itself, of either family, on ``backend``'s path, admitted and recorded by ``ledger``.
    ``out`` (a preallocated, e.g. memory-mapped, array) is used by the fidelity engine only."""
    if isinstance(spec, ProjectedKernelSpec):
        result = projected_kernel.projected_kernel(X, Y, spec=spec, backend=backend, ledger=ledger,
                                                   on_call=on_call, cache=cache)
        if out is not None:
            out[...] = result.matrix
        return result
    return kernel_engine.quantum_kernel(X, Y, spec=spec, backend=backend, cache=cache, ledger=ledger, out=out)


def streamed_kernel(X: np.ndarray, Y: np.ndarray, *, spec: KernelSpec, out: np.ndarray, block_rows: int,
                    backend: BackendConfig = BackendConfig(), client: "Client | None" = None) -> KernelResult:
    """K(X, Y) for many rows X (N, d) against few rows Y (M, d), e.g. the Nyström landmarks,
    written into ``out`` (float64 (N, M), typically a memmap from
    :func:`~hybrid_resources.data.big_arrays.scratch_array`) one block of ``block_rows`` rows at a
    time, the map's pages given back after each block: resident memory is about one block,
    whatever N is.

    Exact (statevector) backends only: N rows of circuits is what the planner's routes are for.
    No entry cache: a refresh recomputes the blocks (the landmarks' own kernel and the scoring of
    new rows still use it). With a Dask ``client``, a fidelity kernel's blocks run as tasks on its
    cluster (:func:`~hybrid_resources.quantum.dask_kernel.dask_quantum_kernel`); equal to the
    local blocks to rounding. Stats: one call's, with rows, entries, states and wall time summed.
    """
    if not backend.is_exact:
        raise ValueError(f"streamed kernels run on exact simulators; {backend.device_name} with shots="
                         f"{backend.shots} runs circuits: plan a route (hybrid-plan) instead")
    if client is not None and isinstance(spec, FeatureMapSpec):
        return dask_quantum_kernel(X, Y, spec=spec, client=client, backend=backend, out=out)
    started, calls = time.perf_counter(), []
    for rows in row_blocks(len(X), block_rows):
        calls.append(compute_kernel(X[rows], Y, spec=spec, backend=backend, out=out[rows]).stats)
        release(out)
    first = calls[0] if calls else compute_kernel(X, Y, spec=spec, backend=backend, out=out).stats  # no rows
    stats = replace(first, n_rows=len(X), entries_computed=sum(c.entries_computed for c in calls),
                    states_simulated=sum(c.states_simulated for c in calls), wall_time_s=time.perf_counter() - started)
    return KernelResult(matrix=out, stats=stats)
