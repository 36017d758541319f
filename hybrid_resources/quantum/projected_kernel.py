"""The projected quantum kernel: a kernel from each sample's single-qubit reduced states.

Huang et al., "Power of data in quantum machine learning", Nat. Commun. 12, 2631 (2021), eq. (9):

    k(x, x') = exp(-gamma * sum_q ||rho_q(x) - rho_q(x')||_F^2)

with rho_q(x) the reduced density matrix of qubit q of the feature-map state U(x)|0..0>. A
single-qubit state is its Bloch vector r: rho = (I + r_x X + r_y Y + r_z Z) / 2, so
``||rho - rho'||_F^2 = |r - r'|^2 / 2`` and each sample is n_qubits x 3 real numbers.

Why it matters for hardware: the fidelity kernel needs a circuit per pair (N(N-1)/2 for a train
Gram matrix), this one three per sample (measure every qubit in the X, Y and Z bases), so 3N.
It also does not concentrate exponentially with the qubit count the way the global fidelity
does, since it compares local states only.

Paths, chosen by the backend as in the fidelity kernel engine:

- **exact** (``backend.is_exact``): Bloch vectors from the numpy statevectors of the SAME
  feature maps (:mod:`hybrid_resources.quantum.simulator`), vectorised; no circuit runs;
- **shot emulation** (``backend.shot_emulation``): each Bloch component drawn as
  2 * Binomial(shots, (1 + r) / 2) / shots - 1 from its exact value r, which is how a noiseless
  device's estimate of one qubit's <P> is distributed; no circuit runs, nothing is recorded;
- **circuits** (shots, or a device without statevector): 3 circuits per sample through
  :func:`~hybrid_resources.quantum.execution.execute_tapes`, admitted and recorded by the ledger.

Gamma is tuned by k-fold cross-validation (:func:`tune_gamma`); the Bloch vectors do not depend
on it, so a whole gamma grid costs one set of circuits.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from hybrid_resources.lazy_modules import module_on_first_use
from hybrid_resources.quantum.backends import BackendConfig, SubmissionLedger
from hybrid_resources.quantum.execution import execute_tapes
from hybrid_resources.quantum.feature_maps import FeatureMapSpec, apply_feature_map
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.kernel_engine import (
    KernelResult,
    KernelStats,
    feature_states,
)
from hybrid_resources.quantum.kernel_request import sample_keys

qml = module_on_first_use("pennylane")

FAMILY = "projected"
VERSION = "1.0.0"  # bump on any change to what a (spec, inputs) pair computes
DEFAULT_GAMMA = 1.0
DEFAULT_GAMMAS = (0.03, 0.1, 0.3, 1.0, 3.0)
BASES = ("X", "Y", "Z")
_PAULI = {"X": "PauliX", "Y": "PauliY", "Z": "PauliZ"}  # PennyLane's observable per basis
_CHUNK = 2048  # samples simulated at once (bounds temporaries like the engine's state chunks)


def kernel_version() -> str:
    """The family's version string, like a feature map's: ``"projected@1.0.0"``."""
    return f"{FAMILY}@{VERSION}"


@dataclass(frozen=True)
class ProjectedKernelSpec:
    """A projected kernel: which feature map, and the RBF width ``gamma`` (> 0, 1/Frobenius^2).

    ``version`` "" means the current :data:`VERSION`; another value is refused, so a cached or
    stored result of an older definition is never confused with what this code computes.

    Example:
        >>> spec = ProjectedKernelSpec(FeatureMapSpec("angle", n_qubits=2), gamma=0.5)
        >>> spec.code_version
        'projected@1.0.0+angle@1.0.0'
    """

    feature_map: FeatureMapSpec
    gamma: float = DEFAULT_GAMMA
    version: str = ""

    def __post_init__(self) -> None:
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        if self.version and self.version != VERSION:
            raise ValueError(f"projected kernel is at version {VERSION}, spec asks for {self.version}")

    @property
    def code_version(self) -> str:
        """Kernel family and feature map versions, e.g. for a Dagster ``code_version``."""
        fm = self.feature_map
        return f"{kernel_version()}+{fm.name}@{fm.resolved_version}"

    def to_dict(self) -> dict[str, Any]:
        return {"family": FAMILY, "version": VERSION, "gamma": float(self.gamma),
                "feature_map": self.feature_map.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProjectedKernelSpec":
        """The spec :meth:`to_dict` wrote (versions pinned: a stored spec names what computed it)."""
        return cls(FeatureMapSpec.from_dict(d["feature_map"]), float(d.get("gamma", DEFAULT_GAMMA)),
                   str(d.get("version", "")))

    @property
    def spec_hash(self) -> str:
        """sha256 hex of the canonical JSON of :meth:`to_dict`."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class BlochSpec:
    """What a sample's Bloch vectors depend on: the feature map and this family's version, not
    gamma. The kernel cache's namespace for them (every gamma, train and test reuse one set)."""

    feature_map: FeatureMapSpec

    def to_dict(self) -> dict[str, Any]:
        return {"family": f"{FAMILY}-bloch", "version": VERSION, "feature_map": self.feature_map.to_dict()}

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def planned_circuits(n_rows: int, n_cols: int | None = None) -> int:
    """Circuits the circuit path runs: 3 per sample (X, Y, Z bases), rows and columns alike.

    >>> planned_circuits(100), planned_circuits(20, 100)
    (300, 360)
    """
    return len(BASES) * (n_rows + (n_cols or 0))


