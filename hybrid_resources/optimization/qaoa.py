"""QAOA on a QUBO: cost Hamiltonian, circuit, resumable parameter optimisation, sampling, OpenQASM.

Circuit (``QAOA_VERSION`` names it; changing any of this must bump the version):

- cost Hamiltonian: the QUBO with ``x_i = (1 - Z_i) / 2``, constant dropped, divided by its largest
  coefficient (``scale``) so one range of ``gamma`` suits every instance;
- ``mixer="x"``: start in ``|+>^n``, mixer ``sum_i X_i`` (``qml.qaoa.x_mixer``); the QUBO carries the
  cardinality penalty, so infeasible bitstrings can be sampled and are repaired by the ranking;
- ``mixer="xy"``: start in the Dicke state ``|D^n_k>`` (the uniform superposition of every
  weight-``k`` bitstring), prepared by the deterministic circuit of Baertschi and Eidenbenz,
  "Deterministic Preparation of Dicke States" (2019): O(nk) CNOTs and controlled RYs, so it exports
  to OpenQASM and runs on any device; mixer
  ``sum_{(i,j) in G} (X_i X_j + Y_i Y_j) / 2`` (``qml.qaoa.xy_mixer``) on a ring (default: n pairs,
  about 740 deep at n = 12, p = 2 after decomposition) or the complete graph (n(n-1)/2 pairs, about
  940 deep, no better on the bundled example), which keeps the Hamming weight: every sample has exactly ``k`` ones, and the Hamiltonian omits the penalty;
- ``p`` layers of ``qml.qaoa.cost_layer(gamma_l, H_C)`` then ``qml.qaoa.mixer_layer(beta_l, H_M)``.

Parameters are optimised on an exact statevector. Like the kernel
engine (:mod:`hybrid_resources.quantum.simulator`), the exact path is a numpy simulation of the
same gates in the same order (:func:`exact_state`, tested equal to ``default.qubit`` running the
``qml.qaoa`` circuit): the cost layer is one diagonal phase, each mixer term one flip-and-sign of
the state vector, so an evaluation costs milliseconds where
the PennyLane circuit costs seconds at 12 qubits. The objective is ``<H_C>`` or, by default, its CVaR
(:func:`objective_value`); gradients are central differences of it (:func:`objective_and_gradient`). Sampling, OpenQASM and the circuit ceilings use
the PennyLane circuit. Optimiser: Adam (the VQC's
update, :func:`hybrid_resources.quantum.vqc.adam_update`), ``restarts`` seeded initialisations
(restart 0: a linear ramp, the annealing-like schedule; the others uniform at random), the lowest
final ``<H_C>`` kept. A checkpoint is written every ``checkpoint_every`` steps through
:class:`~hybrid_resources.data.checkpoints.CheckpointStore`; a run resumed from any checkpoint
reaches bit-identical parameters.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_resources.data.checkpoints import CheckpointStore
from hybrid_resources.lazy_modules import module_on_first_use
from hybrid_resources.optimization.portfolio import Qubo
from hybrid_resources.quantum.backends import (
    BackendConfig,
    SubmissionLedger,
    make_device,
)
from hybrid_resources.quantum.feature_maps import tape_resources
from hybrid_resources.quantum.vqc import adam_update

qml = module_on_first_use("pennylane")

QAOA_VERSION = "qaoa-1"
MIXERS = ("x", "xy")
OBJECTIVES = ("cvar", "expectation")
MIXER_GRAPHS = ("ring", "complete")
RAMP_DT = 0.8  # total "time" of the linear-ramp initialisation


@dataclass(frozen=True)
class QaoaConfig:
    """Depth, mixer and optimiser settings (all of them feed :meth:`config_hash`)."""

    p: int = 2
    mixer: str = "x"
    steps: int = 60
    step_size: float = 0.1
    restarts: int = 2
    seed: int = 0
    checkpoint_every: int = 5
    objective: str = "cvar"
    cvar_alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {self.mixer!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not 0 < self.cvar_alpha <= 1:
            raise ValueError(f"cvar_alpha must be in (0, 1], got {self.cvar_alpha}")
        if min(self.p, self.steps, self.restarts, self.checkpoint_every) < 1:
            raise ValueError("p, steps, restarts and checkpoint_every must be >= 1")
        if not (self.step_size > 0 and math.isfinite(self.step_size)):
            raise ValueError("step_size must be a positive finite number")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class QaoaCircuit:
    """What the circuit needs: the QUBO it minimises, the mixer, ``k`` (for the XY start), depth."""

    qubo: Qubo
    mixer: str
    p: int
    k: int = 0
    mixer_graph: str = "ring"

    def __post_init__(self) -> None:
        if self.mixer_graph not in MIXER_GRAPHS:
            raise ValueError(f"mixer_graph must be one of {MIXER_GRAPHS}, got {self.mixer_graph!r}")

    @property
    def n(self) -> int:
        return self.qubo.n

    @cached_property
    def _hamiltonians(self) -> tuple[qml.Hamiltonian, float, qml.Hamiltonian]:
        import networkx as nx

        cost_h, scale = cost_hamiltonian(self.qubo)
        graph = nx.cycle_graph(self.n) if self.mixer_graph == "ring" else nx.complete_graph(self.n)
        mixer_h = qml.qaoa.xy_mixer(graph) if self.mixer == "xy" else qml.qaoa.x_mixer(range(self.n))
        return cost_h, scale, mixer_h

    def cost_hamiltonian(self) -> tuple[qml.Hamiltonian, float]:
        """``H_C`` (scaled) and the scale it was divided by."""
        return self._hamiltonians[0], self._hamiltonians[1]

    def mixer_hamiltonian(self) -> qml.Hamiltonian:
        return self._hamiltonians[2]

    def apply(self, params: Any) -> None:
        """Queue the circuit with ``params`` of shape (p, 2): rows (gamma, beta)."""
        cost_h, _, mixer_h = self._hamiltonians
        if self.mixer == "xy":
            dicke_state(self.n, self.k, list(range(self.n)))
        else:
            for w in range(self.n):
                qml.Hadamard(wires=w)
        for layer in range(self.p):
            qml.qaoa.cost_layer(params[layer, 0], cost_h)
            qml.qaoa.mixer_layer(params[layer, 1], mixer_h)

    def to_dict(self) -> dict[str, Any]:
        return {"qubo": self.qubo.to_dict(), "mixer": self.mixer, "p": self.p, "k": self.k,
                "mixer_graph": self.mixer_graph, "version": QAOA_VERSION}

    def circuit_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _split_and_cyclic_shift(n: int, k: int, wires: list[int]) -> None:
    """SCS_{n,k} of Baertschi and Eidenbenz on wires[0..n-1] (1-based positions in the paper)."""
    w = lambda i: wires[i - 1]
    qml.CNOT(wires=[w(n - 1), w(n)])
    qml.ctrl(qml.RY(2 * math.acos(math.sqrt(1 / n)), wires=w(n - 1)), control=w(n))
    qml.CNOT(wires=[w(n - 1), w(n)])
    for lev in range(2, k + 1):
        qml.CNOT(wires=[w(n - lev), w(n)])
        qml.ctrl(qml.RY(2 * math.acos(math.sqrt(lev / n)), wires=w(n - lev)), control=[w(n), w(n - lev + 1)])
        qml.CNOT(wires=[w(n - lev), w(n)])


def dicke_state(n: int, k: int, wires: list[int]) -> None:
    """Queue the preparation of ``|D^n_k>`` from ``|0...0>`` on ``wires`` (Baertschi & Eidenbenz 2019):
    X on the last ``k`` wires, then the split-and-cyclic-shift cascade."""
    for i in range(n - k, n):
        qml.PauliX(wires=wires[i])
    for size in range(n, k, -1):
        _split_and_cyclic_shift(size, k, wires)
    for size in range(k, 1, -1):
        _split_and_cyclic_shift(size, size - 1, wires)


def cost_hamiltonian(qubo: Qubo) -> tuple[qml.Hamiltonian, float]:
    """The QUBO as a Z Hamiltonian (``x_i = (1 - Z_i)/2``, constant dropped) divided by its largest
    |coefficient|; returns ``(H, scale)``. Its spectrum orders bitstrings as the QUBO does."""
    n = qubo.n
    z = np.zeros(n)
    zz: dict[tuple[int, int], float] = {}
    for i in range(n):
        z[i] -= qubo.linear[i] / 2
        for j in range(i + 1, n):
            q = qubo.quadratic[i, j]
            if q:
                z[i] -= q / 4
                z[j] -= q / 4
                zz[(i, j)] = q / 4
    coeffs = [*z, *zz.values()]
    scale = float(max(np.abs(coeffs).max(), 1e-12))
    ops = [qml.PauliZ(i) for i in range(n)] + [qml.PauliZ(i) @ qml.PauliZ(j) for i, j in zz]
    return qml.Hamiltonian([c / scale for c in coeffs], ops), scale


def cost_diagonal(circuit: QaoaCircuit) -> np.ndarray:
    """``diag(H_C)`` (scaled) over the basis states: the QUBO energies minus their constant, over
    ``scale`` (so the cost layer is the phase ``exp(-i gamma diag)`` exactly)."""
    n, qubo = circuit.n, circuit.qubo
    constant = qubo.offset + qubo.linear.sum() / 2 + qubo.quadratic.sum() / 4
    return (qubo.energies(basis_bits(n)) - constant) / circuit.cost_hamiltonian()[1]


def _mixer_terms(circuit: QaoaCircuit) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """The mixer ``H_M`` in its own term order as rotations ``exp(-i beta c P)``, each
    (c, flip permutation, where): ``P`` flips bits (``psi[perm]``) where ``where`` is true and
    annihilates the rest. X_i: flip bit i everywhere. An XX term followed by the YY term of the same
    pair (as ``qml.qaoa.xy_mixer`` orders them) commute and combine into one: (XX + YY) maps
    |01> <-> |10> with weight 2 and sends |00>, |11> to 0, so it is ``(2c, flip i and j, x_i != x_j)``."""
    n = circuit.n
    index, bits = np.arange(2**n), basis_bits(n)
    raw = []
    for coeff, op in zip(*circuit.mixer_hamiltonian().terms()):
        names = {type(factor).__name__ for factor in getattr(op, "operands", [op])}
        raw.append((float(coeff), tuple(int(w) for w in op.wires), names))
    terms, i = [], 0
    while i < len(raw):
        coeff, wires, names = raw[i]
        mask = sum(1 << (n - 1 - w) for w in wires)
        if names == {"PauliX"} and len(wires) == 1:
            terms.append((coeff, index ^ mask, np.ones(2**n, dtype=bool)))
            i += 1
        elif (names == {"PauliX"} and i + 1 < len(raw) and raw[i + 1][1:] == (wires, {"PauliY"})
              and raw[i + 1][0] == coeff):
            terms.append((2 * coeff, index ^ mask, bits[:, wires[0]] != bits[:, wires[1]]))
            i += 2
        else:
            raise ValueError(f"unexpected mixer term {raw[i]}")
    return terms


def initial_state(circuit: QaoaCircuit) -> np.ndarray:
    """``|+>^n`` (X mixer) or the Dicke state ``|D^n_k>`` (XY mixer), as a complex vector."""
    n = circuit.n
    if circuit.mixer == "xy":
        weight = basis_bits(n).sum(axis=1) == circuit.k
        return weight / math.sqrt(math.comb(n, circuit.k)) + 0j
    return np.full(2**n, 2 ** (-n / 2)) + 0j


def exact_state(circuit: QaoaCircuit, params: np.ndarray, *, _terms: list | None = None,
                _diag: np.ndarray | None = None) -> np.ndarray:
    """The circuit's statevector at ``params`` (p, 2) in numpy: each layer multiplies by
    ``exp(-i gamma diag(H_C))``, then applies ``exp(-i beta c P)`` for every mixer term in turn,
    as ``qml.qaoa.mixer_layer`` does (``P^2 = 1`` on the states it moves)."""
    terms = _mixer_terms(circuit) if _terms is None else _terms
    diag = cost_diagonal(circuit) if _diag is None else _diag
    state = initial_state(circuit)
    for layer in range(circuit.p):
        gamma, beta = float(params[layer, 0]), float(params[layer, 1])
        state = state * np.exp(-1j * gamma * diag)
        for coeff, perm, where in terms:
            c, s = math.cos(coeff * beta), math.sin(coeff * beta)
            state = np.where(where, c * state - 1j * s * state[perm], state)
    return state


def exact_probabilities(circuit: QaoaCircuit, params: np.ndarray) -> np.ndarray:
    """Basis-state probabilities (2^n,) of :func:`exact_state`."""
    return np.abs(exact_state(circuit, np.asarray(params, dtype=np.float64))) ** 2


def objective_value(probs: np.ndarray, diag: np.ndarray, config: QaoaConfig, order: np.ndarray | None = None) -> float:
    """What the optimiser minimises: ``<H_C>`` (``objective="expectation"``), or the CVaR of
    ``H_C`` at ``cvar_alpha``: the mean of its lowest ``alpha`` fraction of probability mass
    (Barkoutsos et al., "Improving Variational Quantum Optimization using CVaR", Quantum 4, 256,
    2020). The CVaR rewards putting mass on the best bitstrings rather than on many good ones;
    on the bundled example it raises the probability of the optimum several-fold at p = 2."""
    if config.objective == "expectation":
        return float(np.dot(probs, diag))
    order = np.argsort(diag, kind="stable") if order is None else order
    sorted_probs = probs[order]
    before = np.cumsum(sorted_probs) - sorted_probs
    taken = np.clip(config.cvar_alpha - before, 0.0, sorted_probs)
    return float(np.dot(taken, diag[order]) / config.cvar_alpha)


def objective_and_gradient(circuit: QaoaCircuit, params: np.ndarray, config: QaoaConfig, *, terms: list,
                           diag: np.ndarray, h: float = 1e-6) -> tuple[float, np.ndarray]:
    """:func:`objective_value` at ``params`` and its gradient by central differences of the exact
    statevector (4p + 1 passes; deterministic, so a resumed run repeats them bit for bit)."""
    order = np.argsort(diag, kind="stable")

    def value(theta: np.ndarray) -> float:
        probs = np.abs(exact_state(circuit, theta, _terms=terms, _diag=diag)) ** 2
        return objective_value(probs, diag, config, order)

    grad = np.zeros_like(params)
    for index in np.ndindex(params.shape):
        step = np.zeros_like(params)
        step[index] = h
        grad[index] = (value(params + step) - value(params - step)) / (2 * h)
    return value(params), grad


def basis_bits(n: int) -> np.ndarray:
    """Every basis state in PennyLane's order (wire 0 is the most significant bit): (2^n, n) int8."""
    index = np.arange(2**n)[:, None]
    return ((index >> (n - 1 - np.arange(n))) & 1).astype(np.int8)


