"""Variational quantum classifier (VQC): model, resumable training loop, seeded restarts.

Model (``TRAINER_VERSION`` names it; changing any of this must bump the version):

- ``d`` features -> ``d`` qubits; feature ``x_i`` (radians, expected in ``[0, pi]``) is
  angle-encoded as ``RY(x_i)`` on wire ``i``;
- ``qml.StronglyEntanglingLayers(weights)`` with ``weights.shape == (layers, d, 3)``;
- readout ``z = <PauliZ(0)>`` in ``[-1, 1]``, mapped to
  ``p(y=1 | x) = sigmoid(-LOGIT_SCALE * z + bias)`` (``bias`` is a trainable classical scalar);
- loss: mean **binary cross-entropy** over the minibatch (computed from logits, stable).

The device comes from a :class:`~hybrid_resources.quantum.backends.BackendConfig` through
:func:`~hybrid_resources.quantum.backends.make_device`, like every other device: a local
simulator, ``braket.local.qubit``, or ``braket.aws.qubit`` with its ARN and S3 folder. With a
ledger, every circuit it runs is recorded.

Gradients: exact (``shots=None``) on ``default.qubit`` or a ``lightning.*`` device, the circuit
is simulated by :mod:`hybrid_resources.quantum.vqc_simulator` (numpy statevectors of the whole
minibatch at once, the gradient of its BCE by the adjoint method: one forward and one backward
pass; equal to PennyLane's backprop to ~1e-15). That device is still built (a paid one is refused
without a ledger, as ever) and every circuit simulated is reported through its tracker, one per
sample as ``default.qubit`` counted them, so a ledger records the same circuits and no shots.
Validation and :func:`predict_proba` take the same path. Any other device, and every device with
``shots=N``, runs the PennyLane QNode with autograd through ``pennylane.numpy``: ``parameter-shift``
on sampled estimates, ``best`` for other exact devices; each minibatch is one broadcast execution
(devices without broadcasting, such as Braket's, get one circuit per sample).

Checkpoints: every ``checkpoint_every`` steps and at the lineage's last step; ``None`` (the default)
is every step where a step is billed or sampled (shots, or a device the price table in effect does
not list as free), and every :data:`EXACT_CHECKPOINT_STEPS` steps (at most an epoch) on a free
exact simulator, where a step costs about a millisecond and a durable checkpoint more.

Early stop: with ``early_stop_patience = k``, a restart ends after the epoch where its validation
BCE has not improved by ``early_stop_min_delta`` on its best before the last ``k`` epochs; the
epoch and reason are in the history, the checkpoint and the result. ``total_steps`` (and the
admitted circuit count) are then upper bounds.

Optimisers (Adam, plain gradient descent) are implemented here in numpy so their state is
plain arrays that go into the checkpoint. Everything random comes from
``np.random.Generator(PCG64)`` streams seeded from ``config.seed``; the shuffling stream's
``bit_generator.state`` is checkpointed (as JSON), and shot-noise seeds are derived from
``(seed, restart, step)``, so a run resumed from any checkpoint reaches bit-identical
parameters to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hybrid_resources.data.checkpoints import CheckpointStore
from hybrid_resources.lazy_modules import module_on_first_use
from hybrid_resources.price_table import is_free_device, price_table_in_effect
from hybrid_resources.quantum.backends import (
    BackendConfig,
    SubmissionLedger,
    make_device,
)
from hybrid_resources.quantum.vqc_simulator import expval_z0, expval_z0_and_vjp

qml = module_on_first_use("pennylane")
pnp = module_on_first_use("pennylane.numpy")

# 2: the device and shots come from a BackendConfig. 3: exact default.qubit / lightning.* training
# runs the numpy adjoint simulation (results differ from backprop's in the last bits, so a vqc-2
# checkpoint must not resume into it); checkpoint cadence and early stop in the config.
TRAINER_VERSION = "vqc-3"
# <Z> lies in [-1, 1]; a scale of 3 lets p reach sigmoid(3 + bias) ~ 0.95 without a bias,
# enough confidence for BCE to be a useful signal, small enough to keep gradients tame.
LOGIT_SCALE = 3.0
VAL_FRACTION = 0.2
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8
_OPTIMIZERS = ("adam", "gd")
# Auto checkpoint cadence on a free exact simulator: a crash there loses at most this many steps
# (~0.1 s) or one epoch, whichever is less, and 1,500 steps write ~15 checkpoints, not 1,500.
EXACT_CHECKPOINT_STEPS = 100
# Domain-separation tags for the derived seed streams (arbitrary, fixed forever).
_TAG_VAL_SPLIT = 0x5A11
_TAG_STEP_SHOTS = 0x5307
_TAG_EVAL_SHOTS = 0xE7A1
_TAG_PREDICT_SHOTS = 0x9E0D


# ---------------------------------------------------------------------------- config / result
@dataclass(frozen=True)
class VqcConfig:
    """Hyper-parameters of one VQC training run (all of them feed :meth:`config_hash`)."""

    layers: int = 2  # StronglyEntanglingLayers layers
    optimizer: str = "adam"  # "adam" | "gd"
    step_size: float = 0.1  # learning rate
    batch_size: int = 16  # samples per optimiser step (last batch of an epoch may be smaller)
    epochs: int = 10  # passes over the training split, per restart
    seed: int = 0  # root of every random stream
    restarts: int = 1  # independent seeded initialisations; best final val loss kept
    # optimiser steps between checkpoints (the lineage's last step always saves); None: by device
    # (every step when steps are billed or sampled, see checkpoint_interval)
    checkpoint_every: int | None = None
    early_stop_patience: int | None = None  # epochs without a better validation BCE before a restart ends
    early_stop_min_delta: float = 1e-3  # how much lower (BCE) counts as better

    def __post_init__(self) -> None:
        if self.layers < 1:
            raise ValueError("layers must be >= 1")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {self.optimizer!r}")
        if not (self.step_size > 0 and math.isfinite(self.step_size)):
            raise ValueError("step_size must be a positive finite number")
        if self.batch_size < 1 or self.epochs < 1 or self.restarts < 1:
            raise ValueError("batch_size, epochs and restarts must be >= 1")
        if (self.checkpoint_every is not None and self.checkpoint_every < 1) or \
                (self.early_stop_patience is not None and self.early_stop_patience < 1):
            raise ValueError("checkpoint_every and early_stop_patience must be None or >= 1")
        if not (self.early_stop_min_delta >= 0 and math.isfinite(self.early_stop_min_delta)):
            raise ValueError("early_stop_min_delta must be a finite number >= 0")
        if self.seed < 0:
            raise ValueError("seed must be >= 0 (it seeds numpy SeedSequence)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config_hash(self) -> str:
        """sha256 hex of the canonical JSON (sorted keys, compact separators) of all fields."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrainingResult:
    """Outcome of :func:`train_vqc`.

    ``params``: circuit weights of the kept restart, shape ``(layers, d, 3)``, radians.
    ``bias``: the classical logit offset that goes with them.
    ``history``: one dict per restart ``{"restart", "loss", "val_loss", "val_accuracy",
    "step_loss", "stopped_epoch", "stop_reason"}``; ``loss``/``val_*`` are per epoch (``loss`` =
    mean minibatch BCE over the epoch), ``step_loss`` per optimiser step; ``stopped_epoch`` is the
    number of epochs the restart ran when an early stop ended it (None: it ran them all), with
    ``stop_reason`` ("" otherwise).
    ``steps_run``: optimiser steps executed by *this call*; ``resumed_from_step``: the
    global step of the checkpoint it resumed from (None for a fresh start), so
    ``steps_run + (resumed_from_step or 0) <= total_steps``, the planned steps (equal unless a
    restart stopped early). ``checkpoint_every``: the checkpoint interval in effect (steps).
    """

    params: np.ndarray
    bias: float
    best_restart: int
    history: list[dict]
    steps_run: int
    resumed_from_step: int | None
    total_steps: int = 0
    val_loss: float = float("nan")  # kept restart's final validation BCE
    val_accuracy: float = float("nan")  # kept restart's final validation accuracy in [0, 1]
    lineage: str = ""
    config_hash: str = ""
    checkpoint_warnings: tuple[str, ...] = field(default=())
    checkpoint_every: int = 1

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe summary for asset metadata (no arrays beyond small lists)."""
        return {
            "trainer_version": TRAINER_VERSION,
            "lineage": self.lineage,
            "config_hash": self.config_hash,
            "best_restart": self.best_restart,
            "val_loss": float(self.val_loss),
            "val_accuracy": float(self.val_accuracy),
            "final_train_loss": float(self.history[self.best_restart]["loss"][-1]) if self.history else None,
            "restart_val_losses": [float(h["val_loss"][-1]) if h["val_loss"] else None for h in self.history],
            "steps_run": self.steps_run,
            "resumed_from_step": self.resumed_from_step,
            "total_steps": self.total_steps,
            "steps_completed": self.steps_run + (self.resumed_from_step or 0),
            "early_stops": [{"restart": h["restart"], "epochs_run": h["stopped_epoch"], "reason": h["stop_reason"]}
                            for h in self.history if h.get("stopped_epoch") is not None],
            "checkpoint_every": self.checkpoint_every,
            "n_params": int(np.asarray(self.params).size) + 1,
            "params_shape": list(np.asarray(self.params).shape),
            "checkpoint_warnings": list(self.checkpoint_warnings),
        }


def lineage_key(data_version: str, circuit_version: str, config: VqcConfig,
                backend: BackendConfig = BackendConfig()) -> str:
    """Checkpoint lineage id: same data + circuit + config + backend (+ trainer code version) => same id.

    Returns ``"vqc-" + 24 hex chars``; safe as a directory name.
    """
    canonical = json.dumps(
        {
            "data_version": data_version,
            "circuit_version": circuit_version,
            "config_hash": config.config_hash(),
            "backend": backend.cache_key(),
            "trainer_version": TRAINER_VERSION,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return "vqc-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


# ---------------------------------------------------------------------------- cost estimates
def weight_shape(config: VqcConfig, n_qubits: int) -> tuple[int, int, int]:
    """Shape of the circuit weights: ``(layers, n_qubits, 3)``."""
    return tuple(qml.StronglyEntanglingLayers.shape(n_layers=config.layers, n_wires=n_qubits))


def n_circuit_params(config: VqcConfig, n_qubits: int) -> int:
    """Trainable gate angles in the circuit (excludes the classical bias)."""
    return int(np.prod(weight_shape(config, n_qubits)))


def circuits_per_step(shots: int | None, batch_size: int, n_params: int) -> int:
    """Circuit executions one optimiser step costs on hardware (no broadcasting there).

    ``n_params``: trainable *gate* angles (see :func:`n_circuit_params`). With shots,
    parameter-shift needs 2 shifted circuits per angle per sample plus the forward pass:
    ``batch_size * (2 * n_params + 1)``. Exact simulation (backprop/adjoint) needs only the
    forward pass per sample: ``batch_size``. Multiply by ``shots`` for the shot budget; the
    per-epoch validation pass adds ``n_val`` circuits per epoch.
    """
    if batch_size < 1 or n_params < 0:
        raise ValueError("batch_size must be >= 1 and n_params >= 0")
    if shots is None:
        return batch_size
    return batch_size * (2 * n_params + 1)


# ---------------------------------------------------------------------------- circuit
def _diff_method(backend: BackendConfig) -> str:
    # Exact default.qubit / lightning.* take the numpy path (_uses_numpy); "best" is backprop there.
    return "parameter-shift" if backend.shots is not None else "best"


def _uses_numpy(backend: BackendConfig) -> bool:
    """Whether the circuits run in :mod:`~hybrid_resources.quantum.vqc_simulator`: exact
    (``shots=None``) ``default.qubit`` or ``lightning.*``, whose results are the exact ones."""
    return backend.shots is None and (backend.device_name == "default.qubit"
                                      or backend.device_name.startswith("lightning."))


@dataclass(frozen=True)
class _NumpyDevice:
    """The backend's device, built and watched as for a QNode but never run: the numpy simulation
    runs its circuits, and :meth:`record` reports them through the device's tracker, as the
    device reports the circuits it executes (so a watching ledger counts and prices them alike)."""

    device: Any

    @classmethod
    def of(cls, backend: BackendConfig, n_qubits: int, ledger: SubmissionLedger | None) -> _NumpyDevice:
        return cls(make_device(backend, n_qubits, ledger=ledger))

    def record(self, circuits: int) -> None:
        """Report ``circuits`` analytic executions (no shots)."""
        tracker = self.device.tracker
        if tracker.active:  # a ledger watches the device
            tracker.update(executions=circuits)
            tracker.record()


def _derived_seed(*entropy: int) -> int:
    """A 32-bit seed from a tuple of non-negative ints (stable across processes/platforms)."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])


