"""The bundled examples, generated with fixed seeds (no download), each written whole (never seen
half-written) by one writer:

- training and scoring files: scikit-learn's breast-cancer data (569 rows, 30 features, labels 0/1),
  and new unlabelled records drawn from it; one example per task besides (:data:`TASK_EXAMPLES`):
  wine (3 classes), digits (10 classes), diabetes (regression) and a generated customer table with
  text categories and missing values (binary, with its dataset contract file);
- pattern 3's portfolio: daily returns of 12 assets in 3 sectors. A one-factor market model plus
  a sector factor plus noise: asset ``i`` of sector ``s`` returns ``alpha_i + beta_i * market +
  0.6 * sector_s + eps_i``, so assets of one sector move together (a risk the covariance sees)
  and their mean returns differ (a choice worth making);
- pattern 3's max-cut: a weighted graph of 12 nodes, a ring (so the graph is connected) plus
  random chords, each with a weight in [0.5, 2.0] (one decimal).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from hybrid_resources.data.paths import atomic_write

__all__ = ["TASK_EXAMPLES", "write_task_example", "EXAMPLE_FILE_NAME", "EXAMPLE_GRAPH_FILE_NAME", "EXAMPLE_RETURNS_FILE_NAME", "EXAMPLE_SCORING_FILE_NAME",
           "example_edges", "example_frame", "example_returns_frame", "example_sectors", "write_example_dataset",
           "write_example_graph", "write_example_returns", "write_example_scoring"]

EXAMPLE_FILE_NAME = "breast_cancer.csv"
EXAMPLE_SCORING_FILE_NAME = "breast_cancer_new.csv"
EXAMPLE_RETURNS_FILE_NAME = "example_returns.csv"
EXAMPLE_GRAPH_FILE_NAME = "example_graph.csv"
RETURNS_SEED = 20240601
GRAPH_SEED = 20240602
EXAMPLE_SECTORS = {"tech": 4, "energy": 4, "health": 4}


def write_csv(path: Path, frame: pl.DataFrame) -> Path:
    """``frame`` as a CSV at ``path`` (a Path or UPath; folders created), written whole."""
    atomic_write(path, frame.write_csv)
    return path


def example_frame() -> pl.DataFrame:
    """The breast-cancer data (569 rows, 30 features, labels 0/1) with sample ids."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    frame = pl.DataFrame(data.data, schema=[str(name) for name in data.feature_names], orient="row")
    return frame.with_columns(
        pl.Series("label", data.target.astype(int)),
        pl.Series("sample_id", [f"bc-{i:04d}" for i in range(len(data.target))]),
    ).select("sample_id", "label", *[str(name) for name in data.feature_names])


def write_example_dataset(path: Path) -> Path:
    """The example data as a landing CSV."""
    return write_csv(path, example_frame())


def write_example_scoring(path: Path, *, rows: int = 200, seed: int = 0) -> Path:
    """New unlabelled records like the example data (rows drawn again, each feature shifted by 1%
    of its spread), with new sample ids, as a scoring CSV."""
    features = example_frame().drop("sample_id", "label")
    rng = np.random.default_rng(seed)
    drawn = features.to_numpy()[rng.integers(0, features.height, rows)]
    drawn += rng.normal(scale=0.01, size=drawn.shape) * features.to_numpy().std(axis=0)
    scoring = pl.DataFrame(drawn, schema=features.columns, orient="row").with_columns(
        pl.Series("sample_id", [f"bc-new-{i:04d}" for i in range(rows)])).select("sample_id", *features.columns)
    return write_csv(path, scoring)


CUSTOMERS_CONTRACT = """# The customers example's dataset contract (see docs/tasks.md)
task: binary
categorical: [plan, region]
missing:
  impute: median
  impute_categorical: most_frequent
  max_rate: 0.3
"""


def _sklearn_frame(loader: str, prefix: str) -> pl.DataFrame:
    """The scikit-learn toy dataset ``sklearn.datasets.<loader>()`` (bundled, no download) as
    sample_id, label, features."""
    import sklearn.datasets

    data = getattr(sklearn.datasets, loader)()
    names = [str(name).replace(" ", "_") for name in getattr(data, "feature_names", [])] or \
        [f"x{i}" for i in range(data.data.shape[1])]
    target = data.target if data.target.dtype.kind == "f" else data.target.astype(int)
    frame = pl.DataFrame(data.data, schema=names, orient="row")
    return frame.with_columns(pl.Series("label", target), pl.Series("sample_id", [f"{prefix}-{i:04d}" for i in
                                                                                 range(len(target))])
                              ).select("sample_id", "label", *names)