def circuit_probabilities(circuit: QaoaCircuit, params: np.ndarray, *, ledger: SubmissionLedger | None = None) -> np.ndarray:
    """Basis-state probabilities (2^n,) of the ``qml.qaoa`` circuit on ``default.qubit`` (exact)."""
    qnode = _probs_qnode(circuit, ledger)
    return np.asarray(qnode(np.asarray(params, dtype=np.float64)), dtype=np.float64)


def _probs_qnode(circuit: QaoaCircuit, ledger: SubmissionLedger | None) -> qml.QNode:
    device = make_device(BackendConfig(), circuit.n, ledger=ledger)

    def run(params):
        circuit.apply(params)
        return qml.probs(wires=range(circuit.n))

    return qml.QNode(run, device, diff_method="backprop", interface="autograd")


def circuit_tape(circuit: QaoaCircuit, params: np.ndarray) -> qml.tape.QuantumScript:
    with qml.queuing.AnnotatedQueue() as q:
        circuit.apply(np.asarray(params, dtype=np.float64))
    return qml.tape.QuantumScript(q.queue, [qml.probs(wires=range(circuit.n))])


def to_openqasm(circuit: QaoaCircuit, params: np.ndarray) -> str:
    """OpenQASM 2.0 of the circuit bound to ``params``, measuring every qubit (PennyLane decomposes
    the layers into qelib1 gates), as the feature-map artifact exports its circuit."""
    return qml.to_openqasm(circuit_tape(circuit, params), wires=range(circuit.n), measure_all=True)


