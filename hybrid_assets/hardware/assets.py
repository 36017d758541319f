"""Hardware evaluation: re-run the promoted circuit's kernel on a managed Braket device, within budget.

Launched on purpose (job ``hardware_evaluation``), never by automation: it spends money. It
computes the test x train kernel of the first ``samples`` x ``train_samples`` embeddings on the
``hardware_backend`` (``braket.aws.qubit`` + device ARN + S3 results location; AWS credentials
come from the environment only) and records how far it lies from the simulator's
``quantum_kernel_test`` on the same entries. The plan is estimated and admitted by the same
``cost_admission`` as the kernel assets, so an over-budget plan fails before any task is sent.

No kernel cache here on purpose: a hardware evaluation is a measurement of the device as it is
now (calibrations drift), so each launch submits its circuits again.
"""

from collections.abc import Iterator

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
    HARDWARE_SUBJECT,
    RegistryError,
    consume_approval,
)
from hybrid_resources.cost_policy import CostPolicy, SubmissionRefused
from hybrid_resources.data.artifacts import info_of
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.quantum.backends import BackendUnavailableError, QuantumBackend
from hybrid_resources.quantum.kernels import (
    compute_kernel,
    kernel_spec,
    planned_circuits,
)

MANAGED_DEVICES = ("braket.aws.qubit",)
DEFAULT_HARDWARE_SHOTS = 100
HARDWARE_JOB = "hardware_evaluation"


def missing_device_settings(backend: QuantumBackend) -> list[str]:
    """What a managed device still needs before anything can be planned (empty when complete)."""
    if backend.device_name not in MANAGED_DEVICES:
        return []
    missing = []
    if not backend.device_arn:
        missing.append("the device ARN: set HYBRID_BRAKET_DEVICE_ARN (or hardware_backend.device_arn), e.g. "
                       "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet")
    elif not backend.device_arn.startswith("arn:aws:braket:"):
        missing.append(f"a Braket device ARN (arn:aws:braket:...) in HYBRID_BRAKET_DEVICE_ARN, got {backend.device_arn!r}")
    if not backend.s3_destination:
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

    Paid: it runs only in the job ``hardware_evaluation`` (Jobs -> hardware_evaluation), after an
    approval. Launched any other way ("Materialize all" on the Lineage page, a backfill) it skips
    itself and sends nothing."""
    if context.job_name != HARDWARE_JOB:
        context.log.warning(f"hardware_kernel_spread runs only in the job {HARDWARE_JOB} (it spends money); "
                            f"skipped in {context.job_name}, nothing was submitted.")
        return
    missing = missing_device_settings(hardware_backend)
    if missing:
        raise Failure(description="Hardware evaluation not configured; nothing was submitted. Missing: "
                                  + "; ".join(missing), metadata={"refused_before_submission": True})
    if not hardware_backend.enabled:
        raise Failure(description="hardware_backend.enabled is false: the hardware evaluation was not run.")
    try:  # a paid run needs a person's approval, one per run
        with warehouse.session() as session:
            approval = consume_approval(session, HARDWARE_SUBJECT, used_by=context.run_id)
    except RegistryError as refusal:
        raise Failure(description=f"Hardware evaluation {refusal}; nothing was submitted.",
                      metadata={"refused_before_submission": True}) from refusal
    context.log.info(f"approved by {approval['actor']} at {approval['approved_at']}: {approval['reason']}")
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

    backend = cost_policy.with_program_sets(hardware_backend.backend_config())
    described = hardware_backend.describe()
    arn = hardware_backend.device_arn
    context.log.info(f"hardware evaluation: {planned_circuits(spec, rows, cols)} circuits x {backend.shots} shots "
                     f"on {arn or backend.device_name}")
    try:
        with cost_policy.ledger(run_id=context.run_id, asset=context.asset_key.to_user_string(),
                                backend=backend) as ledger:
            try:
                result = compute_kernel(X_test[:rows], X_train[:cols], spec=spec, backend=backend, ledger=ledger)
            except BackendUnavailableError as unavailable:
                raise Failure(description=f"Hardware evaluation failed on {arn or backend.device_name}: "
                                          f"{unavailable}", metadata={"refused_before_submission": False}) from unavailable
    except SubmissionRefused:
        # Nothing reached the device: the approval stays for the next run.
        with warehouse.session() as session:
            session.use_approval(approval["approval_id"], None)
        raise
    stats = result.stats
    asset_name = context.asset_key.to_user_string()
    simulator = np.asarray(simulator_kernel[:rows, :cols], dtype=np.float64)
    spread = kernel_spread(simulator, result.matrix, backend.shots)
    report = {
        "device_arn": arn,
        "device": ledger.device,
        "backend": described,
        "circuit_spec_hash": promoted_model["circuit_spec_hash"],
        "model_data_version": promoted_model.get("model_data_version"),
        "samples": rows,
        "train_samples": cols,
        **spread,
        "simulator_kernel": simulator.tolist(),
        "hardware_kernel": result.matrix.tolist(),
        "circuits_submitted": ledger.tasks,
        "shots_submitted": ledger.shots,
        "shots_per_circuit": backend.shots,
        "retries": stats.retries,
        "estimated_cost_usd": ledger.usd,
        "wall_time_s": stats.wall_time_s,
    }
    warehouse.log_experiment(context.run_id, asset_name, {"circuit": promoted_model["circuit"], "backend": described,
                                                          "samples": rows, "train_samples": cols},
                             {key: report[key] for key in ("max_abs_diff", "mean_abs_diff", "shot_noise_std_mean",
                                                           "circuits_submitted", "shots_submitted", "retries",
                                                           "estimated_cost_usd")})
    context.log.info(f"hardware vs simulator on {rows}x{cols} entries: max |diff| {spread['max_abs_diff']:.4f}, "
                     f"mean |diff| {spread['mean_abs_diff']:.4f} (shot noise ~{spread['shot_noise_std_mean']:.4f}); "
                     f"{ledger.tasks} circuits, {stats.retries} retries, est. ${ledger.usd:.2f}")
    yield artifact_output(report, {
        "device_arn": arn,
        "backend": MetadataValue.json(described),
        "circuit_spec_hash": report["circuit_spec_hash"],
        "max_abs_diff": spread["max_abs_diff"],
        "mean_abs_diff": spread["mean_abs_diff"],
        "shot_noise_std_mean": spread["shot_noise_std_mean"],
        "circuits_submitted": ledger.tasks,
        "shots_submitted": ledger.shots,
        "retries": stats.retries,
        "estimated_cost_usd": ledger.usd,
        "wall_time_s": stats.wall_time_s,
        "simulator_kernel": MetadataValue.json(report["simulator_kernel"]),
        "hardware_kernel": MetadataValue.json(report["hardware_kernel"]),
    })


hardware_evaluation_job = define_asset_job(
    HARDWARE_JOB,
    selection=AssetSelection.assets(hardware_kernel_spread),
    description="Re-run the promoted circuit's kernel on the managed Braket device within budget; "
                "record the simulator-vs-hardware spread.",
)
