"""The quantum backend resource: which PennyLane device runs the feature-map circuits.

Switching simulator -> hardware is configuration (launchpad, env), not code:

- ``default.qubit`` with ``shots=None`` (default): exact statevector simulation, embedded
- ``default.qubit`` / ``lightning.qubit`` with ``shots=N``: shot-based simulation
- ``braket.local.qubit``: the Amazon Braket local simulator
- ``braket.aws.qubit`` + ``device_arn`` + ``s3_destination``: a managed Braket device;
  AWS credentials come from the environment (boto3's own variables), never from config.
"""

from __future__ import annotations

from typing import Any, Optional

from dagster import ConfigurableResource
from pydantic import Field

from hybrid_resources.backends import BackendConfig


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
    s3_destination: str = Field(default="", description="'bucket/prefix' for Braket results (braket.aws.qubit only)")

    def backend_config(self) -> BackendConfig:
        options: dict[str, str] = {}
        if self.device_arn:
            options["device_arn"] = self.device_arn
        if self.s3_destination:
            options["s3_destination_folder"] = self.s3_destination
        return BackendConfig(
            device_name=self.device_name,
            shots=self.shots,
            seed=self.seed,
            max_parallel=self.max_parallel,
            batch_size=self.batch_size,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            device_options=tuple(sorted(options.items())),
        )

    def describe(self) -> dict[str, Any]:
        """What produced a result, for metadata and the audit trail (no credentials here)."""
        return self.backend_config().cache_key()