def circuit_resources(circuit: QaoaCircuit) -> dict[str, Any]:
    """Width, depth, gate counts and two-qubit gates after decomposition to the feature maps'
    basic gate set (H, RX, RY, RZ, CNOT), the sizes the circuit ceilings judge."""
    params = np.tile([0.37, 0.61], (circuit.p, 1))  # generic angles: nothing decomposes away
    return tape_resources(circuit_tape(circuit, params), circuit.n)


# ---------------------------------------------------------------------------- optimisation
@dataclass(frozen=True)
class QaoaResult:
    """Optimised parameters (p, 2), their objective (scaled units), per-restart histories and the run's
    position: ``steps_run`` by this call, ``resumed_from_step`` (None for a fresh start)."""

    params: np.ndarray
    objective: float
    best_restart: int
    history: list[list[float]]
    steps_run: int
    resumed_from_step: int | None
    total_steps: int
    lineage: str

    def to_metadata(self) -> dict[str, Any]:
        return {"objective": self.objective, "best_restart": self.best_restart,
                "restart_final_objectives": [h[-1] for h in self.history if h], "steps_run": self.steps_run,
                "resumed_from_step": self.resumed_from_step, "total_steps": self.total_steps,
                "lineage": self.lineage, "params": np.asarray(self.params).tolist()}


