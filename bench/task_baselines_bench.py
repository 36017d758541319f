"""Is the classical side as good as a carefully tuned scikit-learn pipeline on the same split?

Not a test. For each bundled task example (wine: 3 classes, digits: 10, diabetes: regression,
customers: text categories and ~5% missing cells), on the pipeline's own train/test split (the
hash of each sample id, test fraction 0.2, seed 42):

- **ours**: the pipeline's ``classical_baseline`` as it runs: imputation and encoding fitted on
  train, PCA to ``n_qubits`` (6, the default) scaled into [0, pi], the tuned classical suite (5-fold
  CV) refit on train, scored on the holdout;
- **sklearn, same input**: ``GridSearchCV`` (5 folds) over an RBF SVC/SVR (C 0.01..1000 x gamma
  0.001..10, plus epsilon for SVR), gradient boosting and logistic/ridge regression on the same
  embedded rows: the fair comparison, both sides seeing what the quantum model sees;
- **sklearn, all features**: the same search behind a ``ColumnTransformer`` (median imputation and
  standardization of numeric columns, most-frequent imputation and one-hot encoding of the
  categorical ones) on every feature column: what the embedding to ``n_qubits`` dimensions costs.

Prints one table and writes ``bench/results/task_baselines.json``.

    .venv/bin/python bench/task_baselines_bench.py [--qubits 6]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.svm import SVC, SVR  # noqa: E402

from hybrid_assets.common.examples import TASK_EXAMPLES  # noqa: E402
from hybrid_assets.ingest.features import build_features  # noqa: E402
from hybrid_assets.training.embeddings import reduce_embeddings  # noqa: E402
from hybrid_assets.training.models import fit_classical, model_holdout  # noqa: E402
from hybrid_assets.training.tasks import judged_metric, task_of  # noqa: E402
from hybrid_assets.training.tuning import classical_grid, kfold_splits, tune_classical  # noqa: E402
from hybrid_resources.data.artifacts import with_info  # noqa: E402
from hybrid_resources.data.contract import DatasetContract, categorical_columns  # noqa: E402

CONTRACTS = {"customers": DatasetContract(task="binary", categorical=("plan", "region"))}


def pipeline_rows(frame: pl.DataFrame, contract: DatasetContract) -> tuple[pl.DataFrame, list[str], list[str]]:
    """``frame`` as the warehouse's rows (numeric list with NaN, categories list) and the column names."""
    categorical = categorical_columns(frame, contract)
    numeric = sorted(c for c in frame.columns if c not in ("sample_id", "label", *categorical))
    categorical = sorted(categorical)
    rows = pl.DataFrame({
        "sample_id": frame["sample_id"].cast(pl.String), "label": frame["label"].cast(pl.String),
        "features": frame.select(pl.col(numeric).cast(pl.Float64).fill_null(float("nan"))).to_numpy().tolist(),
        "categories": pl.Series(frame.select(pl.col(categorical).cast(pl.String)).rows() if categorical
                                else [[] for _ in range(frame.height)], dtype=pl.List(pl.String)),
        "file_hash": ["bench"] * frame.height, "order": np.arange(frame.height)})
    return rows, numeric, categorical


def ours(embeddings: dict, metric: str) -> dict:
    """The classical_baseline asset's computation: tune by 5-fold CV, refit, score the holdout."""
    X, y = embeddings["X_train"], embeddings["y_train"]
    splits = kfold_splits(y, folds=5, seed=0)
    best = tune_classical(X, y, splits, metric=metric, seed=0, grid=classical_grid(task_of(embeddings)))[0]
    model = fit_classical(best.model, best.params, X, y, seed=0)
    holdout = model_holdout("classical_baseline", with_info(model, {"kind": best.model}),
                            {"reduced_embeddings": embeddings})
    return {"model": best.model, "params": best.params, metric: holdout[metric]}


