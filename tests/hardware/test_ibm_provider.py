"""IBM Quantum as a second provider: configuration only (qiskit.remote, a backend name, an
instance, QISKIT_IBM_TOKEN), priced per QPU second, admitted and recorded by the same ledger.
The service is faked at its boundary (tests/fake_ibm.py); everything above it is real."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybrid_resources.cost_policy import CostPolicy, UnknownPriceError, estimate_cost, load_price_table
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.quantum.backends import BackendConfig, BackendUnavailableError, QuantumBackend
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernels import compute_kernel
from tests.fake_ibm import install_fake_ibm

TOKEN = "ibm-test-token-0123456789"
SPEC = FeatureMapSpec("iqp", 3, reps=1)
X = np.random.default_rng(3).uniform(0, np.pi, size=(4, 3))


def ibm_backend(**overrides) -> QuantumBackend:
    return QuantumBackend(**{"device_name": "qiskit.remote", "shots": 200, "ibm_backend": "ibm_manila",
                             "ibm_instance": "crn:v1:test-instance", "backoff_s": 0.0, **overrides})


@pytest.fixture
def ibm_policy(tmp_path):
    """A cost policy whose table prices the faked ibm_manila like the shipped IBM devices."""
    table = load_price_table()
    table["devices"]["qpu/ibm/ibm_manila"] = table["devices"]["qpu/ibm/ibm_torino"]
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(table))
    return CostPolicy(warehouse=Warehouse(path=str(tmp_path / "ledger.duckdb")), run_budget_usd=100.0,
                      daily_budget_usd=100.0, price_table_path=str(path))


def test_ibm_is_priced_per_qpu_second_not_per_shot():
    table = load_price_table()
    config = ibm_backend(ibm_backend="ibm_torino").backend_config()
    estimate = estimate_cost(config, 10, 1000, table)
    price = table["devices"]["qpu/ibm/ibm_torino"]
    seconds = 10 * (price["qpu_seconds_per_circuit"] + 1000 * price["qpu_seconds_per_shot"])
    assert estimate.device == "qpu/ibm/ibm_torino" and estimate.qpu_seconds == pytest.approx(seconds)
    assert estimate.usd == pytest.approx(seconds * price["per_qpu_second"])
    assert estimate.shot_fee_usd == estimate.task_fee_usd == 0.0
    # Twice the shots: close to twice the time, and the price follows the time.
    assert estimate_cost(config, 10, 2000, table).usd > 1.9 * estimate.usd
    with pytest.raises(UnknownPriceError, match="HYBRID_IBM_BACKEND"):
        estimate_cost(ibm_backend(ibm_backend="").backend_config(), 1, 100, table)


def test_a_kernel_on_ibm_is_admitted_run_and_recorded_by_the_ledger(monkeypatch, ibm_policy):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", TOKEN)
    fake = install_fake_ibm(monkeypatch)
    config = ibm_backend().backend_config()
    with ibm_policy.ledger(run_id="run-ibm", asset="quantum_kernel_train", backend=config) as ledger:
        result = compute_kernel(X, spec=SPEC, backend=config, ledger=ledger)
    circuits = 4 * 3 // 2  # the upper triangle; the diagonal is 1 by construction
    assert result.matrix.shape == (4, 4) and np.allclose(np.diag(result.matrix), 1.0)
    assert fake.circuits == circuits and fake.shots == circuits * 200
    assert fake.services == [(TOKEN, "crn:v1:test-instance")] and set(fake.backends) == {"ibm_manila"}
    expected = estimate_cost(config, circuits, 200, ibm_policy.price_table())
    assert ledger.device == "qpu/ibm/ibm_manila" and ledger.circuits == circuits and ledger.shots == circuits * 200
    assert ledger.usd == pytest.approx(expected.usd) and ledger.usd > 0
    with ibm_policy.warehouse.session(read_only=True) as session:
        recorded = session.connection.execute(
            "SELECT device, sum(shots), sum(estimated_usd) FROM quantum_spend WHERE run_id = 'run-ibm' GROUP BY device").fetchall()
    assert recorded == [("qpu/ibm/ibm_manila", circuits * 200, pytest.approx(expected.usd))]
    # The key is the environment's only: nowhere in what the backend describes.
    assert TOKEN not in json.dumps(ibm_backend().describe())


def test_ibm_without_its_key_or_backend_fails_with_what_to_set_and_submits_nothing(monkeypatch, ibm_policy):
    fake = install_fake_ibm(monkeypatch)
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    config = ibm_backend().backend_config()
    with pytest.raises(BackendUnavailableError, match="QISKIT_IBM_TOKEN"):
        with ibm_policy.ledger(run_id="run-nokey", asset="quantum_kernel_train", backend=config) as ledger:
            compute_kernel(X, spec=SPEC, backend=config, ledger=ledger)
    assert fake.services == [] and fake.circuits == 0


def test_the_route_plan_shows_ibms_qpu_time_and_prices_it():
    from hybrid_resources.quantum.planning import PlanRequest, format_plan, plan_routes

    table = load_price_table()
    config = ibm_backend(ibm_backend="ibm_torino", shots=1000).backend_config()
    plans = plan_routes(PlanRequest(20, 5, FeatureMapSpec("iqp", 4)), config, table)
    price = table["devices"]["qpu/ibm/ibm_torino"]
    for plan in plans:
        seconds = plan.circuits * (price["qpu_seconds_per_circuit"] + 1000 * price["qpu_seconds_per_shot"])
        assert plan.device == "qpu/ibm/ibm_torino" and plan.qpu_seconds == pytest.approx(seconds)
        assert plan.usd == pytest.approx(seconds * price["per_qpu_second"], rel=1e-6)
    assert "| QPU time |" in format_plan(plans)
    garnet = BackendConfig(device_name="braket.aws.qubit", shots=1000,
                           device_options=(("device_arn", "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"),))
    assert "QPU time" not in format_plan(plan_routes(PlanRequest(20, 5, FeatureMapSpec("iqp", 4)), garnet, table))