def _make_qnode(backend: BackendConfig, n_qubits: int, shot_seed: int | None,
                ledger: SubmissionLedger | None = None) -> qml.QNode:
    """QNode ``f(X (B, d) radians, weights (layers, d, 3)) -> <Z0> (B,)`` on the backend's device.

    Shots are set on the QNode (PennyLane 0.45 deprecates device-level shots); simulators that
    take a seed get ``shot_seed``, so sampled estimates are reproducible across resumes.
    """
    dev = make_device(backend, n_qubits, seed=shot_seed, ledger=ledger)
    wires = list(range(n_qubits))

    def circuit(x, weights):
        for i in wires:
            qml.RY(x[..., i], wires=i)  # x[..., i] has shape (B,): one broadcast execution
        qml.StronglyEntanglingLayers(weights, wires=wires)
        return qml.expval(qml.PauliZ(0))

    return qml.QNode(circuit, dev, diff_method=_diff_method(backend), shots=backend.shots)


def _logits(qnode: qml.QNode, X: np.ndarray, weights: Any, bias: Any) -> Any:
    """Logits ``-LOGIT_SCALE * <Z0> + bias``, shape ``(B,)``; autograd-traceable."""
    z = qnode(X, weights)
    return -LOGIT_SCALE * pnp.reshape(z, (-1,)) + bias


