"""The planner's Nyström landmarks are capped at the train rows (and the plan says so), and
`hybrid-plan` on a managed device without an ARN asks for the ARN, not for a price."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_assets.cli.plan import main
from hybrid_assets.planning.routes import route_report
from hybrid_resources.cost_policy import CostPolicy, UnknownPriceError, load_price_table, price_of
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.planning import PlanRequest, plan_routes

GARNET_ARN = "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"
GARNET = BackendConfig(device_name="braket.aws.qubit", shots=1000, device_options=(("device_arn", GARNET_ARN),))
SPEC = FeatureMapSpec("iqp", 4)


def nystrom(landmarks: int, backend: BackendConfig = GARNET, n_train: int = 100):
    return {p.route: p for p in plan_routes(PlanRequest(n_train, 0, SPEC, landmarks), backend, load_price_table())}


def test_more_landmarks_than_train_rows_are_priced_as_all_train_rows_and_the_plan_says_so():
    capped, all_rows, fewer = nystrom(1000), nystrom(100), nystrom(20)
    # Every train row a landmark: K_mm is the train Gram matrix and no other row of K_nm is left,
    # so the route costs exactly what pairwise does.
    assert capped["nystrom"].circuits == all_rows["nystrom"].circuits == capped["pairwise"].circuits == 100 * 99 // 2
    assert (capped["nystrom"].tasks, capped["nystrom"].usd) == (all_rows["nystrom"].tasks, all_rows["nystrom"].usd)
    assert (capped["nystrom"].tasks, capped["nystrom"].usd) == (capped["pairwise"].tasks, capped["pairwise"].usd)
    assert fewer["nystrom"].circuits == 20 * 19 // 2 + 80 * 20
    assert capped["nystrom"].circuits < nystrom(1000, n_train=1000)["nystrom"].circuits
    assert "m capped at N=100, not 1000" in capped["nystrom"].note
    assert "every train row is a landmark, so this is the exact kernel at pairwise's cost" in capped["nystrom"].note
    assert all_rows["nystrom"].note.startswith("m = N=100: every train row is a landmark")
    assert fewer["nystrom"].note == capped["pairwise"].note == all_rows["pairwise"].note == ""
    # The exact simulator runs no circuits, and its plan states the cap as well.
    exact = nystrom(1000, BackendConfig())["nystrom"]
    assert exact.circuits == 0 and exact.note.startswith("statevector; m capped at N=100")


def test_the_route_report_and_the_command_state_the_capped_landmarks(capsys, data_layout, monkeypatch):
    _, report = route_report(PlanRequest(100, 0, SPEC, 1000), GARNET, CostPolicy(), {})
    assert report["landmarks"] == 100
    monkeypatch.setenv("HYBRID_BRAKET_DEVICE_ARN", GARNET_ARN)
    main(["--device", "braket.aws.qubit", "--shots", "1000", "--train-rows", "100", "--landmarks", "1000",
          "--format", "json"])
    printed = json.loads(capsys.readouterr().out)
    routes = {route["route"]: route for route in printed["routes"]}
    assert printed["landmarks"] == 100 and routes["nystrom"]["circuits"] == routes["pairwise"]["circuits"] == 100 * 99 // 2
    assert "m capped at N=100" in routes["nystrom"]["note"]


def test_a_managed_device_without_an_arn_is_asked_for_the_arn_not_a_price(data_layout, monkeypatch, tmp_path):
    monkeypatch.delenv("HYBRID_BRAKET_DEVICE_ARN", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    with pytest.raises(SystemExit) as refused:
        main(["--device", "braket.aws.qubit", "--train-rows", "50", "--no-accuracy"])
    message = str(refused.value.code)
    assert "HYBRID_BRAKET_DEVICE_ARN" in message and "arn:aws:braket:" in message
    assert "prices.json" not in message and "HYBRID_PRICE_TABLE" not in message
    # A device that has an ARN but no price still gets the price-table advice.
    unpriced = BackendConfig(device_name="braket.aws.qubit", shots=10,
                             device_options=(("device_arn", "arn:aws:braket:::device/qpu/acme/new-1"),))
    with pytest.raises(UnknownPriceError, match="prices.json"):
        price_of(unpriced, load_price_table())
    with pytest.raises(UnknownPriceError, match="HYBRID_BRAKET_DEVICE_ARN") as malformed:
        price_of(BackendConfig(device_name="braket.aws.qubit", shots=10,
                               device_options=(("device_arn", "Forte-1"),)), load_price_table())
    assert "'Forte-1'" in malformed.value.description


def test_the_installed_command_exits_with_the_arn_advice(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYBRID_", "DAGSTER_"))}
    env |= {"HYBRID_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    (tmp_path / "dagster_home").mkdir()
    script = Path(sys.executable).with_name("hybrid-plan")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "hybrid_assets.cli.plan"]
    done = subprocess.run([*command, "--device", "braket.aws.qubit", "--train-rows", "50", "--no-accuracy"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "hybrid-plan: Device 'braket.aws.qubit' needs a Braket device ARN" in done.stderr
    assert "HYBRID_BRAKET_DEVICE_ARN" in done.stderr and "prices.json" not in done.stderr
