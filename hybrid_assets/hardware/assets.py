"""Hardware evaluation: re-run the promoted circuit's kernel on a managed device, within budget.

Launched on purpose (job ``hardware_evaluation``), never by automation: it spends money. It
computes the test x train kernel of the first ``samples`` x ``train_samples`` embeddings on the
``hardware_backend`` (``braket.aws.qubit`` + device ARN + S3 results location, AWS credentials
from the environment only; or ``qiskit.remote`` + IBM backend name, the API key from
``QISKIT_IBM_TOKEN`` only) and records how far it lies from the simulator's
``quantum_kernel_test`` on the same entries. The plan is estimated and admitted by the same
``cost_admission`` as the kernel assets, so an over-budget plan fails before any task is sent.

No kernel cache here on purpose: a hardware evaluation is a measurement of the device as it is
now (calibrations drift), so each launch submits its circuits again.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from dagster import (
    AssetExecutionContext,
    AssetSelection,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
    define_asset_job,
)
from pydantic import Field

from hybrid_assets.common.outputs import artifact_output
from hybrid_assets.serving.registry import (
    RegistryError,
    authorize_hardware_run,
    registry_store,
)
from hybrid_resources.approvals import Approvers, StatementRefused
from hybrid_resources.cost_policy import CostPolicy, SpendLedger, SubmissionRefused, device_identity
from hybrid_resources.data.artifacts import info_of
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.quantum.backends import (
    MANAGED_DEVICES,
    BackendConfig,
    BackendUnavailableError,
    QuantumBackend,
    missing_ibm_settings,
)
from hybrid_resources.quantum.kernel_engine import KernelResult
from hybrid_resources.quantum.kernels import (
    KernelSpec,
    compute_kernel,
    kernel_spec,
    planned_circuits,
)

DEFAULT_HARDWARE_SHOTS = 100
HARDWARE_JOB = "hardware_evaluation"


def missing_device_settings(backend: QuantumBackend) -> list[str]:
    """What a managed device still needs before anything can be planned (empty when complete)."""
    if backend.device_name not in MANAGED_DEVICES:
        return []
    missing = []
    if backend.device_name == "qiskit.remote":
        missing += missing_ibm_settings(backend.ibm_backend)
    elif not backend.device_arn:
        missing.append("the device ARN: set HYBRID_BRAKET_DEVICE_ARN (or hardware_backend.device_arn), e.g. "
                       "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet")
    elif not backend.device_arn.startswith("arn:aws:braket:"):
        missing.append(f"a Braket device ARN (arn:aws:braket:...) in HYBRID_BRAKET_DEVICE_ARN, got {backend.device_arn!r}")
    if backend.device_name != "qiskit.remote" and not backend.s3_destination:
        missing.append("the results location: set HYBRID_BRAKET_S3_DESTINATION (or hardware_backend.s3_destination) "
                       "to 'bucket/prefix'")
    if not backend.shots:
        missing.append("shots: a QPU samples; set HYBRID_HARDWARE_SHOTS (or hardware_backend.shots) to N >= 1")
    return missing


def kernel_spread(simulator: np.ndarray, hardware: np.ndarray, shots: int | None) -> dict:
    """Simulator vs hardware on the same entries: max/mean absolute difference, and the mean
    binomial shot-noise std sqrt(k(1-k)/shots) of the simulator's values as a yardstick."""
    diff = np.abs(np.asarray(hardware, dtype=np.float64) - np.asarray(simulator, dtype=np.float64))
    noise = (float(np.mean(np.sqrt(np.clip(simulator * (1.0 - simulator), 0.0, None) / shots)))
             if shots else 0.0)
    return {
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "shot_noise_std_mean": noise,
    }