def _bce(logits: Any, y: np.ndarray) -> Any:
    """Mean BCE of labels ``y`` in {0,1} given logits: mean(softplus(l) - y*l); stable."""
    return pnp.mean(pnp.logaddexp(0.0, logits) - y * logits)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))  # overflow-free sigmoid


def _numpy_loss_and_grad(X: np.ndarray, y: np.ndarray, weights: np.ndarray, bias: float) -> tuple[float, np.ndarray]:
    """Mean BCE of the minibatch ``X`` (B, d) radians, ``y`` (B,) in {0, 1}, and its gradient with
    respect to ``[weights.ravel(), bias]`` (flat, ``weights.size + 1``), by the numpy adjoint pass."""
    def dloss_dlogits(z: np.ndarray) -> np.ndarray:
        return (_sigmoid(-LOGIT_SCALE * z + bias) - y) / len(y)  # d mean(softplus(l) - y l) / dl

    z, grad_w = expval_z0_and_vjp(X, weights, lambda z: -LOGIT_SCALE * dloss_dlogits(z))
    logits = -LOGIT_SCALE * z + bias
    loss = float(np.mean(np.logaddexp(0.0, logits) - y * logits))
    return loss, np.concatenate([grad_w.ravel(), [float(np.sum(dloss_dlogits(z)))]])


