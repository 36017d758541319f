"""VQC training: learning, SIGKILL-safe resume, corrupt checkpoints, lineages, restarts."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from hybrid_resources.data.checkpoints import CheckpointStore, CheckpointWarning
from hybrid_resources.quantum.backends import BackendConfig, LedgerRequiredError
from hybrid_resources.quantum.vqc import (
    EXACT_CHECKPOINT_STEPS,
    TrainingResult,
    VqcConfig,
    _make_qnode,
    checkpoint_interval,
    circuits_per_step,
    evaluate_vqc,
    lineage_key,
    n_circuit_params,
    plateaued,
    predict_proba,
    split_validation,
    train_vqc,
)
from tests.conftest import kill_when_ready, priced_like_a_qpu

WORKER = Path(__file__).parents[1] / "vqc_worker.py"
# 20 training rows / batch 5 -> 4 steps per epoch: small, but enough for mid-epoch resumes.
# A checkpoint after every step, so an interruption at any step resumes from that step.
SMALL = VqcConfig(layers=1, optimizer="adam", step_size=0.1, batch_size=5, epochs=4, seed=3, restarts=1,
                  checkpoint_every=1)


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two separable 2-D blobs already scaled into [0, pi]: class 1 near (3pi/4, 3pi/4)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    centres = np.where(y[:, None] == 1, 0.75 * np.pi, 0.25 * np.pi)
    return np.clip(centres + 0.3 * rng.normal(size=(n, 2)), 0.0, np.pi), y


X_TR, Y_TR = blobs(20, seed=0)
X_VA, Y_VA = blobs(12, seed=1)


def _train(cfg: VqcConfig, root: Path, backend: BackendConfig = BackendConfig(), **kwargs) -> TrainingResult:
    return train_vqc(X_TR, Y_TR, cfg, checkpoint_dir=root, lineage=lineage_key("data-v1", "circ-v1", cfg, backend),
                     X_val=X_VA, y_val=Y_VA, backend=backend, **kwargs)


def _assert_same_model(a: TrainingResult, b: TrainingResult) -> None:
    np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-8)
    assert abs(a.bias - b.bias) <= 1e-8
    assert a.best_restart == b.best_restart
    for ha, hb in zip(a.history, b.history, strict=True):
        np.testing.assert_allclose(ha["step_loss"], hb["step_loss"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(ha["val_loss"], hb["val_loss"], rtol=0, atol=1e-10)


class _Interrupt(Exception):
    pass


def test_training_lowers_loss_and_beats_chance(tmp_path: Path) -> None:
    cfg = replace(SMALL, epochs=6, seed=2)  # an initialisation that starts far from a good fit
    seen: list[dict] = []
    res = _train(cfg, tmp_path, on_step=seen.append)
    h = res.history[0]
    assert len(h["loss"]) == len(h["val_loss"]) == len(h["val_accuracy"]) == 6
    assert h["loss"][-1] < h["loss"][0] - 0.5, h["loss"]
    assert h["val_loss"][-1] < h["val_loss"][0] - 0.5, h["val_loss"]
    assert res.val_accuracy >= 0.8  # 12 validation rows: chance is 0.5
    assert res.params.shape == (1, 2, 3) and res.steps_run == res.total_steps == 24
    assert res.resumed_from_step is None
    # on_step contract: every step, 1-based global steps, a finite ETA that ends at 0
    assert [s["step"] for s in seen] == list(range(1, 25))
    assert set(seen[0]) >= {"restart", "step", "total_steps", "loss", "eta_s"}
    assert seen[-1]["eta_s"] == 0.0 and all(np.isfinite(s["eta_s"]) for s in seen)
    # predict_proba / evaluate agree with the recorded final validation loss
    p = predict_proba(res.params, res.bias, X_VA, cfg)
    assert p.shape == (12,) and np.all((p >= 0) & (p <= 1))
    assert evaluate_vqc(res.params, res.bias, X_VA, Y_VA, cfg)["loss"] == pytest.approx(res.val_loss, abs=1e-10)
    meta = res.to_metadata()
    json.dumps(meta)  # JSON-safe
    assert meta["total_steps"] == 24 and meta["best_restart"] == 0


def test_holds_out_seeded_validation_when_none_given(tmp_path: Path) -> None:
    X, y = blobs(20, seed=5)
    Xf, yf, Xv, yv = split_validation(X, y, seed=3)
    assert len(yv) == 4 and set(yv.tolist()) == {0, 1} and len(yf) == 16
    Xf2, _, Xv2, _ = split_validation(X, y, seed=3)
    np.testing.assert_array_equal(Xv, Xv2)  # seeded
    cfg = replace(SMALL, epochs=1, batch_size=8)
    res = train_vqc(X, y, cfg, checkpoint_dir=tmp_path, lineage=lineage_key("d", "c", cfg))
    assert res.total_steps == 2  # 16 fit rows / batch 8
    assert res.val_loss == pytest.approx(evaluate_vqc(res.params, res.bias, Xv, yv, cfg)["loss"], abs=1e-10)


def test_sigkilled_worker_resumes_to_identical_parameters(tmp_path: Path) -> None:
    cfg = replace(SMALL, epochs=5, checkpoint_every=1)  # 20 steps
    lineage = lineage_key("data-v1", "circ-v1", cfg)
    data = tmp_path / "data.npz"
    np.savez(data, X_train=X_TR, y_train=Y_TR, X_val=X_VA, y_val=Y_VA)
    killed_dir = tmp_path / "killed"
    store = CheckpointStore(killed_dir, lineage)
    # Killed after >= 6 completed checkpoints (sidecar present = complete); step 6 is mid-epoch 1.
    kill_when_ready([sys.executable, str(WORKER), str(data), json.dumps(asdict(cfg)), str(killed_dir), lineage, "0.1"],
                    lambda: any((killed_dir / lineage / f"step-{s:06d}.json").exists() for s in range(6, 21)))
    on_disk = store.steps_on_disk()
    assert 6 <= max(on_disk) < 20, on_disk  # killed mid-training, not after it finished

    resumed = _train(cfg, killed_dir)
    assert resumed.resumed_from_step is not None and resumed.resumed_from_step >= 5
    assert resumed.steps_run == 20 - resumed.resumed_from_step
    fresh = _train(cfg, tmp_path / "fresh")
    assert fresh.resumed_from_step is None
    _assert_same_model(resumed, fresh)
    # every checkpoint file the killed + resumed runs left behind loads without pickle
    for npz in (killed_dir / lineage).glob("step-*.npz"):
        with np.load(npz, allow_pickle=False) as arrays:
            for name in arrays.files:
                arrays[name]


@pytest.mark.parametrize(("restarts", "stop_after"), [(1, 6), (2, 8), (2, 13)])
def test_in_process_interrupt_resumes_exactly(tmp_path: Path, restarts: int, stop_after: int) -> None:
    """Mid-epoch (6, 13) and restart-boundary (8) interruptions, deterministic positions."""
    cfg = replace(SMALL, epochs=2, restarts=restarts)  # 8 steps per restart

    def stop(info: dict) -> None:
        if info["step"] == stop_after:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        _train(cfg, tmp_path / "a", on_step=stop)
    resumed = _train(cfg, tmp_path / "a")
    assert resumed.resumed_from_step == stop_after
    _assert_same_model(resumed, _train(cfg, tmp_path / "b"))
    again = _train(cfg, tmp_path / "a")  # a finished lineage returns without training
    assert again.steps_run == 0 and again.resumed_from_step == again.total_steps
    _assert_same_model(again, resumed)


def test_corrupt_newest_checkpoint_falls_back_with_warning(tmp_path: Path) -> None:
    cfg = replace(SMALL, epochs=2)  # 8 steps
    lineage = lineage_key("data-v1", "circ-v1", cfg)

    def stop(info: dict) -> None:
        if info["step"] == 6:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        _train(cfg, tmp_path, on_step=stop)
    newest = tmp_path / lineage / "step-000006.npz"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as by a full disk
    with pytest.warns(CheckpointWarning, match="step 6"):
        resumed = _train(cfg, tmp_path)
    assert resumed.resumed_from_step == 5
    assert len(resumed.checkpoint_warnings) == 1
    _assert_same_model(resumed, _train(cfg, tmp_path / "fresh"))


def test_config_change_starts_a_fresh_lineage(tmp_path: Path) -> None:
    a = replace(SMALL, epochs=1)
    b = replace(a, step_size=0.05)
    assert a.config_hash() != b.config_hash() and a.config_hash() == replace(a).config_hash()
    assert lineage_key("d", "c", a) != lineage_key("d", "c", b)
    assert lineage_key("d", "c", a) != lineage_key("d2", "c", a) != lineage_key("d", "c2", a)
    # Another device or shot count is another lineage: its checkpoints are never mixed in.
    assert lineage_key("d", "c", a) != lineage_key("d", "c", a, BackendConfig(shots=100))
    assert lineage_key("d", "c", a) != lineage_key("d", "c", a, BackendConfig("braket.local.qubit", shots=100))
    first = _train(a, tmp_path)
    assert _train(a, tmp_path).resumed_from_step == first.total_steps  # same config: resumes
    other = _train(b, tmp_path)
    assert other.resumed_from_step is None and other.steps_run == other.total_steps
    # Reusing a lineage with another config is refused, not silently mixed.
    with pytest.raises(ValueError, match="config_hash"):
        train_vqc(X_TR, Y_TR, b, checkpoint_dir=tmp_path, lineage=lineage_key("data-v1", "circ-v1", a),
                  X_val=X_VA, y_val=Y_VA)


def test_restarts_keep_the_lower_validation_loss(tmp_path: Path) -> None:
    cfg = replace(SMALL, epochs=2, restarts=2, step_size=0.05)
    res = _train(cfg, tmp_path)
    assert [h["restart"] for h in res.history] == [0, 1]
    finals = [h["val_loss"][-1] for h in res.history]
    assert finals[0] != finals[1]  # different seeded initialisations
    assert res.best_restart == int(np.argmin(finals))
    assert res.val_loss == min(finals)
    # the kept parameters really are the winning restart's: recompute its validation loss
    assert evaluate_vqc(res.params, res.bias, X_VA, Y_VA, cfg)["loss"] == pytest.approx(min(finals), abs=1e-10)
    # restart 0 of a 2-restart run is the same trajectory as a 1-restart run
    single = _train(replace(cfg, restarts=1), tmp_path)
    np.testing.assert_allclose(single.history[0]["step_loss"], res.history[0]["step_loss"], atol=1e-12)


def test_shot_based_training_is_resumable_and_cost_estimate(tmp_path: Path) -> None:
    cfg = replace(SMALL, epochs=1)
    shots = BackendConfig(shots=100)
    n_params = n_circuit_params(cfg, 2)
    assert n_params == 6
    assert circuits_per_step(100, 5, n_params) == 5 * 13
    assert circuits_per_step(None, 5, n_params) == 5

    def stop(info: dict) -> None:
        if info["step"] == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        _train(cfg, tmp_path / "a", on_step=stop, backend=shots)
    _assert_same_model(_train(cfg, tmp_path / "a", backend=shots), _train(cfg, tmp_path / "b", backend=shots))


def test_trains_on_the_braket_local_simulator_through_the_one_device_factory(tmp_path: Path, priced_policy) -> None:
    cfg = replace(SMALL, epochs=1, batch_size=10)
    local = BackendConfig("braket.local.qubit", shots=50)
    with priced_policy.ledger(run_id="vqc", asset="vqc_model", backend=local) as ledger:
        res = _train(cfg, tmp_path, backend=local, ledger=ledger)
    assert np.isfinite(res.val_loss) and res.steps_run == 2
    # 2 steps x 10 samples x (2 x 6 shifted + 1) circuits, plus one validation pass of 12 samples.
    assert ledger.tasks == 2 * 10 * 13 + 12 and ledger.shots == 50 * ledger.tasks


def test_rejects_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        VqcConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="0/1"):
        train_vqc(X_TR, Y_TR + 1, SMALL, checkpoint_dir=tmp_path, lineage="x")
    with pytest.raises(ValueError, match="both"):
        train_vqc(X_TR, Y_TR, SMALL, checkpoint_dir=tmp_path, lineage="x", X_val=X_VA)


def test_gd_optimizer_trains(tmp_path: Path) -> None:
    res = _train(replace(SMALL, optimizer="gd", step_size=0.5, epochs=3), tmp_path)
    assert res.history[0]["loss"][-1] < res.history[0]["loss"][0]


def test_exact_simulation_records_the_circuits_default_qubit_ran_and_prices_them(tmp_path: Path,
                                                                                 priced_policy) -> None:
    cfg = replace(SMALL, epochs=2)
    exact = BackendConfig()
    with priced_policy.ledger(run_id="vqc", asset="vqc_model", backend=exact) as ledger:
        res = _train(cfg, tmp_path, ledger=ledger)
        # 8 steps x 5 samples + 2 validation passes of 12: what default.qubit's backprop path (vqc-2) recorded.
        assert (ledger.tasks, ledger.circuits, ledger.shots) == (8 * 5 + 2 * 12, 64, 0)
        assert ledger.usd == pytest.approx(priced_policy.estimate(exact, 64, 0).usd) and ledger.usd > 0
        p = predict_proba(res.params, res.bias, X_VA, cfg, exact, ledger=ledger)
        assert ledger.tasks == 64 + 12
    with priced_policy.ledger(run_id="qnode", asset="vqc_model", backend=exact) as qnode_ledger:
        z = np.asarray(_make_qnode(exact, 2, None, qnode_ledger)(X_VA, res.params))
    assert qnode_ledger.tasks == 12  # the QNode's device counts the same circuit per row
    np.testing.assert_allclose(p, 1 / (1 + np.exp(3.0 * z - res.bias)), rtol=0, atol=1e-12)


def test_a_priced_exact_simulator_still_needs_a_ledger_and_checkpoints_every_step(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    cfg = replace(SMALL, checkpoint_every=None)
    assert checkpoint_interval(cfg, BackendConfig(), 4) == 4
    monkeypatch.setenv("HYBRID_PRICE_TABLE", str(priced_like_a_qpu(tmp_path)))
    assert checkpoint_interval(cfg, BackendConfig(), 4) == 1  # a step costs money: every step
    with pytest.raises(LedgerRequiredError, match="default.qubit is a paid device"):
        _train(cfg, tmp_path)
    with pytest.raises(LedgerRequiredError):
        predict_proba(np.zeros((1, 2, 3)), 0.0, X_VA, cfg)


def test_checkpoint_cadence_by_device() -> None:
    auto = replace(SMALL, checkpoint_every=None)
    assert checkpoint_interval(auto, BackendConfig(), 250) == EXACT_CHECKPOINT_STEPS == 100
    assert checkpoint_interval(auto, BackendConfig("lightning.qubit"), 3) == 3  # at most an epoch
    assert checkpoint_interval(auto, BackendConfig(shots=100), 250) == 1  # sampled steps
    assert checkpoint_interval(auto, BackendConfig("braket.local.qubit", shots=10), 250) == 1
    assert checkpoint_interval(replace(auto, checkpoint_every=7), BackendConfig(shots=100), 250) == 7
    assert checkpoint_interval(SMALL, BackendConfig(), 250) == 1


def test_auto_cadence_resumes_exactly_from_its_last_checkpoint(tmp_path: Path) -> None:
    cfg = replace(SMALL, epochs=3, restarts=2, checkpoint_every=None)  # 4 steps per epoch: one checkpoint each

    def stop(info: dict) -> None:
        if info["step"] == 15:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        _train(cfg, tmp_path / "a", on_step=stop)
    assert CheckpointStore(tmp_path / "a", lineage_key("data-v1", "circ-v1", cfg)).steps_on_disk() == [4, 8, 12]
    resumed = _train(cfg, tmp_path / "a")
    assert resumed.resumed_from_step == 12 and resumed.steps_run == 12 and resumed.checkpoint_every == 4
    _assert_same_model(resumed, _train(cfg, tmp_path / "b"))
    _assert_same_model(resumed, _train(replace(cfg, checkpoint_every=1), tmp_path / "c"))  # cadence: no effect


def test_plateau_rule() -> None:
    assert not plateaued([0.7, 0.71, 0.72], None, 0.0)  # off
    assert not plateaued([0.7], 1, 0.0)  # nothing to compare with yet
    assert plateaued([0.7, 0.7], 1, 0.0) and not plateaued([0.7, 0.69], 1, 0.0)
    assert plateaued([0.7, 0.695], 1, 0.01)  # better, but by less than min_delta
    assert not plateaued([0.7, 0.75, 0.65], 2, 0.01) and plateaued([0.7, 0.75, 0.695], 2, 0.01)


def test_early_stop_ends_a_restart_on_a_validation_plateau_and_resumes_exactly(tmp_path: Path) -> None:
    # A min_delta no epoch can beat: every restart stops after its second epoch.
    cfg = replace(SMALL, epochs=4, restarts=2, early_stop_patience=1, early_stop_min_delta=10.0)
    seen: list[dict] = []
    res = _train(cfg, tmp_path / "a", on_step=seen.append)
    for h in res.history:
        assert h["stopped_epoch"] == 2 and len(h["val_loss"]) == len(h["loss"]) == 2 and len(h["step_loss"]) == 8
        assert f"1 epoch(s) without a loss 10 below {h['val_loss'][0]:.4f}" in h["stop_reason"]
    assert res.steps_run == 16 < res.total_steps == 32  # the plan stays the upper bound
    assert [s["step"] for s in seen] == list(range(1, 17)) and seen[-1]["eta_s"] == 0.0
    assert res.val_loss == min(h["val_loss"][-1] for h in res.history)
    meta = res.to_metadata()
    assert meta["steps_completed"] == 16 and [e["restart"] for e in meta["early_stops"]] == [0, 1]
    assert meta["early_stops"][0]["epochs_run"] == 2
    # restart 0's first two epochs are those of a run without the early stop
    full = _train(replace(cfg, early_stop_patience=None, restarts=1), tmp_path / "full")
    np.testing.assert_array_equal(full.history[0]["val_loss"][:2], res.history[0]["val_loss"])
    assert full.history[0]["stopped_epoch"] is None and full.to_metadata()["early_stops"] == []

    def stop(info: dict) -> None:
        if info["step"] == 10:  # in restart 1, after restart 0 stopped
            raise _Interrupt

    with pytest.raises(_Interrupt):
        _train(cfg, tmp_path / "b", on_step=stop)
    resumed = _train(cfg, tmp_path / "b")
    assert resumed.resumed_from_step == 10 and resumed.steps_run == 6
    _assert_same_model(resumed, res)
    assert [h["stopped_epoch"] for h in resumed.history] == [2, 2]
    again = _train(cfg, tmp_path / "b")  # a finished, early-stopped lineage returns without training
    assert again.steps_run == 0 and again.resumed_from_step == 16


def test_lightning_takes_the_same_exact_simulation(tmp_path: Path) -> None:
    cfg = replace(SMALL, epochs=1)
    lightning, default = (_train(cfg, tmp_path / name, backend=BackendConfig(name))
                          for name in ("lightning.qubit", "default.qubit"))
    _assert_same_model(lightning, default)
