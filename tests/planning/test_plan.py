"""`hybrid-plan`: the routes' circuits, dollars and time for the current data, with nothing submitted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sklearn.datasets import make_classification

from hybrid_assets.cli.plan import main
from hybrid_assets.planning.routes import expected_accuracy, projected_choice
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.projected_kernel import DEFAULT_GAMMAS

GARNET = "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"


def plan(capsys, *args: str) -> dict:
    main([*args, "--format", "json"])
    return json.loads(capsys.readouterr().out)


def test_a_plan_for_a_paid_device_prices_each_route_and_names_what_the_time_budget_refuses(capsys, monkeypatch,
                                                                                          data_layout):
    monkeypatch.setenv("HYBRID_BRAKET_DEVICE_ARN", GARNET)
    monkeypatch.setenv("HYBRID_TIME_BUDGET_S", "3600")
    report = plan(capsys, "--device", "braket.aws.qubit", "--shots", "1000", "--train-rows", "100", "--qubits", "4",
                  "--landmarks", "20")
    routes = {route["route"]: route for route in report["routes"]}
    assert (routes["pairwise"]["circuits"], routes["projected"]["circuits"]) == (4950, 300)
    assert routes["nystrom"]["circuits"] == 20 * 19 // 2 + 80 * 20  # K_mm, then the 80 non-landmark train rows
    # Program sets on Garnet: one task fee per set of programs, far fewer tasks than circuits.
    assert routes["pairwise"]["tasks"] < routes["pairwise"]["circuits"] / 10
    assert routes["projected"]["usd"] < 0.07 * routes["pairwise"]["usd"]
    # 4,950 managed-device tasks take longer than an hour; 300 circuits in 3 sets do not.
    assert "pairwise" in report["refused"] and "projected" not in report["refused"]
    assert "HYBRID_TIME_BUDGET_S" in report["refused"]["pairwise"]


def test_the_plan_of_the_exact_simulator_submits_nothing_and_without_data_says_what_to_do(capsys, data_layout,
                                                                                          monkeypatch):
    monkeypatch.delenv("HYBRID_QUANTUM_SHOTS", raising=False)
    report = plan(capsys, "--device", "default.qubit", "--train-rows", "50")
    assert all(route["circuits"] == 0 and route["usd"] == 0 for route in report["routes"])
    with pytest.raises(SystemExit, match="make demo"):
        main([])


def test_for_the_current_data_each_route_has_its_expected_accuracy_on_the_exact_simulator(capsys, data_layout,
                                                                                        monkeypatch):
    # The latest embeddings and tuning, as the pipeline stores them: two separable classes.
    from hybrid_resources.data.artifacts import ArtifactStore, content_hash
    from hybrid_resources.quantum.feature_maps import FeatureMapSpec

    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    X = np.clip(0.9 + 1.2 * y[:, None] + rng.normal(scale=0.25, size=(60, 2)), 0, np.pi)
    embeddings = {"X_train": X[:40], "y_train": y[:40], "X_test": X[40:], "y_test": y[40:]}
    tuning = {"spec": FeatureMapSpec("angle", 2).to_dict(), "C": 1.0}
    store = ArtifactStore(data_layout.artifacts)
    for key, value in (("reduced_embeddings", embeddings), ("kernel_tuning", tuning)):
        store.write([key], value, version=content_hash(value))
    monkeypatch.setenv("HYBRID_QUANTUM_DEVICE", "braket.local.qubit")
    report = plan(capsys, "--shots", "1000", "--landmarks", "10")
    assert (report["train_rows"], report["test_rows"], report["qubits"]) == (40, 20, 2)
    assert {route["route"]: route["circuits"] for route in report["routes"]} == {
        "pairwise": 40 * 39 // 2 + 20 * 40, "projected": 3 * 60, "nystrom": 10 * 9 // 2 + (40 - 10) * 10 + 20 * 10}
    accuracy = report["expected_accuracy"]
    assert set(accuracy) == {"pairwise", "projected", "nystrom"}
    assert all(0.8 <= value <= 1.0 for value in accuracy.values()), accuracy  # separable classes
    assert "expected_accuracy" in plan(capsys, "--no-accuracy") and plan(capsys, "--no-accuracy")["expected_accuracy"] == {}


def test_the_plan_job_stores_the_same_report_as_the_command_and_submits_nothing(capsys, data_layout, monkeypatch,
                                                                                  instance):
    from dagster import materialize

    from dagster import AssetKey

    from hybrid_assets.definitions import all_assets, defs
    from hybrid_resources.data.artifacts import ArtifactStore, content_hash
    from hybrid_resources.quantum.feature_maps import FeatureMapSpec
    from tests.conftest import RESOURCES
    from tests.devices import DeviceBoundary

    rng = np.random.default_rng(1)
    y = np.arange(30) % 2
    X = rng.uniform(0, np.pi, size=(30, 3))
    embeddings = {"X_train": X[:20], "y_train": y[:20], "X_test": X[20:], "y_test": y[20:]}
    tuning = {"spec": FeatureMapSpec("iqp", 3).to_dict(), "C": 1.0}
    store = ArtifactStore(data_layout.artifacts)
    for key, value in (("reduced_embeddings", embeddings), ("kernel_tuning", tuning)):
        store.write([key], value, version=content_hash(value))
    boundary = DeviceBoundary(monkeypatch)
    from hybrid_resources.quantum.backends import QuantumBackend

    result = materialize(all_assets, selection=["kernel_route_plan"], instance=instance,
                         resources={**RESOURCES, "quantum_backend": QuantumBackend(shots=500)},
                         run_config={"ops": {"kernel_route_plan": {"config": {"landmarks": 5}}}})
    assert result.success and boundary.circuits == 0
    stored = store.read(["kernel_route_plan"])
    monkeypatch.setenv("HYBRID_QUANTUM_SHOTS", "500")
    assert stored == plan(capsys, "--landmarks", "5")
    assert {route["route"]: route["circuits"] for route in stored["routes"]} == {
        "pairwise": 20 * 19 // 2 + 10 * 20, "projected": 3 * 30, "nystrom": 5 * 4 // 2 + (20 - 5) * 5 + 10 * 5}
    # The job plans the routes and scores the devices; nothing else.
    assert defs.resolve_job_def("plan_kernel_routes").asset_layer.executable_asset_keys == {
        result.asset_materializations_for_node("kernel_route_plan")[0].asset_key, AssetKey("provider_scorecard")}


def test_the_expected_accuracy_runs_on_a_stated_stratified_sample_above_its_row_limit():
    from hybrid_assets.planning.routes import accuracy_sample

    y_train, y_test = np.arange(200) % 4 == 0, np.arange(30) % 2
    embeddings = {"X_train": np.arange(400.0).reshape(200, 2), "y_train": y_train.astype(int),
                  "X_test": np.zeros((30, 2)), "y_test": y_test}
    sample, notes = accuracy_sample(embeddings, 40)
    assert sample["X_train"].shape == (40, 2) and sample["y_train"].sum() == 10  # the class shares kept: 1 in 4
    assert set(sample["X_train"][:, 0] // 2) <= set(range(200))  # train rows, paired with their own labels
    assert np.array_equal(sample["y_train"], (sample["X_train"][:, 0] // 2 % 4 == 0).astype(int))
    assert notes["train"] == {"what": "train rows of the expected accuracy", "rows": 40, "of": 200, "sampled": True,
                              "rule": "stratified by class, uniform within a class, without replacement", "seed": 0}
    assert notes["test"]["sampled"] is False and sample["X_test"].shape == (30, 2)
    again, _ = accuracy_sample(embeddings, 40)
    assert np.array_equal(again["X_train"], sample["X_train"])  # seeded


def test_the_projected_route_reuses_what_kernel_tuning_cross_validated():
    fidelity_only = {"candidates": [{"kernel": "fidelity", "params": {"bandwidth": 1.0, "reps": 1, "C": 1.0},
                                     "cv_mean": 0.9}]}
    assert projected_choice(fidelity_only) is None
    best = {"gamma": 1.0, "C": 10.0, "bandwidth": 0.5, "reps": 1}
    tuned = {"candidates": [*fidelity_only["candidates"],
                            {"kernel": "projected", "params": {**best, "gamma": 0.1}, "cv_mean": 0.7},
                            {"kernel": "projected", "params": best, "cv_mean": 0.8}]}
    assert projected_choice(tuned) == best
    X, y = make_classification(n_samples=80, n_features=3, n_informative=3, n_redundant=0, random_state=1)
    X = np.pi * (X - X.min(0)) / (X.max(0) - X.min(0))
    embeddings = {"X_train": X[:60], "y_train": y[:60], "X_test": X[60:], "y_test": y[60:]}
    spec = FeatureMapSpec("iqp", 3)
    # Another (gamma, C) gives another projected figure: the one kernel_tuning chose is the one used.
    figures = {gamma: expected_accuracy(embeddings, spec, 1.0, 10, projected={**best, "gamma": gamma})["projected"]
               for gamma in (0.01, 1.0, 100.0)}
    assert len(set(figures.values())) > 1
    # Without projected candidates, gamma is searched at the tuned C (1.0) on the feature map as tuned.
    searched = expected_accuracy(embeddings, spec, 1.0, 10)["projected"]
    at_tuned_C = {expected_accuracy(embeddings, spec, 1.0, 10, projected={"gamma": gamma, "C": 1.0, "bandwidth": 1.0,
                                                                          "reps": 1})["projected"]
                  for gamma in DEFAULT_GAMMAS}
    assert searched in at_tuned_C