def predict_proba(params: np.ndarray, bias: float, X: np.ndarray, config: VqcConfig,
                  backend: BackendConfig = BackendConfig(), *, shot_seed: int | None = None,
                  ledger: SubmissionLedger | None = None) -> np.ndarray:
    """P(class 1) for each row of ``X`` (n, d) radians; returns float64 shape ``(n,)`` in [0, 1].

    ``params`` shape ``(layers, d, 3)``. With ``backend.shots`` set, the estimate is sampled
    using ``shot_seed`` (default: derived from ``config.seed``).
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n, d), got shape {X.shape}")
    params = np.asarray(params, dtype=np.float64)
    if params.shape != weight_shape(config, X.shape[1]):
        raise ValueError(f"params shape {params.shape} does not fit {X.shape[1]} features / config")
    if X.shape[0] == 0:
        return np.zeros(0)
    if _uses_numpy(backend):
        device = _NumpyDevice.of(backend, X.shape[1], ledger)
        z = expval_z0(X, params)
        device.record(X.shape[0])
        return _sigmoid(-LOGIT_SCALE * z + float(bias))
    if shot_seed is None:
        shot_seed = _derived_seed(config.seed, _TAG_PREDICT_SHOTS)
    qnode = _make_qnode(backend, X.shape[1], shot_seed, ledger)
    logits = np.asarray(_logits(qnode, X, params, float(bias)), dtype=np.float64)
    return _sigmoid(logits)


def evaluate_vqc(params: np.ndarray, bias: float, X: np.ndarray, y: np.ndarray, config: VqcConfig,
                 backend: BackendConfig = BackendConfig(), *, shot_seed: int | None = None,
                 ledger: SubmissionLedger | None = None) -> dict[str, float]:
    """``{"loss": mean BCE, "accuracy": fraction correct at p >= 0.5}`` on (X, y)."""
    p = predict_proba(params, bias, X, config, backend, shot_seed=shot_seed, ledger=ledger)
    y = np.asarray(y)
    p_c = np.clip(p, 1e-12, 1 - 1e-12)
    loss = float(-np.mean(y * np.log(p_c) + (1 - y) * np.log1p(-p_c)))
    return {"loss": loss, "accuracy": float(np.mean((p >= 0.5).astype(int) == y))}


# ---------------------------------------------------------------------------- optimisers
def adam_update(theta: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
                step_size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One Adam step (Kingma & Ba, bias-corrected). Returns new ``(theta, m, v, t)``; pure."""
    t = t + 1
    m = ADAM_BETA1 * m + (1 - ADAM_BETA1) * grad
    v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * grad * grad
    m_hat = m / (1 - ADAM_BETA1**t)
    v_hat = v / (1 - ADAM_BETA2**t)
    return theta - step_size * m_hat / (np.sqrt(v_hat) + ADAM_EPS), m, v, t


def gd_update(theta: np.ndarray, grad: np.ndarray, step_size: float) -> np.ndarray:
    """Plain gradient descent: ``theta - step_size * grad``."""
    return theta - step_size * grad


# ---------------------------------------------------------------------------- data helpers
def _check_xy(X: np.ndarray, y: np.ndarray, name: str, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(X, dtype=np.float64)
    y_arr = np.asarray(y)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X_{name} must be a non-empty 2-D array (n, d), got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X_{name} has {X.shape[1]} features, expected {n_features}")
    if y_arr.shape != (X.shape[0],):
        raise ValueError(f"y_{name} must have shape ({X.shape[0]},), got {y_arr.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"X_{name} contains NaN/inf")
    if not np.all(np.isin(y_arr, (0, 1))):
        raise ValueError(f"y_{name} must contain only 0/1 labels")
    if X.min() < -1e-9 or X.max() > np.pi + 1e-9:
        # Angle encoding is 2*pi-periodic, so this still runs; but it usually means unscaled data.
        warnings.warn(f"X_{name} has values outside [0, pi] (min {X.min():.3g}, max {X.max():.3g})",
                      stacklevel=4)  # the caller of train_vqc (via _plan_training)
    return X, np.ascontiguousarray(y_arr, dtype=np.int64)


def split_validation(X: np.ndarray, y: np.ndarray, seed: int,
                     fraction: float = VAL_FRACTION) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded, class-stratified hold-out: returns ``(X_train, y_train, X_val, y_val)``.

    Each class contributes ``round(fraction * count)`` rows (at least 1 when it has >= 2),
    so small datasets still validate on both classes. Row order within each part is sorted
    by original index.
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _TAG_VAL_SPLIT])))
    val_idx: list[np.ndarray] = []
    for label in (0, 1):
        members = np.flatnonzero(y == label)
        k = int(round(fraction * members.size))
        if members.size >= 2:
            k = min(max(k, 1), members.size - 1)
        else:
            k = 0
        val_idx.append(rng.permutation(members)[:k])
    val = np.sort(np.concatenate(val_idx)).astype(np.int64)
    if val.size == 0:
        raise ValueError("not enough rows to hold out a validation split; pass X_val/y_val")
    train = np.setdiff1d(np.arange(y.shape[0]), val)
    return X[train], y[train], X[val], y[val]


