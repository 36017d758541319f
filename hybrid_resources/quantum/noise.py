"""Noisy fidelity kernels on density-matrix simulators, their mitigation, and the spread to exact.

Simulators first, before any hardware: the same compute-uncompute circuits as the kernel engine,
with noise channels inserted, run on PennyLane's ``default.mixed`` (default) or Braket's local
density-matrix simulator (``braket.local.qubit`` with ``backend="braket_dm"``), analytic by
default (``shots=None``: no shot noise on top of the device noise).

- :class:`NoiseModel`: per-qubit depolarizing once per circuit before readout, depolarizing after
  every one- and two-qubit gate, and a readout bit flip; from config or from a device calibration
  (:meth:`NoiseModel.from_calibration`, the Braket standardized-properties shape, an example ships
  as ``hybrid_resources/calibration_example.json``);
- :func:`noisy_kernel`: the noisy Gram matrix, diagonal included (mitigation needs it measured);
- :func:`mitigate_kernel`: PennyLane's ``qml.kernels`` post-processing by name (threshold, displace,
  flip, closest PSD, ``mitigate_depolarizing_noise`` single / average / split channel), chained;
- :func:`kernel_error` and :func:`noise_spread_report`: exact vs noisy vs mitigated.

Mitigation: Hubregtsen et al., "Training quantum embedding kernels on near-term quantum
computers", PRA 106, 042431 (2022), arXiv:2105.02276, section V.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hybrid_resources.lazy_modules import module_on_first_use
from hybrid_resources.quantum.backends import BackendConfig, SubmissionLedger
from hybrid_resources.quantum.devices import braket_fidelities
from hybrid_resources.quantum.execution import execute_tapes
from hybrid_resources.quantum.feature_maps import BASIC_GATE_SET, FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import KernelStats
from hybrid_resources.quantum.kernel_engine import _pair_tape as pair_tape
from hybrid_resources.quantum.kernels import compute_kernel
from hybrid_resources.quantum.projected_kernel import (
    ProjectedKernelSpec,
    kernel_from_distances,
    measured_bloch_vectors,
    projected_distances,
)

qml = module_on_first_use("pennylane")

NOISY_DEVICES = ("default.mixed", "braket_dm")
EXAMPLE_CALIBRATION = Path(__file__).resolve().parents[1] / "calibration_example.json"


@dataclass(frozen=True)
class NoiseModel:
    """Noise channels inserted into each kernel circuit (probabilities in [0, 1)).

    - ``depolarizing``: ``qml.DepolarizingChannel(p)`` on every qubit once, after the circuit and
      before readout: close to the global depolarizing model the mitigation assumes;
    - ``gate_error_1q`` / ``gate_error_2q``: a depolarizing channel on each wire a gate acts on,
      after every one- / two-qubit gate of the circuit decomposed to H, RX, RY, RZ, CNOT;
    - ``readout``: ``qml.BitFlip(p)`` on every qubit just before measurement (symmetric readout).

    ``source`` says where the rates came from ("config" or a calibration file name).
    """

    depolarizing: float = 0.0
    gate_error_1q: float = 0.0
    gate_error_2q: float = 0.0
    readout: float = 0.0
    source: str = "config"

    def __post_init__(self) -> None:
        for name in ("depolarizing", "gate_error_1q", "gate_error_2q", "readout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_calibration(cls, calibration: str | Path | dict[str, Any] = EXAMPLE_CALIBRATION) -> NoiseModel:
        """Rates from a Braket standardized calibration (a dict, or the path of its JSON).

        Averaged over the listed qubits and pairs (a pair's gates averaged first; the circuit's
        wires are not mapped to physical qubits here). Conversions, for PennyLane's channel convention
        rho -> (1 - p) rho + p/3 (X rho X + Y rho Y + Z rho Z):

        - one-qubit RB fidelity F (average gate fidelity): p = 3/2 (1 - F);
        - two-qubit gate fidelity F: process infidelity 5/4 (1 - F), split over the two wires as
          independent channels: p = 1 - sqrt(1 - 5/4 (1 - F));
        - readout fidelity F: bit-flip probability 1 - F.
        """
        source = "config"
        if not isinstance(calibration, dict):
            source = Path(calibration).name
            calibration = json.loads(Path(calibration).read_text())
        rb, ro, two = (list(figures.values()) for figures in braket_fidelities(calibration))
        p1 = 1.5 * (1.0 - float(np.mean(rb))) if rb else 0.0
        p2 = 1.0 - float(np.sqrt(max(0.0, 1.0 - 1.25 * (1.0 - float(np.mean(two)))))) if two else 0.0
        readout = 1.0 - float(np.mean(ro)) if ro else 0.0
        return cls(gate_error_1q=p1, gate_error_2q=p2, readout=readout, source=source)


def noisy_tape(tape: qml.tape.QuantumScript, noise: NoiseModel) -> qml.tape.QuantumScript:
    """``tape`` with the noise channels of ``noise`` inserted (decomposed to the basic gate set
    first when gate errors are set, so every native gate carries its error)."""
    ops = list(tape.operations)
    if noise.gate_error_1q or noise.gate_error_2q:
        (decomposed,), _ = qml.transforms.decompose(tape, gate_set=set(BASIC_GATE_SET))
        ops = []
        for op in decomposed.operations:
            ops.append(op)
            p = noise.gate_error_1q if len(op.wires) == 1 else noise.gate_error_2q
            ops.extend(qml.DepolarizingChannel(p, wires=w) for w in op.wires if p)
    wires = tape.wires
    ops.extend(qml.DepolarizingChannel(noise.depolarizing, wires=w) for w in wires if noise.depolarizing)
    ops.extend(qml.BitFlip(noise.readout, wires=w) for w in wires if noise.readout)
    return qml.tape.QuantumScript(ops, tape.measurements, shots=tape.shots)


def noisy_backend(device: str = "default.mixed", *, shots: int | None = None, seed: int = 0) -> BackendConfig:
    """The device configuration of a noisy simulator: ``default.mixed``, or ``braket_dm`` for the
    Braket local density-matrix simulator. Anything else fails listing the choices."""
    if device == "default.mixed":
        return BackendConfig(device_name="default.mixed", shots=shots, seed=seed)
    if device == "braket_dm":
        return BackendConfig(device_name="braket.local.qubit", shots=shots, seed=seed,
                             device_options=(("backend", "braket_dm"),))
    raise ValueError(f"noisy device must be one of {NOISY_DEVICES}, got {device!r}")


BROADCAST_BYTES = 64 * 2**20  # the density matrices of one broadcast tape on default.mixed


def broadcast_size(device: str, n_qubits: int) -> int:
    """Kernel circuits per parameter-broadcast tape on ``device``: as many (2^n, 2^n) complex
    density matrices as fit in :data:`BROADCAST_BYTES` on ``default.mixed``, which simulates a
    broadcast tape in one pass and counts each of its circuits as an execution; 1 (a tape per
    circuit) on Braket's simulator, which would unroll it."""
    if device != "default.mixed":
        return 1
    return max(1, BROADCAST_BYTES // (16 * 4**n_qubits))


@dataclass(frozen=True)
class NoisyKernelResult:
    matrix: np.ndarray  # float64 (N, M) in [0, 1]; diagonal measured (not set to 1) when square
    stats: KernelStats
    noise: NoiseModel


def noisy_kernel(X: np.ndarray, Y: np.ndarray | None = None, *, spec: FeatureMapSpec, noise: NoiseModel,
                 device: str = "default.mixed", shots: int | None = None, seed: int = 0,
                 ledger: SubmissionLedger | None = None) -> NoisyKernelResult:
    """Fidelity kernel of the compute-uncompute circuits under ``noise`` on a density-matrix simulator.

    Args:
        X: (N, n_qubits), Y: (M, n_qubits) inputs (Y None: X with itself).
        spec: the feature map.
        noise: channels to insert.
        device: "default.mixed" or "braket_dm" (see :func:`noisy_backend`).
        shots: None = exact probabilities of the noisy state; N = N-shot estimates (seeded).
        ledger: admits N(N+1)/2 (or N*M) circuits and records them (both simulators are free).

    Returns:
        :class:`NoisyKernelResult`: for Y None a symmetric (N, N) matrix from N(N+1)/2 circuits,
        the diagonal included: with noise k(x, x) < 1, and mitigation reads it.
    """
    t0 = time.perf_counter()
    X = np.asarray(X, dtype=np.float64)
    symmetric = Y is None
    Y = X if symmetric else np.asarray(Y, dtype=np.float64)
    rows, cols = np.triu_indices(len(X), m=len(Y)) if symmetric else np.indices((len(X), len(Y))).reshape(2, -1)
    backend = noisy_backend(device, shots=shots, seed=seed)
    # The engine's own compute-uncompute circuits, with the noise channels inserted: on
    # default.mixed, ``size`` pairs share one parameter-broadcast tape (one pass, the same circuits).
    size = broadcast_size(device, spec.n_qubits)
    batches = range(len(rows)) if size == 1 else [slice(s, s + size) for s in range(0, len(rows), size)]
    tapes = [noisy_tape(pair_tape(spec, X[rows[batch]], Y[cols[batch]], shots), noise) for batch in batches]
    if ledger is not None:
        ledger.admit(len(rows), shots or 0, n_qubits=spec.n_qubits)
    results, retries = execute_tapes(tapes, backend, spec.n_qubits, ledger=ledger)
    out = np.empty((len(X), len(Y)))
    out[rows, cols] = np.concatenate([np.asarray(probs).reshape(-1, 2**spec.n_qubits)[:, 0] for probs in results])
    if symmetric:
        out[cols, rows] = out[rows, cols]
    np.clip(out, 0.0, 1.0, out=out)
    stats = KernelStats(n_rows=len(X), n_cols=len(Y), method="noisy-density-matrix", device_name=device,
                        shots=shots, seed=seed, entries_computed=out.size, entries_from_cache=0,
                        circuits_executed=len(rows), shots_executed=len(rows) * (shots or 0),
                        wall_time_s=time.perf_counter() - t0, retries=retries, spec_hash=spec.spec_hash)
    return NoisyKernelResult(out, stats, noise)


def noisy_projected_kernel(X: np.ndarray, *, spec: ProjectedKernelSpec, noise: NoiseModel,
                           device: str = "default.mixed", shots: int | None = None, seed: int = 0,
                           ledger: SubmissionLedger | None = None) -> NoisyKernelResult:
    """The projected kernel's Gram matrix (N, N) from Bloch vectors measured by 3 N basis
    circuits under ``noise`` on a density-matrix simulator (arguments as :func:`noisy_kernel`).
    Its diagonal is 1 by construction: depolarizing noise shrinks every Bloch vector instead, so
    the ``depolarizing_*`` mitigations (which read a decayed diagonal) do not apply to it."""
    t0 = time.perf_counter()
    fm = spec.feature_map
    backend = noisy_backend(device, shots=shots, seed=seed)
    run = measured_bloch_vectors(X, fm, backend, ledger=ledger, transform=lambda tape: noisy_tape(tape, noise))
    out = kernel_from_distances(projected_distances(run.vectors), spec.gamma)
    stats = KernelStats(n_rows=len(X), n_cols=len(X), method="noisy-density-matrix-projected", device_name=device,
                        shots=shots, seed=seed, entries_computed=out.size, entries_from_cache=0,
                        circuits_executed=run.circuits, shots_executed=run.shots,
                        wall_time_s=time.perf_counter() - t0, retries=run.retries, spec_hash=spec.spec_hash)
    return NoisyKernelResult(out, stats, noise)


# ---------------------------------------------------------------------------------------
# Mitigation (PennyLane's qml.kernels post-processing, by name)
# ---------------------------------------------------------------------------------------

MITIGATIONS = ("none", "threshold", "displace", "flip", "closest_psd",
               "depolarizing_single", "depolarizing_average", "depolarizing_split_channel")


def mitigation_steps(method: str | Sequence[str]) -> tuple[str, ...]:
    """Validated steps of a mitigation: a name, a "+"-joined chain ("depolarizing_average+threshold")
    or a sequence of names, applied left to right. A bad name fails listing the choices."""
    steps = tuple(s.strip() for s in (method.split("+") if isinstance(method, str) else method) if s.strip())
    bad = [s for s in steps if s not in MITIGATIONS]
    if bad or not steps:
        raise ValueError(f"unknown kernel mitigation {bad or method!r}; choose from {', '.join(MITIGATIONS)} "
                         "(chain steps with '+')")
    return tuple(s for s in steps if s != "none")


def mitigate_kernel(K: np.ndarray, n_qubits: int, method: str | Sequence[str]) -> np.ndarray:
    """Apply the mitigation ``method`` (see :func:`mitigation_steps`) to a square noisy kernel.

    - ``threshold`` / ``displace`` / ``flip`` / ``closest_psd``: ``qml.kernels.threshold_matrix``,
      ``displace_matrix``, ``flip_matrix`` and ``closest_psd_matrix`` (without a fixed diagonal,
      which needs cvxpy: the same as threshold), each making K positive semi-definite;
    - ``depolarizing_*``: ``qml.kernels.mitigate_depolarizing_noise`` with method single, average
      or split_channel: undoes a global depolarizing channel whose rate is read off the measured
      diagonal (so K's diagonal must be measured, as :func:`noisy_kernel` does).

    K: (N, N) symmetric float64. Returns a new (N, N) float64 array.

    Example:
        >>> K = np.array([[0.9, 0.5], [0.5, 0.9]])  # a 1-qubit kernel whose diagonal decayed
        >>> mitigate_kernel(K, 1, "depolarizing_average")
        array([[1. , 0.5],
               [0.5, 1. ]])
    """
    K = np.array(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"mitigation needs a square kernel, got {K.shape}")
    for step in mitigation_steps(method):
        if step.startswith("depolarizing_"):
            K = qml.kernels.mitigate_depolarizing_noise(K, n_qubits, step.removeprefix("depolarizing_"))
        elif step == "closest_psd":
            K = qml.kernels.closest_psd_matrix(K, fix_diagonal=False)
        else:
            K = getattr(qml.kernels, f"{step}_matrix")(K)
    return np.asarray(K, dtype=np.float64)


def depolarizing_rate(diagonal: np.ndarray, n_qubits: int) -> float:
    """Global depolarizing rate lambda from measured k(x, x) = 1 - lambda (1 - 1/2**n), averaged
    (``mitigate_depolarizing_noise``'s "average" estimate)."""
    dim = 2**n_qubits
    return float(np.mean((1.0 - np.asarray(diagonal, dtype=np.float64)) * dim / (dim - 1)))


def mitigate_rectangular(K: np.ndarray, rate: float, n_qubits: int) -> np.ndarray:
    """Undo a global depolarizing channel of rate ``rate`` on any (N, M) kernel, e.g. test x train
    with the rate of the train kernel's diagonal: (K - rate / 2**n) / (1 - rate)."""
    return (np.asarray(K, dtype=np.float64) - rate / 2**n_qubits) / (1.0 - rate)


# ---------------------------------------------------------------------------------------
# Spread
# ---------------------------------------------------------------------------------------


def kernel_error(exact: np.ndarray, approx: np.ndarray) -> dict[str, float]:
    """{"max_abs_error", "mean_abs_error", "rms_error"} of ``approx`` against ``exact`` (same shape)."""
    diff = np.abs(np.asarray(approx, dtype=np.float64) - np.asarray(exact, dtype=np.float64))
    if diff.size == 0:
        return {"max_abs_error": 0.0, "mean_abs_error": 0.0, "rms_error": 0.0}
    return {"max_abs_error": float(diff.max()), "mean_abs_error": float(diff.mean()),
            "rms_error": float(np.sqrt(np.mean(diff**2)))}


def noise_spread_report(exact: np.ndarray, noisy: np.ndarray, mitigated: np.ndarray, *, tolerance: float,
                        noise: NoiseModel, mitigation: str) -> dict[str, Any]:
    """Figures for a check of the exact vs noisy (mitigated) kernel: both errors, whether the
    mitigated maximum error is within ``tolerance``, and what produced them."""
    raw, fixed = kernel_error(exact, noisy), kernel_error(exact, mitigated)
    return {"noise": noise.to_dict(), "mitigation": mitigation, "tolerance": tolerance,
            **{f"noisy_{k}": v for k, v in raw.items()}, **{f"mitigated_{k}": v for k, v in fixed.items()},
            "passed": fixed["max_abs_error"] <= tolerance}


def noise_spread(X: np.ndarray, spec: FeatureMapSpec | ProjectedKernelSpec, noise: NoiseModel, *,
                 mitigation: str = "auto", tolerance: float = 0.01, device: str = "default.mixed",
                 ledger: SubmissionLedger | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The exact, noisy and mitigated Gram matrices (N, N) of ``spec`` (either kernel family) on
    rows X (N, n_qubits), and :func:`noise_spread_report` of them plus the circuits run.

    ``mitigation`` "auto": ``depolarizing_average`` for a fidelity kernel, ``none`` for a
    projected one (its diagonal does not decay, see :func:`noisy_projected_kernel`)."""
    projected = isinstance(spec, ProjectedKernelSpec)
    fm = spec.feature_map if projected else spec
    method = mitigation if mitigation != "auto" else ("none" if projected else "depolarizing_average")
    steps = mitigation_steps(method)
    if projected and any(step.startswith("depolarizing_") for step in steps):
        raise ValueError(f"mitigation {method!r} reads a decayed kernel diagonal; the projected kernel's diagonal "
                         "is 1 by construction. Use none, threshold, displace, flip or closest_psd")
    exact = compute_kernel(X, spec=spec).matrix
    noisy = (noisy_projected_kernel(X, spec=spec, noise=noise, device=device, ledger=ledger) if projected else
             noisy_kernel(X, spec=fm, noise=noise, device=device, ledger=ledger))
    mitigated = mitigate_kernel(noisy.matrix, fm.n_qubits, steps or "none")
    report = noise_spread_report(exact, noisy.matrix, mitigated, tolerance=tolerance, noise=noise, mitigation=method)
    report |= {"device": device, "rows": int(len(X)), "circuits": noisy.stats.circuits_executed,
               "wall_time_s": noisy.stats.wall_time_s}
    return {"exact": exact, "noisy": noisy.matrix, "mitigated": mitigated}, report