def lineage_key(circuit: QaoaCircuit, config: QaoaConfig) -> str:
    """Checkpoint lineage: same circuit (QUBO, mixer, p) + optimiser config + code => same id."""
    canonical = json.dumps({"circuit": circuit.circuit_hash(), "config": config.config_hash(),
                            "version": QAOA_VERSION}, sort_keys=True)
    return "qaoa-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def initial_params(config: QaoaConfig, restart: int) -> np.ndarray:
    """Restart 0: linear ramp (gamma rising, beta falling); others: uniform, seeded by (seed, restart)."""
    if restart == 0:
        frac = (np.arange(config.p) + 0.5) / config.p
        return np.stack([frac * RAMP_DT, (1 - frac) * RAMP_DT], axis=1)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([config.seed, restart])))
    return np.stack([rng.uniform(0, math.pi / 2, config.p), rng.uniform(0, math.pi / 2, config.p)], axis=1)


def _state_arrays(s: dict[str, Any]) -> dict[str, np.ndarray]:
    arrays = {k: np.asarray(v) for k, v in s.items() if k != "history"}
    arrays["n_history"] = np.int64(len(s["history"]))
    for r, h in enumerate(s["history"]):
        arrays[f"history_{r}"] = np.asarray(h, dtype=np.float64)
    return arrays


