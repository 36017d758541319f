"""The hardware-evaluation job against a fake paid Braket device, faked at the device boundary only.

Only ``AwsDevice`` inside the Braket PennyLane plugin is replaced (tests/fake_braket.py); the
plugin, PennyLane, the kernel engine's batching and retries, the cost admission and the Dagster
job are the real code, run on a real (test) instance with a tmp ``HYBRID_DATA_DIR``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    EnvVar,
    in_process_executor,
    instance_for_test,
    load_assets_from_modules,
    materialize,
)

from hybrid_assets.common.partitions import landing_files_partitions, safe_partition_key
from hybrid_assets.evaluation import assets as evaluation
from hybrid_assets.hardware.assets import (
    hardware_evaluation_job,
    hardware_kernel_spread,
    kernel_spread,
)
from hybrid_assets.ingest import assets as landing
from hybrid_assets.ingest.assets import raw_samples
from hybrid_assets.resources import hardware_backend_from_env
from hybrid_assets.serving.registry import HARDWARE_SUBJECT
from hybrid_assets.training import classical, quantum, variational
from hybrid_resources.compute import DaskCluster
from hybrid_resources.cost_policy import CostPolicy, load_price_table
from hybrid_resources.data.artifacts import ArtifactIOManager
from hybrid_resources.data.paths import DataLayout
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import QuantumBackend
from tests.conftest import Signers, blobs_frame, latest_artifact, make_signers
from tests.fake_braket import install_fake_braket
from tests.fake_ibm import install_fake_ibm

GARNET = "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"    # 0.30/task + 0.00145/shot: 16 x 100 = $7.12
FORTE = "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1"     # 0.30/task + 0.08/shot: 16 x 100 = $132.80
S3 = "hybrid-test-results/hardware"
CANARY = "canary-SECRET-12345"

# The pipeline's own assets, built here (not from hybrid_assets.definitions), so these tests do
# not depend on how the hardware job is registered there.
PIPELINE = load_assets_from_modules([landing, quantum, classical, variational, evaluation])
DOWNSTREAM = AssetSelection.all() - AssetSelection.assets(raw_samples)
SMALL_RUN_CONFIG = {"ops": {"reduced_embeddings": {"config": {"n_qubits": 3}}}}


def resources(**overrides) -> dict:
    base = {
        "io_manager": ArtifactIOManager(),
        "warehouse": Warehouse(),
        "quantum_backend": QuantumBackend(),
        # A daily budget that the module's runs together stay far from (they share one warehouse).
        "cost_policy": CostPolicy(daily_budget_usd=1000.0),
        "gate_policy": GatePolicy(min_margin=-1.0),  # promotion passes on any margin
        "hardware_backend": QuantumBackend(device_name="braket.aws.qubit", shots=100, device_arn=GARNET,
                                           s3_destination=S3, max_retries=2),
        "dask": DaskCluster(),
    }
    return {**base, **overrides}


@pytest.fixture(scope="module")
def instance():
    with instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="module")
def promoted(tmp_path_factory, instance):
    """One small dataset ingested and refreshed until promoted_model exists, shared by this module
    (a tmp HYBRID_DATA_DIR, like the data_layout fixture, kept for the module)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HYBRID_DATA_DIR", str(tmp_path_factory.mktemp("hardware") / "data"))
        layout = DataLayout.from_env().ensure()
        blobs_frame(n_rows=40, seed=1).write_csv(layout.landing / "batch.csv")
        key = safe_partition_key("batch.csv")
        instance.add_dynamic_partitions(landing_files_partitions.name, [key])
        assert materialize([raw_samples], partition_key=key, instance=instance, resources=resources()).success
        result = materialize(PIPELINE, selection=DOWNSTREAM, instance=instance, resources=resources(),
                             run_config=SMALL_RUN_CONFIG)
        assert result.success
        assert instance.get_latest_materialization_event(AssetKey("promoted_model")) is not None
        yield layout


@pytest.fixture(scope="module")
def signers(tmp_path_factory):
    """The shared test approvers (tests.conftest.PEOPLE), for this module's runs."""
    made = make_signers(tmp_path_factory.mktemp("keys"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HYBRID_APPROVERS_FILE", str(made.file))
        yield made


def run_hardware_job(instance: DagsterInstance, signers: Signers, *, approved: bool = True, **resource_overrides):
    """Run the hardware job as bob (his signed launch request), after alice's signed approval unless
    ``approved`` is false."""
    if approved:
        approval = signers.sign("approve", HARDWARE_SUBJECT, by="alice", reason="hardware test run")
        assert signers.hand_in("approve", approval) == 0
    request = signers.sign("launch", HARDWARE_SUBJECT, by="bob", reason="spread check").read_text()
    defs = Definitions(assets=[*PIPELINE, hardware_kernel_spread], jobs=[hardware_evaluation_job],
                       executor=in_process_executor, resources=resources(**resource_overrides))
    return defs.resolve_job_def("hardware_evaluation").execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"ops": {"hardware_kernel_spread": {"config": {"request": request}}}})


