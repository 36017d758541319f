"""What the honest verdict costs: tuning both sides, the repeated-split comparison, the shot planner.

    .venv/bin/python bench/verdict_bench.py [--rows 569,5000] [--repeats 3]

For each dataset size it builds embeddings the way the pipeline does (the bundled breast-cancer
data for 569 rows; scikit-learn's make_classification with 30 features above that; PCA to 6
dimensions), then times, on the exact simulator, the steps the verdict adds to a refresh:
classical tuning (21 candidates x 5 folds), quantum tuning (24 candidates x 5 folds), the
labelled kernel plus 5 x 5 repeated splits, and the shot planner (5 rungs x 5 seeds). Prints
medians and writes bench/results/verdict_bench-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_assets.evaluation.assets import labelled_kernel, run_verdict  # noqa: E402
from hybrid_assets.ingest.features import build_features  # noqa: E402
from hybrid_assets.training.embeddings import reduce_embeddings  # noqa: E402
from hybrid_assets.training.shot_planner import shot_ladder  # noqa: E402
from hybrid_assets.training.tuning import kfold_splits, tune_classical, tune_quantum  # noqa: E402
from hybrid_resources.gate_policy import GatePolicy  # noqa: E402
from hybrid_resources.quantum.feature_maps import FeatureMapSpec  # noqa: E402
from hybrid_resources.quantum.kernel_cache import KernelCache  # noqa: E402
from hybrid_resources.quantum.kernel_engine import quantum_kernel  # noqa: E402


def embeddings(rows: int) -> dict:
    """Embeddings as the pipeline builds them: the split by sample id, PCA to 6 dims on train."""
    if rows == 569:
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
    else:
        from sklearn.datasets import make_classification

        X, y = make_classification(n_samples=rows, n_features=30, n_informative=8, random_state=0)
    raw = pl.DataFrame({"sample_id": [f"s{i:06d}" for i in range(len(y))], "label": [str(v) for v in y],
                        "features": X.tolist(), "file_hash": ["bench"] * len(y), "order": np.arange(len(y))})
    return reduce_embeddings(build_features(raw, test_fraction=0.2, seed=42), n_qubits=6)


def verdict_once(data: dict, policy: GatePolicy) -> dict[str, float]:
    X, y = data["X_train"], data["y_train"]
    timings = {}
    started = time.perf_counter()
    splits = kfold_splits(y, folds=policy.cv_folds, seed=policy.cv_seed)
    classical = tune_classical(X, y, splits, metric=policy.metric)
    timings["classical_tuning_s"] = time.perf_counter() - started
    started = time.perf_counter()
    quantum = tune_quantum(X, y, splits, FeatureMapSpec("iqp", X.shape[1]), metric=policy.metric,
                           bandwidths=[0.1, 0.3, 1.0], reps=[1, 2], Cs=[0.1, 1.0, 10.0, 100.0])
    timings["quantum_tuning_s"] = time.perf_counter() - started
    best = quantum[0].params
    spec = FeatureMapSpec("iqp", X.shape[1], reps=best["reps"], bandwidth=best["bandwidth"])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        comparison = labelled_kernel(data, spec, KernelCache(Path(cache)))
        verdict, _ = run_verdict(comparison, best["C"], {"kind": classical[0].model, "params": classical[0].params},
                                 policy, policy.metric)
    timings["verdict_splits_s"] = time.perf_counter() - started
    started = time.perf_counter()
    train = quantum_kernel(X, spec=spec).matrix
    test = quantum_kernel(data["X_test"], X, spec=spec).matrix
    shot_ladder(train, test, y, data["y_test"], C=best["C"], metric=policy.metric)
    timings["shot_planner_s"] = time.perf_counter() - started
    timings["total_s"] = sum(timings.values())
    timings["verdict"] = verdict.message()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="569,5000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    policy, results = GatePolicy(), {}
    for rows in [int(r) for r in args.rows.split(",")]:
        data = embeddings(rows)
        runs = [verdict_once(data, policy) for _ in range(args.repeats)]
        summary = {key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "verdict"}
        results[str(rows)] = {**summary, "runs": runs, "n_train": int(len(data["y_train"]))}
        print(f"{rows} rows ({len(data['y_train'])} train): " + ", ".join(f"{k} {v:.1f}" for k, v in summary.items()))
        print(f"  {runs[0]['verdict']}")
    out = Path(__file__).parent / "results" / f"verdict_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
