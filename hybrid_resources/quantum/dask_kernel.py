"""Exact kernel matrices on a Dask cluster, streamed to disk block by block.

The same computation as the kernel engine's statevector path
(:mod:`hybrid_resources.quantum.kernel_engine`), with its own functions: each chunk of rows
is simulated once (``_states``) as one task, each Gram block ``|A B^H|^2`` (``_gram_block``) is
one task that depends on two state chunks, and a symmetric matrix computes only the blocks on and
above the diagonal. The client writes each finished block into ``out`` as it arrives, typically
a ``.npy`` memmap (:func:`~hybrid_resources.data.big_arrays.open_kernel_file`), so N is bounded by disk, not RAM.

Memory: ``block_budget_bytes`` bounds one block task (its two state chunks, the complex
product and the result; :func:`block_rows_for`), and at most two blocks per worker thread are in
flight, so the client holds at most that many finished blocks at once. The state chunks of all
rows stay on the workers until the matrix is done: N * 2**n_qubits * 16 bytes across the cluster
(82 MB for 20,000 rows of 8 qubits).

No kernel cache here: incremental refreshes stay on the single-process engine; this path is for
full recomputes at scale (exact simulators only; shot circuits are the device's batches).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from hybrid_resources.data.big_arrays import release, row_blocks
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.feature_maps import FeatureMapSpec, is_real_map
from hybrid_resources.quantum.kernel_engine import (
    KernelResult,
    KernelStats,
    _gram_block,
    _mirror_upper,
    _states,
    output_array,
)
from hybrid_resources.quantum.kernel_request import KernelRequest

if TYPE_CHECKING:  # distributed is imported where a client is used (see hybrid_resources.compute)
    from distributed import Client, Future

DEFAULT_BLOCK_BUDGET = 256 * 2**20  # bytes per block task


def block_rows_for(budget_bytes: int, spec: FeatureMapSpec) -> int:
    """Rows b of the largest square block whose task fits ``budget_bytes``.

    A task holds two state chunks (2 * b * 2**n * s bytes, s = 8 for real-amplitude maps, 16
    otherwise) and about b^2 * 2s bytes of Gram temporaries (the product, its squared modulus as
    float64, the result sent back). Raises when not even one row fits.
    """
    s = 8 if is_real_map(spec) else 16
    per_entry, per_row = 2 * s, 2 * s * 2**spec.n_qubits
    if budget_bytes < per_entry + per_row:
        raise ValueError(f"block budget of {budget_bytes} bytes is below one row ({per_entry + per_row} bytes)")
    # Largest b with per_entry * b^2 + per_row * b <= budget.
    return int((-per_row + math.sqrt(per_row**2 + 4 * per_entry * budget_bytes)) // (2 * per_entry))


def _gram_task(a: np.ndarray, b: np.ndarray, diagonal: bool) -> np.ndarray:
    """One Gram block; a block on the diagonal of a symmetric matrix is made exactly symmetric."""
    g = _gram_block(a, b)
    if diagonal:
        _mirror_upper(g)
    return g


def dask_quantum_kernel(X: np.ndarray, Y: np.ndarray | None = None, *, spec: FeatureMapSpec, client: Client,
                        backend: BackendConfig = BackendConfig(), out: np.ndarray | None = None,
                        block_budget_bytes: int = DEFAULT_BLOCK_BUDGET) -> KernelResult:
    """Exact fidelity kernel of rows of X against rows of Y (Y=None: X with itself), computed as
    Dask tasks on ``client``'s cluster and written block by block into ``out``.

    Same contract as :func:`~hybrid_resources.quantum.kernel_engine.quantum_kernel` on an exact
    backend: float64 (N, M) in [0, 1], symmetric with an exact 1.0 diagonal for Y=None, equal to
    the single-process engine to rounding (~1e-15). ``out``: a float64 (N, M) array to fill, e.g.
    from :func:`~hybrid_resources.data.big_arrays.open_kernel_file`; default a new in-memory array.
    """
    t0 = time.perf_counter()
    if not backend.is_exact:
        raise ValueError(f"the Dask path computes exact statevector kernels; {backend.device_name} with shots="
                         f"{backend.shots} runs circuits: use quantum_kernel")
    request = KernelRequest.of(X, Y, spec=spec, backend=backend)
    n_rows, n_cols = request.shape
    out = output_array(out, n_rows, n_cols)
    size = block_rows_for(block_budget_bytes, spec)
    row_chunks = list(row_blocks(n_rows, size))
    col_chunks = row_chunks if request.symmetric else list(row_blocks(n_cols, size))
    row_states = _submit_states(client, request.X, row_chunks, spec)
    col_states = row_states if request.symmetric else _submit_states(client, request.Y, col_chunks, spec)
    for (i, j), block in _gram_blocks(client, row_states, col_states, request.symmetric):
        out[row_chunks[i], col_chunks[j]] = block
        if request.symmetric and i != j:
            out[col_chunks[j], row_chunks[i]] = block.T
        release(out)  # a memmap's written pages go to the page cache, not this process's memory
    if request.symmetric:
        out[np.diag_indices(n_rows)] = 1.0
    if isinstance(out, np.memmap):
        out.flush()
    stats = KernelStats(
        n_rows=n_rows, n_cols=n_cols, method="statevector", device_name=backend.device_name, shots=None,
        seed=backend.seed, entries_computed=n_rows * n_cols - (n_rows if request.symmetric else 0),
        entries_from_cache=0, circuits_executed=0, shots_executed=0, wall_time_s=time.perf_counter() - t0,
        states_simulated=n_rows + (0 if request.symmetric else n_cols), spec_hash=spec.spec_hash,
    )
    return KernelResult(matrix=out, stats=stats)


def _submit_states(client: Client, X: np.ndarray, chunks: list[slice], spec: FeatureMapSpec) -> list[Future]:
    """One task per chunk of rows: its statevectors, kept on the worker for the Gram tasks."""
    # pure=False: keys of our own, so nothing is shared with (or released under) another client.
    return [client.submit(_states, X[chunk], spec, pure=False) for chunk in chunks]


def _gram_blocks(client: Client, row_states: list[Future], col_states: list[Future],
                 symmetric: bool) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    """((i, j), |A_i B_j^H|^2) for every block (j >= i only when symmetric), in the order the
    cluster finishes them. At most two block tasks per worker thread are submitted ahead, so
    finished blocks never pile up in worker or client memory faster than they are written."""
    from distributed import as_completed

    todo = iter([(i, j) for i in range(len(row_states)) for j in range(len(col_states)) if not symmetric or j >= i])
    pending, where = as_completed(), {}

    def submit_next() -> None:
        block = next(todo, None)
        if block is not None:
            i, j = block
            future = client.submit(_gram_task, row_states[i], col_states[j], symmetric and i == j, pure=False)
            where[future.key] = block
            pending.add(future)

    threads = sum(int(w["nthreads"]) for w in client.scheduler_info()["workers"].values())
    for _ in range(max(2 * threads, 1)):
        submit_next()
    for future in pending:
        result = future.result()
        future.release()
        yield where.pop(future.key), result
        submit_next()


@dataclass
class DaskKernel:
    """:func:`dask_quantum_kernel` as a kernel function ``kernel(A, B=None)`` (for
    :func:`~hybrid_resources.quantum.nystrom.fit_nystrom`, whose K_nm row blocks then run on the
    cluster); each call's stats are kept in ``stats``."""

    spec: FeatureMapSpec
    client: Client
    backend: BackendConfig = BackendConfig()
    block_budget_bytes: int = DEFAULT_BLOCK_BUDGET

    def __post_init__(self) -> None:
        self.stats: list[KernelStats] = []

    def __call__(self, A: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
        result = dask_quantum_kernel(A, B, spec=self.spec, client=self.client, backend=self.backend,
                                     block_budget_bytes=self.block_budget_bytes)
        self.stats.append(result.stats)
        return result.matrix

    def describe(self) -> dict[str, Any]:
        return {"kind": "quantum", "spec": self.spec.to_dict(), "backend": self.backend.cache_key()}
