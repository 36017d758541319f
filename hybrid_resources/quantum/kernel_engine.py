"""The quantum kernel engine: fidelity kernels k(a, b) = |<phi(a)|phi(b)>|^2.

Three paths (see docs/architecture.md, "The kernel engine"):

- **statevector** (``backend.is_exact``): each sample's state is simulated once, in chunks,
  then the Gram matrix is ``|A B^H|^2`` from blocked matrix products (real products for
  real-amplitude maps). A symmetric matrix computes only upper blocks and mirrors them.
  Never one circuit per pair.
- **compute-uncompute** (shots set, or a device without statevector such as
  ``braket.local.qubit``): one circuit U(a) U(b)^dagger per needed pair, reading P(|0...0>);
  upper triangle only for a symmetric matrix, diagonal = 1 without executing, submitted in
  batches with retries of transient faults.
- **shot-emulation** (``backend.shot_emulation``: a noiseless simulator with shots): the exact
  entries p from the statevector path, then each needed entry is drawn as Binomial(shots, p) /
  shots, which is exactly how a noiseless compute-uncompute circuit's all-zeros count is
  distributed. No circuit runs and nothing reaches the ledger; the emulated shots are reported.

With a :class:`~hybrid_resources.quantum.kernel_cache.KernelCache` only entries not cached under the
same (feature-map spec, backend) namespace are computed: the cache says once what it holds
(``lookup``), the engine computes the rest, and hands it back once (``store``). With a
:class:`~hybrid_resources.quantum.backends.SubmissionLedger`, planned device work is admitted
before anything is sent and every circuit the device runs is recorded.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import numpy as np
from dagster import get_dagster_logger

from hybrid_resources.lazy_modules import module_on_first_use
from hybrid_resources.quantum.backends import (
    BackendConfig,
    SubmissionLedger,
    call_with_retries,
    make_device,
)
from hybrid_resources.quantum.feature_maps import (
    FeatureMapSpec,
    apply_feature_map,
    is_real_map,
)
from hybrid_resources.quantum.kernel_cache import (
    CachedEntries,
    Index,
    KernelCache,
    KernelUpdate,
    StateLookup,
    as_slice,
    put_block,
    take_block,
)
from hybrid_resources.quantum.kernel_diagnostics import emulate_shots
from hybrid_resources.quantum.kernel_request import KernelRequest
from hybrid_resources.quantum.latency import ProgressETA
from hybrid_resources.quantum.simulator import simulate_states

qml = module_on_first_use("pennylane")


@dataclass(frozen=True)
class KernelStats:
    """What one kernel computation cost. ``entries_*`` count matrix entries (full matrix)."""

    n_rows: int
    n_cols: int
    method: str  # "statevector", "compute-uncompute" or "shot-emulation"
    device_name: str
    shots: int | None
    seed: int
    entries_computed: int
    entries_from_cache: int
    circuits_executed: int
    shots_executed: int
    wall_time_s: float
    retries: int = 0
    states_simulated: int = 0
    spec_hash: str = ""
    shots_emulated: int = 0  # shot-emulation: entries drawn x shots (no circuit ran, nothing was paid)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KernelResult:
    matrix: np.ndarray  # float64 (len(X), len(Y)); square symmetric, diagonal 1 when Y is None
    stats: KernelStats


def planned_circuits(n_rows: int, n_cols: int | None) -> int:
    """Circuits the shot path submits without cache: n(n-1)/2 when symmetric, else n_rows*n_cols."""
    if n_cols is None:
        return n_rows * (n_rows - 1) // 2
    return n_rows * n_cols


# ---------------------------------------------------------------------------------------
# Feature states
# ---------------------------------------------------------------------------------------

_STATE_CHUNK = 2048  # rows simulated at once: bounds temporaries to ~chunk * 2**n * 48 bytes


def feature_states(X: np.ndarray, spec: FeatureMapSpec, *, device_name: str = "default.qubit",
                   simulator: str = "numpy") -> np.ndarray:
    """Statevectors U(x)|0..0> of each row of X, each sample simulated once, batched.

    X: (N, n_qubits) real. Returns (N, 2**n_qubits) complex128, wire 0 most significant.
    ``simulator="numpy"`` (default) uses the engine's numpy simulation of the same gates
    (exact statevectors are device independent; tested equal to PennyLane);
    ``simulator="pennylane"`` runs the PennyLane template on ``device_name`` with parameter
    broadcasting and ``qml.state()``.
    """
    X = np.asarray(X, dtype=np.float64)
    if simulator == "numpy":
        return _states(X, spec).astype(np.complex128, copy=False)
    if simulator != "pennylane":
        raise ValueError(f"simulator must be 'numpy' or 'pennylane', got {simulator!r}")
    dev = qml.device(device_name, wires=spec.n_qubits)

    @qml.qnode(dev)
    def circuit(x):
        apply_feature_map(spec, x, range(spec.n_qubits))
        return qml.state()

    out = np.empty((X.shape[0], 2**spec.n_qubits), dtype=np.complex128)
    for start in range(0, X.shape[0], _STATE_CHUNK):
        chunk = X[start : start + _STATE_CHUNK]
        res = np.asarray(circuit(chunk))
        out[start : start + len(chunk)] = res.reshape(len(chunk), -1)
    return out


def _states(X: np.ndarray, spec: FeatureMapSpec) -> np.ndarray:
    """Chunked numpy simulation; float64 for real-amplitude maps, else complex128."""
    dtype = np.float64 if is_real_map(spec) else np.complex128
    out = np.empty((X.shape[0], 2**spec.n_qubits), dtype=dtype)
    for start in range(0, X.shape[0], _STATE_CHUNK):
        out[start : start + _STATE_CHUNK] = simulate_states(spec, X[start : start + _STATE_CHUNK])
    return out


# ---------------------------------------------------------------------------------------
# Exact Gram products
# ---------------------------------------------------------------------------------------


def _gram_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a b^H|^2 as float64 (len(a), len(b))."""
    if np.iscomplexobj(a):
        # |a b^H|^2 == |conj(a) b^T|^2: conjugate whichever side is smaller (a refresh pairs a
        # few new rows with every cached state).
        g = a.conj() @ b.T if a.shape[0] <= b.shape[0] else a @ b.T.conj()
        # |z|^2 = re^2 + im^2 without the sqrt of np.abs.
        return np.square(g.real) + np.square(g.imag)
    g = a @ b.T
    np.square(g, out=g)
    return g