class HardwareEvaluationConfig(Config):
    samples: int = Field(default=4, ge=1, description="Test rows re-run on the device")
    train_samples: int = Field(default=4, ge=1, description="Train rows (kernel columns) re-run on the device")
    request: str = Field(default="", description="Your signed launch request's JSON, from `hybrid-registry sign "
                                                 "launch hardware_evaluation --key ~/.ssh/id_ed25519 --as YOUR_NAME "
                                                 "--reason WHY`; another person's signed approval must be recorded")


# The report's figures the experiment log records for each hardware evaluation.
EXPERIMENT_FIGURES = ("max_abs_diff", "mean_abs_diff", "shot_noise_std_mean", "circuits_submitted", "shots_submitted",
                      "retries", "estimated_cost_usd")


@dataclass(frozen=True)
class SpreadEntries:
    """The kernel entries the device re-runs: the first ``rows`` test rows x ``cols`` train (on
    the Nyström path, landmark) rows of the simulator's quantum_kernel_test."""

    spec: KernelSpec  # the promoted circuit's
    X_test: np.ndarray  # the first ``rows`` test embeddings
    X_train: np.ndarray  # the first ``cols`` train (or landmark) embeddings
    simulator_kernel: np.ndarray  # quantum_kernel_test's whole matrix
    rows: int
    cols: int

    @property
    def simulator(self) -> np.ndarray:
        """The simulator's values on these entries, float64 (rows, cols)."""
        return np.asarray(self.simulator_kernel[:self.rows, :self.cols], dtype=np.float64)


@dataclass(frozen=True)
class PaidSubmission:
    """Where the hardware kernel is submitted, for which run and asset, on whose approval."""

    run_id: str
    asset: str
    backend: BackendConfig  # the hardware backend, with the cost policy's program sets
    described: dict  # hardware_backend.describe(), as the report and the experiment log record it
    device_arn: str
    approval_id: str

    @property
    def device_label(self) -> str:
        """The device as messages name it: its ARN, else its identity (``qpu/ibm/ibm_torino``)."""
        return self.device_arn or device_identity(self.backend)


@dataclass(frozen=True)
class DeviceMeasurement:
    """What the paid device returned, and the ledger that admitted and recorded its tasks."""

    result: KernelResult
    ledger: SpendLedger


def refuse_unconfigured_device(backend: QuantumBackend) -> None:
    """Raise Failure (nothing submitted) when a managed device lacks settings or the hardware
    backend is disabled; return when it is ready."""
    missing = missing_device_settings(backend)
    if missing:
        raise Failure(description="Hardware evaluation not configured; nothing was submitted. Missing: "
                                  + "; ".join(missing), metadata={"refused_before_submission": True})
    if not backend.enabled:
        raise Failure(description="hardware_backend.enabled is false: the hardware evaluation was not run.")


def take_hardware_approval(warehouse: Warehouse, request: str, promoted_model: dict, run_id: str) -> dict:
    """For one paid run of the promoted quantum model: verify the launcher's signed ``request`` and
    consume another person's signed approval of that version (one per run), returned; raise
    Failure (nothing submitted) when either is missing or invalid."""
    try:
        statement, approval = authorize_hardware_run(
            warehouse, registry_store(), request, Approvers.from_env(), promoted_model=promoted_model, run_id=run_id)
    except (RegistryError, StatementRefused) as refusal:
        raise Failure(description=f"Hardware evaluation {refusal}; nothing was submitted.",
                      metadata={"refused_before_submission": True}) from refusal
    return {**approval, "requester": statement["signer"]}


