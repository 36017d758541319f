"""The variational classifier's training as ``vqc_model`` runs it, before and after issue 26's speed-up.

Not a test. Data: scikit-learn's ``make_classification`` (30 features, 8 informative, 2 classes),
a stratified 80/20 train/holdout split, standardised and reduced by PCA to 6 dimensions, then
scaled into the encoding range [0, pi], all fitted on train (what ``reduced_embeddings`` does);
the VQC trains on ``--train-rows`` rows (default 10,000, the asset's ``max_train_rows``: 8,000 fit
rows, 2,000 validation rows, 1,500 optimiser steps) with the asset's default configuration.
Each variant trains into a fresh checkpoint folder, in this process, one after the other:

- ``old``: the trainer as it was at ``--base`` (PennyLane ``default.qubit``, backprop through
  autograd, a durable checkpoint after every step), loaded from git;
- ``numpy-every-step``: the numpy adjoint simulation, still a checkpoint after every step;
- ``numpy-auto``: the numpy simulation with the default cadence (every 100 steps on this free
  exact simulator) and the asset's default early stop;
- ``numpy-auto-patience-1``: the same with ``early_stop_patience=1`` (what a stopping default would do).

Prints one row per variant (seconds, steps, final validation BCE and accuracy of the kept restart,
holdout accuracy and ROC AUC, the largest parameter difference from ``old``) and writes
``bench/results/vqc_bench.json``.

    .venv/bin/python bench/vqc_bench.py [--train-rows 10000] [--skip-old] [--base 816169a]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hybrid_assets.training.tasks import holdout_metrics  # noqa: E402
from hybrid_assets.training.variational import VqcAssetConfig, vqc_config_of  # noqa: E402
from hybrid_resources.quantum import vqc  # noqa: E402

N_QUBITS = 6
BASE = "816169a"  # the last commit before the numpy trainer (vqc-2)


def bench_data(train_rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``train_rows`` train and ``train_rows / 4`` holdout rows of 6 features in [0, pi] (float64) with
    0/1 labels, reduced and scaled as described in the module docstring."""
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=train_rows * 5 // 4, n_features=30, n_informative=8, random_state=seed)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    pca = PCA(n_components=N_QUBITS, random_state=seed).fit(scaler.transform(X_train))
    Z_train, Z_test = (pca.transform(scaler.transform(part)) for part in (X_train, X_test))
    low, high = Z_train.min(axis=0), Z_train.max(axis=0)
    to_range = lambda Z: np.clip((Z - low) / (high - low), 0.0, 1.0) * np.pi  # noqa: E731
    return {"X_train": to_range(Z_train), "y_train": y_train, "X_test": to_range(Z_test), "y_test": y_test}


def old_trainer(base: str) -> ModuleType:
    """``hybrid_resources/quantum/vqc.py`` as it was at git commit ``base``, imported as a module."""
    source = subprocess.run(["git", "show", f"{base}:hybrid_resources/quantum/vqc.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "vqc_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("vqc_old", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["vqc_old"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def run_variant(trainer: ModuleType, config_fields: dict, data: dict[str, np.ndarray]) -> dict:
    """Train with ``trainer`` (old or new module) and the config, into a fresh folder; the figures."""
    fields = {f.name for f in dataclasses.fields(trainer.VqcConfig)}
    config = trainer.VqcConfig(**{k: v for k, v in config_fields.items() if k in fields})
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = trainer.train_vqc(data["X_train"], data["y_train"], config, checkpoint_dir=Path(folder),
                                   lineage=trainer.lineage_key("bench", "bench", config))
        seconds = time.perf_counter() - started
    p = trainer.predict_proba(result.params, result.bias, data["X_test"], config)
    holdout = holdout_metrics(data["y_test"], p - 0.5)
    meta = result.to_metadata()
    return {
        "trainer_version": meta["trainer_version"], "config": config.to_dict(), "seconds": round(seconds, 2),
        "steps": result.steps_run, "planned_steps": result.total_steps, "ms_per_step": 1e3 * seconds / result.steps_run,
        "checkpoint_every": meta.get("checkpoint_every", 1),
        "early_stops": meta.get("early_stops", []), "best_restart": result.best_restart,
        "val_loss": result.val_loss, "val_accuracy": result.val_accuracy,
        "restart_val_losses": [h["val_loss"] for h in result.history],
        "holdout_accuracy": holdout["accuracy"], "holdout_roc_auc": holdout["roc_auc"],
        "params": np.concatenate([np.ravel(result.params), [result.bias]]).tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=10_000)
    parser.add_argument("--skip-old", action="store_true", help="skip the PennyLane trainer (~1 minute)")
    parser.add_argument("--base", default=BASE, help="git commit of the old trainer")
    args = parser.parse_args()
    data = bench_data(args.train_rows)
    asset_default = vqc_config_of(VqcAssetConfig()).to_dict()
    variants = {"numpy-every-step": (vqc, {**asset_default, "checkpoint_every": 1}),
                "numpy-auto": (vqc, asset_default),
                "numpy-auto-patience-1": (vqc, {**asset_default, "early_stop_patience": 1})}
    if not args.skip_old:
        variants = {"old": (old_trainer(args.base), {**asset_default, "checkpoint_every": 1}), **variants}
    runs = {name: run_variant(trainer, fields, data) for name, (trainer, fields) in variants.items()}
    reference = np.array(runs["old"]["params"]) if "old" in runs else None
    print(f"{args.train_rows} train rows, {len(data['y_test'])} holdout rows, {N_QUBITS} qubits")
    print(f"{'variant':24} {'seconds':>8} {'steps':>6} {'ms/step':>8} {'val BCE':>8} {'val acc':>8} "
          f"{'holdout acc':>11} {'AUC':>6} {'max|dparam|':>11}")
    for name, run in runs.items():
        run["max_param_diff_from_old"] = (float(np.abs(np.array(run["params"]) - reference).max())
                                          if reference is not None else None)
        diff = run["max_param_diff_from_old"]
        print(f"{name:24} {run['seconds']:8.2f} {run['steps']:6d} {run['ms_per_step']:8.2f} {run['val_loss']:8.4f} "
              f"{run['val_accuracy']:8.4f} {run['holdout_accuracy']:11.4f} {run['holdout_roc_auc']:6.4f} "
              f"{'-' if diff is None else f'{diff:.2e}':>11}")
        for stop in run["early_stops"]:
            print(f"{'':24} restart {stop['restart']} stopped after epoch {stop['epochs_run']}: {stop['reason']}")
    out = ROOT / "bench" / "results" / "vqc_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"train_rows": args.train_rows, "holdout_rows": int(len(data["y_test"])),
                               "n_qubits": N_QUBITS, "machine": platform.platform(), "runs": runs}, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