def _gram_into(out: np.ndarray, rows: Index, cols: Index,
               A: np.ndarray, B: np.ndarray, block_size: int, symmetric: bool) -> None:
    """Write |A B^H|^2 into out[rows][:, cols] block by block.

    When ``symmetric`` (A is B and rows == cols) only blocks j >= i are computed and mirrored.
    Peak temporaries: ~block_size**2 * 32 bytes.
    """
    nA, nB = A.shape[0], B.shape[0]
    for i0 in range(0, nA, block_size):
        i1 = min(i0 + block_size, nA)
        j_start = i0 if symmetric else 0
        for j0 in range(j_start, nB, block_size):
            j1 = min(j0 + block_size, nB)
            g = _gram_block(A[i0:i1], B[j0:j1])
            if symmetric and j0 == i0:
                # BLAS does not return a bitwise-Hermitian a a^H: copy the upper triangle
                # down so the matrix is exactly symmetric.
                _mirror_upper(g)
            put_block(out, _part(rows, i0, i1), _part(cols, j0, j1), g)
            if symmetric and j0 != i0:
                put_block(out, _part(cols, j0, j1), _part(rows, i0, i1), g.T)


def _part(idx: Index, start: int, stop: int) -> Index:
    """Positions start..stop-1 of an index (a slice stays a slice)."""
    if isinstance(idx, slice):
        first = idx.start or 0
        return slice(first + start, first + stop)
    return idx[start:stop]


def _mirror_upper(g: np.ndarray, tile: int = 256) -> None:
    """Copy the strict upper triangle of square g onto the lower one, tile by tile (cache friendly)."""
    n = g.shape[0]
    for i0 in range(0, n, tile):
        i1 = min(i0 + tile, n)
        d = g[i0:i1, i0:i1]
        lower = np.tril_indices(i1 - i0, -1)
        d[lower] = d.T[lower]
        if i1 < n:
            g[i1:, i0:i1] = g[i0:i1, i1:].T


# ---------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------


