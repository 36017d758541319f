"""The classical baseline: the best of a tuned classical suite, on the same embeddings and split."""

import time

from dagster import MetadataValue, Output, asset

from hybrid_assets.common.automation import ON_NEW_DATA
from hybrid_assets.common.outputs import artifact_output
from hybrid_assets.common.reporting import comparison_table
from hybrid_assets.training.models import fit_classical, model_holdout
from hybrid_assets.training.scale import KernelPlan, kernel_plan, sample_note
from hybrid_assets.training.tasks import judged_metric, task_of
from hybrid_assets.training.tuning import kfold_splits, tune_classical
from hybrid_resources.data.artifacts import with_info
from hybrid_resources.gate_policy import GatePolicy


@asset(automation_condition=ON_NEW_DATA, code_version="5", group_name="models", kinds={"sklearn"})
def classical_baseline(reduced_embeddings: dict, gate_policy: GatePolicy) -> Output:
    """The best classical model by k-fold cross-validation on the train split: an RBF SVM over a
    C x gamma grid, logistic regression over C (ridge regression over alpha for a regression
    task), or gradient boosting, ranked by the task's judged metric (``cv_metric``: the policy's
    metric, R² for regression). Refit on the whole train split and stored as arrays, with
    ``info``: its kind and parameters, every candidate's CV score, and its holdout metrics. Above ``gate_policy.max_exact_train`` train rows (the Nyström
    path) the suite is tuned on a seeded stratified sample of that many rows and the winner is
    fitted on every row, an RBF SVM as an RBF Nyström model (:func:`classical_fit`)."""
    X, y = reduced_embeddings["X_train"], reduced_embeddings["y_train"]
    task = task_of(reduced_embeddings)
    metric = judged_metric(task, gate_policy.metric)
    plan = kernel_plan(len(y), gate_policy)
    sample = plan.exact_sample(y)  # every row on the exact path
    started = time.perf_counter()
    splits = kfold_splits(y[sample], folds=gate_policy.cv_folds, seed=gate_policy.cv_seed)
    candidates = tune_classical(X[sample], y[sample], splits, metric=metric, seed=gate_policy.cv_seed)
    tuning_s = time.perf_counter() - started
    best = candidates[0]
    fit = classical_fit(plan, best.model)
    model = fit_classical(best.model, best.params, X, y, seed=gate_policy.cv_seed, nystrom=fit["nystrom"], task=task)
    info = {"model": "classical_baseline", "kind": best.model, "params": best.params, "degraded": False,
            "cv_metric": metric, "cv_folds": len(splits), "cv_seed": gate_policy.cv_seed,
            "cv_mean": best.cv_mean, "cv_std": best.cv_std, "candidates": [c.to_dict() for c in candidates]}
    if task != "binary":  # a binary artifact keeps the content it had before tasks existed
        info["task"] = task
    if plan.nystrom:
        info |= {"kernel_path": plan.to_dict(), "fit": fit["text"],
                 "cv_sample": sample_note(len(y), sample, seed=plan.seed, what="classical tuning CV rows")}
    info["holdout"] = model_holdout("classical_baseline", with_info(model, info), {"reduced_embeddings": reduced_embeddings})
    rows = {f"{c.model} {c.params}": {"cv_mean": c.cv_mean, "cv_std": c.cv_std} for c in candidates}
    return artifact_output(with_info(model, info, {"tuning_wall_time_s": tuning_s}), {
        "kind": best.model,
        "params": MetadataValue.json(best.params),
        "task": task,
        "cv_metric": metric,
        f"cv_{metric}": best.cv_mean,
        "candidates": MetadataValue.md(comparison_table(rows, ["cv_mean", "cv_std"])),
        **{f"holdout/{name}": value for name, value in info["holdout"].items()},
        "tuning_wall_time_s": tuning_s,
        "kernel_path": plan.path,
        "fit": fit["text"],
        "cv_sample": MetadataValue.json(sample_note(len(y), sample, seed=plan.seed, what="classical tuning CV rows")),
    })


def classical_fit(plan: KernelPlan, kind: str) -> dict:
    """How the chosen classical model is fitted on the whole train split: on the Nyström path an
    RBF SVM becomes an RBF Nyström least-squares SVM through the quantum model's landmark rule,
    count and seed (``nystrom`` settings for :func:`fit_classical`); the other kinds scale
    linearly and are fitted as they are."""
    if plan.nystrom and kind == "rbf_svm":
        return {"nystrom": {"m": plan.landmarks, "rule": plan.landmark_rule, "seed": plan.seed, "eps": plan.eps},
                "text": f"RBF Nyström least-squares SVM on all {plan.n_train} train rows ({plan.landmarks} "
                        f"{plan.landmark_rule} landmarks, seed {plan.seed}), tuned on a stratified sample"}
    if plan.nystrom:
        return {"nystrom": None, "text": f"{kind} on all {plan.n_train} train rows, tuned on a stratified sample"}
    return {"nystrom": None, "text": f"{kind} on all {plan.n_train} train rows"}
