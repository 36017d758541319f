"""Quantum backends: the configurable resource, its plain configuration, device construction, retries.

Switching simulator -> hardware is configuration (launchpad, env), not code:

- ``default.qubit`` with ``shots=None`` (default): exact statevector simulation, embedded
- ``default.qubit`` / ``lightning.qubit`` with ``shots=N``: shot-based simulation, by circuits or,
  with ``shot_emulation``, by drawing each kernel entry from its exact distribution
- ``braket.local.qubit``: the Amazon Braket local simulator
- ``braket.aws.qubit`` + ``device_arn`` + ``s3_destination``: a managed Braket device;
  AWS credentials come from the environment (boto3's own variables), never from config.
- ``qiskit.remote`` + ``ibm_backend`` (+ ``ibm_instance``): an IBM Quantum device through
  pennylane-qiskit and Qiskit Runtime; the API key comes from ``QISKIT_IBM_TOKEN`` only.

A :class:`BackendConfig` is plain, hashable data (no credentials): AWS credentials come from
the environment (boto3's own variables), never from here. ``cache_key()`` identifies which
results a configuration produces, so cached kernel entries are never mixed across devices,
shot counts or seeds.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, TypeVar

from dagster import ConfigurableResource
from pydantic import Field

from hybrid_resources.lazy_modules import module_on_first_use
from hybrid_resources.price_table import is_free_device, price_table_in_effect

qml = module_on_first_use("pennylane")

T = TypeVar("T")

# Devices that can hand back the exact statevector; with shots=None the engine simulates
# states itself (same gates, tested equal to PennyLane) and never submits pair circuits.
STATEVECTOR_DEVICES = frozenset(
    {"default.qubit", "lightning.qubit", "lightning.gpu", "lightning.kokkos", "default.tensor"}
)

# Noiseless shot simulators: a compute-uncompute estimate on them is Binomial(shots, p) / shots
# with p the exact entry, so the kernel engine may draw it instead of running the circuit.
SHOT_EMULATION_DEVICES = frozenset({"default.qubit", "lightning.qubit"})

# Option names that could carry secrets: refused in device_options, dropped from cache keys.
_SECRET_PATTERN = re.compile(r"(secret|token|password|passwd|credential|access_key|session)", re.I)

# Results locations on S3: "s3://bucket/prefix", "bucket/prefix" or "bucket". The bucket check is
# lenient (legacy bucket names may hold capitals and underscores) but refuses "s3:", "gs:" and spaces.
_S3_SCHEME = "s3://"
_S3_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SubmissionLedger(Protocol):
    """Where device work is admitted before it is sent and recorded as the device runs it
    (the cost policy's ledger implements it; see :mod:`hybrid_resources.cost_policy`)."""

    def admit(self, circuits: int, shots_per_circuit: int, *, n_qubits: int = 0, route: str = "pairwise") -> None:
        """Raise (and send nothing) when the planned work is not allowed (over a dollar or time
        budget; ``n_qubits`` and ``route`` size the time estimate)."""

    def watch(self, device: Any) -> None:
        """Record every circuit ``device`` executes from now on."""

    def failed(self, error: BaseException) -> None:
        """Record one failed submission (a transient fault, retried or not)."""


class TransientBackendError(RuntimeError):
    """A fault worth retrying: throttling, a dropped connection, a queue timeout."""


class BackendUnavailableError(RuntimeError):
    """Raised when retries are exhausted; the message says what to do next."""


# Devices on a provider's service: billed, and timed by the ledger's telemetry once they have run.
MANAGED_DEVICES = ("braket.aws.qubit", "qiskit.remote")
IBM_TOKEN_VARIABLE = "QISKIT_IBM_TOKEN"


def is_managed(device_name: str) -> bool:
    """Whether ``device_name`` runs on a provider's service (Braket managed devices, IBM Quantum)."""
    return device_name.startswith("braket.aws") or device_name == "qiskit.remote"


class LedgerRequiredError(RuntimeError):
    """A paid device was asked for without a ledger to admit and record its tasks."""


@dataclass(frozen=True)
class BackendConfig:
    """Which PennyLane device runs kernel circuits, and how work is submitted to it.

    - ``shots``: None = exact/analytic; N >= 1 = estimates from N shots per circuit.
    - ``seed``: seeds the shot sampler (per batch, so results do not depend on thread order).
    - ``max_parallel``: concurrent batch submissions (threads; Braket ``parallel=True``).
    - ``batch_size``: circuits per submitted batch (>= 1).
    - ``max_retries`` / ``backoff_s``: retries of a transient fault, exponential backoff
      ``backoff_s * 2**attempt`` with up to 100% jitter.
    - ``device_options``: extra keyword arguments for ``qml.device`` as sorted (name, value)
      string pairs, e.g. (("device_arn", ...), ("s3_destination_folder", "bucket/prefix")).
      On a ``braket.*`` device ``s3_destination_folder`` ("s3://bucket/prefix", "bucket/prefix" or
      "bucket") becomes Braket's (bucket, prefix) by :func:`s3_destination_folder`; any other
      form is refused here, with a ValueError.
    - ``shot_emulation``: kernel entries are drawn as Binomial(shots, p) / shots from their exact
      values p instead of running circuits: the exact distribution of a noiseless compute-
      uncompute estimate. Only with ``shots`` on a noiseless simulator
      (:data:`SHOT_EMULATION_DEVICES`); noisy simulators and hardware run their circuits.
    - ``programs_per_task``: circuits per quantum task on a managed Braket device that runs
      program sets (one per-task fee per set); 1 = one circuit per task. The cost policy's
      ``with_program_sets`` sets it to the device's limit from the price table.
    """

    device_name: str = "default.qubit"
    shots: int | None = None
    seed: int = 0
    max_parallel: int = 1
    batch_size: int = 64
    max_retries: int = 3
    backoff_s: float = 0.5
    device_options: tuple[tuple[str, str], ...] = ()
    shot_emulation: bool = False
    programs_per_task: int = 1

    def __post_init__(self) -> None:
        if self.shots is not None and self.shots < 1:
            raise ValueError(f"shots must be None or >= 1, got {self.shots}")
        if self.shot_emulation and (self.shots is None or self.device_name not in SHOT_EMULATION_DEVICES):
            raise ValueError(
                f"shot_emulation needs shots on a noiseless simulator ({', '.join(sorted(SHOT_EMULATION_DEVICES))}); "
                f"got {self.device_name!r} with shots={self.shots}. Noisy simulators and hardware run their "
                "circuits: set shot_emulation to false, or shots for an emulated estimate"
            )
        if self.batch_size < 1 or self.max_parallel < 1 or self.max_retries < 0:
            raise ValueError("batch_size and max_parallel must be >= 1, max_retries >= 0")
        if self.programs_per_task < 1 or (self.programs_per_task > 1 and (
                self.device_name != "braket.aws.qubit" or not self.shots)):
            raise ValueError(
                f"programs_per_task={self.programs_per_task}: program sets group shot circuits on a managed Braket "
                "device (braket.aws.qubit with shots); use programs_per_task=1 for other devices"
            )
        for name, value in self.device_options:
            if name == "s3_destination_folder" and self.device_name.startswith("braket."):
                s3_destination_folder(value)  # refuses a malformed results location now, not at submission
            if _SECRET_PATTERN.search(name):
                raise ValueError(
                    f"device option {name!r} looks like a credential; put credentials in the "
                    "environment (AWS_PROFILE / boto3 variables), not in the backend config"
                )

    @property
    def circuits_per_call(self) -> int:
        """Circuits sent in one device call: the unit a transient failure retries.

        The Braket plugin without parallel submission turns a batch into one task per circuit,
        sent in turn, so a throttle in the middle of a batch would make a retry re-send the
        tasks that had completed before it: one circuit per call retries only the throttled
        one (and costs nothing, the plugin sends them one by one anyway).

        With program sets, a call is ``max_parallel`` whole program sets (one task each, which the
        plugin submits together): a retried call re-sends only sets the device did not create.
        """
        if self.programs_per_task > 1:
            return self.programs_per_task * self.max_parallel
        if self.device_name.startswith("braket.") and self.max_parallel == 1:
            return 1
        return self.batch_size

    @property
    def is_exact(self) -> bool:
        """shots is None and the device can return a statevector (exact Gram via states)."""
        return self.shots is None and self.device_name in STATEVECTOR_DEVICES

    def cache_key(self) -> dict[str, Any]:
        """JSON-safe identity of the results this backend produces (no secrets)."""
        key = {
            "device_name": self.device_name,
            "shots": self.shots,
            "seed": self.seed,
            "device_options": {k: v for k, v in sorted(self.device_options) if not _SECRET_PATTERN.search(k)},
        }
        if self.shot_emulation:
            # Emulated draws are not the circuits' draws: a namespace of their own. Only when set,
            # so every existing cache namespace keeps its key.
            key["shot_emulation"] = True
        return key


def s3_destination_folder(destination: str) -> tuple[str, str]:
    """The Braket plugin's ``s3_destination_folder`` (bucket, prefix) from a results location
    (``HYBRID_BRAKET_S3_DESTINATION`` / ``QuantumBackend.s3_destination``).

    Accepts ``s3://bucket/prefix``, ``bucket/prefix`` and ``bucket`` (prefix "pennylane");
    surrounding whitespace and the prefix's leading/trailing slashes are dropped. Raises
    ValueError, naming the accepted forms, for an empty bucket, another scheme (``gs://``,
    ``https://``) or a bucket with characters no S3 bucket name has (``:``, spaces).

    >>> s3_destination_folder("s3://my-bucket/braket/runs"), s3_destination_folder("my-bucket")
    (('my-bucket', 'braket/runs'), ('my-bucket', 'pennylane'))
    """
    text = str(destination).strip()
    rest = text[len(_S3_SCHEME):] if text[:len(_S3_SCHEME)].lower() == _S3_SCHEME else text
    bucket, _, prefix = rest.partition("/")
    if "://" in rest or not _S3_BUCKET.fullmatch(bucket):
        raise ValueError(
            f"S3 results location {destination!r} (HYBRID_BRAKET_S3_DESTINATION / QuantumBackend.s3_destination) "
            "must be 's3://bucket/prefix', 'bucket/prefix' or 'bucket' (an S3 bucket, optionally a key prefix); "
            "other schemes and an empty bucket are refused"
        )
    return bucket, prefix.strip("/") or "pennylane"


def _device_kwargs(config: BackendConfig) -> dict[str, Any]:
    """Keyword arguments for ``qml.device``: ``config.device_options`` and, on a ``braket.*``
    device, ``s3_destination_folder`` as the plugin's (bucket, prefix) (see
    :func:`s3_destination_folder`; ValueError for a malformed one) and parallel submission when
    ``max_parallel`` > 1."""
    kwargs: dict[str, Any] = dict(config.device_options)
    if config.device_name.startswith("braket."):
        dest = kwargs.get("s3_destination_folder")
        if isinstance(dest, str):
            kwargs["s3_destination_folder"] = s3_destination_folder(dest)
        if config.max_parallel > 1:
            # The plugin's batch execution submits a Braket task batch when parallel=True.
            kwargs.setdefault("parallel", True)
            kwargs.setdefault("max_parallel", config.max_parallel)
    return kwargs


def make_device(config: BackendConfig, wires: int, *, seed: int | None = None,
                ledger: SubmissionLedger | None = None):
    """A PennyLane device with ``wires`` qubits for this config: the one place devices are built
    (kernels, the variational classifier and the hardware job all come here).

    Shots are NOT set on the device (deprecated in PennyLane 0.45): callers put them on the
    tapes or the QNode. ``seed`` (default ``config.seed``) seeds simulators that accept one
    (default.qubit, default.mixed, lightning.*); Braket's local simulator has no seed option. The Braket
    plugin is imported only for ``braket.*`` devices; ``braket.aws.qubit`` gets the device ARN
    and S3 results folder from ``device_options``. With a ``ledger``, every circuit the device
    executes is recorded there. A paid device (any device the price table in effect,
    ``HYBRID_PRICE_TABLE`` or the shipped one, does not list as free) is refused without one
    (:class:`LedgerRequiredError`, saying how to pass it): its tasks would be billed unadmitted
    and unrecorded.
    """
    if ledger is None and not is_free_device(config.device_name, price_table_in_effect()):
        raise LedgerRequiredError(
            f"Refused: {config.device_name} is a paid device (not free in the price table in effect), and a device "
            "built without a ledger would run billed tasks that no budget admits and no record counts. Open a ledger "
            "with cost_policy.ledger(run_id=context.run_id, asset=..., backend=backend), admit the plan with "
            "ledger.admit(circuits, shots), and pass ledger=ledger to make_device (or to execute_tapes, "
            "quantum_kernel, train_vqc or predict_proba, which hand it on)."
        )
    kwargs = _device_kwargs(config)
    name = config.device_name
    if name.startswith("braket."):
        try:
            import braket.pennylane_plugin  # noqa: F401  (registers the braket.* devices)
        except ImportError as exc:  # pragma: no cover - the plugin is a project dependency
            raise BackendUnavailableError(
                "amazon-braket-pennylane-plugin is not installed: pip install amazon-braket-pennylane-plugin"
            ) from exc
    elif name == "qiskit.remote":
        kwargs = {"backend": ibm_backend(kwargs.get("backend", ""), kwargs.get("instance", ""))}
    elif name in ("default.qubit", "default.mixed", "lightning.qubit", "lightning.gpu", "lightning.kokkos"):
        kwargs.setdefault("seed", config.seed if seed is None else seed)
    device = qml.device(name, wires=wires, **kwargs)
    _fit_program_sets(device, config)
    if ledger is not None:
        ledger.watch(device)
    return device


def ibm_service(token: str, instance: str) -> Any:
    """A Qiskit Runtime service on IBM Quantum Platform: the boundary to IBM (tests fake it here)."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    return QiskitRuntimeService(channel="ibm_quantum_platform", token=token, instance=instance or None)


def missing_ibm_settings(name: str) -> list[str]:
    """What IBM Quantum (``qiskit.remote``) still needs before backend ``name`` can be reached:
    the backend name and the API key in the environment (empty when both are there)."""
    return ([] if name else ["the IBM backend: set HYBRID_IBM_BACKEND (or the backend resource's ibm_backend), "
                             "e.g. ibm_torino"]) \
        + ([] if os.environ.get(IBM_TOKEN_VARIABLE, "").strip() else
           [f"the IBM Quantum API key: set {IBM_TOKEN_VARIABLE} in the environment (never in config)"])


def ibm_backend(name: str, instance: str) -> Any:
    """The IBM Quantum backend ``name`` (e.g. ``ibm_torino``) of ``instance`` (its CRN, or empty
    for the account's default), with the API key from ``QISKIT_IBM_TOKEN``. Raises
    BackendUnavailableError saying what to set when either is missing or the service refuses."""
    missing = missing_ibm_settings(name)
    if missing:
        raise BackendUnavailableError("IBM Quantum (qiskit.remote) is not configured. Missing: " + "; ".join(missing))
    token = os.environ[IBM_TOKEN_VARIABLE].strip()
    try:
        return ibm_service(token, instance).backend(name)
    except Exception as refused:  # noqa: BLE001 - the service's own errors, reported without the key
        raise BackendUnavailableError(
            f"IBM Quantum refused backend {name!r}{' of instance ' + instance if instance else ''}: "
            f"{type(refused).__name__}: {str(refused).replace(token, '***')}. Check the backend name and instance "
            f"(HYBRID_IBM_BACKEND, HYBRID_IBM_INSTANCE) and the API key in {IBM_TOKEN_VARIABLE}.") from refused


def _fit_program_sets(device: Any, config: BackendConfig) -> None:
    """Make the Braket plugin's program sets hold at most ``config.programs_per_task`` circuits
    and at most the device's total shots per set.

    The plugin packs a batch into program sets of the device's ``maximumExecutables`` (its private
    ``_max_program_set_executables``, None without the program-set action) and ignores
    ``maximumTotalShots``: lowering that one number makes each set the size the cost policy priced
    (``programs_per_task``; 1 keeps one circuit per task, as before program sets) and keeps
    programs x shots within the device's limit, which the service would otherwise refuse.
    """
    limit = getattr(device, "_max_program_set_executables", None)
    if not limit:
        return
    size = min(int(limit), config.programs_per_task)
    action = getattr(getattr(getattr(device, "_device", None), "properties", None), "action", {}) or {}
    max_shots = next((getattr(a, "maximumTotalShots", None) for k, a in action.items()
                      if str(getattr(k, "value", k)) == "braket.ir.openqasm.program_set"), None)
    if max_shots and config.shots:
        size = min(size, max(1, int(max_shots) // config.shots))
    device._max_program_set_executables = size


_TRANSIENT_NAMES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailableException",
        "InternalServiceException",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
    }
)
_TRANSIENT_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "ServiceUnavailable",
     "ServiceUnavailableException", "InternalServiceException", "RequestTimeout"}
)


def is_transient_error(exc: BaseException) -> bool:
    """Default classifier: our TransientBackendError, connection/timeout errors, AWS throttling.

    botocore is not imported: errors are recognised by class name and ClientError code.
    """
    if isinstance(exc, (TransientBackendError, ConnectionError, TimeoutError)):
        return True
    if type(exc).__name__ in _TRANSIENT_NAMES:
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code in _TRANSIENT_CODES
    return False


def call_with_retries(
    fn: Callable[[], T],
    *,
    max_retries: int,
    backoff_s: float,
    seed: int = 0,
    sleep: Callable[[float], None] = time.sleep,
    is_transient: Callable[[BaseException], bool] = is_transient_error,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
) -> T:
    """Call ``fn()``; retry transient failures up to ``max_retries`` times.

    Delay before retry k (0-based) is ``backoff_s * 2**k * (1 + u)``, u ~ U[0, 1) from a
    ``random.Random(seed)`` (jitter spreads retries of parallel workers; seeded for tests).
    Non-transient errors propagate at once. When retries are exhausted raises
    :class:`BackendUnavailableError` chained to the last error.
    ``on_retry(attempt, exc, delay_s)`` is called before each sleep (for counting/logging);
    ``on_failure(exc)`` for every transient failure, the last one included (for the ledger).
    """
    rng = random.Random(seed)
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified just below
            if not is_transient(exc):
                raise
            if on_failure is not None:
                on_failure(exc)
            if attempt >= max_retries:
                raise BackendUnavailableError(
                    f"quantum backend still failing after {max_retries} retries "
                    f"({type(exc).__name__}: {exc}). Check the device status and your quota "
                    "(for Braket: the device availability window and AWS credentials), then "
                    "re-run; or raise max_retries / backoff_s in the backend config, or switch "
                    "device_name to a local simulator (default.qubit)."
                ) from exc
            delay = backoff_s * (2**attempt) * (1.0 + rng.random())
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            sleep(delay)
            attempt += 1


class QuantumBackend(ConfigurableResource):
    """A PennyLane device plus how to submit to it."""

    enabled: bool = Field(default=True, description="False: skip the quantum stage; the classical path still delivers")
    device_name: str = Field(default="default.qubit", description="PennyLane device name")
    shots: Optional[int] = Field(default=None, description="None = exact/analytic; N = shot-based estimates")
    seed: int = Field(default=7, description="Seed of the shot sampler (reproducible estimates)")
    max_parallel: int = Field(default=1, description="Concurrent batch submissions to the device")
    batch_size: int = Field(default=64, description="Circuits per submitted batch")
    max_retries: int = Field(default=3, description="Retries of a transient device error, with backoff")
    backoff_s: float = Field(default=0.5, ge=0.0, description="First retry delay in seconds; doubles each retry, with jitter")
    device_arn: str = Field(default="", description="Braket device ARN (braket.aws.qubit only)")
    s3_destination: str = Field(default="", description="Braket results location: 's3://bucket/prefix', "
                                                       "'bucket/prefix' or 'bucket' (braket.aws.qubit only)")
    shot_emulation: bool = Field(
        default=False, description="With shots on default.qubit/lightning.qubit: draw kernel entries from their exact "
                                   "binomial distribution instead of running circuits")
    ibm_backend: str = Field(default="", description="IBM Quantum backend name, e.g. ibm_torino (qiskit.remote only; "
                                                     "the API key comes from QISKIT_IBM_TOKEN)")
    ibm_instance: str = Field(default="", description="IBM Quantum instance CRN (qiskit.remote only; empty: the "
                                                      "account's default)")

    def backend_config(self) -> BackendConfig:
        options: dict[str, str] = {}
        if self.device_arn:
            options["device_arn"] = self.device_arn
        if self.s3_destination:
            options["s3_destination_folder"] = self.s3_destination
        if self.device_name == "qiskit.remote":
            options |= {"backend": self.ibm_backend, **({"instance": self.ibm_instance} if self.ibm_instance else {})}
        return BackendConfig(
            device_name=self.device_name,
            shots=self.shots,
            seed=self.seed,
            max_parallel=self.max_parallel,
            batch_size=self.batch_size,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            device_options=tuple(sorted(options.items())),
            shot_emulation=self.shot_emulation,
        )

    def describe(self) -> dict[str, Any]:
        """What produced a result, for metadata and the audit trail (no credentials here)."""
        return self.backend_config().cache_key()
