"""A fake managed Braket device, faked at the device boundary only.

The Braket PennyLane plugin's ``BraketAwsQubitDevice.__init__`` builds its device with
``AwsDevice(device_arn, aws_session=...)`` (the name imported into
``braket.pennylane_plugin.braket_device``) and from then on talks to it only through
``type``, ``name``, ``arn``, ``properties``, ``aws_session.add_braket_user_agent``,
``run(...)`` and ``run_batch(...).results(...)``. :func:`install_fake_braket` swaps that one
name for :class:`FakeAwsDevice`; everything above it (the plugin, PennyLane, our kernel
engine, cost admission, batching, retries, the Dagster asset) is the real code.

The fake behaves like a QPU (``AwsDeviceType.QPU``, sampling result types only, no
statevector) and executes each task on Braket's real ``LocalSimulator``, so results carry real
shot noise. Every task, circuit and shot that reaches it is counted in a :class:`BraketLedger`.
It can be told to throttle (raise a ``ThrottlingException`` like boto3's modeled Braket error)
for the first ``k`` calls, or always.

By default the fake does not advertise ``OPENQASM_PROGRAM_SET``, so the plugin's
``_max_program_set_executables`` is ``None`` and (with ``parallel=False``) each circuit is one
``run(...)`` = one quantum task, which is how the cost policy prices it. ``program_sets=True``
keeps the simulator's program-set action, so the plugin submits whole batches as program sets.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from braket.aws import AwsDevice, AwsDeviceType
from braket.device_schema import DeviceActionType
from braket.devices import LocalSimulator
from braket.task_result import SimulatorMetadata

QPU_RESULT_TYPES = {"Sample", "Expectation", "Variance", "Probability"}


class ThrottlingException(ClientError):
    """What boto3 raises for Braket's modeled ``ThrottlingException`` (a ``ClientError`` subclass
    whose class name and ``response['Error']['Code']`` are both ``ThrottlingException``)."""

    def __init__(self, operation: str = "CreateQuantumTask") -> None:
        super().__init__({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                          "ResponseMetadata": {"HTTPStatusCode": 429}}, operation)


class ServiceUnavailable(ClientError):
    """A device that went offline: boto3's ``ServiceUnavailableException`` on every call."""

    def __init__(self, operation: str = "CreateQuantumTask") -> None:
        super().__init__({"Error": {"Code": "ServiceUnavailableException", "Message": "Device is offline"},
                          "ResponseMetadata": {"HTTPStatusCode": 503}}, operation)


def counted_tasks(count_file: str | Path) -> tuple[int, int]:
    """(tasks, shots) a fake device appended to ``count_file``, in any number of processes."""
    lines = Path(count_file).read_text().splitlines() if Path(count_file).exists() else []
    return len(lines), sum(int(line.split()[1]) for line in lines)


@dataclass
class BraketLedger:
    """What reached the fake device. ``tasks``: quantum tasks created (what AWS bills per task);
    ``circuits``: executables in them (1 per task unless program sets); ``shots``: shots billed."""

    throttle_first: int = 0          # raise ThrottlingException on the first k submissions
    throttle_always: bool = False    # ... or on every submission
    throttle_at: tuple[int, ...] = ()  # ... or on these submissions (1-based), e.g. mid-batch
    fail_after_tasks: int | None = None  # once this many tasks ran, refuse every submission (device offline)
    program_sets: bool = False       # advertise OPENQASM_PROGRAM_SET like devices that support it
    count_file: str | None = None    # also append "<executables> <shots>" per task here (counts across processes)
    queue_s: float = 0.0             # each task "waited" this long in the queue: its createdAt is that much earlier
    tasks: int = 0
    circuits: int = 0
    shots: int = 0
    submissions: int = 0             # run / run_batch calls, including throttled ones
    task_programs: list[int] = field(default_factory=list)  # executables in each task, in order
    task_shots: list[int] = field(default_factory=list)     # shots billed for each task, in order
    batch_max_parallel: list[Any] = field(default_factory=list)  # max_parallel of each run_batch call
    throttled: int = 0
    devices_created: int = 0
    device_arns: list[str] = field(default_factory=list)
    s3_destinations: list[Any] = field(default_factory=list)
    credential_methods: list[str | None] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    task_times: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # task id -> (createdAt, endedAt)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _admit_submission(self, operation: str) -> None:
        with self._lock:
            self.submissions += 1
            if self.fail_after_tasks is not None and self.tasks >= self.fail_after_tasks:
                raise ServiceUnavailable(operation)
            if self.throttle_always or self.submissions <= self.throttle_first or self.submissions in self.throttle_at:
                self.throttled += 1
                raise ThrottlingException(operation)

    def _count(self, specification: Any, shots: int, s3_destination: Any) -> None:
        executables = int(getattr(specification, "total_executables", 1) or 1)
        with self._lock:
            self.tasks += 1
            self.circuits += executables
            task_shots = executables * int(shots or 0) if not hasattr(specification, "total_shots") \
                else int(specification.total_shots)
            self.shots += task_shots
            self.task_programs.append(executables)
            self.task_shots.append(task_shots)
            self.s3_destinations.append(s3_destination)
            if self.count_file:
                with open(self.count_file, "a") as handle:
                    handle.write(f"{executables} {task_shots}\n")


