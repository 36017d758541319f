"""What multi-class and regression cost next to binary, and whether the tuned suite holds the bar.

    .venv/bin/python bench/task_models_bench.py [--rows 5000] [--folds 3] [--points 2] [--Cs 1,10] [--skip-bar]

Two measurements, written to bench/results/task_models.json (and printed; a part skipped with
--skip-bar or --skip-cost keeps the figures an earlier run wrote):

1. Cost (issue 25's target: the multi-class and regression paths within 2x of the binary path on
   the same rows). ``--rows`` train rows of scikit-learn's make_classification (2 and 5 classes)
   and make_regression, embedded as the pipeline does (standardize, PCA to 8 dims, scale into
   [0, pi]). For each task: the classical suite tuned by k-fold CV (``--points`` grid points of
   each kind, ``--folds`` folds) plus the winner's fit on all rows, timed per kind; and the quantum
   kernel SVM tuned over ``--Cs`` on one precomputed 8-qubit IQP kernel (computed once, timed
   apart) plus its fit. Ratios are each path's time over the binary path's.

2. The bar (the issue's "Done when"): on wine (3 classes), digits (10 classes) and diabetes
   (regression), embedded the same way with a seeded 75/25 split, the holdout score of our tuned
   classical suite (the full grid, 5 folds, ranked by accuracy or R²) against scikit-learn's
   GridSearchCV over an RBF SVC / SVR (a wider C x gamma grid, epsilon too for the SVR, on a
   standardized target) on the same embedded split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_assets.training.embeddings import EmbeddingTransform  # noqa: E402
from hybrid_assets.training.models import (  # noqa: E402
    classical_decision,
    fit_classical,
    fit_precomputed_svm,
)
from hybrid_assets.training.tasks import holdout_metrics  # noqa: E402
from hybrid_assets.training.tuning import (  # noqa: E402
    classical_grid,
    cross_validate,
    kfold_splits,
    quantum_score,
    tune_classical,
)
from hybrid_resources.quantum.feature_maps import FeatureMapSpec  # noqa: E402
from hybrid_resources.quantum.kernel_engine import quantum_kernel  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "task_models.json"
DIMS = 8


def embed(X: np.ndarray, y: np.ndarray, *, test_fraction: float, seed: int = 0) -> dict:
    """A seeded split, embedded as the pipeline does (EmbeddingTransform fit on train only)."""
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    train, test = order[n_test:], order[:n_test]
    transform = EmbeddingTransform.fit(X[train], np.arange(len(train)).astype(str), n_qubits=DIMS)
    return {"X_train": transform.encode(X[train]), "X_test": transform.encode(X[test]),
            "y_train": y[train], "y_test": y[test]}


def synthetic(task: str, rows: int) -> dict:
    """``rows`` train rows (and a fifth as many test rows) of a synthetic dataset for ``task``."""
    from sklearn.datasets import make_classification, make_regression

    total = int(rows * 1.25)
    if task == "regression":
        X, y = make_regression(n_samples=total, n_features=20, n_informative=8, noise=10.0, random_state=0)
        return embed(X, y.astype(np.float64), test_fraction=0.2)
    classes = 2 if task == "binary" else 5
    X, y = make_classification(n_samples=total, n_features=20, n_informative=8, n_classes=classes, random_state=0)
    return embed(X, y.astype(np.int64), test_fraction=0.2)


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def classical_cost(split: dict, *, folds: int, points: int) -> dict:
    """Seconds of each kind's CV over its first ``points`` grid points plus its best point's fit on all rows."""
    X, y = split["X_train"], split["y_train"]
    splits = kfold_splits(y, folds=folds, seed=0)
    seconds = {}
    for kind, params in classical_grid_of(y).items():
        ranked, tuning_s = timed(lambda: tune_classical(X, y, splits, metric="accuracy", grid={kind: params[:points]}))
        _, fit_s = timed(lambda: fit_classical(kind, ranked[0].params, X, y))
        seconds[kind] = tuning_s + fit_s
    return {"per_kind_s": seconds, "total_s": sum(seconds.values())}


def classical_grid_of(y: np.ndarray) -> dict:
    return classical_grid("regression" if y.dtype.kind == "f" else "binary")


def quantum_cost(split: dict, *, folds: int, Cs: list[float]) -> dict:
    """Seconds of the kernel SVM's CV over ``Cs`` and its fit, on one precomputed IQP kernel."""
    X, y = split["X_train"], split["y_train"]
    spec = FeatureMapSpec(name="iqp", n_qubits=X.shape[1], bandwidth=0.3)
    kernel, kernel_s = timed(lambda: quantum_kernel(X, spec=spec).matrix)
    splits = kfold_splits(y, folds=folds, seed=0)
    scores, tuning_s = timed(lambda: [cross_validate(quantum_score(kernel, y, C, "accuracy"), splits)[0] for C in Cs])
    best = Cs[int(np.argmax(scores))]
    _, fit_s = timed(lambda: fit_precomputed_svm(kernel, y, C=best))
    return {"kernel_s": kernel_s, "tuning_s": tuning_s, "fit_s": fit_s, "total_s": tuning_s + fit_s,
            "cv_scores": dict(zip(map(str, Cs), scores))}


