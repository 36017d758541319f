"""Every resource, configured from the environment.

Settings come from resource config, and from the environment through ``dagster.EnvVar``: a
variable that is set becomes an ``EnvVar`` that Dagster resolves when a run starts (the
launchpad shows which variable sets the field), and an unset one leaves the documented default.

| variable | resource field |
| --- | --- |
| ``HYBRID_QUANTUM_DEVICE``, ``HYBRID_QUANTUM_SHOTS`` | ``quantum_backend.device_name``, ``.shots`` |
| ``HYBRID_SHOT_EMULATION`` (``1``/``true``) | ``quantum_backend.shot_emulation`` (read when the code location loads) |
| ``HYBRID_BRAKET_DEVICE_ARN``, ``HYBRID_BRAKET_S3_DESTINATION`` | ``.device_arn``, ``.s3_destination`` of both backends |
| ``HYBRID_HARDWARE_SHOTS`` | ``hardware_backend.shots`` (default 100) |
| ``HYBRID_HARDWARE_DEVICE`` | ``hardware_backend.device_name`` (``braket.aws.qubit`` by default, or ``qiskit.remote``) |
| ``HYBRID_IBM_BACKEND``, ``HYBRID_IBM_INSTANCE`` | ``quantum_backend.ibm_backend``, ``.ibm_instance`` of both backends (with ``qiskit.remote``; the API key is ``QISKIT_IBM_TOKEN``, read from the environment only) |
| ``HYBRID_RUN_BUDGET_USD``, ``HYBRID_DAILY_BUDGET_USD`` | ``cost_policy.run_budget_usd``, ``.daily_budget_usd`` |
| ``HYBRID_PRICE_TABLE`` | ``cost_policy.price_table_path`` |
| ``HYBRID_TIME_BUDGET_S`` | ``cost_policy.time_budget_s`` (estimated device wall time of one step; ``hybrid-plan``; read when the code location loads) |
| ``HYBRID_QUANTUM_ROWS_PER_DAY`` | ``cost_policy.quantum_rows_per_day`` (scoring quota, default 1000) |
| ``HYBRID_MIN_MARGIN`` | ``gate_policy.min_margin`` (read when the code location loads, like the budgets) |
| ``HYBRID_KERNEL_PATH``, ``HYBRID_MAX_EXACT_TRAIN`` | ``gate_policy.kernel_path`` (auto, exact, nystrom), ``.max_exact_train`` |
| ``HYBRID_TARGET_DEVICES`` | ``gate_policy.target_devices`` (devices whose transpiled circuit the ceilings judge, comma-separated) |
| ``HYBRID_DASK``, ``HYBRID_DASK_SCHEDULER`` | ``dask.enabled`` (a LocalCluster per step), ``dask.scheduler_address`` (a running cluster; enables it); read when the code location loads |
| ``HYBRID_EXECUTOR``, ``HYBRID_MAX_CONCURRENT_STEPS`` | the step executor (in_process, multiprocess, k8s; ``hybrid_assets.executors``) |
| ``HYBRID_ARTIFACT_KEEP_VERSIONS`` | ``io_manager.keep_versions`` |
| ``HYBRID_WAREHOUSE_LOCK_WAIT_S`` | ``warehouse.lock_wait_s`` (read when the warehouse is opened) |
| ``HYBRID_REDIS_URL``, ``HYBRID_SCORING_STREAM`` | ``scoring_stream.url``, ``.stream`` (records to score) |

``HYBRID_DATA_DIR`` (the data root), ``HYBRID_LANDING_URI``, ``HYBRID_SCORING_URI``,
``HYBRID_LABELS_URI`` and ``HYBRID_DATASET_CONTRACT`` (the dataset contract file) are read when a
step or sensor runs; ``HYBRID_APPROVERS_FILE`` (who may sign
registry statements) when a registry action or a paid hardware run is checked. AWS credentials are boto3's own
``AWS_*`` variables and never pass through a resource.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar

from hybrid_assets.hardware.assets import DEFAULT_HARDWARE_SHOTS
from hybrid_resources.compute import DaskCluster
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.artifacts import ArtifactIOManager
from hybrid_resources.data.stream import ScoringStream
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import QuantumBackend

__all__ = ["dask_from_env", "decimal_from_env", "flag_from_env", "from_env", "hardware_backend_from_env",
           "quantum_backend_from_env", "resources_from_env"]


def from_env(name: str, default: Any) -> Any:
    """``EnvVar(name)`` (``EnvVar.int`` for an integer setting) when the environment sets ``name``,
    else ``default``. Dagster resolves an EnvVar when a run starts."""
    if not os.environ.get(name, "").strip():
        return default
    return EnvVar.int(name) if isinstance(default, int) or name.endswith("_SHOTS") else EnvVar(name)


def flag_from_env(name: str) -> bool:
    """A yes/no setting: true for 1, true, yes or on. Dagster's config takes an EnvVar for text
    and integer fields only, so it is read once, when the code location loads."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def decimal_from_env(name: str, default: float) -> float:
    """A decimal setting (the budgets). Dagster's config takes an EnvVar for text and integer
    fields only, so these are read once, when the code location loads."""
    return float(EnvVar(name).get_value() or default)