# ---------------------------------------------------------------------------------------
# Bloch vectors and the kernel from them
# ---------------------------------------------------------------------------------------


def bloch_from_states(states: np.ndarray, n_qubits: int) -> np.ndarray:
    """Single-qubit Bloch vectors of pure states.

    Args:
        states: (N, 2**n_qubits) amplitudes, wire 0 the most significant bit (PennyLane order).
        n_qubits: number of qubits.

    Returns:
        (N, n_qubits, 3) float64 (r_x, r_y, r_z) per qubit, each in [-1, 1], with
        rho_q = (I + r_x X + r_y Y + r_z Z) / 2 the partial trace over every other qubit.
    """
    N = states.shape[0]
    out = np.empty((N, n_qubits, 3), dtype=np.float64)
    for q in range(n_qubits):
        v = states.reshape(N, 2**q, 2, 2 ** (n_qubits - q - 1))
        a0, a1 = v[:, :, 0, :], v[:, :, 1, :]
        # rho_q[0, 1] = sum over the other qubits of a0 * conj(a1) = (r_x - i r_y) / 2.
        off = np.einsum("nij,nij->n", a0, a1.conj())
        out[:, q, 0] = 2.0 * off.real
        out[:, q, 1] = -2.0 * off.imag if np.iscomplexobj(off) else 0.0
        out[:, q, 2] = np.einsum("nij,nij->n", a0, a0.conj()).real - np.einsum("nij,nij->n", a1, a1.conj()).real
    return out


def exact_bloch_vectors(X: np.ndarray, spec: FeatureMapSpec) -> np.ndarray:
    """(N, n_qubits, 3) Bloch vectors of each row's feature-map state, from exact statevectors
    (the engine's numpy simulation, chunked: memory ~ chunk * 2**n * 16 bytes)."""
    X = _rows(X, spec)
    out = np.empty((X.shape[0], spec.n_qubits, 3), dtype=np.float64)
    for start in range(0, X.shape[0], _CHUNK):
        chunk = X[start : start + _CHUNK]
        out[start : start + len(chunk)] = bloch_from_states(feature_states(chunk, spec), spec.n_qubits)
    return out


