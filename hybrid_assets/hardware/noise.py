"""Simulators first: the tuned kernel under device noise on a density-matrix simulator, its
mitigation, and the spread to the exact kernel, before any hardware is paid for."""

from collections.abc import Iterator

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MetadataValue,
    asset,
)
from pydantic import Field

from hybrid_assets.common.automation import ON_NEW_DATA
from hybrid_assets.common.outputs import artifact_output
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.artifacts import with_info
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.calibrated_noise import predict_on_devices
from hybrid_resources.quantum.devices import known_devices
from hybrid_resources.quantum.kernels import KernelSpec, family_of, kernel_spec
from hybrid_resources.quantum.noise import (
    EXAMPLE_CALIBRATION,
    MITIGATIONS,
    NOISY_DEVICES,
    NoiseModel,
    noise_spread,
    noisy_backend,
)
from hybrid_resources.quantum.transpilation import TranspileSettings

NOISE_SPREAD_DESCRIPTION = ("Reported, never blocks promotion: the maximum |exact - noisy mitigated| kernel entry "
                            "on the noisy simulator within the tolerance")
DEVICE_NOISE_DESCRIPTION = ("Reported, never blocks promotion: which devices would keep the kernel within "
                            "device_tolerance, predicted from each device's calibration (transpiled circuits on a "
                            "density-matrix simulator)")


class NoiseSpreadConfig(Config):
    device: str = Field(default="default.mixed", description=f"Density-matrix simulator: {', '.join(NOISY_DEVICES)}")
    calibration: str = Field(default="", description="A Braket standardized calibration JSON to take the rates "
                                                     "from ('example' for the shipped one); empty: the rates below")
    depolarizing: float = Field(default=0.02, ge=0.0, lt=1.0, description="Per-qubit depolarizing before readout")
    gate_error_1q: float = Field(default=0.0, ge=0.0, lt=1.0, description="Depolarizing after each 1-qubit gate")
    gate_error_2q: float = Field(default=0.0, ge=0.0, lt=1.0, description="Depolarizing after each 2-qubit gate")
    readout: float = Field(default=0.0, ge=0.0, lt=1.0, description="Readout bit-flip probability")
    mitigation: str = Field(default="auto", description=f"auto or one of {', '.join(MITIGATIONS)}, chained with '+'; "
                                                        "auto: depolarizing_average (fidelity), none (projected)")
    rows: int = Field(default=16, ge=2, le=200, description="Train rows simulated (the first ones)")
    tolerance: float = Field(default=0.01, ge=0.0, description="Max |exact - mitigated| entry the check accepts")
    devices: str = Field(default="", description="Devices whose kernel error is predicted from their calibration, "
                                                 "comma-separated (snapshot names, Braket ARNs, IBM backend names); "
                                                 "empty: every known device")
    device_pairs: int = Field(default=6, ge=1, le=100, description="Off-diagonal entries (of the first rows) each "
                                                                   "device prediction simulates")
    device_tolerance: float = Field(default=0.1, ge=0.0, description="Max predicted mean |exact - device| entry, "
                                                                     "unmitigated, for a device to keep the kernel")

    def device_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.devices.split(",") if name.strip()) or known_devices()

    def noise_model(self) -> NoiseModel:
        if self.calibration:
            return NoiseModel.from_calibration(EXAMPLE_CALIBRATION if self.calibration == "example" else self.calibration)
        return NoiseModel(depolarizing=self.depolarizing, gate_error_1q=self.gate_error_1q,
                          gate_error_2q=self.gate_error_2q, readout=self.readout)


@asset(automation_condition=ON_NEW_DATA, code_version="1", group_name="quantum", kinds={"pennylane", "numpy"},
       check_specs=[AssetCheckSpec("noise_spread", asset="noisy_kernel_spread", description=NOISE_SPREAD_DESCRIPTION),
                    AssetCheckSpec("device_noise", asset="noisy_kernel_spread", description=DEVICE_NOISE_DESCRIPTION)])