def cost(rows: int, folds: int, points: int, Cs: list[float]) -> dict:
    figures = {}
    for task in ("binary", "multiclass", "regression"):
        split = synthetic(task, rows)
        figures[task] = {"classical": classical_cost(split, folds=folds, points=points),
                         "quantum_svm": quantum_cost(split, folds=folds, Cs=Cs)}
        print(f"{task:>10}: classical {figures[task]['classical']['total_s']:7.1f} s "
              f"{ {k: round(v, 1) for k, v in figures[task]['classical']['per_kind_s'].items()} }  "
              f"quantum SVM {figures[task]['quantum_svm']['total_s']:6.1f} s "
              f"(kernel {figures[task]['quantum_svm']['kernel_s']:.1f} s, apart)", flush=True)
    ratios = {}
    for task in ("multiclass", "regression"):
        ratios[task] = {
            "classical": figures[task]["classical"]["total_s"] / figures["binary"]["classical"]["total_s"],
            "quantum_svm": figures[task]["quantum_svm"]["total_s"] / figures["binary"]["quantum_svm"]["total_s"],
            **{f"classical/{kind}": seconds / figures["binary"]["classical"]["per_kind_s"][kind]
               for kind, seconds in figures[task]["classical"]["per_kind_s"].items()
               if kind in figures["binary"]["classical"]["per_kind_s"]},
        }
        print(f"{task:>10} / binary: " + ", ".join(f"{name} {value:.2f}x" for name, value in ratios[task].items()))
    return {"rows": rows, "folds": folds, "points_per_kind": points, "Cs": Cs, "seconds": figures, "ratios": ratios}


def sklearn_search(split: dict, regression: bool) -> tuple[float, dict]:
    """GridSearchCV over an RBF SVC (accuracy) or an SVR on the standardized target (R²); holdout score."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    Cs, gammas = np.logspace(-2, 3, 6), np.logspace(-3, 1, 9)
    if regression:
        model = TransformedTargetRegressor(SVR(), transformer=StandardScaler())
        grid = {"regressor__C": Cs, "regressor__gamma": gammas, "regressor__epsilon": [0.05, 0.1, 0.3]}
        cv, scoring = KFold(5, shuffle=True, random_state=0), "r2"
    else:
        model, grid, scoring = SVC(), {"C": Cs, "gamma": gammas}, "accuracy"
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
    search = GridSearchCV(model, grid, cv=cv, scoring=scoring, n_jobs=1).fit(split["X_train"], split["y_train"])
    return float(search.score(split["X_test"], split["y_test"])), {k: float(v) for k, v in search.best_params_.items()}


def ours(split: dict, regression: bool) -> tuple[float, dict]:
    """Our tuned classical suite (full grid, 5 folds): the winner's holdout accuracy or R²."""
    X, y = split["X_train"], split["y_train"]
    metric = "r2" if regression else "accuracy"
    best = tune_classical(X, y, kfold_splits(y, folds=5, seed=0), metric=metric)[0]
    model = fit_classical(best.model, best.params, X, y)
    score = holdout_metrics(split["y_test"], classical_decision(best.model, model, split["X_test"]))[metric]
    return float(score), {"kind": best.model, **best.params, "cv_mean": best.cv_mean}


def bar() -> dict:
    from sklearn.datasets import load_diabetes, load_digits, load_wine

    results = {}
    for name, loader, regression in (("wine", load_wine, False), ("digits", load_digits, False),
                                     ("diabetes", load_diabetes, True)):
        X, y = loader(return_X_y=True)
        split = embed(X, y.astype(np.float64 if regression else np.int64), test_fraction=0.25)
        (our_score, our_choice), our_s = timed(lambda: ours(split, regression))
        (their_score, their_choice), their_s = timed(lambda: sklearn_search(split, regression))
        results[name] = {"metric": "r2" if regression else "accuracy", "ours": our_score, "ours_choice": our_choice,
                         "ours_s": our_s, "sklearn_gridsearch_svm": their_score, "sklearn_choice": their_choice,
                         "sklearn_s": their_s, "difference": our_score - their_score, "n_test": len(split["y_test"])}
        print(f"{name:>9} ({results[name]['metric']}, {len(split['y_test'])} test rows): ours {our_score:.4f} "
              f"({our_choice['kind']}) vs GridSearchCV SVM {their_score:.4f}: {our_score - their_score:+.4f}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--points", type=int, default=2, help="grid points of each classical kind to time")
    parser.add_argument("--Cs", default="1,10")
    parser.add_argument("--skip-bar", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args()
    # A part skipped keeps its figures from an earlier run.
    report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.skip_bar:
        report["bar"] = bar()
    if not args.skip_cost:
        report["cost"] = cost(args.rows, args.folds, args.points, [float(c) for c in args.Cs.split(",")])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, sort_keys=True))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