def spend_rows(run_id: str) -> list[tuple]:
    """What the ledger recorded for a run, summed per (asset, device) (a paid device is recorded task by task)."""
    with Warehouse().connect(read_only=True) as connection:
        return connection.execute("SELECT asset, device, sum(tasks), sum(shots), sum(estimated_usd) FROM quantum_spend "
                                  "WHERE run_id = ? GROUP BY asset, device", [run_id]).fetchall()


def failure_message(result) -> str:
    failures = [event for event in result.all_events if event.event_type == DagsterEventType.STEP_FAILURE]
    assert failures, "expected a step failure"
    error = failures[0].step_failure_data.user_failure_data
    return (error.description or "") if error is not None else failures[0].step_failure_data.error.message


def hardware_metadata(result) -> dict:
    [materialization] = result.asset_materializations_for_node("hardware_kernel_spread")
    return {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}


def test_hardware_job_runs_within_budget_on_the_paid_device(promoted, instance, aws_env, signers):
    ledger = install_fake_braket(aws_env)
    result = run_hardware_job(instance, signers)
    assert result.success

    report = latest_artifact(promoted.artifacts, "hardware_kernel_spread")
    simulator_kernel = latest_artifact(promoted.artifacts, "quantum_kernel_test")["matrix"]
    hardware = np.array(report["hardware_kernel"])
    assert hardware.shape == (4, 4) and np.all((hardware >= 0) & (hardware <= 1))
    np.testing.assert_allclose(report["simulator_kernel"], simulator_kernel[:4, :4])
    diff = np.abs(hardware - simulator_kernel[:4, :4])
    assert report["max_abs_diff"] == pytest.approx(diff.max())
    assert report["mean_abs_diff"] == pytest.approx(diff.mean())
    assert report["max_abs_diff"] < 0.25  # 100 shots of a noiseless simulator: a few percent

    # What the paid device saw is what the artifact, the metadata and the warehouse say.
    assert ledger.tasks == ledger.circuits == report["circuits_submitted"] == 16
    assert ledger.shots == report["shots_submitted"] == 1600
    assert set(ledger.device_arns) == {GARNET}
    assert set(ledger.s3_destinations) == {("hybrid-test-results", "hardware")}
    assert report["device_arn"] == GARNET and report["retries"] == 0
    assert report["estimated_cost_usd"] == pytest.approx(16 * 0.30 + 1600 * 0.00145)
    assert spend_rows(result.run_id) == [("hardware_kernel_spread", "qpu/iqm/garnet", 16, 1600,
                                          pytest.approx(report["estimated_cost_usd"]))]
    metadata = hardware_metadata(result)
    assert metadata["circuits_submitted"] == 16 and metadata["device_arn"] == GARNET
    assert metadata["max_abs_diff"] == pytest.approx(report["max_abs_diff"])


def test_hardware_job_runs_on_ibm_quantum_by_configuration_alone(promoted, instance, signers, monkeypatch, tmp_path):
    # The second provider: the same job, other settings; the service is faked at its boundary.
    monkeypatch.setenv("QISKIT_IBM_TOKEN", CANARY)
    fake = install_fake_ibm(monkeypatch)
    table = load_price_table()
    table["devices"]["qpu/ibm/ibm_manila"] = table["devices"]["qpu/ibm/ibm_torino"]
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(table))
    ibm = QuantumBackend(device_name="qiskit.remote", shots=100, ibm_backend="ibm_manila", max_retries=2)
    result = run_hardware_job(instance, signers, hardware_backend=ibm,
                              cost_policy=CostPolicy(daily_budget_usd=1000.0, price_table_path=str(prices)))
    assert result.success
    report = latest_artifact(promoted.artifacts, "hardware_kernel_spread")
    assert np.array(report["hardware_kernel"]).shape == (4, 4) and report["device"] == "qpu/ibm/ibm_manila"
    assert fake.circuits == report["circuits_submitted"] == 16 and fake.shots == report["shots_submitted"] == 1600
    assert fake.services == [(CANARY, "")]
    price = table["devices"]["qpu/ibm/ibm_torino"]
    seconds = 16 * (price["qpu_seconds_per_circuit"] + 100 * price["qpu_seconds_per_shot"])
    assert report["estimated_cost_usd"] == pytest.approx(seconds * price["per_qpu_second"])
    assert spend_rows(result.run_id) == [("hardware_kernel_spread", "qpu/ibm/ibm_manila", 16, 1600,
                                          pytest.approx(report["estimated_cost_usd"]))]
    assert CANARY not in json.dumps(report) and CANARY not in json.dumps(hardware_metadata(result), default=str)


