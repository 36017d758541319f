"""`make demo`'s entry point, end to end in a real process on a persistent (temporary) instance."""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from hybrid_resources.data.warehouse import Warehouse
from tests.conftest import REPO, latest_artifact


def readme_demo_output() -> str:
    """The demo output the README shows (between its demo-output markers)."""
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- demo-output:", 1)[1].split("<!-- demo-output-end -->", 1)[0]
    return block.split("```\n", 1)[1].rsplit("```", 1)[0]


def test_demo_fills_an_empty_landing_zone_and_prints_both_models(local_project):
    completed = local_project.command("hybrid-demo")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    # The README shows this output; it must be what the demo prints, not a hand-copied memory of it.
    printed = completed.stdout[completed.stdout.index("Verdict:"):]
    printed = printed[: printed.index("Promoted:")] + printed[printed.index("Promoted:"):].split("\n", 1)[0] + "\n"
    timing = re.compile(r"[0-9.]+ ms per sample")  # a measured latency: the one figure that varies by run
    assert timing.sub("_", printed) == timing.sub("_", readme_demo_output()), (
        "paste this into README.md's demo-output block:\n" + printed)
    data = local_project.data
    assert (data / "landing" / "breast_cancer.csv").exists()
    assert "| quantum_svm |" in completed.stdout and "| classical_baseline |" in completed.stdout
    assert "Promotion gates" in completed.stdout
    # The kernel routes' plan (job plan_kernel_routes) on the exact simulator: nothing to submit, nothing spent.
    assert "Kernel routes on default.qubit (exact shots), planned, nothing submitted" in completed.stdout
    assert re.search(r"projected: 0 circuits, \$0\.00, ~0 s, expected accuracy 0\.\d{4}", completed.stdout)
    report = latest_artifact(data / "artifacts", "model_evaluation")
    assert report["n_train"] + report["n_test"] == 569
    assert report["metrics"]["classical_baseline"]["accuracy"] > 0.9
    assert report["metrics"]["quantum_svm"]["accuracy"] > 0.8
    # The run history is on the persistent instance that `make ui` opens.
    assert any(local_project.home.rglob("*.db"))

    # New records of the same kind were scored by the registry's champion, the classical baseline.
    assert "scoring file 'breast_cancer_new.csv': 200 rows by classical_baseline@" in completed.stdout
    export = pl.read_parquet(data / "predictions" / "breast_cancer_new.csv.parquet")
    assert export.height == 200 and set(export["role"]) == {"champion"} and export["sample_id"].n_unique() == 200

    # Pattern 3 ran on its bundled examples, written into the empty returns/ and graphs/ folders.
    assert (data / "returns" / "example_returns.csv").exists() and (data / "graphs" / "example_graph.csv").exists()
    assert "portfolio_candidates on example_returns.csv" in completed.stdout
    assert "maxcut_candidates on example_graph.csv" in completed.stdout
    ranked_cuts = latest_artifact(data / "artifacts", "ranked_cuts")
    assert ranked_cuts["lineage"]["graph_file"] == "example_graph.csv" and ranked_cuts["ranked"]
    assert latest_artifact(data / "artifacts", "portfolio_report")["gates"]

    # A second demo on the same instance re-uses the landing data (nothing rewritten) and passes;
    # scoring the same file with the same champion again writes no duplicates.
    again = local_project.command("hybrid-demo")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Landing zone was empty" not in again.stdout and "Scoring zone was empty" not in again.stdout
    with Warehouse(path=str(data / "warehouse.duckdb")).connect(read_only=True) as connection:
        assert connection.execute("SELECT count(*), count(DISTINCT sample_id) FROM predictions").fetchone() == (200, 200)


def test_demo_runs_another_csv_in_another_data_dir(local_project):
    rng = np.random.default_rng(5)
    y = np.arange(90) % 2
    X = rng.normal(size=(90, 4)) + 2.0 * y[:, None]
    frame = pl.DataFrame(X, schema=["petal", "sepal", "stem", "leaf"], orient="row")
    landing = local_project.data / "landing"
    frame.with_columns(pl.Series("label", np.where(y == 1, "virginica", "setosa"))).write_csv(landing / "flowers.csv")

    completed = local_project.command("hybrid-demo")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert not (landing / "breast_cancer.csv").exists()
    assert not (local_project.data / "scoring" / "breast_cancer_new.csv").exists()  # only beside the example
    report = latest_artifact(local_project.data / "artifacts", "model_evaluation")
    assert report["n_train"] + report["n_test"] == 90
    embeddings = latest_artifact(local_project.data / "artifacts", "reduced_embeddings")
    assert embeddings["classes"].tolist() == ["setosa", "virginica"]
