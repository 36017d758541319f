"""`make demo`'s entry point, end to end in a real process on a persistent (temporary) instance."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from hybrid_resources.artifacts import read_artifact


def run_demo(tmp_path: Path, data_dir: Path) -> subprocess.CompletedProcess:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(Path(__file__).parents[1] / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "HYBRID_DATA_DIR": str(data_dir)}
    demo = Path(sys.executable).with_name("hybrid-demo")
    return subprocess.run([str(demo)], env=env, capture_output=True, text=True, timeout=600)


def test_demo_fills_an_empty_landing_zone_and_prints_both_models(tmp_path):
    data_dir = tmp_path / "data"
    completed = run_demo(tmp_path, data_dir)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (data_dir / "landing" / "breast_cancer.csv").exists()
    assert "| quantum_svm |" in completed.stdout and "| classical_svm |" in completed.stdout
    report = read_artifact(data_dir / "artifacts" / "model_evaluation" / "value")
    assert report["n_train"] + report["n_test"] == 569
    assert report["metrics"]["classical_svm"]["accuracy"] > 0.9
    assert report["metrics"]["quantum_svm"]["accuracy"] > 0.8
    # The run history is on the persistent instance that `make ui` opens.
    assert any((tmp_path / "dagster_home").rglob("*.db"))

    # A second demo on the same instance re-uses the landing data (nothing rewritten) and passes.
    again = run_demo(tmp_path, data_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Landing zone was empty" not in again.stdout


def test_demo_runs_another_csv_in_another_data_dir(tmp_path):
    data_dir = tmp_path / "other"
    (data_dir / "landing").mkdir(parents=True)
    rng = np.random.default_rng(5)
    y = np.arange(90) % 2
    X = rng.normal(size=(90, 4)) + 2.0 * y[:, None]
    frame = pl.DataFrame(X, schema=["petal", "sepal", "stem", "leaf"], orient="row")
    frame.with_columns(pl.Series("label", np.where(y == 1, "virginica", "setosa"))).write_csv(data_dir / "landing" / "flowers.csv")

    completed = run_demo(tmp_path, data_dir)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert not (data_dir / "landing" / "breast_cancer.csv").exists()
    report = read_artifact(data_dir / "artifacts" / "model_evaluation" / "value")
    assert report["n_train"] + report["n_test"] == 90
    embeddings = read_artifact(data_dir / "artifacts" / "reduced_embeddings" / "value")
    assert embeddings["classes"].tolist() == ["setosa", "virginica"]