def test_ibm_without_its_key_is_refused_before_anything_is_sent(promoted, instance, signers, monkeypatch):
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    fake = install_fake_ibm(monkeypatch)
    result = run_hardware_job(instance, signers, approved=False, hardware_backend=QuantumBackend(
        device_name="qiskit.remote", shots=100, ibm_backend=""))
    assert not result.success and fake.services == [] and fake.circuits == 0
    message = failure_message(result)
    assert "HYBRID_IBM_BACKEND" in message and "QISKIT_IBM_TOKEN" in message and "nothing was submitted" in message


def test_over_budget_plan_is_refused_before_any_task(promoted, instance, aws_env, signers):
    ledger = install_fake_braket(aws_env)
    forte = QuantumBackend(device_name="braket.aws.qubit", shots=100, device_arn=FORTE, s3_destination=S3)
    result = run_hardware_job(instance, signers, hardware_backend=forte, cost_policy=CostPolicy(run_budget_usd=0.01))
    assert not result.success
    message = failure_message(result)
    assert "Refused before submission" in message
    # Forte runs program sets: one task fee for the 16 circuits (16 x $0.30 without them).
    assert "1 tasks (16 circuits)" in message and "$128.30" in message and "$0.01" in message
    assert "qpu/ionq/forte-1" in message
    assert ledger.tasks == ledger.submissions == ledger.circuits == ledger.shots == 0
    assert spend_rows(result.run_id) == []
    assert result.asset_materializations_for_node("hardware_kernel_spread") == []
    assert unused_hardware_approvals() == 1  # nothing was submitted: the approval is kept for the next run
    with Warehouse().session() as session:  # spend it, so the module's other tests start from none
        session.use_approval(session.approvals(subject=HARDWARE_SUBJECT, unused=True)[0]["approval_id"], "test")


def unused_hardware_approvals() -> int:
    with Warehouse().session() as session:
        return len(session.approvals(subject=HARDWARE_SUBJECT, unused=True))


def test_no_approval_no_paid_run(promoted, instance, aws_env, signers):
    ledger = install_fake_braket(aws_env)
    assert unused_hardware_approvals() == 0
    result = run_hardware_job(instance, signers, approved=False)
    assert not result.success
    message = failure_message(result)
    assert "has no valid approval" in message and "hybrid-registry sign approve hardware_evaluation" in message
    assert ledger.devices_created == ledger.submissions == ledger.tasks == 0
    assert spend_rows(result.run_id) == []

    # One approval buys one run: the next run without a new one is refused again.
    assert run_hardware_job(instance, signers).success
    assert unused_hardware_approvals() == 0
    assert not run_hardware_job(instance, signers, approved=False).success
    with Warehouse().session() as session:
        approvals = session.approvals(subject=HARDWARE_SUBJECT)
    assert approvals and all(a["used_by"] and a["actor"] == "alice" for a in approvals)


def test_outside_its_job_the_hardware_asset_skips_and_sends_nothing(promoted, instance, aws_env, signers):
    # "Materialize all" on the Lineage page puts the paid asset in an ordinary asset run: it must
    # neither spend nor fail that run (here it has no approval, which its own job refuses).
    ledger = install_fake_braket(aws_env)
    result = materialize([*PIPELINE, hardware_kernel_spread], selection=[hardware_kernel_spread], instance=instance,
                         resources=resources())
    assert result.success
    assert result.asset_materializations_for_node("hardware_kernel_spread") == []
    assert ledger.devices_created == ledger.submissions == ledger.tasks == 0
    assert spend_rows(result.run_id) == []


def test_missing_device_arn_fails_clearly_and_submits_nothing(promoted, instance, aws_env, signers):
    ledger = install_fake_braket(aws_env)
    aws_env.delenv("HYBRID_BRAKET_DEVICE_ARN", raising=False)
    aws_env.setenv("HYBRID_BRAKET_S3_DESTINATION", S3)
    result = run_hardware_job(instance, signers, approved=False, hardware_backend=hardware_backend_from_env())
    assert not result.success
    assert "HYBRID_BRAKET_DEVICE_ARN" in failure_message(result)
    assert ledger.devices_created == ledger.submissions == 0


def test_transient_throttling_is_retried_then_succeeds(promoted, instance, aws_env, signers):
    ledger = install_fake_braket(aws_env, throttle_first=1)
    result = run_hardware_job(instance, signers)
    assert result.success
    assert ledger.throttled == 1 and ledger.submissions == ledger.tasks + 1
    metadata = hardware_metadata(result)
    assert metadata["retries"] >= 1
    assert metadata["circuits_submitted"] == ledger.tasks == 16  # the throttled call created no task