def comparable_entries(config: HardwareEvaluationConfig, promoted_model: dict, reduced_embeddings: dict,
                       quantum_kernel_test: dict) -> SpreadEntries:
    """The entries to re-run, after checking that the simulator kernel can be compared: not
    degraded, computed with the promoted circuit, and shaped like the embeddings (test x train,
    or test x landmarks on the Nyström path). Raises Failure, naming what to refresh, otherwise."""
    simulator_kernel, simulator_info = quantum_kernel_test["matrix"], info_of(quantum_kernel_test)
    if simulator_kernel.size == 0:
        raise Failure(description="The simulator kernel quantum_kernel_test is degraded (empty); materialize it "
                                  "on a working simulator before comparing with hardware.")
    spec = kernel_spec(promoted_model["circuit"])
    if simulator_info.get("spec_hash") != promoted_model["circuit_spec_hash"]:
        raise Failure(description=f"quantum_kernel_test was computed with circuit "
                                  f"{str(simulator_info.get('spec_hash'))[:12]}, the promoted model uses "
                                  f"{promoted_model['circuit_spec_hash'][:12]}: refresh the models first.")
    X_test, X_train = reduced_embeddings["X_test"], reduced_embeddings["X_train"]
    if "landmark_indices" in quantum_kernel_test:  # the Nyström path: its columns are the landmarks
        X_train = X_train[np.asarray(quantum_kernel_test["landmark_indices"])]
    if simulator_kernel.shape != (len(X_test), len(X_train)):
        raise Failure(description=f"quantum_kernel_test {simulator_kernel.shape} does not match the embeddings "
                                  f"({len(X_test)} test x {len(X_train)} train or landmark rows): refresh the "
                                  "models first.")
    rows, cols = min(config.samples, len(X_test)), min(config.train_samples, len(X_train))
    return SpreadEntries(spec, X_test[:rows], X_train[:cols], simulator_kernel, rows, cols)


def measure_on_device(entries: SpreadEntries, submission: PaidSubmission, cost_policy: CostPolicy,
                      warehouse: Warehouse) -> DeviceMeasurement:
    """The entries' kernel on the paid device, admitted and recorded by the cost policy's ledger.

    An unavailable device raises Failure. A refused submission (SubmissionRefused: nothing reached
    the device) hands the approval back unused and is raised again."""
    backend = submission.backend
    try:
        with cost_policy.ledger(run_id=submission.run_id, asset=submission.asset, backend=backend) as ledger:
            try:
                result = compute_kernel(entries.X_test, entries.X_train, spec=entries.spec, backend=backend,
                                        ledger=ledger)
            except BackendUnavailableError as unavailable:
                raise Failure(description=f"Hardware evaluation failed on {submission.device_label}: "
                                          f"{unavailable}", metadata={"refused_before_submission": False}) from unavailable
    except SubmissionRefused:
        # Nothing reached the device: the approval stays for the next run.
        with warehouse.session() as session:
            session.use_approval(submission.approval_id, None)
        raise
    return DeviceMeasurement(result, ledger)


def spread_report(entries: SpreadEntries, submission: PaidSubmission, measured: DeviceMeasurement,
                  promoted_model: dict) -> dict:
    """The hardware_kernel_spread artifact: device and model, both kernels on the entries, their
    spread (:func:`kernel_spread`), and what the device ran and cost (from the ledger)."""
    simulator, ledger, stats = entries.simulator, measured.ledger, measured.result.stats
    return {
        "device_arn": submission.device_arn,
        "device": ledger.device,
        "backend": submission.described,
        "circuit_spec_hash": promoted_model["circuit_spec_hash"],
        "model_data_version": promoted_model.get("model_data_version"),
        "samples": entries.rows,
        "train_samples": entries.cols,
        **kernel_spread(simulator, measured.result.matrix, submission.backend.shots),
        "simulator_kernel": simulator.tolist(),
        "hardware_kernel": measured.result.matrix.tolist(),
        "circuits_submitted": ledger.tasks,
        "shots_submitted": ledger.shots,
        "shots_per_circuit": submission.backend.shots,
        "retries": stats.retries,
        "estimated_cost_usd": ledger.usd,
        "wall_time_s": stats.wall_time_s,
    }


