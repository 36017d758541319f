"""The variational quantum classifier: trained with checkpoints (every step where a step is billed or
sampled), resumable after a crash."""

from dataclasses import dataclass
from typing import Optional

import numpy as np
from dagster import (
    AssetExecutionContext,
    Config,
    DagsterLogManager,
    MetadataValue,
    Output,
    asset,
)
from pydantic import Field

from hybrid_assets.common.automation import ON_NEW_DATA
from hybrid_assets.common.outputs import artifact_output
from hybrid_assets.common.reporting import markdown_image, training_curves_png
from hybrid_assets.training.scale import sample_note, stratified_sample
from hybrid_assets.training.tasks import holdout_metrics, task_of
from hybrid_resources.cost_policy import CostPolicy, SpendLedger
from hybrid_resources.data.artifacts import content_hash, with_info
from hybrid_resources.data.paths import DataLayout
from hybrid_resources.quantum.backends import (
    BackendConfig,
    BackendUnavailableError,
    QuantumBackend,
    call_with_retries,
)
from hybrid_resources.quantum.vqc import (
    TRAINER_VERSION,
    TrainingResult,
    VqcConfig,
    circuits_per_step,
    lineage_key,
    n_circuit_params,
    predict_proba,
    train_vqc,
)

# 10,000 rows x 3 epochs x 2 restarts at batch 32 is 1,500 optimiser steps: seconds on the exact numpy
# simulation, minutes through PennyLane; all 150,000 rows of a large landing table would be ~11,000 steps
# per restart.
DEFAULT_VQC_MAX_TRAIN_ROWS = 10_000


class VqcAssetConfig(Config):
    layers: int = Field(default=2, ge=1, description="StronglyEntanglingLayers layers")
    optimizer: str = Field(default="adam", description="adam | gd")
    step_size: float = Field(default=0.1, gt=0.0)
    batch_size: int = Field(default=32, ge=1)
    epochs: int = Field(default=3, ge=1)
    seed: int = Field(default=0, ge=0)
    restarts: int = Field(default=2, ge=1,
                          description="Seeded random restarts; best validation loss kept; their spread is the "
                                      "reproducibility gate")
    checkpoint_every: Optional[int] = Field(
        default=None, ge=1,
        description="Optimizer steps between checkpoints; unset: every step with shots or on a paid device, every "
                    "100 steps (at most an epoch) on a free exact simulator")
    early_stop_patience: Optional[int] = Field(
        default=None, ge=1,
        description="End a restart after this many epochs without its validation loss improving by "
                    "early_stop_min_delta; unset: every restart runs all its epochs")
    early_stop_min_delta: float = Field(default=1e-3, ge=0.0, description="Validation BCE drop that counts as better")
    log_every: int = Field(default=10, ge=1, description="Steps between progress lines in the run log")
    max_train_rows: int = Field(
        default=DEFAULT_VQC_MAX_TRAIN_ROWS, ge=10,
        description="Above this many train rows the VQC trains on a stratified sample of this many, drawn from "
                    "`seed` (recorded as train_sample); its steps grow linearly with the rows it trains on")


def vqc_train_rows(y_train: np.ndarray, max_rows: int, seed: int) -> tuple[np.ndarray, dict]:
    """The train rows the VQC fits on: all of them up to ``max_rows``, else a seeded stratified
    sample of ``max_rows``; with its description for the metadata."""
    rows = stratified_sample(y_train, max_rows, seed=seed)
    return rows, sample_note(len(y_train), rows, seed=seed, what="vqc_model training rows")