def quantum_kernel(
    X: np.ndarray,
    Y: np.ndarray | None = None,
    *,
    spec: FeatureMapSpec,
    backend: BackendConfig = BackendConfig(),
    cache: KernelCache | None = None,
    x_keys: Sequence[str] | None = None,
    y_keys: Sequence[str] | None = None,
    block_size: int = 2048,
    ledger: SubmissionLedger | None = None,
    out: np.ndarray | None = None,
) -> KernelResult:
    """Fidelity kernel matrix between rows of X and rows of Y (Y=None: X with itself).

    X: (N, n_qubits), Y: (M, n_qubits) real, any range (radians). Returns a float64 (N, M)
    matrix in [0, 1]; for Y=None it is symmetric with an exact 1.0 diagonal.
    ``x_keys``/``y_keys``: per-row content hashes used by the cache (default: hash of the
    row's float64 bytes). ``block_size`` bounds Gram temporaries (~block_size**2 * 32 bytes).
    ``ledger``: on the compute-uncompute path, ``ledger.admit(circuits, shots)`` is called
    before anything is submitted (after cache hits are subtracted; raising from it aborts
    with nothing executed), and every circuit the device runs is recorded by it.
    ``out``: optional preallocated float64 (N, M) array (e.g. an ``np.memmap``) to write
    into, so huge matrices need not fit in RAM.
    With ``backend.shot_emulation`` each entry is a Binomial(shots, p) / shots draw from its
    exact value p, seeded by ``backend.seed`` and the inputs (the same request draws the same
    matrix); ``circuits_executed`` and ``shots_executed`` are 0 and the ledger is not called.
    """
    t0 = time.perf_counter()
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    request = KernelRequest.of(X, Y, spec=spec, backend=backend, keyed=cache is not None, x_keys=x_keys,
                               y_keys=y_keys)
    n_rows, n_cols = request.shape
    out = output_array(out, n_rows, n_cols)

    held = cache.lookup(request, out) if cache is not None else None
    if backend.is_exact:
        work, method = _exact_entries(request, out, held, block_size), "statevector"
    elif backend.shot_emulation:
        work, method = _emulated_entries(request, out, held, block_size), "shot-emulation"
    else:
        work, method = _shot_entries(request, out, held, ledger), "compute-uncompute"
    if request.symmetric:
        # k(x, x) = 1 by definition; the shot path never executes it.
        out[np.diag_indices(n_rows)] = 1.0
    if cache is not None:
        cache.store(held, work.update)
    from_cache = held.from_cache if held is not None else 0
    stats = KernelStats(
        n_rows=n_rows, n_cols=n_cols, method=method,
        device_name=backend.device_name, shots=backend.shots, seed=backend.seed,
        entries_computed=n_rows * n_cols - from_cache - (n_rows if request.symmetric else 0),
        entries_from_cache=from_cache, circuits_executed=work.circuits, shots_executed=work.shots,
        wall_time_s=time.perf_counter() - t0, retries=work.retries, states_simulated=work.states_simulated,
        spec_hash=spec.spec_hash, shots_emulated=work.drawn * (backend.shots or 0),
    )
    return KernelResult(matrix=out, stats=stats)


def output_array(out: np.ndarray | None, n_rows: int, n_cols: int) -> np.ndarray:
    """``out`` checked to be float64 (n_rows, n_cols), or a new such array when None."""
    if out is None:
        return np.empty((n_rows, n_cols), dtype=np.float64)
    if out.shape != (n_rows, n_cols) or out.dtype != np.float64:
        raise ValueError(f"out must be float64 {(n_rows, n_cols)}, got {out.dtype} {out.shape}")
    return out


@dataclass(frozen=True)
class _Work:
    """What one path computed: the update for the cache, and what it cost."""

    update: KernelUpdate
    states_simulated: int = 0
    circuits: int = 0
    shots: int = 0
    retries: int = 0
    drawn: int = 0  # entries drawn by shot emulation