def sklearn_search(task: str, metric: str, preprocess=None) -> GridSearchCV:
    """GridSearchCV over an RBF SVM, gradient boosting and a linear model, behind ``preprocess``."""
    Cs, gammas = [0.01, 0.1, 1, 10, 100, 1000], [0.001, 0.01, 0.1, 1, 10, "scale"]
    if task == "regression":
        grid = [{"model": [SVR()], "model__C": Cs, "model__gamma": gammas, "model__epsilon": [0.01, 0.1, 1.0]},
                {"model": [HistGradientBoostingRegressor(random_state=0)], "model__learning_rate": [0.05, 0.1, 0.2]},
                {"model": [Ridge()], "model__alpha": [0.01, 0.1, 1, 10, 100]}]
        scoring, folds = "r2", KFold(5, shuffle=True, random_state=0)
    else:
        grid = [{"model": [SVC()], "model__C": Cs, "model__gamma": gammas},
                {"model": [HistGradientBoostingClassifier(random_state=0)], "model__learning_rate": [0.05, 0.1, 0.2]},
                {"model": [LogisticRegression(max_iter=5000)], "model__C": [0.01, 0.1, 1, 10, 100]}]
        scoring = {"accuracy": "accuracy", "f1": "f1_macro", "roc_auc": "roc_auc_ovr"}[metric]
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
    steps = ([("preprocess", preprocess)] if preprocess is not None else []) + [("model", SVC())]
    return GridSearchCV(Pipeline(steps), grid, scoring=scoring, cv=folds, n_jobs=1)


def holdout(search: GridSearchCV, X_test, y_test, metric: str) -> float:
    return float(search.score(X_test, y_test)) if metric in ("accuracy", "r2") else float("nan")


def run(name: str, n_qubits: int) -> dict:
    frame = TASK_EXAMPLES[name]()
    contract = CONTRACTS.get(name, DatasetContract())
    rows, numeric, categorical = pipeline_rows(frame, contract)
    features = build_features(rows, test_fraction=0.2, seed=42)
    embeddings = reduce_embeddings(features, n_qubits=n_qubits, contract=contract, columns=(numeric, categorical))
    task = task_of(embeddings)
    metric = judged_metric(task, "accuracy")
    started = time.perf_counter()
    result = {"task": task, "metric": metric, "rows": frame.height, "test_rows": int(len(embeddings["y_test"])),
              "ours": ours(embeddings, metric)}
    result["ours"]["seconds"] = round(time.perf_counter() - started, 1)
    same = sklearn_search(task, metric).fit(embeddings["X_train"], embeddings["y_train"])
    result["sklearn_same_input"] = {metric: holdout(same, embeddings["X_test"], embeddings["y_test"], metric),
                                    "model": type(same.best_params_["model"]).__name__}
    split = dict(features.select("sample_id", "split").iter_rows())
    wide = frame.with_columns(pl.col("sample_id").cast(pl.String).replace_strict(split).alias("split"))
    parts = {s: wide.filter(pl.col("split") == s) for s in ("train", "test")}
    y = {s: (embeddings["y_train"] if s == "train" else embeddings["y_test"]) for s in parts}
    for s, part in parts.items():  # the embedding's rows are the features' rows, sorted by sample id
        assert part.sort("sample_id")["sample_id"].cast(pl.String).to_list() == embeddings[f"ids_{s}"].tolist()
    X = {s: parts[s].sort("sample_id").select(*numeric, *categorical).to_pandas() for s in parts}
    preprocess = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
        *([("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                     ("onehot", OneHotEncoder(handle_unknown="ignore"))]), categorical)]
          if categorical else [])])
    full = sklearn_search(task, metric, preprocess).fit(X["train"], y["train"])
    result["sklearn_all_features"] = {metric: holdout(full, X["test"], y["test"], metric),
                                      "model": type(full.best_params_["model"]).__name__}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qubits", type=int, default=6)
    args = parser.parse_args()
    results = {}
    print(f"{'dataset':<10}{'task':<12}{'metric':<9}{'ours':>8}{'sklearn same input':>20}{'sklearn all features':>22}")
    for name in TASK_EXAMPLES:
        r = results[name] = run(name, args.qubits)
        m = r["metric"]
        print(f"{name:<10}{r['task']:<12}{m:<9}{r['ours'][m]:>8.4f}{r['sklearn_same_input'][m]:>20.4f}"
              f"{r['sklearn_all_features'][m]:>22.4f}   ({r['test_rows']} test rows; ours: {r['ours']['model']})",
              flush=True)
    target = ROOT / "bench" / "results" / "task_baselines.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"qubits": args.qubits, "results": results}, indent=2, default=str) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