def projected_distances(RA: np.ndarray, RB: np.ndarray | None = None) -> np.ndarray:
    """sum_q ||rho_q(a) - rho_q(b)||_F^2 = sum_q |r_q(a) - r_q(b)|^2 / 2 for every pair.

    RA: (N, n, 3), RB: (M, n, 3) Bloch vectors (None: RA with itself). Returns float64 (N, M)
    in [0, 2 n]; with RB None it is exactly symmetric with a zero diagonal.
    """
    A = RA.reshape(len(RA), -1)
    B = A if RB is None else RB.reshape(len(RB), -1)
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, one matrix product; rounding can dip below 0.
    d = (np.einsum("ij,ij->i", A, A)[:, None] + np.einsum("ij,ij->i", B, B)[None, :] - 2.0 * (A @ B.T)) / 2.0
    np.maximum(d, 0.0, out=d)
    if RB is None:
        d = (d + d.T) / 2.0
        np.fill_diagonal(d, 0.0)
    return d


def kernel_from_distances(distances: np.ndarray, gamma: float) -> np.ndarray:
    """exp(-gamma * distances): the projected kernel, entries in (0, 1]."""
    return np.exp(-gamma * distances)


# ---------------------------------------------------------------------------------------
# Measured Bloch vectors (shots, devices)
# ---------------------------------------------------------------------------------------


def basis_tape(spec: FeatureMapSpec, x: np.ndarray, basis: str, shots: int | None) -> qml.tape.QuantumScript:
    """U(x), then every qubit rotated so the computational basis reads ``basis`` (X, Y or Z),
    measuring the probabilities of all qubits: one circuit gives <P_q> for every qubit q."""
    wires = list(range(spec.n_qubits))
    with qml.queuing.AnnotatedQueue() as q:
        apply_feature_map(spec, x, wires)
    # PennyLane's own diagonalizing gates (H for X; Z, S, H for Y; none for Z), built outside the
    # queue so the observable itself is not recorded as a gate.
    rotations = [gate for w in wires for gate in getattr(qml, _PAULI[basis])(w).diagonalizing_gates()]
    return qml.tape.QuantumScript(q.queue + rotations, [qml.probs(wires=wires)], shots=shots)


def expectations_from_probs(probs: np.ndarray, n_qubits: int) -> np.ndarray:
    """<Z_q> for every qubit from a (..., 2**n) probability vector: P(bit q = 0) - P(bit q = 1)."""
    z = np.arange(2**n_qubits)[:, None]
    signs = 1.0 - 2.0 * ((z >> (n_qubits - 1 - np.arange(n_qubits))[None, :]) & 1)
    return np.asarray(probs, dtype=np.float64) @ signs


@dataclass(frozen=True)
class BlochRun:
    """Measured Bloch vectors (N, n, 3) and what measuring them cost."""

    vectors: np.ndarray
    circuits: int = 0
    shots: int = 0
    retries: int = 0
    shots_emulated: int = 0


def measured_bloch_vectors(X: np.ndarray, spec: FeatureMapSpec, backend: BackendConfig, *,
                           ledger: SubmissionLedger | None = None,
                           on_call: Callable[[int], None] | None = None,
                           transform: Callable[[qml.tape.QuantumScript], qml.tape.QuantumScript] | None = None,
                           ) -> BlochRun:
    """Bloch vectors estimated from 3 circuits per row of X on ``backend``'s device.

    The plan (3 N circuits x shots) is admitted by ``ledger`` before anything is sent (raising
    from it sends nothing) and every circuit the device runs is recorded there. Estimates on a
    seedable simulator are reproducible for a given ``backend.seed``. ``transform`` rewrites each
    circuit before it is sent (e.g. inserts noise channels for a density-matrix simulator).
    """
    X = _rows(X, spec)
    tapes = [basis_tape(spec, x, basis, backend.shots) for x in X for basis in BASES]
    if transform is not None:
        tapes = [transform(tape) for tape in tapes]
    if ledger is not None:
        ledger.admit(len(tapes), backend.shots or 0, n_qubits=spec.n_qubits, route="projected")
    results, retries = execute_tapes(tapes, backend, spec.n_qubits, ledger=ledger, on_call=on_call)
    probs = np.asarray([np.asarray(r, dtype=np.float64).reshape(-1) for r in results])
    vectors = expectations_from_probs(probs, spec.n_qubits).reshape(len(X), len(BASES), spec.n_qubits)
    # (sample, basis, qubit) -> (sample, qubit, basis)
    return BlochRun(np.clip(vectors.transpose(0, 2, 1), -1.0, 1.0), circuits=len(tapes),
                    shots=len(tapes) * (backend.shots or 0), retries=retries)