def _state_from(a: dict[str, np.ndarray]) -> dict[str, Any]:
    s: dict[str, Any] = {k: np.array(v) for k, v in a.items() if not k.startswith("history_") and k != "n_history"}
    for key in ("restart", "step", "global_step", "adam_t", "best_restart"):
        s[key] = int(s[key])
    s["best_value"] = float(s["best_value"])
    s["history"] = [[float(v) for v in a[f"history_{r}"]] for r in range(int(a["n_history"]))]
    return s


def _fresh(config: QaoaConfig, restart: int, previous: dict[str, Any] | None) -> dict[str, Any]:
    theta = initial_params(config, restart)
    return {"restart": restart, "step": 0, "global_step": previous["global_step"] if previous else 0,
            "theta": theta, "adam_m": np.zeros_like(theta), "adam_v": np.zeros_like(theta), "adam_t": 0,
            "best_restart": previous["best_restart"] if previous else -1,
            "best_value": previous["best_value"] if previous else math.inf,
            "best_theta": previous["best_theta"] if previous else np.full_like(theta, np.nan),
            "history": (previous["history"] if previous else []) + [[]]}


def optimize_parameters(circuit: QaoaCircuit, config: QaoaConfig, *, checkpoint_dir: Path, lineage: str,
                        on_step: Callable[[dict], None] | None = None,
                        keep_checkpoints: int = 3) -> QaoaResult:
    """Minimise the objective (``<H_C>`` scaled, or its CVaR) over (gamma, beta) on the exact simulator with Adam,
    ``config.restarts`` seeded restarts, best final value kept; checkpointed under
    ``checkpoint_dir / lineage`` and resumed from there (a finished lineage returns at once).
    ``on_step`` gets ``{"restart", "step", "total_steps", "objective"}`` after every step."""
    total_steps = config.steps * config.restarts
    meta_base = {"version": QAOA_VERSION, "config_hash": config.config_hash(),
                 "circuit_hash": circuit.circuit_hash(), "lineage": lineage, "total_steps": total_steps}
    store = CheckpointStore(checkpoint_dir, lineage, keep=keep_checkpoints)
    ckpt = store.latest()
    if ckpt is not None:
        for key in ("version", "config_hash", "circuit_hash"):
            if ckpt.meta.get(key) != meta_base[key]:
                raise ValueError(f"checkpoint lineage {lineage!r} was written with another {key}; use lineage_key")
        state = _state_from(ckpt.state)
        resumed_from = state["global_step"]
    else:
        state, resumed_from = _fresh(config, 0, None), None
    terms, diag = _mixer_terms(circuit), cost_diagonal(circuit)
    steps_here = 0
    while True:
        if state["step"] >= config.steps:
            if state["restart"] + 1 >= config.restarts:
                break
            state = _fresh(config, state["restart"] + 1, state)
            continue
        value, grad = objective_and_gradient(circuit, state["theta"], config, terms=terms, diag=diag)
        state["theta"], state["adam_m"], state["adam_v"], state["adam_t"] = adam_update(
            state["theta"], grad, state["adam_m"], state["adam_v"], state["adam_t"], config.step_size)
        state["step"] += 1
        state["global_step"] += 1
        steps_here += 1
        state["history"][state["restart"]].append(value)
        if state["step"] == config.steps:
            final = objective_value(exact_probabilities(circuit, state["theta"]), diag, config)
            state["history"][state["restart"]].append(final)
            if final < state["best_value"]:
                state["best_value"], state["best_restart"] = final, state["restart"]
                state["best_theta"] = np.array(state["theta"])
        if state["global_step"] % config.checkpoint_every == 0 or state["global_step"] == total_steps:
            store.save(state["global_step"], _state_arrays(state),
                       dict(meta_base, step=state["global_step"], restart=state["restart"]))
        if on_step is not None:
            on_step({"restart": state["restart"], "step": state["global_step"], "total_steps": total_steps,
                     "objective": value})
    return QaoaResult(np.array(state["best_theta"]), float(state["best_value"]), state["best_restart"],
                      state["history"], steps_here, resumed_from, total_steps, lineage)


# ---------------------------------------------------------------------------- sampling
@dataclass(frozen=True)
class SampleRequest:
    """Draw ``shots`` bitstrings of ``circuit`` at ``params`` from ``backend``'s device, seeded."""

    circuit: QaoaCircuit
    params: np.ndarray
    backend: BackendConfig
    shots: int
    seed: int = 0


def sample_counts(request: SampleRequest, *, ledger: SubmissionLedger | None = None) -> dict[str, int]:
    """Counts of sampled bitstrings ('0101...', wire 0 = asset 0 first) from the configured device
    (the one device factory; every circuit recorded by ``ledger``, which admits the plan first:
    one circuit of ``shots`` shots)."""
    if ledger is not None:
        ledger.admit(1, request.shots)
    circuit = request.circuit
    device = make_device(request.backend, circuit.n, seed=request.seed, ledger=ledger)

    def run(params):
        circuit.apply(params)
        return qml.counts(wires=range(circuit.n))

    counts = qml.QNode(run, device, shots=request.shots)(np.asarray(request.params, dtype=np.float64))
    return {str(bits): int(c) for bits, c in sorted(counts.items())}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), seconds)``."""
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started
