"""Serving jobs: ingest a scoring or labels file (one partition), act in the registry, score the stream."""

from dagster import (
    AssetSelection,
    Config,
    Failure,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)
from pydantic import Field

from hybrid_assets.common.partitions import (
    labels_files_partitions,
    scoring_files_partitions,
)
from hybrid_assets.serving.assets import score_stream_records
from hybrid_assets.serving.registry import (
    RegistryError,
    approve,
    promote,
    registry_store,
    rollback,
)
from hybrid_resources.approvals import Approvers, StatementRefused
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.stream import ScoringStream
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.quantum.backends import QuantumBackend

ingest_scoring_file_job = define_asset_job(
    "ingest_scoring_file",
    selection=AssetSelection.assets("scoring_batches", "predictions"),
    partitions_def=scoring_files_partitions,
    description="Validate one scoring file (or quarantine it) and score its rows with the champion.",
)

ingest_labels_file_job = define_asset_job(
    "ingest_labels_file",
    selection=AssetSelection.assets("scoring_labels"),
    partitions_def=labels_files_partitions,
    description="Load the labels of rows scored earlier (sample_id, label), or quarantine the file.",
)

class RegistryActionConfig(Config):
    action: str = Field(description="approve | promote | rollback (the signed statement must be of this action)")
    statement: str = Field(description="The signed statement's JSON, as `hybrid-registry sign ACTION TARGET --key "
                                       "~/.ssh/id_ed25519 --as YOUR_NAME --reason WHY` prints it; free text is "
                                       "refused")


@op(description="Approve, promote or roll back in the model registry with a signed statement (the same as "
                "`hybrid-registry approve|promote|rollback --statement FILE`).")
def registry_action(context: OpExecutionContext, config: RegistryActionConfig, warehouse: Warehouse) -> None:
    try:
        approvers = Approvers.from_env()
        if config.action == "approve":
            done = {"approval": approve(warehouse, config.statement, approvers, registry_store())}
        elif config.action == "promote":
            done = {"approval": promote(warehouse, config.statement, approvers, registry_store())["approval_id"]}
        elif config.action == "rollback":
            done = {"champion": rollback(warehouse, config.statement, approvers)}
        else:
            raise RegistryError(f"unknown action {config.action!r}: approve, promote or rollback")
    except (RegistryError, StatementRefused) as error:
        raise Failure(description=str(error)) from error
    context.log.info(f"registry {config.action}: {done}")


@job(description="Approve, promote or roll back in the model registry with a signed statement, from the launchpad.")
def registry():
    registry_action()


class StreamScoringConfig(Config):
    uncertainty_band: float = Field(default=0.25, ge=0.0, description="As for predictions: the classical uncertainty "
                                                                      "band that goes to the quantum model")


# Pool `scoring_stream` (limit 1, the instance's default): one consumer scores the stream at a
# time, however its run was launched.
@op(pool="scoring_stream",
    description="Score a batch of records from the Redis stream; acknowledge them once their predictions are committed.")
def score_stream(context: OpExecutionContext, config: StreamScoringConfig, scoring_stream: ScoringStream,
                 warehouse: Warehouse, quantum_backend: QuantumBackend, cost_policy: CostPolicy) -> None:
    done = score_stream_records(context, stream=scoring_stream, warehouse=warehouse, quantum_backend=quantum_backend,
                                cost_policy=cost_policy, band=config.uncertainty_band)
    context.log.info(f"stream {scoring_stream.stream}: {done}")


@job(description="Score the records waiting on the Redis scoring stream (launched by scoring_stream_sensor).")
def score_stream_job():
    score_stream()


serving_dashboard_job = define_asset_job(
    "serving_dashboard",
    selection=AssetSelection.assets("serving_monitor"),
    description="Refresh the serving dashboard (serving_monitor) now; automation refreshes it after new predictions.",
)
