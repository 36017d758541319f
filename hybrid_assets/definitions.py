"""The one Definitions of this code location (``dagster dev``, ``workspace.yaml``, ``[tool.dagster]``)."""

from __future__ import annotations

import os

from dagster import Definitions, in_process_executor, load_assets_from_modules

from hybrid_assets.assets import (
    classical,
    evaluation,
    hardware,
    landing,
    quantum,
    variational,
)
from hybrid_assets.assets.hardware import (
    hardware_backend_from_env,
    hardware_evaluation_job,
)
from hybrid_assets.jobs import ingest_landing_file_job, refresh_models_job
from hybrid_assets.sensors import automation_sensor, landing_sensor
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.artifacts import ArtifactIOManager
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import QuantumBackend


def quantum_backend_from_env() -> QuantumBackend:
    """The backend named by ``HYBRID_QUANTUM_DEVICE`` / ``HYBRID_QUANTUM_SHOTS`` (exact simulator if unset).

    Every field stays editable in the launchpad; the environment only sets the defaults.
    """
    shots = os.environ.get("HYBRID_QUANTUM_SHOTS", "").strip()
    return QuantumBackend(
        device_name=os.environ.get("HYBRID_QUANTUM_DEVICE", "default.qubit"),
        shots=int(shots) if shots else None,
        device_arn=os.environ.get("HYBRID_BRAKET_DEVICE_ARN", ""),
        s3_destination=os.environ.get("HYBRID_BRAKET_S3_DESTINATION", ""),
    )


WAREHOUSE = Warehouse()
all_assets = load_assets_from_modules([landing, quantum, classical, variational, evaluation, hardware])

defs = Definitions(
    assets=all_assets,
    # One process per run: each step is seconds of work, while a fresh step process would pay
    # the pennylane/dagster imports again. Kernel blocks can become separate steps when N grows.
    executor=in_process_executor,
    jobs=[ingest_landing_file_job, refresh_models_job, hardware_evaluation_job],
    sensors=[landing_sensor, automation_sensor],
    resources={
        "io_manager": ArtifactIOManager(),
        "warehouse": WAREHOUSE,
        "quantum_backend": quantum_backend_from_env(),
        "cost_policy": CostPolicy(
            warehouse=WAREHOUSE,
            run_budget_usd=float(os.environ.get("HYBRID_RUN_BUDGET_USD", "10")),
            daily_budget_usd=float(os.environ.get("HYBRID_DAILY_BUDGET_USD", "50")),
        ),
        "gate_policy": GatePolicy(),
        "hardware_backend": hardware_backend_from_env(),
    },
)