class _FakeAwsSession:
    """The part of ``AwsSession`` the plugin touches at construction."""

    def __init__(self, ledger: BraketLedger) -> None:
        self._ledger = ledger

    def add_braket_user_agent(self, user_agent: str) -> None:
        self._ledger.user_agents.append(user_agent)


class _FakeTaskBatch:
    """Shape of ``AwsQuantumTaskBatch`` the plugin uses: ``results(...)``, ``tasks``, ``unsuccessful``."""

    def __init__(self, tasks: list) -> None:
        self.tasks = tasks
        self.unsuccessful: set = set()

    def results(self, fail_unsuccessful: bool = False, max_retries: int = 3, use_cached_value: bool = True) -> list:
        return [task.result() for task in self.tasks]


class FakeAwsDevice:
    """Stands in for ``braket.aws.AwsDevice``: a QPU whose tasks run on ``LocalSimulator``.

    Bound to a ledger by :meth:`bound_to`; the plugin instantiates the bound class itself.
    """

    # Class constants the plugin reads from the name ``AwsDevice`` (e.g. default shots).
    DEFAULT_SHOTS_QPU = AwsDevice.DEFAULT_SHOTS_QPU
    DEFAULT_SHOTS_SIMULATOR = AwsDevice.DEFAULT_SHOTS_SIMULATOR
    DEFAULT_SHOTS_PROGRAM_SET = AwsDevice.DEFAULT_SHOTS_PROGRAM_SET
    DEFAULT_MAX_PARALLEL = AwsDevice.DEFAULT_MAX_PARALLEL
    ledger: BraketLedger

    @classmethod
    def bound_to(cls, ledger: BraketLedger) -> type["FakeAwsDevice"]:
        return type("FakeAwsDevice", (cls,), {"ledger": ledger})

    def __init__(self, arn: str, aws_session: Any = None, noise_model: Any = None) -> None:
        if not arn.startswith("arn:aws:braket:"):
            raise ValueError(f"not a Braket device ARN: {arn!r}")
        ledger = self.ledger
        ledger.devices_created += 1
        ledger.device_arns.append(arn)
        # Where boto3 would find credentials (never the credentials themselves): must be the env.
        ledger.credential_methods.append(_credential_method())
        self.arn = arn
        self.name = arn.rsplit("/", 1)[-1]
        self.type = AwsDeviceType.QPU
        self.aws_session = _FakeAwsSession(ledger)
        self._simulator = LocalSimulator()
        self.properties = _qpu_properties(self._simulator.properties, keep_program_sets=ledger.program_sets)

    def run(self, task_specification: Any, s3_destination_folder: Any = None, shots: int | None = None,
            poll_timeout_seconds: float = 0, poll_interval_seconds: float | None = None,
            inputs: dict[str, float] | None = None, *args: Any, **kwargs: Any):
        self.ledger._admit_submission("CreateQuantumTask")
        shots = _task_shots(task_specification, shots)
        task = self._timed(lambda: self._simulator.run(task_specification, shots=shots or 0, inputs=inputs or {}))
        self.ledger._count(task_specification, shots or 0, s3_destination_folder)
        return task

    def _timed(self, run: Any) -> Any:
        """Run one task as if it had waited ``ledger.queue_s`` in the device's queue first: its
        result's createdAt is moved that much earlier (the service's timestamps: created, ended)."""
        task = run()
        result = task.result()
        meta = result.task_metadata
        started = datetime.fromisoformat(meta.createdAt.replace("Z", "+00:00"))
        ended = datetime.fromisoformat(meta.endedAt.replace("Z", "+00:00"))
        created = started - timedelta(seconds=self.ledger.queue_s)
        shifted = meta.copy(update={"createdAt": created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"})
        # A program set's result keeps its metadata behind a read-only property.
        setattr(result, "_task_metadata" if hasattr(result, "_task_metadata") else "task_metadata", shifted)
        if "quantum-simulator" in self.arn:
            # A managed simulator (SV1) also reports how long it ran.
            duration = SimulatorMetadata(executionDuration=int((ended - started).total_seconds() * 1e3))
            result.additional_metadata = result.additional_metadata.copy(update={"simulatorMetadata": duration})
        self.ledger.task_times[task.id] = (created, ended)
        return task

    def run_batch(self, task_specifications: Any, s3_destination_folder: Any = None, shots: Any = None,
                  max_parallel: int | None = None, max_connections: int = 100, poll_timeout_seconds: float = 0,
                  poll_interval_seconds: float = 1, inputs: Any = None, *args: Any, **kwargs: Any):
        specifications = task_specifications if isinstance(task_specifications, list) else [task_specifications]
        shot_list = list(shots) if isinstance(shots, (list, tuple)) else [shots] * len(specifications)
        if isinstance(inputs, list):
            input_list = inputs or [{}] * len(specifications)
        else:
            input_list = [inputs or {}] * len(specifications)
        self.ledger._admit_submission("CreateQuantumTask")
        self.ledger.batch_max_parallel.append(max_parallel)
        tasks = []
        for specification, task_shots, task_inputs in zip(specifications, shot_list, input_list):
            task_shots = _task_shots(specification, task_shots)
            tasks.append(self._timed(lambda: self._simulator.run(specification, shots=task_shots or 0,
                                                                 inputs=task_inputs or {})))
            self.ledger._count(specification, task_shots or 0, s3_destination_folder)
        return _FakeTaskBatch(tasks)


def _task_shots(specification: Any, shots: int | None) -> int | None:
    """Shots of one task as AWS reads them: a program set sent with the SDK's
    ``DEFAULT_SHOTS_PROGRAM_SET`` (-1, what the plugin's ``run_batch`` of program sets passes)
    takes its own ``total_shots``."""
    if shots == AwsDevice.DEFAULT_SHOTS_PROGRAM_SET and hasattr(specification, "total_shots"):
        return int(specification.total_shots)
    return shots


def _credential_method() -> str | None:
    """How boto3 would resolve AWS credentials here ("env" when from AWS_* variables), or None."""
    import boto3

    credentials = boto3.Session().get_credentials()
    return None if credentials is None else credentials.method


def _qpu_properties(simulator_properties: Any, *, keep_program_sets: bool) -> Any:
    """The simulator's capabilities cut down to what a gate-model QPU offers: OpenQASM with
    sampling result types only (no StateVector/Amplitude/DensityMatrix), no JAQCD."""
    properties = simulator_properties.copy(deep=True)
    openqasm = properties.action[DeviceActionType.OPENQASM]
    openqasm.supportedResultTypes = [rt for rt in openqasm.supportedResultTypes if rt.name in QPU_RESULT_TYPES]
    keep = {DeviceActionType.OPENQASM} | ({DeviceActionType.OPENQASM_PROGRAM_SET} if keep_program_sets else set())
    properties.action = {kind: action for kind, action in properties.action.items() if kind in keep}
    return properties


def install_fake_braket(monkeypatch: pytest.MonkeyPatch, **ledger_options: Any) -> BraketLedger:
    """Replace the plugin's ``AwsDevice`` with a fake bound to a new ledger; returns the ledger."""
    from braket.pennylane_plugin import braket_device

    ledger = BraketLedger(**ledger_options)
    monkeypatch.setattr(braket_device, "AwsDevice", FakeAwsDevice.bound_to(ledger))
    return ledger


@pytest.fixture
def fake_braket(monkeypatch: pytest.MonkeyPatch) -> BraketLedger:
    """The fake paid device installed; adjust ``throttle_first`` / ``throttle_always`` on the ledger."""
    return install_fake_braket(monkeypatch)