def quantum_backend_from_env() -> QuantumBackend:
    """The backend of the kernels, the VQC and the reproducibility repeats (exact simulator if unset)."""
    return QuantumBackend(
        device_name=from_env("HYBRID_QUANTUM_DEVICE", "default.qubit"),
        shots=from_env("HYBRID_QUANTUM_SHOTS", None),
        shot_emulation=flag_from_env("HYBRID_SHOT_EMULATION"),
        device_arn=from_env("HYBRID_BRAKET_DEVICE_ARN", ""),
        s3_destination=from_env("HYBRID_BRAKET_S3_DESTINATION", ""),
        ibm_backend=from_env("HYBRID_IBM_BACKEND", ""),
        ibm_instance=from_env("HYBRID_IBM_INSTANCE", ""),
    )


def hardware_backend_from_env() -> QuantumBackend:
    """The managed device of the hardware evaluation job: braket.aws.qubit, or qiskit.remote (IBM
    Quantum) with ``HYBRID_HARDWARE_DEVICE=qiskit.remote``."""
    return QuantumBackend(
        device_name=from_env("HYBRID_HARDWARE_DEVICE", "braket.aws.qubit"),
        ibm_backend=from_env("HYBRID_IBM_BACKEND", ""),
        ibm_instance=from_env("HYBRID_IBM_INSTANCE", ""),
        shots=from_env("HYBRID_HARDWARE_SHOTS", DEFAULT_HARDWARE_SHOTS),
        device_arn=from_env("HYBRID_BRAKET_DEVICE_ARN", ""),
        s3_destination=from_env("HYBRID_BRAKET_S3_DESTINATION", ""),
    )


def dask_from_env() -> DaskCluster:
    """Where large kernels' blocks run: off unless ``HYBRID_DASK`` is true (a LocalCluster per
    step) or ``HYBRID_DASK_SCHEDULER`` names a running cluster."""
    scheduler = os.environ.get("HYBRID_DASK_SCHEDULER", "").strip()
    return DaskCluster(enabled=flag_from_env("HYBRID_DASK") or bool(scheduler), scheduler_address=scheduler)


def resources_from_env() -> dict[str, Any]:
    """Every resource, configured from the environment where it says so (see the module docstring)."""
    warehouse = Warehouse()
    return {
        "io_manager": ArtifactIOManager(keep_versions=from_env("HYBRID_ARTIFACT_KEEP_VERSIONS", 5)),
        "warehouse": warehouse,
        "quantum_backend": quantum_backend_from_env(),
        "hardware_backend": hardware_backend_from_env(),
        "cost_policy": CostPolicy(
            warehouse=warehouse,
            run_budget_usd=decimal_from_env("HYBRID_RUN_BUDGET_USD", 10.0),
            daily_budget_usd=decimal_from_env("HYBRID_DAILY_BUDGET_USD", 50.0),
            time_budget_s=decimal_from_env("HYBRID_TIME_BUDGET_S", 3600.0),
            price_table_path=from_env("HYBRID_PRICE_TABLE", ""),
            quantum_rows_per_day=from_env("HYBRID_QUANTUM_ROWS_PER_DAY", 1000),
        ),
        "gate_policy": GatePolicy(min_margin=decimal_from_env("HYBRID_MIN_MARGIN", 0.0),
                                  kernel_path=from_env("HYBRID_KERNEL_PATH", "auto"),
                                  max_exact_train=from_env("HYBRID_MAX_EXACT_TRAIN", 5000),
                                  target_devices=from_env("HYBRID_TARGET_DEVICES", ""),
                                  verdict_ci_width=decimal_from_env("HYBRID_VERDICT_CI_WIDTH", 0.0)),
        "dask": dask_from_env(),
        "scoring_stream": ScoringStream(url=from_env("HYBRID_REDIS_URL", ""),
                                        stream=from_env("HYBRID_SCORING_STREAM", "hybrid:scoring")),
    }
