"""Kernel engine benchmark (``make bench``; not part of the tests).

Compares, on the same inputs (IQP map, reps=2, linear entanglement, x ~ U(-pi, pi)):

- ``engine``: hybrid_resources.quantum.kernel_engine.quantum_kernel, exact statevector path
- ``numpy-ref``: a plain numpy reference: gate-by-gate statevector simulation, then
  ``|S S^H|^2`` in row chunks (full matrix, no symmetry tricks)
- ``pl-default`` / ``pl-lightning``: PennyLane ``qml.kernels.square_kernel_matrix`` with a
  compute-uncompute QNode (one circuit per pair; small N only, extrapolated per entry)
- ``qiskit``: qiskit-machine-learning ``FidelityStatevectorKernel`` on the same circuit
  (reported "not installed" when absent)
- ``incremental`` / ``incremental-interleaved``: cached refresh after +1% rows vs a full
  recompute (exact path), the new rows appended or spread among the old ones, plus a
  hand-written floor for the appended layout
- ``steady``: 30 refreshes of +1% in a row on one cache (compaction keeps the cost flat)

Every case runs in its own subprocess so its peak RSS (ru_maxrss) is its own.
Results go to bench/results/kernel_bench-<timestamp>.json and a table on stdout.

    python bench/kernel_bench.py            # full grid, N in {200, 2000, 20000}, n in {4, 8, 10}
    python bench/kernel_bench.py --quick    # small subset (~1 min)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPS = 2
ENTANGLEMENT = "linear"
PAIRWISE_N = {4: 16, 8: 12, 10: 10}  # PennyLane pairwise sample counts (extrapolated per entry)


def _inputs(N: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, size=(N, n))


def _peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------
# Implementations under test
# ---------------------------------------------------------------------------------------


def _numpy_reference_states(X: np.ndarray) -> np.ndarray:
    """Gate-by-gate simulation of the IQP map (independent of the engine's simulator)."""
    N, n = X.shape
    psi = np.zeros((N,) + (2,) * n, dtype=np.complex128)
    psi[(slice(None),) + (0,) * n] = 1.0
    h = np.array([[1, 1], [1, -1]], dtype=np.complex128) / np.sqrt(2)
    z = np.array([1.0, -1.0])
    pairs = [(i, i + 1) for i in range(n - 1)]
    for _ in range(REPS):
        for q in range(n):
            psi = np.moveaxis(np.tensordot(psi, h, axes=([q + 1], [1])), -1, q + 1)
        for q in range(n):
            shape = [N] + [1] * n
            shape[q + 1] = 2
            psi = psi * np.exp(-0.5j * X[:, q][:, None] * z[None, :]).reshape(shape)
        for i, j in pairs:
            shape = [N] + [1] * n
            shape[i + 1] = 2
            shape[j + 1] = 2
            phase = np.exp(-0.5j * (X[:, i] * X[:, j])[:, None, None] * np.outer(z, z)[None])
            psi = psi * phase.reshape(shape)
    return psi.reshape(N, 2**n)


def run_numpy_reference(X: np.ndarray, chunk: int = 2048) -> np.ndarray:
    S = np.concatenate([_numpy_reference_states(X[i : i + chunk]) for i in range(0, len(X), chunk)])
    out = np.empty((len(X), len(X)))
    SH = S.conj().T
    for i in range(0, len(X), chunk):
        out[i : i + chunk] = np.abs(S[i : i + chunk] @ SH) ** 2
    return out


def _spec(n: int):
    from hybrid_resources.quantum.feature_maps import FeatureMapSpec

    return FeatureMapSpec("iqp", n, reps=REPS, entanglement=ENTANGLEMENT)


def run_engine(X: np.ndarray) -> np.ndarray:
    from hybrid_resources.quantum.kernel_engine import quantum_kernel

    return quantum_kernel(X, spec=_spec(X.shape[1])).matrix


def run_pennylane(X: np.ndarray, device: str) -> np.ndarray:
    import pennylane as qml

    from hybrid_resources.quantum.feature_maps import apply_feature_map

    spec = _spec(X.shape[1])
    n = spec.n_qubits
    dev = qml.device(device, wires=n)

    @qml.qnode(dev)
    def circuit(a, b):
        apply_feature_map(spec, a, range(n))
        qml.adjoint(apply_feature_map)(spec, b, range(n))
        return qml.probs(wires=range(n))

    return np.asarray(qml.kernels.square_kernel_matrix(X, lambda a, b: circuit(a, b)[0]))


def run_qiskit(X: np.ndarray) -> np.ndarray:
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit_machine_learning.kernels import FidelityStatevectorKernel

    n = X.shape[1]
    x = ParameterVector("x", n)
    qc = QuantumCircuit(n)
    for _ in range(REPS):
        qc.h(range(n))
        for i in range(n):
            qc.rz(x[i], i)  # RZ(t) = exp(-i t Z / 2), as PennyLane
        for i in range(n - 1):
            qc.rzz(x[i] * x[i + 1], i, i + 1)  # exp(-i t ZZ / 2) == MultiRZ
    return np.asarray(FidelityStatevectorKernel(feature_map=qc).evaluate(x_vec=X))


def run_incremental(N: int, n: int, growth: float = 0.01, repeats: int = 5,
                    layout: str = "appended") -> dict[str, Any]:
    """Cached refresh after +growth rows vs full recompute without cache (best of repeats).

    ``layout``: "appended" puts the new rows after the old ones; "interleaved" spreads them
    among the old rows, keeping the old rows' order (what a pipeline sorted by sample id sees).
    Also times a floor: the same refresh written by hand for this one layout (allocate the
    matrix, copy the cached block, simulate and multiply the new rows, store them), i.e. what
    any file-backed cache must pay at least.
    """
    from hybrid_resources.quantum.backends import BackendConfig
    from hybrid_resources.quantum.kernel_cache import KernelCache
    from hybrid_resources.quantum.kernel_engine import (
        _gram_block,
        _states,
        quantum_kernel,
    )
    from hybrid_resources.quantum.kernel_request import sample_keys

    spec = _spec(n)
    n_new = max(1, int(round(N * growth)))
    X = _inputs(N + n_new, n, seed=1)  # rows [0, N) are the old samples
    if layout == "interleaved":
        new_at = np.sort(np.random.default_rng(2).choice(N + n_new, n_new, replace=False))
        order = np.empty(N + n_new, dtype=np.intp)
        is_new = np.zeros(N + n_new, dtype=bool)
        is_new[new_at] = True
        order[~is_new] = np.arange(N)
        order[is_new] = np.arange(N, N + n_new)
        X = X[order]
        old_rows = np.flatnonzero(~is_new)
    elif layout == "appended":
        old_rows = np.arange(N)
    else:
        raise ValueError(f"layout must be 'appended' or 'interleaved', got {layout!r}")
    keys = sample_keys(X)
    full_times, refresh_times, floor_times, max_diff = [], [], [], 0.0
    for r in range(repeats):
        t = time.perf_counter()
        full = quantum_kernel(X, spec=spec).matrix
        full_times.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            cache = KernelCache(Path(tmp))
            backend = BackendConfig(seed=r)  # fresh namespace per repeat
            quantum_kernel(X[old_rows], spec=spec, backend=backend, cache=cache, x_keys=[keys[i] for i in old_rows])
            t = time.perf_counter()
            inc = quantum_kernel(X, spec=spec, backend=backend, cache=KernelCache(Path(tmp)), x_keys=keys)
            refresh_times.append(time.perf_counter() - t)
            max_diff = max(max_diff, float(np.abs(inc.matrix - full).max()))
        if layout == "appended":
            with tempfile.TemporaryDirectory() as tmp:
                np.save(f"{tmp}/panel.npy", full[:N, :N])
                np.save(f"{tmp}/states.npy", _states(X[:N], spec))
                t = time.perf_counter()
                out = np.empty((N + n_new, N + n_new))
                out[:N, :N] = np.load(f"{tmp}/panel.npy", mmap_mode="r")
                new = _states(X[N:], spec)
                states = np.empty((N + n_new, new.shape[1]), dtype=new.dtype)
                states[:N] = np.load(f"{tmp}/states.npy", mmap_mode="r")
                states[N:] = new
                g = _gram_block(new, states)
                out[N:, :] = g
                out[:, N:] = g.T
                np.save(f"{tmp}/new_panel.npy", g)
                np.save(f"{tmp}/new_states.npy", new)
                floor_times.append(time.perf_counter() - t)
    res = {
        "layout": layout,
        "full_s": min(full_times),
        "refresh_s": min(refresh_times),
        "ratio": min(refresh_times) / min(full_times),
        "max_abs_diff_vs_full": max_diff,
        "entries_computed": inc.stats.entries_computed,
        "entries_from_cache": inc.stats.entries_from_cache,
    }
    if floor_times:
        res.update(floor_s=min(floor_times), floor_ratio=min(floor_times) / min(full_times))
    return res


def run_steady(N: int, n: int, refreshes: int = 30, growth: float = 0.01) -> dict[str, Any]:
    """``refreshes`` refreshes in a row, each adding ``growth`` * N rows to one cache: shows that
    compaction keeps the refresh cost from growing with the number of refreshes."""
    from hybrid_resources.quantum.kernel_cache import KernelCache
    from hybrid_resources.quantum.kernel_engine import quantum_kernel
    from hybrid_resources.quantum.kernel_request import sample_keys

    spec = _spec(n)
    step = max(1, int(round(N * growth)))
    X = _inputs(N + step * refreshes, n, seed=1)
    keys = sample_keys(X)
    ratios, files = [], []
    with tempfile.TemporaryDirectory() as tmp:
        quantum_kernel(X[:N], spec=spec, cache=KernelCache(Path(tmp)), x_keys=keys[:N])
        for k in range(1, refreshes + 1):
            M = N + step * k
            t = time.perf_counter()
            quantum_kernel(X[:M], spec=spec, cache=KernelCache(Path(tmp)), x_keys=keys[:M])
            refresh = time.perf_counter() - t
            t = time.perf_counter()
            quantum_kernel(X[:M], spec=spec)
            ratios.append(refresh / (time.perf_counter() - t))
            files.append(sum(1 for _ in Path(tmp).glob("*/*/*.json")))
    return {"refreshes": refreshes, "ratio_median": float(np.median(ratios)), "ratio_first": ratios[0],
            "ratio_last5_median": float(np.median(ratios[-5:])), "ratio_max": max(ratios),
            "cache_files_max": max(files), "ratios": ratios}


# ---------------------------------------------------------------------------------------
# One case per subprocess
# ---------------------------------------------------------------------------------------


def child(impl: str, N: int, n: int, repeats: int) -> dict[str, Any]:
    if impl == "steady":
        return {"status": "ok", **run_steady(N, n), "peak_rss_mib": _peak_rss_mib()}
    if impl.startswith("incremental"):
        res = run_incremental(N, n, layout="interleaved" if impl == "incremental-interleaved" else "appended")
        res.update(peak_rss_mib=_peak_rss_mib())
        return res
    X = _inputs(N, n)
    fn = {
        "engine": run_engine,
        "numpy-ref": run_numpy_reference,
        "pl-default": lambda X: run_pennylane(X, "default.qubit"),
        "pl-lightning": lambda X: run_pennylane(X, "lightning.qubit"),
        "qiskit": run_qiskit,
    }[impl]
    if impl == "qiskit":
        try:
            import qiskit_machine_learning  # noqa: F401
        except ImportError:
            return {"status": "not installed"}
    times = []
    K = None
    for _ in range(repeats):
        K = None  # free the previous matrix before the next run
        t = time.perf_counter()
        K = fn(X)
        times.append(time.perf_counter() - t)
    best = min(times)
    if impl.startswith("pl-"):
        entries = N * (N + 1) // 2  # square_kernel_matrix evaluates the upper triangle + diagonal
    else:
        entries = N * N
    res: dict[str, Any] = {"status": "ok", "seconds": best, "entries": entries, "entries_per_s": entries / best,
                           "peak_rss_mib": _peak_rss_mib()}
    # Correctness on a corner of the matrix vs the engine (cheap).
    m = min(N, 64)
    ref = run_engine(X[:m])
    res["max_abs_diff_vs_engine"] = float(np.abs(K[:m, :m] - ref).max())
    return res


def run_case(impl: str, N: int, n: int, repeats: int, timeout: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", impl, "--N", str(N), "--n", str(n), "--repeats", str(repeats)]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"impl": impl, "N": N, "n": n, "status": f"timeout > {timeout}s"}
    if proc.returncode != 0:
        return {"impl": impl, "N": N, "n": n, "status": "error", "stderr": proc.stderr[-2000:]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(impl=impl, N=N, n=n, wall_s=time.perf_counter() - t)
    return res


def plan(quick: bool) -> list[tuple[str, int, int, int]]:
    """(impl, N, n, repeats)."""
    ns = (4, 8) if quick else (4, 8, 10)
    cases = []
    for n in ns:
        for impl in ("pl-default", "pl-lightning"):
            cases.append((impl, PAIRWISE_N[n], n, 1))
        for N in (200, 2000):
            cases += [("engine", N, n, 3), ("numpy-ref", N, n, 3)]
            if not (quick and N == 2000 and n != 8):
                cases.append(("qiskit", N, n, 1))
    cases += [("incremental", 2000, 8, 1), ("incremental-interleaved", 2000, 8, 1), ("steady", 2000, 8, 1)]
    if not quick:
        cases += [("incremental", 2000, 10, 1), ("incremental-interleaved", 2000, 10, 1)]
        cases += [("engine", 20000, 10, 1), ("numpy-ref", 20000, 10, 1)]
    return cases


def _fmt(x: Any, spec: str = ".3g") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else str(x)


def report(results: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'impl':<13}{'n':>3}{'N':>7}{'seconds':>10}{'entries/s':>12}{'peak MiB':>10}{'max|diff|':>11}  status"]
    for r in results:
        if r["impl"].startswith("incremental") or r["impl"] == "steady":
            continue
        lines.append(
            f"{r['impl']:<13}{r['n']:>3}{r['N']:>7}{_fmt(r.get('seconds', '-')):>10}"
            f"{_fmt(r.get('entries_per_s', '-')):>12}{_fmt(r.get('peak_rss_mib', '-'), '.0f'):>10}"
            f"{_fmt(r.get('max_abs_diff_vs_engine', '-'), '.1e'):>11}  {r.get('status')}"
        )
    by = {(r["impl"], r["N"], r["n"]): r for r in results}
    lines.append("")
    lines.append("Ratios (engine entries/s over other; pairwise PennyLane extrapolated per entry):")
    for n in sorted({r["n"] for r in results}):
        for N in (200, 2000, 20000):
            eng = by.get(("engine", N, n))
            if not eng or eng.get("status") != "ok":
                continue
            parts = []
            for other in ("pl-default", "pl-lightning"):
                o = by.get((other, PAIRWISE_N.get(n, 0), n))
                if o and o.get("status") == "ok":
                    parts.append(f"{other} x{eng['entries_per_s'] / o['entries_per_s']:.3g}")
            for other in ("qiskit", "numpy-ref"):
                o = by.get((other, N, n))
                if o and o.get("status") == "ok":
                    parts.append(f"{other} x{eng['entries_per_s'] / o['entries_per_s']:.3g}")
                elif o:
                    parts.append(f"{other} {o.get('status')}")
            lines.append(f"  n={n:<3} N={N:<6} " + ", ".join(parts))
    for r in results:
        if r["impl"].startswith("incremental") and "ratio" in r:
            floor = (f"; hand-written floor {r['floor_s']:.4f}s = {100 * r['floor_ratio']:.1f}%"
                     if "floor_s" in r else "")
            lines.append(
                f"Incremental n={r['n']} N={r['N']} +1% {r['layout']}: refresh {r['refresh_s']:.4f}s vs full "
                f"{r['full_s']:.4f}s = {100 * r['ratio']:.1f}% (target <= 5%){floor}; "
                f"max|diff| {r['max_abs_diff_vs_full']:.1e}, computed {r['entries_computed']} / cached "
                f"{r['entries_from_cache']}"
            )
        elif r["impl"].startswith("incremental"):
            lines.append(f"Incremental n={r['n']} N={r['N']} {r['impl']}: {r.get('status')}")
        elif r["impl"] == "steady" and "ratio_median" in r:
            lines.append(
                f"Steady n={r['n']} N={r['N']}, {r['refreshes']} refreshes of +1% in a row: refresh/full "
                f"median {100 * r['ratio_median']:.1f}%, first {100 * r['ratio_first']:.1f}%, last five "
                f"{100 * r['ratio_last5_median']:.1f}%, max {100 * r['ratio_max']:.1f}% (compaction rounds); "
                f"at most {r['cache_files_max']} cache files"
            )
        elif r["impl"] == "steady":
            lines.append(f"Steady n={r['n']} N={r['N']}: {r.get('status')}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small subset: n in {4, 8}, no N=20000")
    ap.add_argument("--only", default="", help="comma list of impls to run (engine,numpy-ref,qiskit,...)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per case")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--N", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.N, args.n, args.repeats)))
        return
    only = {s for s in args.only.split(",") if s}
    results = []
    for impl, N, n, repeats in plan(args.quick):
        if only and impl not in only:
            continue
        print(f"... {impl} n={n} N={N}", file=sys.stderr, flush=True)
        results.append(run_case(impl, N, n, repeats, args.timeout))
    lines = report(results)
    print("\n".join(lines))
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"kernel_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "numpy": np.__version__, "feature_map": {"name": "iqp", "reps": REPS, "entanglement": ENTANGLEMENT},
            "quick": args.quick}
    path.write_text(json.dumps({"meta": meta, "results": results, "table": lines}, indent=1))
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
