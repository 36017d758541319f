"""The quantum kernel engine: fidelity kernels k(a, b) = |<phi(a)|phi(b)>|^2.

Two paths (see DESIGN.md "The kernel engine"):

- **statevector** (``backend.is_exact``): each sample's state is simulated once, in chunks,
  then the Gram matrix is ``|A B^H|^2`` from blocked matrix products (real products for
  real-amplitude maps). A symmetric matrix computes only upper blocks and mirrors them.
  Never one circuit per pair.
- **compute-uncompute** (shots set, or a device without statevector such as
  ``braket.local.qubit``): one circuit U(a) U(b)^dagger per needed pair, reading P(|0...0>);
  upper triangle only for a symmetric matrix, diagonal = 1 without executing, submitted in
  batches with retries of transient faults.

With a :class:`~hybrid_resources.quantum.kernel_cache.KernelCache` only entries not cached under the
same (feature-map spec, backend) namespace are computed.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pennylane as qml

from hybrid_resources.quantum.backends import BackendConfig, call_with_retries, make_device
from hybrid_resources.quantum.feature_maps import FeatureMapSpec, apply_feature_map, is_real_map
from hybrid_resources.quantum.simulator import simulate_states
from hybrid_resources.quantum.kernel_cache import Index, KernelCache, as_slice, put_block, take_block


@dataclass(frozen=True)
class KernelStats:
    """What one kernel computation cost. ``entries_*`` count matrix entries (full matrix)."""

    n_rows: int
    n_cols: int
    method: str  # "statevector" or "compute-uncompute"
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


def sample_keys(X: np.ndarray) -> list[str]:
    """Content hash per row: blake2b-128 hex of the row's float64 bytes."""
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    return [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in X]


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