def emulated_bloch_vectors(X: np.ndarray, spec: FeatureMapSpec, backend: BackendConfig) -> BlochRun:
    """Exact Bloch vectors with each component replaced by a draw of its shot estimate,
    2 * Binomial(shots, (1 + r) / 2) / shots - 1, seeded by ``backend.seed`` and the inputs."""
    X = _rows(X, spec)
    exact = exact_bloch_vectors(X, spec)
    shots = int(backend.shots or 0)
    digest = hashlib.blake2b(np.ascontiguousarray(X).tobytes(), digest_size=8).digest()
    rng = np.random.default_rng([backend.seed, int.from_bytes(digest, "little")])
    ones = rng.binomial(shots, np.clip((1.0 + exact) / 2.0, 0.0, 1.0))
    return BlochRun(2.0 * ones / shots - 1.0, shots_emulated=exact.size // spec.n_qubits * shots)


# ---------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------


def projected_kernel(
    X: np.ndarray,
    Y: np.ndarray | None = None,
    *,
    spec: ProjectedKernelSpec,
    backend: BackendConfig = BackendConfig(),
    ledger: SubmissionLedger | None = None,
    on_call: Callable[[int], None] | None = None,
    cache: KernelCache | None = None,
) -> KernelResult:
    """Projected kernel matrix between rows of X and rows of Y (Y=None: X with itself).

    Args:
        X: (N, n_qubits), Y: (M, n_qubits) real inputs (radians, before the map's bandwidth).
        spec: feature map and gamma.
        backend: exact when ``backend.is_exact``; emulated shots with ``shot_emulation``;
            else 3 circuits per sample (3 N, plus 3 M when Y is given) on the device.
        ledger: admits the circuit plan first and records what the device runs.
        on_call: progress callback, circuits returned per device call.
        cache: keeps each sample's Bloch vectors (per feature map and backend), so a row already
            measured (e.g. the train rows, by the train kernel) is not measured or paid for again.

    Returns:
        :class:`KernelResult`, float64 (N, M) matrix in (0, 1] (symmetric, unit diagonal when Y
        is None) and :class:`KernelStats` with ``method`` ``projected-statevector``,
        ``projected-shot-emulation`` or ``projected-circuits``.

    Example:
        >>> X = np.array([[0.1, 0.2], [0.3, 0.4]])
        >>> spec = ProjectedKernelSpec(FeatureMapSpec("angle", 2), gamma=1.0)
        >>> np.round(projected_kernel(X, spec=spec).matrix, 4)
        array([[1.    , 0.9609],
               [0.9609, 1.    ]])
    """
    t0 = time.perf_counter()
    fm = spec.feature_map
    symmetric = Y is None
    rows = X if symmetric else np.concatenate([_rows(X, fm), _rows(Y, fm)])
    run, method = bloch_vectors(rows, fm, backend, ledger, on_call, cache=cache)
    n = len(X)
    RA, RB = (run.vectors, None) if symmetric else (run.vectors[:n], run.vectors[n:])
    matrix = kernel_from_distances(projected_distances(RA, RB), spec.gamma)
    return KernelResult(matrix, _stats(spec, backend, method, run, matrix.shape, symmetric, time.perf_counter() - t0))


def projected_train_test(
    X_train: np.ndarray,
    X_test: np.ndarray,
    *,
    spec: ProjectedKernelSpec,
    backend: BackendConfig = BackendConfig(),
    ledger: SubmissionLedger | None = None,
    on_call: Callable[[int], None] | None = None,
) -> tuple[KernelResult, KernelResult]:
    """The train Gram matrix (N, N) and the test x train kernel (T, N) from ONE measurement of each
    row: 3 (N + T) circuits in one admitted request, the figure the route planner prices
    (:func:`projected_kernel` on (X_test, X_train) would measure the train rows again).

    The circuits, shots and emulated shots are split between the two results by their rows (the
    train result carries 3 N circuits, the test result 3 T); retries are reported on the train one.
    """
    t0 = time.perf_counter()
    fm = spec.feature_map
    train, test = _rows(X_train, fm), _rows(X_test, fm)
    run, method = bloch_vectors(np.concatenate([train, test]), fm, backend, ledger, on_call)
    n = len(train)
    R_train, R_test = run.vectors[:n], run.vectors[n:]
    K_train = kernel_from_distances(projected_distances(R_train), spec.gamma)
    K_test = kernel_from_distances(projected_distances(R_test, R_train), spec.gamma)
    wall = time.perf_counter() - t0
    total = max(1, len(train) + len(test))

    def part(rows: int, retries: int) -> BlochRun:
        return BlochRun(run.vectors[:0], circuits=run.circuits * rows // total, shots=run.shots * rows // total,
                        retries=retries, shots_emulated=run.shots_emulated * rows // total)

    return (KernelResult(K_train, _stats(spec, backend, method, part(len(train), run.retries), K_train.shape, True, wall)),
            KernelResult(K_test, _stats(spec, backend, method, part(len(test), 0), K_test.shape, False, wall)))


def _stats(spec: ProjectedKernelSpec, backend: BackendConfig, method: str, run: BlochRun, shape: tuple[int, int],
           symmetric: bool, wall_time_s: float) -> KernelStats:
    n_rows, n_cols = shape
    return KernelStats(
        n_rows=n_rows, n_cols=n_cols, method=method, device_name=backend.device_name, shots=backend.shots,
        seed=backend.seed, entries_computed=n_rows * n_cols - (n_rows if symmetric else 0), entries_from_cache=0,
        circuits_executed=run.circuits, shots_executed=run.shots, wall_time_s=wall_time_s, retries=run.retries,
        states_simulated=0 if method == "projected-circuits" else n_rows + (0 if symmetric else n_cols),
        spec_hash=spec.spec_hash, shots_emulated=run.shots_emulated)


def bloch_vectors(rows: np.ndarray, fm: FeatureMapSpec, backend: BackendConfig, ledger: SubmissionLedger | None = None,
                  on_call: Callable[[int], None] | None = None,
                  cache: KernelCache | None = None) -> tuple[BlochRun, str]:
    """Bloch vectors (N, n, 3) of ``rows`` by the path ``backend`` selects, and that path's name
    (``projected-statevector``, ``projected-shot-emulation`` or ``projected-circuits``): what an
    asset stores once so that every gamma, and the train and test kernels, reuse one measurement.
    With ``cache``, only the rows it does not hold are computed (and admitted, and paid for); the
    run's circuits and shots count those rows only."""
    method = ("projected-statevector" if backend.is_exact else
              "projected-shot-emulation" if backend.shot_emulation else "projected-circuits")

    def compute(X: np.ndarray) -> BlochRun:
        if backend.is_exact:
            return BlochRun(exact_bloch_vectors(X, fm))
        if backend.shot_emulation:
            return emulated_bloch_vectors(X, fm, backend)
        return measured_bloch_vectors(X, fm, backend, ledger=ledger, on_call=on_call)

    if cache is None:
        return compute(rows), method
    rows = _rows(rows, fm)
    width = fm.n_qubits * len(BASES)
    held = cache.load_rows(BlochSpec(fm), backend, sample_keys(rows), width)
    missing = np.flatnonzero(~held.found)
    run = compute(rows[missing]) if missing.size else BlochRun(np.empty((0, fm.n_qubits, len(BASES))))
    held.states[missing] = run.vectors.reshape(len(missing), width)
    cache.store_rows(BlochSpec(fm), backend, held)
    return replace(run, vectors=held.states.reshape(len(rows), fm.n_qubits, len(BASES))), method


def _rows(X: np.ndarray, spec: FeatureMapSpec) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != spec.n_qubits:
        raise ValueError(f"inputs must be (N, {spec.n_qubits}), got {X.shape}")
    return X


# ---------------------------------------------------------------------------------------
# Gamma by k-fold cross-validation
# ---------------------------------------------------------------------------------------

Split = tuple[np.ndarray, np.ndarray]
FoldScorer = Callable[[np.ndarray, Sequence[Split], Sequence[float]], dict[float, list[float]]]
"""``score(kernel, splits, Cs)``: C -> the per-split scores of a kernel SVM with that C on ``kernel``."""


@dataclass(frozen=True)
class GammaCandidate:
    """One (gamma, C, bandwidth, reps) and its cross-validated score over the folds."""

    params: dict[str, float]
    cv_mean: float
    cv_std: float
    cv_scores: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def accuracy_scorer(y: np.ndarray) -> FoldScorer:
    """Default ``score``: an SVM on the precomputed kernel, accuracy on the held-out fold; each
    split's kernel blocks are sliced once for every C."""
    from sklearn.metrics import accuracy_score
    from sklearn.svm import SVC

    def score(kernel: np.ndarray, splits: Sequence[Split], Cs: Sequence[float]) -> dict[float, list[float]]:
        scores: dict[float, list[float]] = {float(C): [] for C in Cs}
        for train, test in splits:
            train_block, test_block = kernel[np.ix_(train, train)], kernel[np.ix_(test, train)]
            for C in scores:
                model = SVC(kernel="precomputed", C=C).fit(train_block, y[train])
                scores[C].append(float(accuracy_score(y[test], model.predict(test_block))))
        return scores
    return score


def tune_gamma(X: np.ndarray, y: np.ndarray, splits: Sequence[Split], base: FeatureMapSpec, *,
               gammas: Sequence[float] = DEFAULT_GAMMAS, Cs: Sequence[float] = (0.1, 1.0, 10.0, 100.0),
               bandwidths: Sequence[float] | None = None, reps: Sequence[int] | None = None,
               score: FoldScorer | None = None) -> list[GammaCandidate]:
    """Every (bandwidth, reps, gamma, C) of a projected-kernel SVM scored on the same ``splits``,
    best first (ties keep grid order), on the exact simulator.

    One set of Bloch vectors per (bandwidth, reps): the distances do not depend on gamma, so the
    gamma axis costs one ``exp`` per grid point. ``score(kernel, splits, Cs)`` gives every C's
    per-split scores (:data:`FoldScorer`); pass tuning's own (e.g.
    ``lambda K, splits, Cs: cross_validate_Cs(K, y, splits, Cs, metric)`` from
    ``hybrid_assets.training.tuning``) so both kernel families are judged by one protocol.
    Default: :func:`accuracy_scorer`.
    """
    score = score or accuracy_scorer(np.asarray(y))
    scored = []
    for bandwidth in bandwidths or [base.bandwidth]:
        for rep in (reps or [base.reps]) if base.name != "angle" else [base.reps]:
            fm = replace(base, bandwidth=float(bandwidth), reps=int(rep))
            distances = projected_distances(exact_bloch_vectors(X, fm))
            for gamma in gammas:
                kernel = kernel_from_distances(distances, float(gamma))
                for C, fold_scores in score(kernel, splits, [float(C) for C in Cs]).items():
                    params = {"gamma": float(gamma), "C": C, "bandwidth": float(bandwidth), "reps": int(rep)}
                    scored.append(GammaCandidate(params, float(np.mean(fold_scores)), float(np.std(fold_scores)),
                                                 fold_scores))
    return sorted(scored, key=lambda c: -c.cv_mean)