def _plan(known: np.ndarray | None, n_rows: int, n_cols: int, symmetric: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rectangles (row indices, col indices) that cover every unknown entry.

    First rows with nothing known (new samples) against all columns; then the remaining
    rows with gaps against the columns with gaps (e.g. old rows vs new columns).
    ``known`` is updated to mark what the plan covers.
    """
    if known is None:
        return [(np.arange(n_rows), np.arange(n_cols))]
    plan = []
    fresh = np.flatnonzero(~known.any(axis=1)) if n_cols else np.arange(0)
    if fresh.size:
        plan.append((fresh, np.arange(n_cols)))
        known[fresh, :] = True
        if symmetric:
            known[:, fresh] = True
    rows = np.flatnonzero(~known.all(axis=1))
    if rows.size:
        cols = np.flatnonzero(~known[rows].all(axis=0))
        plan.append((rows, cols))
    return plan


# ---------------------------------------------------------------------------------------
# Exact path
# ---------------------------------------------------------------------------------------


def _exact_entries(request: KernelRequest, out: np.ndarray, held: CachedEntries | None, block_size: int) -> _Work:
    """Fill the entries ``held`` does not know (all without a cache) from exact statevectors."""
    n_rows, n_cols = request.shape
    spec, symmetric = request.spec, request.symmetric
    if held is None:
        # No cache: whole matrix, upper blocks only when symmetric.
        A = _states(request.X, spec)
        B = A if symmetric else _states(request.Y, spec)
        _gram_into(out, slice(0, n_rows), slice(0, n_cols), A, B, block_size, symmetric)
        return _Work(KernelUpdate(out), states_simulated=n_rows + (0 if symmetric else n_cols))

    plan = _plan(held.known.copy(), n_rows, n_cols, symmetric)
    if not plan:
        return _Work(KernelUpdate(out))
    if symmetric:
        # One state lookup for every index either side needs.
        need_rows = need_cols = _union(n_rows, *(r for r, _ in plan), *(c for _, c in plan))
        row_states = col_states = _states_of(held, request.X, need_rows, "rows")
        lookups = [row_states]
    else:
        need_rows, need_cols = _union(n_rows, *(r for r, _ in plan)), _union(n_cols, *(c for _, c in plan))
        row_states = _states_of(held, request.X, need_rows, "rows")
        col_states = _states_of(held, request.Y, need_cols, "cols")
        lookups = [row_states, col_states]
    for rows, cols in plan:
        A = _states_for(row_states.states, need_rows, rows)
        B = _states_for(col_states.states, need_cols, cols)
        rr, cc = as_slice(rows), as_slice(cols)
        _gram_into(out, rr, cc, A, B, block_size, symmetric=False)
        if symmetric:
            _mirror_rectangle(out, rows, cols, n_cols)
    simulated = sum(int(np.count_nonzero(~lookup.found)) for lookup in lookups)
    return _Work(KernelUpdate(out, blocks=plan, states=lookups), states_simulated=simulated)


def _states_of(held: CachedEntries, X: np.ndarray, idx: np.ndarray, side: str) -> StateLookup:
    """States for rows ``idx`` of X: from the cache, the rest simulated (the cache stores them later)."""
    dtype = np.float64 if is_real_map(held.request.spec) else np.complex128
    lookup = held.states(idx, side, dtype, 2**held.request.spec.n_qubits)
    missing = np.flatnonzero(~lookup.found)
    if missing.size:
        lookup.states[missing] = _states(X[idx[missing]], held.request.spec)
    return lookup


def _mirror_rectangle(out: np.ndarray, rows: np.ndarray, cols: np.ndarray, n_cols: int) -> None:
    """After computing out[rows][:, cols] of a symmetric matrix, copy it to out[cols][:, rows]
    so the matrix stays exactly symmetric."""
    rr, cc = as_slice(rows), as_slice(cols)
    put_block(out, cc, rr, take_block(out, rr, cc).T)
    both = rows[_mask(n_cols, cols)[rows]]
    if both.size > 1:
        # Entries computed twice (rows and cols overlap): keep the upper copy.
        sub = out[np.ix_(both, both)]
        iu = np.triu_indices(both.size, 1)
        sub[iu[1], iu[0]] = sub[iu]
        out[np.ix_(both, both)] = sub


def _mask(n: int, *indices: np.ndarray) -> np.ndarray:
    """bool (n,): True at every index in any of ``indices``."""
    mask = np.zeros(n, dtype=bool)
    for idx in indices:
        mask[idx] = True
    return mask


def _union(n: int, *indices: np.ndarray) -> np.ndarray:
    """Sorted unique indices in [0, n) found in any of ``indices`` (a mask: no sort)."""
    return np.flatnonzero(_mask(n, *indices))


def _states_for(states: np.ndarray, have: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Rows of ``states`` (row k holds sample ``have[k]``) for samples ``want``.

    ``have`` and ``want`` are sorted and unique with ``want`` a subset of ``have``, so equal
    sizes mean the same samples and ``states`` is returned without a copy.
    """
    return states if want.size == have.size else states[np.searchsorted(have, want)]


# ---------------------------------------------------------------------------------------
# Shot emulation
# ---------------------------------------------------------------------------------------


def _emulated_entries(request: KernelRequest, out: np.ndarray, held: CachedEntries | None, block_size: int) -> _Work:
    """Fill the entries ``held`` does not know with shot estimates drawn from their exact values."""
    # The exact path may recompute entries the cache already held (it covers gaps with
    # rectangles); those hold earlier draws, which must stay as they were.
    cached = out[held.known] if held is not None else None
    work = _exact_entries(request, out, held, block_size)
    if held is not None:
        out[held.known] = cached
    drawn = _draw_shots(out, None if held is None else ~held.known, request, block_size)
    return replace(work, drawn=drawn)


def _draw_shots(out: np.ndarray, todo: np.ndarray | None, request: KernelRequest, block_size: int) -> int:
    """Replace the exact entries marked in ``todo`` (all when None) by Binomial(shots, p) / shots
    draws, row block by row block (at most ~block_size**2 entries at once); for a symmetric
    matrix only entries above the diagonal are drawn, then mirrored. Returns the entries drawn."""
    n_rows, n_cols = out.shape
    rng = _emulation_rng(request)
    step = max(1, block_size**2 // max(n_cols, 1))
    drawn = 0
    for r0 in range(0, n_rows, step):
        r1 = min(r0 + step, n_rows)
        mask = np.ones((r1 - r0, n_cols), dtype=bool) if todo is None else todo[r0:r1]
        if request.symmetric:
            mask = mask & (np.arange(n_cols)[None, :] > np.arange(r0, r1)[:, None])
        rows, cols = np.nonzero(mask)
        rows += r0
        values = emulate_shots(out[rows, cols], request.backend.shots, rng, symmetric=False)
        out[rows, cols] = values
        if request.symmetric:
            out[cols, rows] = values
        drawn += values.size
    return drawn


def _emulation_rng(request: KernelRequest) -> np.random.Generator:
    """Seeded by the backend seed and the inputs' bytes: the same request draws the same matrix,
    and two requests on different inputs (train and test kernels) draw independently."""
    digest = hashlib.blake2b(np.ascontiguousarray(request.X).tobytes(), digest_size=8)
    if not request.symmetric:
        digest.update(np.ascontiguousarray(request.Y).tobytes())
    return np.random.default_rng([request.backend.seed, int.from_bytes(digest.digest(), "little")])


# ---------------------------------------------------------------------------------------
# Compute-uncompute (shot / hardware) path
# ---------------------------------------------------------------------------------------


def _pair_tape(spec: FeatureMapSpec, a: np.ndarray, b: np.ndarray, shots: int | None) -> qml.tape.QuantumScript:
    """U(a) then U(b)^dagger, measuring probabilities; P(|0..0>) = |<phi(b)|phi(a)>|^2."""
    wires = list(range(spec.n_qubits))
    with qml.queuing.AnnotatedQueue() as q:
        apply_feature_map(spec, a, wires)
        qml.adjoint(apply_feature_map)(spec, b, wires)
    return qml.tape.QuantumScript(q.queue, [qml.probs(wires=wires)], shots=shots)


def _batch_seed(seed: int, batch_index: int) -> int:
    # Seeding each batch separately makes results independent of thread scheduling.
    return int.from_bytes(hashlib.blake2b(f"{seed}:{batch_index}".encode(), digest_size=8).digest(), "little") >> 1


def _shot_entries(request: KernelRequest, out: np.ndarray, held: CachedEntries | None,
                  ledger: SubmissionLedger | None) -> _Work:
    """Fill the entries ``held`` does not know with one compute-uncompute circuit per pair
    (upper triangle only for a symmetric matrix), admitted by the ledger first."""
    n_rows, n_cols = request.shape
    todo = np.ones((n_rows, n_cols), dtype=bool) if held is None else ~held.known
    if request.symmetric:
        todo = np.triu(todo, k=1)
    pairs = np.argwhere(todo)
    if ledger is not None:
        ledger.admit(len(pairs), request.backend.shots or 0, n_qubits=request.spec.n_qubits)
    if len(pairs) == 0:
        return _Work(KernelUpdate(out))
    progress = held.record_progress if held is not None else None
    values, retries = _run_pairs(request, pairs, ledger, progress)
    out[pairs[:, 0], pairs[:, 1]] = values
    if request.symmetric:
        out[pairs[:, 1], pairs[:, 0]] = values
    circuits = len(pairs)
    work = dict(circuits=circuits, shots=circuits * (request.backend.shots or 0), retries=retries)
    if held is None:
        return _Work(KernelUpdate(out), **work)
    return _Work(KernelUpdate(out, blocks=_pair_blocks(held.known, pairs, request.symmetric)), **work)


def _pair_blocks(known: np.ndarray, pairs: np.ndarray, symmetric: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rectangles to store the new pair entries in: one when every entry of rows x cols is now
    known (always the case for a symmetric matrix after mirroring), else one per row."""
    now = known.copy()
    now[pairs[:, 0], pairs[:, 1]] = True
    if symmetric:
        now |= now.T
    rows, cols = np.unique(pairs[:, 0]), np.unique(pairs[:, 1])
    if now[np.ix_(rows, cols)].all():
        return [(rows, cols)]
    return [(np.array([i]), pairs[pairs[:, 0] == i, 1]) for i in rows]


def _run_pairs(request: KernelRequest, pairs: np.ndarray, ledger: SubmissionLedger | None,
               progress) -> tuple[np.ndarray, int]:
    """Execute the compute-uncompute circuits of (row, col) index ``pairs``.

    Circuits go to the device ``backend.circuits_per_call`` at a time, each call retried on
    transient faults; ``progress(pairs, values)`` (optional) is called as each call returns.
    Done/total and an ETA are logged at most every 10 s (in a Dagster step, to the run's log).
    Returns (values (len(pairs),) clipped to [0, 1], retries).
    """
    backend, spec = request.backend, request.spec
    values = np.empty(len(pairs), dtype=np.float64)
    eta = ProgressETA(len(pairs), get_dagster_logger("hybrid_quantum.kernel").info, every_s=10.0,
                      label=f"{spec.name} pair circuits on {backend.device_name}")
    eta_lock = threading.Lock()  # calls finish on several threads with max_parallel
    size = backend.circuits_per_call
    calls = [pairs[s : s + size] for s in range(0, len(pairs), size)]
    retries = [0] * len(calls)
    is_braket = backend.device_name.startswith("braket.")
    shared_dev = make_device(backend, spec.n_qubits, ledger=ledger) if is_braket and calls else None

    def run_call(ci: int) -> np.ndarray:
        batch = calls[ci]
        tapes = [_pair_tape(spec, request.X[i], request.Y[j], backend.shots) for i, j in batch]
        dev = shared_dev if shared_dev is not None else make_device(
            backend, spec.n_qubits, seed=_batch_seed(backend.seed, ci), ledger=ledger)

        def submit():
            return qml.execute(tapes, dev, diff_method=None)

        def count(attempt, exc, delay):
            retries[ci] += 1

        res = call_with_retries(submit, max_retries=backend.max_retries, backoff_s=backend.backoff_s,
                                seed=backend.seed + ci, on_retry=count, on_failure=ledger.failed if ledger else None)
        result = np.array([float(np.asarray(r)[0]) for r in res])
        if progress is not None:
            progress(batch, np.clip(result, 0.0, 1.0))
        with eta_lock:
            eta.advance(len(batch))
        return result

    offsets = np.cumsum([0] + [len(b) for b in calls])
    if backend.max_parallel > 1 and not is_braket and len(calls) > 1:
        # Braket parallelism lives inside the plugin (parallel=True task batches).
        with ThreadPoolExecutor(max_workers=backend.max_parallel) as pool:
            for ci, vals in enumerate(pool.map(run_call, range(len(calls)))):
                values[offsets[ci] : offsets[ci + 1]] = vals
    else:
        for ci in range(len(calls)):
            values[offsets[ci] : offsets[ci + 1]] = run_call(ci)
    return np.clip(values, 0.0, 1.0), sum(retries)
