"""The classical baseline: an RBF SVM on the same embeddings and split as the quantum model."""

import time

from dagster import Output, asset

from hybrid_assets.assets.quantum import SvmConfig
from hybrid_assets.automation import ON_NEW_DATA
from hybrid_assets.modeling import (
    fit_rbf_svm,
    holdout_metrics,
    model_holdout,
    rbf_decision,
)
from hybrid_assets.outputs import artifact_output
from hybrid_resources.data.artifacts import with_info


@asset(automation_condition=ON_NEW_DATA, code_version="3", group_name="models", kinds={"sklearn"})
def classical_svm(config: SvmConfig, reduced_embeddings: dict) -> Output:
    """RBF SVM (gamma='scale') stored as arrays (support vectors, dual coefficients, gamma) with
    ``info`` (C, gamma, holdout metrics) and ``telemetry`` (fit wall time)."""
    started = time.perf_counter()
    model = fit_rbf_svm(reduced_embeddings["X_train"], reduced_embeddings["y_train"], C=config.C)
    wall_time_s = time.perf_counter() - started
    train = holdout_metrics(reduced_embeddings["y_train"], rbf_decision(model, reduced_embeddings["X_train"]))
    holdout = model_holdout("classical_svm", model, {"reduced_embeddings": reduced_embeddings})
    info = {"model": "classical_svm", "C": config.C, "gamma": float(model["gamma"][0]), "degraded": False,
            "n_support_vectors": int(model["support_vectors"].shape[0]), "train_accuracy": train["accuracy"],
            "holdout": holdout}
    return artifact_output(with_info(model, info, {"wall_time_s": wall_time_s}), {
        "C": config.C,
        "gamma": info["gamma"],
        "n_support_vectors": info["n_support_vectors"],
        "train_accuracy": train["accuracy"],
        **{f"holdout/{name}": value for name, value in holdout.items()},
        "wall_time_s": wall_time_s,
    })