def vqc_training_plan(config: VqcConfig, shots: int | None, n_train: int, n_qubits: int,
                      n_test: int = 0) -> dict[str, int]:
    """Steps and circuits the asset submits: training (each epoch's batches, the last one short,
    then one validation pass) and the ``n_test`` test predictions after it (one circuit per
    row); the admission covers every one of them. With an early stop the steps and circuits are upper
    bounds: the ledger records what actually ran."""
    n_fit = n_train - int(round(0.2 * n_train))
    steps_per_epoch = -(-n_fit // config.batch_size)
    epochs = config.epochs * config.restarts
    # A step's circuits grow linearly with its rows: an epoch's steps cost one pass of n_fit rows.
    epoch_circuits = circuits_per_step(shots, n_fit, n_circuit_params(config, n_qubits)) if n_fit else 0
    circuits = epochs * (epoch_circuits + n_train - n_fit) + n_test
    return {"steps": steps_per_epoch * epochs, "circuits": circuits, "prediction_circuits": n_test}


def vqc_config_of(config: VqcAssetConfig) -> VqcConfig:
    """The trainer's configuration from the asset's."""
    return VqcConfig(layers=config.layers, optimizer=config.optimizer, step_size=config.step_size,
                     batch_size=config.batch_size, epochs=config.epochs, seed=config.seed,
                     restarts=config.restarts, checkpoint_every=config.checkpoint_every,
                     early_stop_patience=config.early_stop_patience, early_stop_min_delta=config.early_stop_min_delta)


def vqc_data_key(embeddings: dict, train_sample: dict) -> str:
    """The data part of the checkpoint lineage: a sample is part of what was trained on, so its size
    and seed enter it."""
    return content_hash(embeddings) + (
        f"/sample:{train_sample['rows']}:{train_sample['seed']}" if train_sample["sampled"] else "")


@dataclass(frozen=True, eq=False)
class VqcRun:
    """One training run of the VQC: the rows it fits on, its configuration, device and lineage."""

    X_train: np.ndarray
    y_train: np.ndarray
    config: VqcConfig
    backend: BackendConfig
    lineage: str
    train_sample: dict
    planned_circuits: int


def ledger_spend(ledger: SpendLedger) -> dict:
    """What the ledger recorded the devices ran, as the telemetry and metadata give it."""
    return {"circuits_executed": ledger.tasks, "shots_executed": ledger.shots, "estimated_cost_usd": ledger.usd}


def train_resumably(run: VqcRun, ledger: SpendLedger, log: DagsterLogManager, log_every: int) -> TrainingResult:
    """:func:`train_vqc` with the backend's retries, each attempt resuming from the last checkpoint of
    the run's lineage; progress every ``log_every`` steps and each retry go to ``log``."""
    def progress(update: dict) -> None:
        if update["step"] % log_every == 0 or update["step"] == update["total_steps"]:
            log.info(f"vqc restart {update['restart']} step {update['step']}/{update['total_steps']} "
                     f"loss {update['loss']:.4f} eta {update['eta_s']:.0f}s")

    def retrying(attempt: int, error: BaseException, delay_s: float) -> None:
        log.warning(f"vqc training hit a transient device error ({error}); retry {attempt + 1} "
                    f"in {delay_s:.1f}s resumes from the last checkpoint")

    def train() -> TrainingResult:
        return train_vqc(run.X_train, run.y_train, run.config, checkpoint_dir=DataLayout.from_env().checkpoints,
                         lineage=run.lineage, backend=run.backend, ledger=ledger, on_step=progress)

    backend = run.backend
    return call_with_retries(train, max_retries=backend.max_retries, backoff_s=backend.backoff_s,
                             seed=backend.seed, on_retry=retrying, on_failure=ledger.failed)


def degraded_vqc_output(reason: str, lineage: str, backend: BackendConfig, spend: dict) -> Output:
    """The artifact of a VQC the device could not train: ``{"degraded": [True]}`` with the reason."""
    info = {"model": "vqc_model", "degraded": True, "degraded_reason": reason, "lineage": lineage,
            "backend": backend.cache_key()}
    return artifact_output(with_info({"degraded": np.array([True])}, info, spend),
                           {"degraded": True, "degraded_reason": reason, "lineage": lineage})


def vqc_refusal(embeddings: dict) -> str:
    """Why the VQC cannot train on ``embeddings`` ("" when it can): it reads one qubit's
    expectation as the probability of class index 1, so binary classification only."""
    task = task_of(embeddings)
    if task == "binary":
        return ""
    dataset = "a regression task" if task == "regression" else f"a {len(embeddings['classes'])}-class task"
    return f"the variational classifier has one readout qubit: binary classification only; this dataset is {dataset}"


def refused_vqc_output(reason: str, task: str) -> Output:
    """The artifact of a VQC that refused the task: no circuit run, ``{"degraded": [True]}`` like a
    degraded one (so evaluation treats it as absent), ``info["refused"]`` the reason."""
    info = {"model": "vqc_model", "degraded": True, "degraded_reason": reason, "refused": reason, "task": task}
    spend = {"circuits_executed": 0, "shots_executed": 0, "estimated_cost_usd": 0.0}
    return artifact_output(with_info({"degraded": np.array([True])}, info, spend),
                           {"refused": reason, "task": task, "degraded": True, "degraded_reason": reason, **spend})


def vqc_output(run: VqcRun, result: TrainingResult, holdout: dict, planned_usd: float, spend: dict) -> Output:
    """The trained VQC's artifact (``params``, ``bias``, ``info``, ``telemetry``) and its metadata."""
    curves = training_curves_png(result.history, "VQC training curves")
    info = {
        "model": "vqc_model", "degraded": False, "config": run.config.to_dict(), "backend": run.backend.cache_key(),
        "lineage": run.lineage, "holdout": holdout, "val_loss": result.val_loss, "best_restart": result.best_restart,
        "restart_val_accuracy": [float(curve["val_accuracy"][-1]) for curve in result.history],
        "planned_circuits": run.planned_circuits, "planned_cost_usd": planned_usd, "train_sample": run.train_sample,
    }
    telemetry = {"training": result.to_metadata(), **spend}
    model = {"params": np.asarray(result.params, dtype=np.float64), "bias": np.array([result.bias], dtype=np.float64)}
    return artifact_output(with_info(model, info, telemetry), {
        **{f"holdout/{name}": value for name, value in holdout.items()},
        "training": MetadataValue.json(telemetry["training"]),
        "training_curves": MetadataValue.md(markdown_image(curves, "VQC training curves")),
        "config": MetadataValue.json(info["config"]),
        "backend": MetadataValue.json(info["backend"]),
        "degraded": False,
        "lineage": run.lineage,
        "restart_val_accuracy": info["restart_val_accuracy"],
        "train_sample": MetadataValue.json(run.train_sample),
        "planned_circuits": run.planned_circuits,
        "planned_cost_usd": planned_usd,
        **spend,
    })


@asset(automation_condition=ON_NEW_DATA, code_version=TRAINER_VERSION, group_name="models",
       pool="quantum", kinds={"pennylane"})
def vqc_model(context: AssetExecutionContext, config: VqcAssetConfig, reduced_embeddings: dict,
              quantum_backend: QuantumBackend, cost_policy: CostPolicy) -> Output:
    """Variational classifier on the same embeddings and split, on the configured quantum backend:
    ``params`` (layers, d, 3) and ``bias`` with ``info`` (config, backend, holdout metrics, restart
    accuracies, ``train_sample``: all train rows, or a seeded stratified sample of
    ``max_train_rows`` above it) and ``telemetry`` (training progress, circuits run, cost). Resumes from its last checkpoint. The whole plan is
    admitted before the first circuit; what the device actually runs is recorded. Binary
    classification only: for another task it refuses, runs nothing and stores the reason
    (:func:`refused_vqc_output`), so the rest of the pipeline runs."""
    refusal = vqc_refusal(reduced_embeddings)
    if refusal:
        context.log.info(f"vqc_model refused: {refusal}")
        return refused_vqc_output(refusal, task_of(reduced_embeddings))
    backend = cost_policy.with_program_sets(quantum_backend.backend_config())
    vqc_config = vqc_config_of(config)
    rows, train_sample = vqc_train_rows(reduced_embeddings["y_train"], config.max_train_rows, config.seed)
    X_train, y_train = reduced_embeddings["X_train"][rows], reduced_embeddings["y_train"][rows]
    plan = vqc_training_plan(vqc_config, backend.shots, len(y_train), X_train.shape[1],
                             n_test=len(reduced_embeddings["X_test"]))
    lineage = lineage_key(vqc_data_key(reduced_embeddings, train_sample), TRAINER_VERSION, vqc_config, backend)
    run = VqcRun(X_train, y_train, vqc_config, backend, lineage, train_sample, plan["circuits"])
    with cost_policy.ledger(run_id=context.run_id, asset="vqc_model", backend=backend) as ledger:
        estimate = ledger.admit(plan["circuits"], backend.shots or 0)  # before the first circuit
        try:
            result = train_resumably(run, ledger, context.log, config.log_every)
        except BackendUnavailableError as unavailable:
            context.log.warning(f"vqc_model degraded, the other models carry on: {unavailable}")
            return degraded_vqc_output(str(unavailable), lineage, backend, ledger_spend(ledger))
        probabilities = predict_proba(result.params, result.bias, reduced_embeddings["X_test"], vqc_config, backend,
                                      ledger=ledger)
    holdout = holdout_metrics(reduced_embeddings["y_test"], probabilities - 0.5)
    if result.resumed_from_step is not None:
        context.log.info(f"resumed from checkpoint step {result.resumed_from_step} of lineage {lineage}")
    return vqc_output(run, result, holdout, estimate.usd, ledger_spend(ledger))