def spread_metadata(report: dict) -> dict:
    """The Dagster metadata of a :func:`spread_report`: device, spread, what ran and cost, both kernels."""
    return {
        "device_arn": report["device_arn"],
        "backend": MetadataValue.json(report["backend"]),
        **{key: report[key] for key in ("circuit_spec_hash", "max_abs_diff", "mean_abs_diff", "shot_noise_std_mean",
                                        "circuits_submitted", "shots_submitted", "retries", "estimated_cost_usd",
                                        "wall_time_s")},
        "simulator_kernel": MetadataValue.json(report["simulator_kernel"]),
        "hardware_kernel": MetadataValue.json(report["hardware_kernel"]),
    }


def spread_summary(report: dict) -> str:
    """The log line of a :func:`spread_report`: the spread against the shot noise, and what it cost."""
    return (f"hardware vs simulator on {report['samples']}x{report['train_samples']} entries: max |diff| "
            f"{report['max_abs_diff']:.4f}, mean |diff| {report['mean_abs_diff']:.4f} "
            f"(shot noise ~{report['shot_noise_std_mean']:.4f}); {report['circuits_submitted']} circuits, "
            f"{report['retries']} retries, est. ${report['estimated_cost_usd']:.2f}")


@asset(code_version="2", group_name="hardware", pool="quantum", kinds={"braket", "json"}, output_required=False)
def hardware_kernel_spread(
    context: AssetExecutionContext,
    config: HardwareEvaluationConfig,
    promoted_model: dict,
    reduced_embeddings: dict,
    quantum_kernel_test: dict,
    hardware_backend: QuantumBackend,
    cost_policy: CostPolicy,
    warehouse: Warehouse,
) -> Iterator[Output]:
    """The promoted circuit's test x train kernel re-run on the managed device (first ``samples``
    x ``train_samples`` entries), next to the simulator's values and their spread.

    Paid: it runs only in the job ``hardware_evaluation`` (Jobs -> hardware_evaluation), with the
    launcher's signed ``request`` and another person's signed approval. Launched any other way
    ("Materialize all" on the Lineage page, a backfill) it skips itself and sends nothing."""
    if context.job_name != HARDWARE_JOB:
        context.log.warning(f"hardware_kernel_spread runs only in the job {HARDWARE_JOB} (it spends money); "
                            f"skipped in {context.job_name}, nothing was submitted.")
        return
    refuse_unconfigured_device(hardware_backend)
    approval = take_hardware_approval(warehouse, config.request, promoted_model, context.run_id)
    context.log.info(f"requested by {approval['requester']}; approved by {approval['actor']} at "
                     f"{approval['approved_at']}: {approval['reason']}")
    entries = comparable_entries(config, promoted_model, reduced_embeddings, quantum_kernel_test)
    submission = PaidSubmission(context.run_id, context.asset_key.to_user_string(),
                                cost_policy.with_program_sets(hardware_backend.backend_config()),
                                hardware_backend.describe(), hardware_backend.device_arn, approval["approval_id"])
    context.log.info(f"hardware evaluation: {planned_circuits(entries.spec, entries.rows, entries.cols)} circuits x "
                     f"{submission.backend.shots} shots on {submission.device_label}")
    measured = measure_on_device(entries, submission, cost_policy, warehouse)
    report = spread_report(entries, submission, measured, promoted_model)
    warehouse.log_experiment(context.run_id, submission.asset,
                             {"circuit": promoted_model["circuit"], "backend": submission.described,
                              "samples": entries.rows, "train_samples": entries.cols},
                             {key: report[key] for key in EXPERIMENT_FIGURES})
    context.log.info(spread_summary(report))
    yield artifact_output(report, spread_metadata(report))


hardware_evaluation_job = define_asset_job(
    HARDWARE_JOB,
    selection=AssetSelection.assets(hardware_kernel_spread),
    description="Re-run the promoted circuit's kernel on the managed device (Braket or IBM Quantum) within budget; "
                "record the simulator-vs-hardware spread.",
)