def _data_sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- run state
@dataclass
class _RunState:
    """Everything needed to continue training; position fields point at the NEXT step."""

    restart: int
    epoch: int  # == config.epochs (or an early stop in history) means this restart is finished
    batch: int  # next batch index within the epoch
    step: int  # global optimiser steps completed (across restarts)
    theta: np.ndarray  # flat [weights.ravel(), bias]
    adam_m: np.ndarray
    adam_v: np.ndarray
    adam_t: int
    epoch_rng_state: dict  # shuffling stream state *before* this epoch's permutation was drawn
    best_restart: int
    best_val_loss: float
    best_theta: np.ndarray
    history: list[dict]

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {
            "restart": np.int64(self.restart), "epoch": np.int64(self.epoch),
            "batch": np.int64(self.batch), "step": np.int64(self.step),
            "theta": self.theta, "adam_m": self.adam_m, "adam_v": self.adam_v,
            "adam_t": np.int64(self.adam_t),
            # PCG64 state is a dict of (big) ints: JSON keeps it exact and pickle-free.
            "epoch_rng_state": np.array(json.dumps(self.epoch_rng_state, sort_keys=True)),
            "best_restart": np.int64(self.best_restart), "best_val_loss": np.float64(self.best_val_loss),
            "best_theta": self.best_theta, "n_history": np.int64(len(self.history)),
        }
        for r, h in enumerate(self.history):
            for key in ("loss", "val_loss", "val_accuracy", "step_loss"):
                arrays[f"history_{r}_{key}"] = np.asarray(h[key], dtype=np.float64)
            arrays[f"history_{r}_stopped_epoch"] = np.int64(-1 if h["stopped_epoch"] is None else h["stopped_epoch"])
            arrays[f"history_{r}_stop_reason"] = np.array(h["stop_reason"])
        return arrays

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> _RunState:
        history = []
        for r in range(int(a["n_history"])):
            h = {"restart": r}
            for key in ("loss", "val_loss", "val_accuracy", "step_loss"):
                h[key] = [float(v) for v in a[f"history_{r}_{key}"]]
            stopped = int(a[f"history_{r}_stopped_epoch"])
            h["stopped_epoch"] = None if stopped < 0 else stopped
            h["stop_reason"] = str(a[f"history_{r}_stop_reason"])
            history.append(h)
        return cls(
            restart=int(a["restart"]), epoch=int(a["epoch"]), batch=int(a["batch"]), step=int(a["step"]),
            theta=np.array(a["theta"], dtype=np.float64), adam_m=np.array(a["adam_m"], dtype=np.float64),
            adam_v=np.array(a["adam_v"], dtype=np.float64), adam_t=int(a["adam_t"]),
            epoch_rng_state=json.loads(str(a["epoch_rng_state"])),
            best_restart=int(a["best_restart"]), best_val_loss=float(a["best_val_loss"]),
            best_theta=np.array(a["best_theta"], dtype=np.float64), history=history,
        )


def _restart_rng(seed: int, restart: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, restart])))


def _begin_restart(state: _RunState | None, config: VqcConfig, restart: int, n_qubits: int) -> _RunState:
    """Fresh seeded initialisation for ``restart``; keeps best-so-far and history from ``state``."""
    rng = _restart_rng(config.seed, restart)
    # Uniform angles over the full period: the standard StronglyEntanglingLayers init.
    weights = rng.uniform(0.0, 2 * np.pi, size=weight_shape(config, n_qubits))
    theta = np.concatenate([weights.ravel(), [0.0]])
    history = list(state.history) if state else []
    history.append({"restart": restart, "loss": [], "val_loss": [], "val_accuracy": [], "step_loss": [],
                    "stopped_epoch": None, "stop_reason": ""})
    return _RunState(
        restart=restart, epoch=0, batch=0, step=state.step if state else 0,
        theta=theta, adam_m=np.zeros_like(theta), adam_v=np.zeros_like(theta), adam_t=0,
        epoch_rng_state=rng.bit_generator.state,
        best_restart=state.best_restart if state else -1,
        best_val_loss=state.best_val_loss if state else float("inf"),
        best_theta=state.best_theta if state else np.full_like(theta, np.nan),
        history=history,
    )


# ---------------------------------------------------------------------------- training
@dataclass(frozen=True)
class _TrainingPlan:
    """What one :func:`train_vqc` call trains on, and how many optimiser steps that takes.

    ``X_fit`` (n_fit, d) radians / ``y_fit`` (n_fit,) in {0, 1} feed the optimiser;
    ``X_val`` / ``y_val`` the validation pass at the end of every epoch. ``batch_size`` is the
    config's, capped at ``n_fit``; the last of an epoch's ``n_batches`` may be smaller.
    """

    X_fit: np.ndarray
    y_fit: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    batch_size: int
    n_batches: int  # optimiser steps per epoch
    total_steps: int  # restarts * epochs * n_batches: the whole lineage, not just this call
    w_shape: tuple[int, int, int]  # circuit weights (layers, d, 3)

    @property
    def n_qubits(self) -> int:
        return int(self.X_fit.shape[1])

    @property
    def n_weights(self) -> int:
        """Circuit angles at the front of the flat ``theta``; ``theta[n_weights]`` is the bias."""
        return int(np.prod(self.w_shape))