def _run_pairs(spec: FeatureMapSpec, backend: BackendConfig, Xr: np.ndarray, Xc: np.ndarray,
               pairs: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """Execute compute-uncompute circuits for (row, col) index pairs.

    Returns (values (len(pairs),), circuits_executed, shots_executed, retries).
    """
    values = np.empty(len(pairs), dtype=np.float64)
    batches = [pairs[s : s + backend.batch_size] for s in range(0, len(pairs), backend.batch_size)]
    retries = [0] * len(batches)
    is_braket = backend.device_name.startswith("braket.")
    shared_dev = make_device(backend, spec.n_qubits) if is_braket else None

    def run_batch(bi: int) -> np.ndarray:
        batch = batches[bi]
        tapes = [_pair_tape(spec, Xr[i], Xc[j], backend.shots) for i, j in batch]
        dev = shared_dev if shared_dev is not None else make_device(
            backend, spec.n_qubits, seed=_batch_seed(backend.seed, bi))

        def submit():
            return qml.execute(tapes, dev, diff_method=None)

        def count(attempt, exc, delay):
            retries[bi] += 1

        res = call_with_retries(submit, max_retries=backend.max_retries, backoff_s=backend.backoff_s,
                                seed=backend.seed + bi, on_retry=count)
        return np.array([float(np.asarray(r)[0]) for r in res])

    offsets = np.cumsum([0] + [len(b) for b in batches])
    if backend.max_parallel > 1 and not is_braket and len(batches) > 1:
        # Braket parallelism lives inside the plugin (parallel=True task batches).
        with ThreadPoolExecutor(max_workers=backend.max_parallel) as pool:
            for bi, vals in enumerate(pool.map(run_batch, range(len(batches)))):
                values[offsets[bi] : offsets[bi + 1]] = vals
    else:
        for bi in range(len(batches)):
            values[offsets[bi] : offsets[bi + 1]] = run_batch(bi)
    n = len(pairs)
    return np.clip(values, 0.0, 1.0), n, n * (backend.shots or 0), sum(retries)


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
    before_submit: Callable[[int, int], None] | None = None,
    out: np.ndarray | None = None,
) -> KernelResult:
    """Fidelity kernel matrix between rows of X and rows of Y (Y=None: X with itself).

    X: (N, n_qubits), Y: (M, n_qubits) real, any range (radians). Returns a float64 (N, M)
    matrix in [0, 1]; for Y=None it is symmetric with an exact 1.0 diagonal.
    ``x_keys``/``y_keys``: per-row content hashes used by the cache (default: hash of the
    row's float64 bytes). ``block_size`` bounds Gram temporaries (~block_size**2 * 32 bytes).
    ``before_submit(planned_circuits, planned_shots)`` is called on the compute-uncompute path
    before anything is submitted (after cache hits are subtracted); raising from it aborts
    with nothing executed. ``out``: optional preallocated float64 (N, M) array (e.g. an
    ``np.memmap``) to write into, so huge matrices need not fit in RAM.
    """
    t0 = time.perf_counter()
    X = np.asarray(X, dtype=np.float64)
    symmetric = Y is None
    Yv = X if symmetric else np.asarray(Y, dtype=np.float64)
    for name, arr in (("X", X), ("Y", Yv)):
        if arr.ndim != 2 or arr.shape[1] != spec.n_qubits:
            raise ValueError(f"{name} must be (N, {spec.n_qubits}), got {arr.shape}")
    nR, nC = X.shape[0], Yv.shape[0]
    if block_size < 1:
        raise ValueError("block_size must be >= 1")

    if out is None:
        out = np.empty((nR, nC), dtype=np.float64)
    elif out.shape != (nR, nC) or out.dtype != np.float64:
        raise ValueError(f"out must be float64 {(nR, nC)}, got {out.dtype} {out.shape}")

    exact = backend.is_exact
    method = "statevector" if exact else "compute-uncompute"
    stats_kw: dict[str, Any] = dict(circuits_executed=0, shots_executed=0, retries=0, states_simulated=0)

    ns = None
    known = None
    from_cache = 0
    if cache is not None:
        rkeys = list(x_keys) if x_keys is not None else sample_keys(X)
        if symmetric:
            ckeys = rkeys
        else:
            ckeys = list(y_keys) if y_keys is not None else sample_keys(Yv)
        if len(rkeys) != nR or len(ckeys) != nC:
            raise ValueError("x_keys/y_keys must have one key per row")
        ns = cache.namespace(spec, backend)
        known = np.zeros((nR, nC), dtype=bool)
        fill_report: dict[str, Any] = {}
        cache.fill(ns, rkeys, ckeys, out, known, report=fill_report)
        # The diagonal of a symmetric request is 1 by definition (set at the end) and not
        # counted as cached; rows with nothing cached are the new rows.
        from_cache = int(np.count_nonzero(known)) - (int(np.trace(known)) if symmetric else 0)

    if exact:
        _exact_path(X, Yv, spec, out, known, symmetric, block_size, cache, ns,
                    rkeys if cache is not None else None, ckeys if cache is not None else None, stats_kw)
    else:
        _shot_path(X, Yv, spec, backend, out, known, symmetric, before_submit, cache, ns,
                   rkeys if cache is not None else None, ckeys if cache is not None else None, stats_kw)

    if symmetric:
        # k(x, x) = 1 by definition; the shot path never executes it.
        out[np.diag_indices(nR)] = 1.0
    if cache is not None:
        cache.compact_panels(ns, rkeys, ckeys, out, fill_report["panels"], symmetric=symmetric)
    total = nR * nC
    stats = KernelStats(
        n_rows=nR, n_cols=nC, method=method, device_name=backend.device_name, shots=backend.shots,
        seed=backend.seed, entries_computed=total - from_cache - (nR if symmetric else 0),
        entries_from_cache=from_cache, wall_time_s=time.perf_counter() - t0, spec_hash=spec.spec_hash,
        **stats_kw,
    )
    return KernelResult(matrix=out, stats=stats)