def noisy_kernel_spread(context: AssetExecutionContext, config: NoiseSpreadConfig, circuit_artifact: dict,
                        reduced_embeddings: dict, cost_policy: CostPolicy, gate_policy: GatePolicy) -> Iterator:
    """The circuit artifact's kernel on the first ``rows`` train rows: ``exact``, ``noisy`` (the same
    circuits with the configured noise channels, on the density-matrix simulator) and
    ``mitigated`` ((rows, rows) float64 each), with ``info`` the noise model, the mitigation and
    the errors. The circuits are admitted and recorded by the ledger like any device work."""
    spec = kernel_spec(circuit_artifact["spec"])
    X = np.asarray(reduced_embeddings["X_train"][:config.rows], dtype=np.float64)
    try:
        noise = config.noise_model()
        with cost_policy.ledger(run_id=context.run_id, asset=context.asset_key.to_user_string(),
                                backend=noisy_backend(config.device)) as ledger:
            kernels, report = noise_spread(X, spec, noise, mitigation=config.mitigation, tolerance=config.tolerance,
                                           device=config.device, ledger=ledger)
        devices = device_predictions(spec, X, config, gate_policy.transpile_settings())
    except (ValueError, OSError) as bad_config:
        raise Failure(description=f"noisy_kernel_spread: {bad_config}") from bad_config
    report |= {"kernel": family_of(spec), "spec_hash": circuit_artifact["spec_hash"], "devices": devices}
    telemetry = {"wall_time_s": report.pop("wall_time_s")}  # not content: a re-run keeps the data version
    yield artifact_output(with_info(kernels, report, telemetry), {
        "kernel": family_of(spec),
        "device": config.device,
        "noise": MetadataValue.json(noise.to_dict()),
        "mitigation": report["mitigation"],
        "rows": report["rows"],
        "circuits": report["circuits"],
        "noisy_max_abs_error": report["noisy_max_abs_error"],
        "mitigated_max_abs_error": report["mitigated_max_abs_error"],
        "mitigated_mean_abs_error": report["mitigated_mean_abs_error"],
        "tolerance": config.tolerance,
        "devices": MetadataValue.md(device_table(devices, config.device_tolerance)),
    })
    yield AssetCheckResult(
        check_name="noise_spread", passed=bool(report["passed"]), severity=AssetCheckSeverity.WARN,
        metadata={"message": f"max |exact - mitigated| {report['mitigated_max_abs_error']:.4f} "
                             f"({'within' if report['passed'] else 'above'} {config.tolerance}); unmitigated "
                             f"{report['noisy_max_abs_error']:.4f}, {report['mitigation']} on {config.device}",
                  "mitigated_max_abs_error": report["mitigated_max_abs_error"],
                  "noisy_max_abs_error": report["noisy_max_abs_error"], "noise_source": noise.source})
    yield device_noise_check(devices, config.device_tolerance)


def device_predictions(spec: KernelSpec, X: np.ndarray, config: NoiseSpreadConfig,
                       settings: TranspileSettings) -> list[dict]:
    """:func:`predict_on_devices` for a fidelity kernel, its circuits transpiled with ``settings``;
    a projected kernel's measured circuits are not predicted (one row per device saying so)."""
    if family_of(spec) != "fidelity":
        return [{"device": device, "error": "predicted for fidelity kernels only"} for device in config.device_names()]
    return predict_on_devices(spec, X, config.device_names(), pairs=config.device_pairs, settings=settings)


def device_table(devices: list[dict], tolerance: float) -> str:
    """Markdown: per device, the predicted mean and max |exact - device| entry and the kernel
    circuit's transpiled depth and two-qubit gates."""
    rows = ["| device | predicted mean abs error | max | kernel circuit depth | two-qubit gates | within |",
            "| --- | --- | --- | --- | --- | --- |"]
    for entry in devices:
        if "error" in entry:
            rows.append(f"| {entry['device']} | not predicted: {entry['error']} | | | | |")
            continue
        within = entry["predicted_mean_abs_error"] <= tolerance
        rows.append(f"| {entry['device']} | {entry['predicted_mean_abs_error']:.4f} | "
                    f"{entry['predicted_max_abs_error']:.4f} | {entry['kernel_circuit_depth']} | "
                    f"{entry['kernel_circuit_two_qubit_gates']} | {'yes' if within else 'no'} |")
    return "\n".join(rows)


def device_noise_check(devices: list[dict], tolerance: float) -> AssetCheckResult:
    """Passes when at least one device's predicted mean error is within ``tolerance``; names them."""
    predicted = [entry for entry in devices if "error" not in entry]
    within = [entry["device"] for entry in predicted if entry["predicted_mean_abs_error"] <= tolerance]
    above = [entry["device"] for entry in predicted if entry["predicted_mean_abs_error"] > tolerance]
    message = (f"within {tolerance}: {', '.join(within) or 'none'}; above: {', '.join(above) or 'none'}"
               if predicted else "no device could be predicted")
    return AssetCheckResult(
        check_name="device_noise", passed=bool(within), severity=AssetCheckSeverity.WARN,
        metadata={"message": message, "within_tolerance": MetadataValue.json(within),
                  "above_tolerance": MetadataValue.json(above),
                  **{f"{entry['device']}_predicted_mean_abs_error": entry["predicted_mean_abs_error"]
                     for entry in predicted}})