def _plan_training(X_train: np.ndarray, y_train: np.ndarray, config: VqcConfig,
                   X_val: np.ndarray | None, y_val: np.ndarray | None) -> _TrainingPlan:
    """Check the data, hold out a seeded validation split unless one is given, size the batches.

    Raises ``ValueError`` for malformed data or for only one of ``X_val`` / ``y_val``.
    """
    X_train, y_train = _check_xy(X_train, y_train, "train")
    n_qubits = X_train.shape[1]
    if (X_val is None) != (y_val is None):
        raise ValueError("pass both X_val and y_val, or neither")
    if X_val is None:
        X_fit, y_fit, X_v, y_v = split_validation(X_train, y_train, config.seed)
    else:
        X_fit, y_fit = X_train, y_train
        X_v, y_v = _check_xy(X_val, y_val, "val", n_features=n_qubits)
    batch_size = min(config.batch_size, X_fit.shape[0])
    n_batches = math.ceil(X_fit.shape[0] / batch_size)
    return _TrainingPlan(
        X_fit=X_fit, y_fit=y_fit, X_val=X_v, y_val=y_v, batch_size=batch_size, n_batches=n_batches,
        total_steps=config.restarts * config.epochs * n_batches, w_shape=weight_shape(config, n_qubits),
    )


def _checkpoint_meta(config: VqcConfig, backend: BackendConfig, plan: _TrainingPlan, lineage: str) -> dict[str, Any]:
    """Metadata every checkpoint of this run carries; its identity keys are checked on resume."""
    return {
        "trainer_version": TRAINER_VERSION, "config": config.to_dict(), "config_hash": config.config_hash(),
        "backend": backend.cache_key(),
        "data_sha256": _data_sha256(plan.X_fit, plan.y_fit, plan.X_val, plan.y_val),
        "lineage": lineage, "n_qubits": plan.n_qubits, "total_steps": plan.total_steps,
    }


def _resume_or_begin(store: CheckpointStore, meta: dict[str, Any], config: VqcConfig,
                     n_qubits: int) -> tuple[_RunState, int | None]:
    """The state to continue from and the step it was saved at (None: fresh restart 0).

    Raises ``ValueError`` if the newest verified checkpoint belongs to another trainer
    version, config, data set or backend.
    """
    ckpt = store.latest()
    if ckpt is None:
        return _begin_restart(None, config, 0, n_qubits), None
    for key in ("trainer_version", "config_hash", "data_sha256", "backend"):
        if ckpt.meta.get(key) != meta[key]:
            raise ValueError(
                f"checkpoint lineage {meta['lineage']!r} was written with a different {key} "
                f"({ckpt.meta.get(key)!r} != {meta[key]!r}); use a new lineage_key"
            )
    state = _RunState.from_arrays(ckpt.state)
    return state, state.step


@dataclass(frozen=True)
class _TrainingRun:
    """The fixed parts of one :func:`train_vqc` call, shared by all its restarts and steps."""

    config: VqcConfig
    backend: BackendConfig
    ledger: SubmissionLedger | None
    plan: _TrainingPlan
    store: CheckpointStore
    meta: dict[str, Any]  # from _checkpoint_meta
    on_step: Callable[[dict], None] | None
    numpy_device: _NumpyDevice | None  # set when the numpy simulation runs the steps (_uses_numpy)
    exact_qnode: qml.QNode | None  # set for another exact device: one QNode serves every step
    checkpoint_every: int  # from checkpoint_interval

    def qnode_for(self, *seed_parts: int) -> qml.QNode:
        # With shots every step gets a device seeded from (seed, restart, step), so sampled
        # gradients don't depend on where we resumed.
        if self.exact_qnode is not None:
            return self.exact_qnode
        return _make_qnode(self.backend, self.plan.n_qubits, _derived_seed(self.config.seed, *seed_parts),
                           self.ledger)

    def save(self, state: _RunState) -> None:
        meta = dict(self.meta, step=state.step, restart=state.restart, epoch=state.epoch, batch=state.batch)
        self.store.save(state.step, state.to_arrays(), meta)


@dataclass
class _Pace:
    """Optimiser steps this call has run since ``started`` (perf_counter seconds), for the ETA."""

    started: float = field(default_factory=time.perf_counter)
    steps: int = 0


@dataclass(frozen=True)
class _EpochOrder:
    """An epoch's row permutation of the fit split, and the shuffling RNG state after drawing it."""

    order: np.ndarray  # (n_fit,) row indices
    rng_state_after: dict


def _epoch_order(state: _RunState, n_fit: int) -> _EpochOrder:
    """Re-derive the current epoch's order from the checkpointed pre-epoch RNG state.

    Deriving it (rather than storing it) means a resume mid-epoch replays exactly the same
    minibatches.
    """
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = state.epoch_rng_state
    order = rng.permutation(n_fit)
    return _EpochOrder(order=order, rng_state_after=rng.bit_generator.state)