def test_device_that_keeps_throttling_fails_with_advice(promoted, instance, aws_env, signers):
    ledger = install_fake_braket(aws_env, throttle_always=True)
    result = run_hardware_job(instance, signers, hardware_backend=QuantumBackend(
        device_name="braket.aws.qubit", shots=100, device_arn=GARNET, s3_destination=S3, max_retries=1))
    assert not result.success
    message = failure_message(result)
    assert "ThrottlingException" in message and "retries" in message
    assert ledger.tasks == 0 and ledger.throttled == 2
    assert spend_rows(result.run_id) == []


def test_credentials_come_from_env_and_never_reach_logs_metadata_or_files(promoted, instance, aws_env, signers):
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIACANARY0000000000")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    aws_env.setenv("HYBRID_BRAKET_DEVICE_ARN", GARNET)
    aws_env.setenv("HYBRID_BRAKET_S3_DESTINATION", S3)
    ledger = install_fake_braket(aws_env)
    result = run_hardware_job(instance, signers, hardware_backend=hardware_backend_from_env())
    assert result.success
    assert ledger.credential_methods == ["env"]  # boto3 would find them in the environment

    records = instance.all_logs(result.run_id)
    assert records
    for record in records:
        assert CANARY not in record.to_json()
    run = instance.get_run_by_id(result.run_id)
    assert CANARY not in json.dumps(run.run_config, default=str) and CANARY not in json.dumps(run.tags)
    for name in ("hardware_kernel_spread", "promoted_model", "quantum_kernel_test"):
        event = instance.get_latest_materialization_event(AssetKey(name))
        assert CANARY not in json.dumps({k: str(getattr(v, "value", v)) for k, v in
                                         event.asset_materialization.metadata.items()})
    canary_bytes = CANARY.encode()
    files = [path for path in promoted.root.rglob("*") if path.is_file()]
    assert any(path.name == "warehouse.duckdb" for path in files)
    assert not [path for path in files if canary_bytes in path.read_bytes()]


def test_kernel_spread_figures():
    simulator = np.array([[1.0, 0.5], [0.25, 0.0]])
    hardware = np.array([[0.9, 0.6], [0.25, 0.1]])
    spread = kernel_spread(simulator, hardware, shots=100)
    assert spread["max_abs_diff"] == pytest.approx(0.1)
    assert spread["mean_abs_diff"] == pytest.approx(0.075)
    assert spread["shot_noise_std_mean"] == pytest.approx((0.05 + np.sqrt(0.1875) / 10) / 4)


def test_hardware_backend_settings_come_from_the_environment_at_run_time(monkeypatch):
    for name in ("HYBRID_HARDWARE_SHOTS", "HYBRID_BRAKET_DEVICE_ARN", "HYBRID_BRAKET_S3_DESTINATION"):
        monkeypatch.delenv(name, raising=False)
    backend = hardware_backend_from_env().process_config_and_initialize()
    assert (backend.device_name, backend.shots, backend.device_arn) == ("braket.aws.qubit", 100, "")
    monkeypatch.setenv("HYBRID_HARDWARE_SHOTS", "250")
    monkeypatch.setenv("HYBRID_BRAKET_DEVICE_ARN", FORTE)
    configured = hardware_backend_from_env()
    # Configured as EnvVars (the launchpad names the variables), resolved when a run starts.
    assert configured.device_arn == EnvVar("HYBRID_BRAKET_DEVICE_ARN")
    monkeypatch.setenv("HYBRID_BRAKET_DEVICE_ARN", GARNET)  # changed after the code location loaded
    backend = configured.process_config_and_initialize()
    assert backend.shots == 250 and dict(backend.backend_config().device_options)["device_arn"] == GARNET


def test_ibm_quantum_is_chosen_by_the_environment_alone(monkeypatch):
    from hybrid_assets.resources import quantum_backend_from_env
    from hybrid_resources.cost_policy import device_identity

    monkeypatch.setenv("HYBRID_HARDWARE_DEVICE", "qiskit.remote")
    monkeypatch.setenv("HYBRID_QUANTUM_DEVICE", "qiskit.remote")
    monkeypatch.setenv("HYBRID_IBM_BACKEND", "ibm_torino")
    monkeypatch.setenv("HYBRID_IBM_INSTANCE", "crn:v1:instance")
    monkeypatch.setenv("QISKIT_IBM_TOKEN", CANARY)
    for backend in (hardware_backend_from_env().process_config_and_initialize(),
                    quantum_backend_from_env().process_config_and_initialize()):
        config = backend.backend_config()
        assert config.device_name == "qiskit.remote" and device_identity(config) == "qpu/ibm/ibm_torino"
        assert dict(config.device_options) == {"backend": "ibm_torino", "instance": "crn:v1:instance"}
        assert CANARY not in json.dumps(backend.describe())  # the key stays in the environment
