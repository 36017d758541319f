import json

import pytest

from hybrid_resources.cost_policy import (
    BudgetExceededError,
    CostPolicy,
    UnknownPriceError,
    admit,
    estimate_cost,
    load_price_table,
)
from hybrid_resources.quantum.backends import BackendConfig

FORTE = BackendConfig(device_name="braket.aws.qubit", shots=100,
                      device_options=(("device_arn", "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1"),))
SV1 = BackendConfig(device_name="braket.aws.qubit", shots=100,
                    device_options=(("device_arn", "arn:aws:braket:::device/quantum-simulator/amazon/sv1"),))


def test_list_prices_give_the_known_qpu_cost():
    table = load_price_table()
    # 100 training samples -> 4,950 pair circuits; at $0.30/task + $0.08/shot x 100 shots.
    estimate = estimate_cost(FORTE, tasks=4950, shots_per_task=100, table=table)
    assert estimate.usd == pytest.approx(4950 * (0.30 + 100 * 0.08))
    assert estimate.total_shots == 495_000


def test_managed_simulators_bill_per_minute_and_local_ones_are_free():
    table = load_price_table()
    assert estimate_cost(SV1, tasks=20, shots_per_task=100, table=table).usd == pytest.approx(20 * 3 / 60 * 0.075)
    for name in ("default.qubit", "lightning.qubit", "braket.local.qubit"):
        assert estimate_cost(BackendConfig(device_name=name, shots=1000), 10_000, 1000, table).usd == 0.0


def test_an_unpriced_paid_device_is_refused():
    unknown = BackendConfig(device_name="braket.aws.qubit", shots=10,
                            device_options=(("device_arn", "arn:aws:braket:::device/qpu/acme/new-1"),))
    with pytest.raises(UnknownPriceError, match="HYBRID_PRICE_TABLE"):
        estimate_cost(unknown, 1, 10, load_price_table())


def test_the_price_table_can_be_overridden(tmp_path):
    custom = load_price_table()
    custom["devices"]["qpu/ionq/forte-1"] = {"per_task": 1.0, "per_shot": 0.0}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(custom))
    assert estimate_cost(FORTE, 3, 100, load_price_table(path)).usd == pytest.approx(3.0)
    assert CostPolicy(price_table_path=str(path)).estimate(FORTE, 3, 100).usd == pytest.approx(3.0)
    assert CostPolicy().estimate(FORTE, 3, 100).usd == pytest.approx(3 * (0.30 + 100 * 0.08))


def test_over_budget_plans_are_refused_with_the_figures_and_how_to_change_them():
    estimate = estimate_cost(FORTE, tasks=10, shots_per_task=100, table=load_price_table())
    admit(estimate, spent_this_run=0.0, spent_today=0.0, run_budget_usd=100.0, daily_budget_usd=100.0)
    with pytest.raises(BudgetExceededError) as refused:
        admit(estimate, spent_this_run=0.0, spent_today=0.0, run_budget_usd=50.0, daily_budget_usd=100.0)
    message = str(refused.value)
    assert "$83.00" in message and "$50.00" in message and "run_budget_usd" in message
    with pytest.raises(BudgetExceededError, match="daily"):
        admit(estimate, spent_this_run=0.0, spent_today=30.0, run_budget_usd=100.0, daily_budget_usd=100.0)


def test_free_plans_pass_even_with_a_zero_budget():
    free = estimate_cost(BackendConfig(shots=100), 1000, 100, load_price_table())
    admit(free, spent_this_run=0.0, spent_today=0.0, run_budget_usd=0.0, daily_budget_usd=0.0)