def _descend(run: _TrainingRun, state: _RunState, X_batch: np.ndarray, y_batch: np.ndarray) -> float:
    """Forward pass, gradient and Adam/GD update of ``state.theta`` on one minibatch.

    ``X_batch`` (B, d) radians, ``y_batch`` (B,) in {0, 1}. Updates ``state``'s parameters and
    optimiser moments in place (not its position); returns the minibatch BCE before the update.
    """
    plan, config = run.plan, run.config
    n_w, w_shape = plan.n_weights, plan.w_shape
    if run.numpy_device is not None:
        loss, grad = _numpy_loss_and_grad(X_batch, y_batch, state.theta[:n_w].reshape(w_shape), state.theta[n_w])
        run.numpy_device.record(len(y_batch))  # one circuit per sample, as default.qubit ran them
    else:
        qnode = run.qnode_for(_TAG_STEP_SHOTS, state.restart, state.step)

        def cost(theta):
            return _bce(_logits(qnode, X_batch, pnp.reshape(theta[:n_w], w_shape), theta[n_w]), y_batch)

        grad_fn = qml.grad(cost)
        grad = np.asarray(grad_fn(pnp.array(state.theta, requires_grad=True)), dtype=np.float64)
        loss = float(grad_fn.forward)
    if config.optimizer == "adam":
        state.theta, state.adam_m, state.adam_v, state.adam_t = adam_update(
            state.theta, grad, state.adam_m, state.adam_v, state.adam_t, config.step_size)
    else:
        state.theta = gd_update(state.theta, grad, config.step_size)
    return loss


def checkpoint_interval(config: VqcConfig, backend: BackendConfig, steps_per_epoch: int) -> int:
    """Optimiser steps between checkpoints: ``config.checkpoint_every`` when set; else 1 where a
    step is billed or sampled (``backend.shots`` set, or a device the price table in effect does not
    list as free), and ``min(EXACT_CHECKPOINT_STEPS, steps_per_epoch)`` on a free exact simulator."""
    if config.checkpoint_every is not None:
        return config.checkpoint_every
    if backend.shots is not None or not is_free_device(backend.device_name, price_table_in_effect()):
        return 1
    return max(1, min(EXACT_CHECKPOINT_STEPS, steps_per_epoch))


def plateaued(val_losses: list[float], patience: int | None, min_delta: float) -> bool:
    """Whether none of the last ``patience`` validation losses is ``min_delta`` below the best one
    before them (False without ``patience``, or with ``patience`` epochs or fewer so far)."""
    if patience is None or len(val_losses) <= patience:
        return False
    return not min(val_losses[-patience:]) < min(val_losses[:-patience]) - min_delta


def _restart_finished(state: _RunState, config: VqcConfig) -> bool:
    return state.epoch >= config.epochs or state.history[state.restart]["stopped_epoch"] is not None


def _lineage_finished(state: _RunState, config: VqcConfig) -> bool:
    return state.restart + 1 >= config.restarts and _restart_finished(state, config)


def _finish_epoch(run: _TrainingRun, state: _RunState, rng_state_after: dict) -> None:
    """Record the epoch's mean train BCE and validation loss/accuracy, move ``state`` to the next
    epoch, end the restart on a validation plateau (:func:`plateaued`), and keep ``state.theta`` as
    best-so-far if this ends a restart with a lower val loss."""
    plan, config = run.plan, run.config
    hist = state.history[state.restart]
    hist["loss"].append(float(np.mean(hist["step_loss"][-plan.n_batches:])))
    ev = evaluate_vqc(
        state.theta[:plan.n_weights].reshape(plan.w_shape), float(state.theta[plan.n_weights]),
        plan.X_val, plan.y_val, config, run.backend,
        shot_seed=_derived_seed(config.seed, _TAG_EVAL_SHOTS, state.restart, state.epoch),
        ledger=run.ledger,
    )
    hist["val_loss"].append(ev["loss"])
    hist["val_accuracy"].append(ev["accuracy"])
    state.epoch += 1
    state.batch = 0
    state.epoch_rng_state = rng_state_after
    if state.epoch < config.epochs and plateaued(hist["val_loss"], config.early_stop_patience,
                                                 config.early_stop_min_delta):
        hist["stopped_epoch"] = state.epoch
        before = min(hist["val_loss"][:-config.early_stop_patience])
        hist["stop_reason"] = (f"validation loss plateau: {config.early_stop_patience} epoch(s) without a loss "
                               f"{config.early_stop_min_delta:g} below {before:.4f} (now {ev['loss']:.4f})")
    if _restart_finished(state, config) and ev["loss"] < state.best_val_loss:
        state.best_val_loss = ev["loss"]
        state.best_restart = state.restart
        state.best_theta = state.theta.copy()


def _run_step(run: _TrainingRun, state: _RunState, epoch: _EpochOrder, pace: _Pace) -> None:
    """One optimiser step on minibatch ``state.batch`` of ``epoch``, then (in this order) the
    epoch's validation if it was the last batch, a checkpoint if due, and ``on_step``."""
    plan = run.plan
    b = state.batch
    rows = epoch.order[b * plan.batch_size:(b + 1) * plan.batch_size]
    epoch_of_step = state.epoch
    loss = _descend(run, state, plan.X_fit[rows], plan.y_fit[rows])
    state.step += 1
    state.batch = b + 1
    pace.steps += 1
    state.history[state.restart]["step_loss"].append(loss)
    if state.batch == plan.n_batches:
        _finish_epoch(run, state, epoch.rng_state_after)
    # The final step always saves, so a finished lineage resumes straight to its result.
    finished = _lineage_finished(state, run.config)
    if state.step % run.checkpoint_every == 0 or finished:
        run.save(state)
    if run.on_step is not None:
        # Planned steps left: an upper bound once early stops may end restarts sooner.
        position = (state.restart * run.config.epochs + state.epoch) * plan.n_batches + state.batch
        elapsed = time.perf_counter() - pace.started
        run.on_step({
            "restart": state.restart, "epoch": epoch_of_step,
            "step": state.step, "total_steps": plan.total_steps, "loss": loss,
            "eta_s": 0.0 if finished else elapsed / pace.steps * (plan.total_steps - position),
        })