def customers_frame(rows: int = 600, *, seed: int = 7, missing: float = 0.05) -> pl.DataFrame:
    """A generated customer table: ``tenure`` (months), ``monthly_spend``, ``support_calls``, text
    categories ``plan`` and ``region``, label ``churn``/``stay``; about ``missing`` of the feature cells
    empty. Churn is likelier on the basic plan, with short tenure and many support calls."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], rows)
    tenure = rng.integers(1, 72, rows).astype(float)
    calls = rng.poisson(2.0, rows).astype(float)
    spend = (rng.normal(30, 8, rows) + np.select([plan == "plus", plan == "pro"], [20.0, 45.0], 0.0)).round(2)
    logit = 0.9 * (plan == "basic") - 0.05 * tenure + 0.6 * calls + 0.4 * (region == "south") - 0.8
    label = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "churn", "stay")
    frame = pl.DataFrame({"sample_id": [f"cust-{i:04d}" for i in range(rows)], "label": label, "tenure": tenure,
                          "monthly_spend": spend, "support_calls": calls, "plan": plan, "region": region})
    holes = rng.random((rows, 5)) < missing
    columns = ["tenure", "monthly_spend", "support_calls", "plan", "region"]
    return frame.with_columns(*[pl.when(pl.Series(holes[:, j])).then(None).otherwise(pl.col(name)).alias(name)
                                for j, name in enumerate(columns)])


TASK_EXAMPLES = {
    "wine": lambda: _sklearn_frame("load_wine", "wine"),
    "digits": lambda: _sklearn_frame("load_digits", "digit"),
    "diabetes": lambda: _sklearn_frame("load_diabetes", "diab"),
    "customers": customers_frame,
}
"""Examples by name (besides the default breast-cancer one), one per task: ``hybrid-demo --example NAME``."""


def write_task_example(name: str, landing: Path, scoring: Path | None, contract_file: Path) -> list[Path]:
    """Example ``name`` as a landing CSV, 100 of its rows without labels (new sample ids) as a
    scoring CSV when ``scoring`` is given, and its dataset contract file when it has one and
    ``contract_file`` does not exist yet. Returns the paths written."""
    frame = TASK_EXAMPLES[name]()
    written = [write_csv(landing / f"{name}.csv", frame)]
    if scoring is not None:
        drawn = frame.sample(n=min(100, frame.height), seed=1).drop("label").with_columns(
            ("new-" + pl.col("sample_id")).alias("sample_id"))
        written.append(write_csv(scoring / f"{name}_new.csv", drawn))
    if name == "customers" and not contract_file.exists():
        atomic_write(contract_file, lambda handle: handle.write(CUSTOMERS_CONTRACT.encode()))
        written.append(contract_file)
    return written


def example_sectors() -> dict[str, str]:
    """Asset name -> sector of the example portfolio (``tech_0`` ... ``health_3``)."""
    return {f"{sector}_{i}": sector for sector, count in EXAMPLE_SECTORS.items() for i in range(count)}


def example_returns_frame(*, periods: int = 500, seed: int = RETURNS_SEED) -> pl.DataFrame:
    """The example returns table: ``date`` (business days from 2023-01-02) and one column per asset."""
    names = list(example_sectors())
    sector_of = [list(EXAMPLE_SECTORS).index(s) for s in example_sectors().values()]
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0003, 0.01, periods)
    sectors = rng.normal(0.0, 0.006, (periods, len(EXAMPLE_SECTORS)))
    alpha = rng.normal(0.0004, 0.0004, len(names))
    beta = rng.uniform(0.6, 1.4, len(names))
    noise = rng.normal(0.0, 1.0, (periods, len(names))) * rng.uniform(0.008, 0.02, len(names))
    returns = alpha + market[:, None] * beta + 0.6 * sectors[:, sector_of] + noise
    dates = pl.date_range(pl.date(2023, 1, 2), pl.date(2030, 1, 1), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5)[:periods]
    return pl.DataFrame(returns.round(6), schema=names, orient="row").with_columns(
        pl.Series("date", dates)).select("date", *names)


def write_example_returns(path: Path) -> Path:
    """The example returns as a CSV."""
    return write_csv(path, example_returns_frame())


def example_edges(*, nodes: int = 12, chord_probability: float = 0.3,
                  seed: int = GRAPH_SEED) -> list[tuple[str, str, float]]:
    """The example graph's edges ``(u, v, weight)``, nodes ``v00`` ... ``v11``."""
    rng = np.random.default_rng(seed)
    pairs = [(i, (i + 1) % nodes) for i in range(nodes)]
    pairs += [(i, j) for i in range(nodes) for j in range(i + 2, nodes)
              if (i, j) != (0, nodes - 1) and rng.random() < chord_probability]
    weights = np.round(rng.uniform(0.5, 2.0, len(pairs)), 1)
    return [(f"v{i:02d}", f"v{j:02d}", float(w)) for (i, j), w in zip(pairs, weights)]


def write_example_graph(path: Path) -> Path:
    """The example graph as a CSV edge list (``u,v,weight``)."""
    edges = example_edges()
    return write_csv(path, pl.DataFrame({"u": [e[0] for e in edges], "v": [e[1] for e in edges],
                                         "weight": [e[2] for e in edges]}))