def _plan(known: np.ndarray | None, nR: int, nC: int, symmetric: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rectangles (row indices, col indices) that cover every unknown entry.

    First rows with nothing known (new samples) against all columns; then the remaining
    rows with gaps against the columns with gaps (e.g. old rows vs new columns).
    """
    if known is None:
        return [(np.arange(nR), np.arange(nC))]
    plan = []
    fresh = np.flatnonzero(~known.any(axis=1)) if nC else np.arange(0)
    if fresh.size:
        plan.append((fresh, np.arange(nC)))
        known[fresh, :] = True
        if symmetric:
            known[:, fresh] = True
    rows = np.flatnonzero(~known.all(axis=1))
    if rows.size:
        cols = np.flatnonzero(~known[rows].all(axis=0))
        plan.append((rows, cols))
    return plan


def _exact_path(X, Y, spec, out, known, symmetric, block_size, cache, ns, rkeys, ckeys, stats_kw) -> None:
    nR, nC = X.shape[0], Y.shape[0]
    if known is None:
        # No cache: whole matrix, upper blocks only when symmetric.
        A = _states(X, spec)
        B = A if symmetric else _states(Y, spec)
        stats_kw["states_simulated"] = nR + (0 if symmetric else nC)
        _gram_into(out, slice(0, nR), slice(0, nC), A, B, block_size, symmetric)
        return

    plan = _plan(known, nR, nC, symmetric)
    if not plan:
        return
    if symmetric:
        # One state lookup for every index either side needs.
        need_r = need_c = _union(nR, *(r for r, _ in plan), *(c for _, c in plan))
        r_states, n_sim_r = _cached_states(X, rkeys, need_r, spec, cache, ns)
        c_states, n_sim_c = r_states, 0
    else:
        need_r, need_c = _union(nR, *(r for r, _ in plan)), _union(nC, *(c for _, c in plan))
        r_states, n_sim_r = _cached_states(X, rkeys, need_r, spec, cache, ns)
        c_states, n_sim_c = _cached_states(Y, ckeys, need_c, spec, cache, ns)
    stats_kw["states_simulated"] = n_sim_r + n_sim_c
    for rows, cols in plan:
        A = _states_for(r_states, need_r, rows)
        B = _states_for(c_states, need_c, cols)
        rr, cc = as_slice(rows), as_slice(cols)
        _gram_into(out, rr, cc, A, B, block_size, symmetric=False)
        if symmetric:
            # Mirror so the matrix stays exactly symmetric.
            put_block(out, cc, rr, take_block(out, rr, cc).T)
            both = rows[_mask(nC, cols)[rows]]
            if both.size > 1:
                # Entries computed twice (rows and cols overlap): keep the upper copy.
                sub = out[np.ix_(both, both)]
                iu = np.triu_indices(both.size, 1)
                sub[iu[1], iu[0]] = sub[iu]
                out[np.ix_(both, both)] = sub
        cache.store_panel(ns, [rkeys[i] for i in rows], [ckeys[j] for j in cols], take_block(out, rr, cc))


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


def _cached_states(X, keys, idx, spec, cache, ns) -> tuple[np.ndarray, int]:
    """States for rows ``idx`` of X: from the cache, else simulated (and stored)."""
    dtype = np.float64 if is_real_map(spec) else np.complex128
    states = np.empty((idx.size, 2**spec.n_qubits), dtype=dtype)
    wanted = [keys[i] for i in idx]
    report: dict[str, Any] = {}
    found = cache.load_states(ns, wanted, states, report)
    missing = np.flatnonzero(~found)
    if missing.size:
        sim = _states(X[idx[missing]], spec)
        states[missing] = sim
        cache.store_states(ns, [wanted[i] for i in missing], sim)
    cache.compact_states(ns, wanted, states, report["files"])
    return states, int(missing.size)


def _shot_path(X, Y, spec, backend, out, known, symmetric, before_submit, cache, ns, rkeys, ckeys,
               stats_kw) -> None:
    nR, nC = X.shape[0], Y.shape[0]
    if known is None:
        if symmetric:
            pairs = np.argwhere(np.triu(np.ones((nR, nR), dtype=bool), k=1))
        else:
            pairs = np.argwhere(np.ones((nR, nC), dtype=bool))
    else:
        todo = ~known
        if symmetric:
            todo = np.triu(todo, k=1)
        pairs = np.argwhere(todo)
    n_circ = int(len(pairs))
    if before_submit is not None:
        before_submit(n_circ, n_circ * (backend.shots or 0))
    if n_circ == 0:
        return
    values, circuits, shots, retries = _run_pairs(spec, backend, X, Y, pairs)
    out[pairs[:, 0], pairs[:, 1]] = values
    if symmetric:
        out[pairs[:, 1], pairs[:, 0]] = values
    stats_kw.update(circuits_executed=circuits, shots_executed=shots, retries=retries)
    if cache is not None:
        # Store the new entries as one rectangle when every entry of it is now known
        # (always the case for a symmetric matrix after mirroring), else one panel per row.
        now = known.copy()
        now[pairs[:, 0], pairs[:, 1]] = True
        if symmetric:
            now |= now.T
        rows = np.unique(pairs[:, 0])
        cols = np.unique(pairs[:, 1])
        if now[np.ix_(rows, cols)].all():
            cache.store_panel(ns, [rkeys[i] for i in rows], [ckeys[j] for j in cols], out[np.ix_(rows, cols)])
        else:
            for i in rows:
                cs = pairs[pairs[:, 0] == i, 1]
                cache.store_panel(ns, [rkeys[i]], [ckeys[j] for j in cs], out[i, cs][None, :])