def _run_restart(run: _TrainingRun, state: _RunState, pace: _Pace) -> None:
    """Finish restart ``state.restart`` from wherever ``state`` points (mid-epoch after a resume,
    nothing at all if it is already finished): its remaining batches and epochs, in place."""
    while not _restart_finished(state, run.config):
        epoch = _epoch_order(state, run.plan.X_fit.shape[0])
        for _ in range(state.batch, run.plan.n_batches):
            _run_step(run, state, epoch, pace)


def _training_result(run: _TrainingRun, state: _RunState, pace: _Pace,
                     resumed_from: int | None) -> TrainingResult:
    """The kept (lowest final val BCE) restart of a finished ``state`` as a :class:`TrainingResult`."""
    best = state.best_restart
    if best < 0:  # only possible if every restart's validation loss was NaN (diverged)
        raise RuntimeError("no restart produced a finite validation loss; lower step_size")
    best_hist = state.history[best]
    n_w = run.plan.n_weights
    return TrainingResult(
        params=state.best_theta[:n_w].reshape(run.plan.w_shape).copy(),
        bias=float(state.best_theta[n_w]),
        best_restart=best,
        history=[{k: (list(v) if isinstance(v, list) else v) for k, v in h.items()} for h in state.history],
        steps_run=pace.steps,
        resumed_from_step=resumed_from,
        total_steps=run.plan.total_steps,
        val_loss=float(best_hist["val_loss"][-1]),
        val_accuracy=float(best_hist["val_accuracy"][-1]),
        lineage=run.meta["lineage"],
        config_hash=run.meta["config_hash"],
        checkpoint_warnings=tuple(run.store.last_warnings),
        checkpoint_every=run.checkpoint_every,
    )


def train_vqc(
    X_train: np.ndarray,
    y_train: np.ndarray,
    config: VqcConfig,
    *,
    checkpoint_dir: Path,
    lineage: str,
    backend: BackendConfig = BackendConfig(),
    ledger: SubmissionLedger | None = None,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    on_step: Callable[[dict], None] | None = None,
    keep_checkpoints: int = 3,
) -> TrainingResult:
    """Train the VQC with minibatch Adam/GD, ``config.restarts`` seeded restarts, checkpoints.

    ``X_train`` (n, d) float radians in [0, pi]; ``y_train`` (n,) ints in {0, 1}. Circuits run on
    ``backend`` (its device, shots and options; every circuit recorded by ``ledger``). Without
    ``X_val``/``y_val`` a seeded stratified 20% of train is held out (:func:`split_validation`).
    Checkpoints go to ``checkpoint_dir / lineage`` every :func:`checkpoint_interval` steps and
    at the final step; if that lineage already holds a verified checkpoint, training resumes
    from it (a finished lineage returns immediately). Corrupt newest checkpoints are skipped
    with a :class:`~hybrid_resources.data.checkpoints.CheckpointWarning`.

    Kept model: the restart whose *final-epoch* validation BCE is lowest (ties -> earliest); a
    restart's final epoch is its last, or the one an early stop ended it at.
    ``on_step`` gets ``{"restart", "epoch", "step", "total_steps", "loss", "eta_s"}`` after
    every optimiser step (``step`` is global, 1-based; ``total_steps`` the planned steps, an upper
    bound with early stops; ``eta_s`` seconds for the planned steps left, from this call's pace).

    Raises ``ValueError`` if the lineage's checkpoints were written for another config or
    other data (lineages must encode both; see :func:`lineage_key`).
    """
    plan = _plan_training(X_train, y_train, config, X_val, y_val)
    meta = _checkpoint_meta(config, backend, plan, lineage)
    store = CheckpointStore(checkpoint_dir, lineage, keep=keep_checkpoints)
    state, resumed_from = _resume_or_begin(store, meta, config, plan.n_qubits)
    numpy_device = _NumpyDevice.of(backend, plan.n_qubits, ledger) if _uses_numpy(backend) else None
    exact_qnode = _make_qnode(backend, plan.n_qubits, None, ledger) \
        if backend.shots is None and numpy_device is None else None
    run = _TrainingRun(config=config, backend=backend, ledger=ledger, plan=plan, store=store, meta=meta,
                       on_step=on_step, numpy_device=numpy_device, exact_qnode=exact_qnode,
                       checkpoint_every=checkpoint_interval(config, backend, plan.n_batches))
    pace = _Pace()
    while True:
        _run_restart(run, state, pace)
        if state.restart + 1 >= config.restarts:
            break
        state = _begin_restart(state, config, state.restart + 1, plan.n_qubits)
    return _training_result(run, state, pace, resumed_from)
