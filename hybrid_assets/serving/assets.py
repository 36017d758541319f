"""From verdict to production: the model registry, scoring new files, labels arriving later, monitoring.

- ``model_registry`` registers each evaluated model; the first classical one becomes champion.
- ``scoring_batches`` / ``predictions`` (one partition per scoring file): the champion scores every
  row, cheap first (see :mod:`hybrid_assets.serving.scoring`); a shadow challenger beside it.
- ``scoring_labels`` (one partition per labels file): labels of rows scored earlier.
- ``serving_monitor``: drift (numeric and categorical), predictions, failures, latency, spend, the
  champion's realised metrics once labels arrive (per task), and the shadow challenger's realised
  metric, with the ``shadow_ready`` gate.

Every task scores the same way (:mod:`hybrid_assets.serving.scoring`); what differs is the shape of
a decision and the realised metric: accuracy and macro-F1 for classification, R², RMSE and MAE for
regression (its labels are numbers written as text). The shadow gate compares realised accuracy
for classification and realised R² for regression (both higher is better).
"""


import hashlib
import math
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)
from pydantic import Field

from hybrid_assets.common.automation import ON_NEW_DATA
from hybrid_assets.common.outputs import artifact_output
from hybrid_assets.common.partitions import (
    labels_files_partitions,
    scoring_files_partitions,
)
from hybrid_assets.common.reporting import (
    comparison_table,
    device_telemetry_table,
    histograms_png,
    markdown_image,
)
from hybrid_assets.ingest.assets import ingest_partition
from hybrid_assets.serving.registry import register_evaluation, registry_store
from hybrid_assets.serving.scoring import (
    QuantumAllowance,
    cascade,
    level_stability,
    load_scorer,
    population_stability,
    predictions_frame,
)
from hybrid_assets.training.embeddings import EmbeddingTransform, category_matrix
from hybrid_assets.training.tasks import holdout_metrics, task_of
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.dataset import load_dataset_contract
from hybrid_resources.data.paths import DataLayout, atomic_write
from hybrid_resources.data.stream import ScoringStream
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import QuantumBackend
from hybrid_resources.quantum.kernel_cache import KernelCache



@asset(automation_condition=ON_NEW_DATA, code_version="1", group_name="models", kinds={"duckdb"})
def model_registry(context: AssetExecutionContext, model_evaluation: dict, warehouse: Warehouse) -> Output:
    """Registers the evaluated classical baseline and quantum model (content-addressed artifacts,
    metrics, gate verdicts, versions); the first classical version becomes champion, and a quantum
    model whose promotion gates passed becomes the shadow challenger. Holds the registry's state."""
    graph = context.job_def.asset_layer.asset_graph
    code = {asset: graph.get(AssetKey(asset)).code_version for asset in ("classical_baseline", "quantum_svm")
            if graph.has(AssetKey(asset))}
    registered = register_evaluation(warehouse, registry_store(), model_evaluation, run_id=context.run_id, code_versions=code)
    with warehouse.session(read_only=True) as session:
        models = session.models()
    state = {"registered": registered,
             "models": [{k: str(v) if k == "registered_at" else v for k, v in m.items()} for m in models]}
    champion = next((m["version_id"] for m in models if m["status"] == "champion"), None)
    shadow = next((m["version_id"] for m in models if m["status"] == "shadow"), None)
    return artifact_output(state, {"champion": champion or "none", "shadow": shadow or "none",
                                   "registered_now": MetadataValue.json(registered),
                                   "versions": MetadataValue.md(comparison_table(
                                       {m["version_id"]: m for m in models}, ["status", "kind", "registered_at"]))})


@asset(partitions_def=scoring_files_partitions, pool="warehouse", code_version="1", group_name="serving",
       kinds={"duckdb"},
       check_specs=[AssetCheckSpec("scoring_contract", asset="scoring_batches",
                                   description="The file parses and meets the feature contract, without labels")])
def scoring_batches(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Rows of one scoring file (sample_id and the training feature columns, no label), or the file
    quarantined with its reason."""
    return ingest_partition(context, warehouse, zone="scoring", contract=replace(load_dataset_contract(), labelled=False),
                            check_name="scoring_contract")


@asset(partitions_def=labels_files_partitions, pool="warehouse", code_version="1", group_name="serving",
       kinds={"duckdb"},
       check_specs=[AssetCheckSpec("labels_contract", asset="scoring_labels",
                                   description="The file has a sample_id and a label per row, each id once")])
def scoring_labels(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Labels of rows scored earlier (sample_id, label), or the file quarantined with its reason."""
    return ingest_partition(context, warehouse, zone="labels", contract=load_dataset_contract(),
                            check_name="labels_contract")


class PredictionsConfig(Config):
    uncertainty_band: float = Field(default=0.25, ge=0.0, description="Rows whose classical uncertainty score is below "
                                                                      "band go to the quantum model: |decision value| "
                                                                      "(binary), the top-two class margin (multiclass), "
                                                                      "the conformal sharpness (regression, 1 = a "
                                                                      "typical row)")


@asset(partitions_def=scoring_files_partitions, deps=[scoring_batches], pool="quantum", code_version="1",
       group_name="serving", kinds={"duckdb", "parquet"})
def predictions(context: AssetExecutionContext, config: PredictionsConfig, warehouse: Warehouse,
                quantum_backend: QuantumBackend, cost_policy: CostPolicy) -> MaterializeResult:
    """The champion's decision for every row of one scoring file, and the shadow challenger's beside
    it; in the warehouse's ``predictions`` (sample id, model version, score, decision, who decided,
    flag, latency) and exported to ``$HYBRID_DATA_DIR/predictions/<partition>.parquet``. Scoring
    the same file with the same model again replaces its rows: no duplicates."""
    partition = context.partition_key
    with warehouse.session(read_only=True) as session:
        rows = session.scoring_rows(partition)
        models = session.models()
        rows_used = session.quantum_rows_today()
        recorded = session.predictions_recorded(partition)
    if rows.is_empty():
        return MaterializeResult(data_version=DataVersion(f"empty:{partition}"),
                                 metadata={"rows": 0, "note": "the file was quarantined or had no rows"})
    plan, export = serving_plan(models), DataLayout.from_env().predictions / f"{partition}.parquet"
    written = None if recorded else export_to_reuse(export, rows["sample_id"].to_list(), plan)
    if written is not None:
        summary = {"champion": plan["champion"]["version_id"], "reused_export": True}
        context.log.info(f"{export} holds these rows scored by the same models but the warehouse has none (an "
                         "earlier write failed): recorded from the export, not scored (nor paid for) again")
    else:
        requested = context.instance.get_run_record_by_id(context.run_id).create_timestamp.timestamp()
        frames, summary = score_batch(context, rows, plan, rows_used=rows_used, band=config.uncertainty_band,
                                      warehouse=warehouse, quantum_backend=quantum_backend, cost_policy=cost_policy,
                                      source=partition, received_at=requested)
        written = pl.concat(frames)
        # The export first: what was paid for is on disk before the warehouse write that may time out,
        # and a retry after a failed write reuses it instead of paying again.
        atomic_write(export, lambda handle: written.write_parquet(handle))
    with warehouse.session() as session:
        with session.transaction():
            session.upsert_predictions(written)
    digest = hashlib.sha256(written.select("sample_id", "model_version", "role", "decision").write_csv().encode())
    return MaterializeResult(data_version=DataVersion(digest.hexdigest()), metadata={
        **summary, "rows": rows.height, "export": str(export),
        "decisions": MetadataValue.json(decision_counts(written.filter(pl.col("role") == "champion"),
                                                        regression="lower" in written.columns))})


def export_to_reuse(export: Path, sample_ids: list[str], plan: dict) -> pl.DataFrame | None:
    """The predictions already exported to ``export`` when they are exactly these rows scored by the
    plan's champion and shadow, else None. Called only when the warehouse has no predictions of the
    partition: an earlier try scored and exported them, then failed to write them."""
    if not export.is_file():
        return None
    try:
        earlier = pl.read_parquet(export)
    except Exception:  # noqa: BLE001 - an unreadable export is scored again, never trusted
        return None
    expected = {role: plan[role]["version_id"] for role in ("champion", "shadow") if plan[role] is not None}
    wanted = sorted(sample_ids)
    for role, version in expected.items():
        mine = earlier.filter((pl.col("role") == role) & (pl.col("model_version") == version))
        if sorted(mine["sample_id"].to_list()) != wanted:
            return None
    return earlier if earlier.height == len(wanted) * len(expected) else None


def serving_plan(models: list[dict]) -> dict:
    """Which registered versions serve: the champion, the classical screen behind a quantum champion
    (the newest classical champion or candidate), and the newest shadow challenger."""
    champion = next((m for m in models if m["status"] == "champion"), None)
    if champion is None:
        raise Failure(description="No champion in the model registry yet: land training data and let the models "
                                  "refresh (model_registry registers the first classical model as champion).")
    classical = [m for m in models if m["asset"] == "classical_baseline" and m["status"] in ("champion", "candidate")]
    return {"champion": champion, "screen": champion if champion["asset"] == "classical_baseline" else classical[0],
            "shadow": next((m for m in models if m["status"] == "shadow"), None)}


def score_batch(context, rows: pl.DataFrame, plan: dict, *, rows_used: int, band: float, warehouse: Warehouse,
                quantum_backend: QuantumBackend, cost_policy: CostPolicy, source: str,
                received_at: np.ndarray | float) -> tuple[list, dict]:
    """Score ``rows`` (sample_id, features) with the champion and the shadow; returns the prediction
    frames and a summary. Quantum rows are admitted and recorded by the ledger, within the quota.
    ``received_at``: when the rows arrived (epoch seconds, one or per row), for their queue time."""
    queue_s = np.maximum(time.time() - np.asarray(received_at, dtype=np.float64), 0.0)
    store, backend = registry_store(), cost_policy.with_program_sets(quantum_backend.backend_config())
    features = np.asarray(rows["features"].to_list(), dtype=np.float64)  # a missing value (null) becomes NaN
    categories = categories_of(rows)
    screen = load_scorer(plan["screen"], store)
    cache = KernelCache(DataLayout.from_env().kernel_cache)
    frames, summary = [], {"champion": plan["champion"]["version_id"], "screen": screen.version_id}
    with cost_policy.ledger(run_id=context.run_id, asset="predictions", backend=backend) as ledger:
        def run_quantum(model, X):
            ledger.admit(len(X) * model.circuits_per_row, backend.shots or 0)
            return model.quantum(X, backend, ledger=ledger, cache=cache)

        usd_left = cost_policy.daily_budget_usd - warehouse.spent_usd()
        for role in ("champion", "shadow"):
            entry = plan[role]
            if entry is None:
                continue
            model = load_scorer(entry, store)
            usd_per_row = cost_policy.estimate(backend, model.circuits_per_row, backend.shots or 0).usd
            allowance = QuantumAllowance.for_today(rows_quota=cost_policy.quantum_rows_per_day, rows_used=rows_used,
                                                   usd_per_row=usd_per_row, usd_left=usd_left)
            scored = cascade(features, screen, model, band=band, allowance=allowance, run_quantum=run_quantum, role=role,
                             categories=categories)
            rows_used += scored.quantum_rows
            usd_left -= scored.quantum_rows * usd_per_row
            frames.append(predictions_frame(rows["sample_id"].to_list(), scored, model.classes, source=source,
                                            run_id=context.run_id, quantum_device=backend.device_name,
                                            queue_s=queue_s))
            summary |= {f"{role}_version": model.version_id, f"{role}_quantum_rows": scored.quantum_rows,
                        f"{role}_flagged_rows": sum(flag is not None for flag in scored.flagged),
                        f"{role}_mean_latency_ms": float(np.mean(scored.latency_s)) * 1e3}
            for note in scored.notes:
                context.log.warning(f"{role} {model.version_id}: quantum stage failed, classical decisions kept: {note}")
    return frames, summary


def decision_counts(champion: pl.DataFrame, *, regression: bool) -> dict:
    """What the champion decided: rows per class; for regression (every value its own decision)
    the count and the predicted values' min, median and max. Empty without rows."""
    if champion.is_empty():
        return {}
    if regression:
        values = champion["score"]
        return {"rows": champion.height, "min": values.min(), "median": values.median(), "max": values.max()}
    return dict(champion["decision"].value_counts().iter_rows())


def categories_of(rows: pl.DataFrame) -> np.ndarray | None:
    """The categorical columns of ``rows`` (:func:`category_matrix`), or None when they carry none
    (numeric datasets)."""
    matrix = category_matrix(rows)
    return matrix if matrix.size else None


@asset(automation_condition=ON_NEW_DATA, deps=[predictions, scoring_labels], code_version="1", group_name="serving",
       kinds={"duckdb"},
       check_specs=[AssetCheckSpec("shadow_ready", asset="serving_monitor",
                                   description="Enough labelled shadow rows, and the shadow beats the champion on them "
                                               "by the margin")])
def serving_monitor(context: AssetExecutionContext, warehouse: Warehouse, cost_policy: CostPolicy,
                    gate_policy: GatePolicy) -> Iterator:
    """The serving dashboard: feature drift (PSI per feature against the train split; for
    categorical columns the share of unseen categories and each column's level PSI; the share of
    missing values where any), the distribution of predictions, the quantum failure rate, latency
    and queue time per backend, spend per day against the budget, the champion's realised metrics
    (:func:`realized_metrics`), and the shadow challenger's agreement, score drift and realised
    accuracy (R² for regression)."""
    with warehouse.session(read_only=True) as session:
        scored = session.predictions()
        train = session.features_in_arrival_order().filter(pl.col("split") == "train")
        scoring = session.scored_features()
        spend = session.spend_per_day()
        task, transform = serving_task(session.models())
    failures, tasks = warehouse.failure_rate()
    devices = warehouse.device_telemetry()
    drift = feature_drift(train, scoring)
    shadow = shadow_report(scored, gate_policy, task=task)
    per_backend = timing_per_backend(scored)
    report = {
        "rows_scored": int(scored.filter(pl.col("role") == "champion").height),
        "feature_psi": drift,
        "max_psi": max(drift.values(), default=0.0),
        "decisions": decision_counts(scored.filter(pl.col("role") == "champion"), regression=task == "regression"),
        "flagged_rows": int(scored["flagged"].is_not_null().sum()) if scored.height else 0,
        "quantum_failure_rate": {"failed_submissions": failures, "tasks": tasks,
                                 "rate": failures / (failures + tasks) if failures + tasks else 0.0},
        "per_backend": per_backend,
        "device_tasks": devices,
        "spend_per_day": spend, "daily_budget_usd": cost_policy.daily_budget_usd,
        "shadow": shadow,
        **task_sections(scored, train, scoring, task=task, transform=transform),
    }
    metadata = {
        "rows_scored": report["rows_scored"], "max_psi": report["max_psi"], "flagged_rows": report["flagged_rows"],
        "quantum_failure_rate": report["quantum_failure_rate"]["rate"],
        "latency_and_queue": MetadataValue.md(comparison_table(per_backend, TIMING_COLUMNS)),
        "device_telemetry": MetadataValue.md(device_telemetry_table(devices)),
        "drift": MetadataValue.md(comparison_table({k: {"psi": v} for k, v in drift.items()}, ["psi"])),
        "spend": MetadataValue.md(comparison_table({str(d): {"usd": u, "budget": cost_policy.daily_budget_usd}
                                                    for d, u in spend.items()}, ["usd", "budget"])),
        "shadow": MetadataValue.json({k: v for k, v in shadow.items() if k != "message"}),
        "realized": MetadataValue.json(report["realized"]),
    }
    if scored.height:
        png = histograms_png({role: scored.filter(pl.col("role") == role)["score"].to_numpy()
                              for role in ("champion", "shadow")}, xlabel="decision value", title="predictions")
        metadata["score_distribution"] = MetadataValue.md(markdown_image(png, "champion and shadow scores"))
    yield artifact_output(report, metadata)
    yield AssetCheckResult(check_name="shadow_ready", passed=shadow["ready"], severity=AssetCheckSeverity.WARN,
                           metadata={"message": shadow["message"],
                                     **{k: v for k, v in shadow.items() if isinstance(v, (int, float, str))}})


TIMING_COLUMNS = ["rows", "mean_latency_ms", "p95_latency_ms", "median_queue_s", "p95_queue_s"]


def timing_per_backend(scored: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Per backend (``classical`` or a device name) and role: rows, per-row latency (ms) and queue time
    (s, arrival to scoring) of the predictions it computed."""
    if scored.is_empty():
        return {}
    table = (scored.group_by("backend", "role")
             .agg(pl.len().alias("rows"),
                  (pl.col("latency_s").mean() * 1e3).alias("mean_latency_ms"),
                  (pl.col("latency_s").quantile(0.95) * 1e3).alias("p95_latency_ms"),
                  pl.col("queue_s").median().alias("median_queue_s"),
                  pl.col("queue_s").quantile(0.95).alias("p95_queue_s"))
             .sort("backend", "role"))
    return {f"{row['backend']} ({row['role']})": {column: row[column] for column in TIMING_COLUMNS}
            for row in table.iter_rows(named=True)}


def feature_drift(train: pl.DataFrame, scoring: pl.DataFrame) -> dict[str, float]:
    """PSI of every feature (by position) of the scored rows against the train split."""
    if train.is_empty() or scoring.is_empty():
        return {}
    expected = np.asarray(train["features"].to_list(), dtype=np.float64)
    actual = np.asarray(scoring["features"].to_list(), dtype=np.float64)
    return {f"feature_{i}": population_stability(expected[:, i], actual[:, i]) for i in range(expected.shape[1])}


def shadow_report(scored: pl.DataFrame, gates: GatePolicy, *, task: str = "binary") -> dict:
    """The shadow challenger against the champion on the rows both scored: agreement (same class;
    for regression the share of shadow values inside the champion's interval), score drift, the
    realised metric where labels arrived (accuracy, or R² for regression); and whether it is ready
    to be promoted."""
    empty = {"ready": False, "labelled_rows": 0, "message": "no shadow challenger has scored yet"}
    if scored.is_empty() or scored.filter(pl.col("role") == "shadow").is_empty():
        return empty
    shadow = scored.filter(pl.col("role") == "shadow")
    version = shadow.sort("scored_at")["model_version"][-1]
    interval = [c for c in ("lower", "upper") if c in scored.columns]
    both = (scored.filter(pl.col("role") == "champion").select("sample_id", "score", "decision", "label", *interval)
            .join(shadow.filter(pl.col("model_version") == version).select("sample_id", "score", "decision"),
                  on="sample_id", suffix="_shadow"))
    labelled = both.filter(pl.col("label").is_not_null())
    metric = "r2" if task == "regression" else "accuracy"
    champion_value, shadow_value = (
        (realized_metric(labelled, suffix, task=task) for suffix in ("", "_shadow")) if labelled.height
        else (math.nan, math.nan))
    margin = shadow_value - champion_value
    enough = labelled.height >= gates.shadow_min_labelled_rows
    ready = bool(enough and margin > gates.min_margin)
    label = "realised accuracy" if metric == "accuracy" else "realised R²"
    message = (f"shadow {version}: {labelled.height} labelled rows (need {gates.shadow_min_labelled_rows}); "
               + (f"{label} {shadow_value:.4f} vs champion {champion_value:.4f} "
                  f"({margin:+.4f}, margin {gates.min_margin:+.4f})" if labelled.height else "no labels yet")
               + ("; ready for promotion (an approval is still needed)" if ready else "; not ready"))
    return {"version": version, "rows": both.height, "agreement": shadow_agreement(both, task),
            "score_drift": float((both["score_shadow"] - both["score"]).abs().mean()),
            "labelled_rows": labelled.height, f"champion_{metric}": champion_value,
            f"shadow_{metric}": shadow_value, "realised_margin": margin, "ready": ready, "message": message}


def shadow_agreement(both: pl.DataFrame, task: str) -> float:
    """Share of rows where the shadow agrees with the champion: the same class; for regression a
    shadow value inside the champion's conformal interval (NaN where it has none)."""
    if task != "regression":
        return float((both["decision"] == both["decision_shadow"]).mean())
    if "lower" not in both.columns:
        return math.nan
    bounded = both.filter(pl.col("lower").is_not_null() & pl.col("upper").is_not_null())
    if bounded.is_empty():
        return math.nan
    inside = (bounded["score_shadow"] >= bounded["lower"]) & (bounded["score_shadow"] <= bounded["upper"])
    return float(inside.mean())


def realized_metric(labelled: pl.DataFrame, suffix: str, *, task: str) -> float:
    """The realised metric the shadow gate compares, of the ``decision{suffix}``/``score{suffix}``
    columns against ``label``: accuracy for classification, R² for regression."""
    metrics = realized_metrics(labelled["label"].to_list(), labelled[f"decision{suffix}"].to_list(),
                               labelled[f"score{suffix}"].to_numpy(), task=task)
    return metrics["r2" if task == "regression" else "accuracy"]


def realized_metrics(labels: list[str], decisions: list[str], scores: np.ndarray, *, task: str) -> dict[str, float]:
    """Metrics of served predictions against the labels that arrived later (one entry per row).

    Classification: ``accuracy`` and ``macro_f1`` of the decisions (class labels) against the labels.
    Regression: ``r2``, ``rmse``, ``mae`` (:func:`tasks.holdout_metrics`) of the scores (predicted
    values) against the labels read as numbers; a label that is no finite number is left out and
    counted in ``non_numeric_labels``. Always ``labelled_rows``: the rows the metrics are over.
    """
    if task == "regression":
        values = pl.Series(labels, dtype=pl.String).cast(pl.Float64, strict=False).to_numpy()
        usable = np.isfinite(values)
        metrics = ({"r2": math.nan, "rmse": math.nan, "mae": math.nan} if not usable.any() else
                   holdout_metrics(values[usable], np.asarray(scores, dtype=np.float64)[usable], task="regression"))
        return {"labelled_rows": int(usable.sum()), **metrics, "non_numeric_labels": int((~usable).sum())}
    if not labels:
        return {"labelled_rows": 0, "accuracy": math.nan, "macro_f1": math.nan}
    from sklearn.metrics import accuracy_score, f1_score

    return {"labelled_rows": len(labels), "accuracy": float(accuracy_score(labels, decisions)),
            "macro_f1": float(f1_score(labels, decisions, average="macro", zero_division=0.0))}


def serving_task(models: list[dict]) -> tuple[str, EmbeddingTransform | None]:
    """The task the champion serves and its embedding transform (from the reduced_embeddings
    version it names, re-hashed), or ("binary", None) before there is a champion."""
    champion = next((m for m in models if m["status"] == "champion"), None)
    if champion is None:
        return "binary", None
    embeddings = registry_store().read_verified(["reduced_embeddings"], champion["artifacts"]["reduced_embeddings"])
    return task_of(embeddings), EmbeddingTransform.from_bundle(embeddings)


def task_sections(scored: pl.DataFrame, train: pl.DataFrame, scoring: pl.DataFrame, *, task: str,
                  transform: EmbeddingTransform | None) -> dict:
    """The monitor's task-dependent sections: ``task``, the champion's ``realized`` metrics on its
    labelled rows; ``categorical_drift`` when the rows have categorical columns and
    ``missing_share`` when a feature has missing values (absent otherwise)."""
    champion = (scored.filter((pl.col("role") == "champion") & pl.col("label").is_not_null()) if scored.height
                else pl.DataFrame(schema={"label": pl.String, "decision": pl.String, "score": pl.Float64}))
    sections = {"task": task, "realized": realized_metrics(champion["label"].to_list(), champion["decision"].to_list(),
                                                           champion["score"].to_numpy(), task=task)}
    categorical = category_drift(train, scoring, transform)
    if categorical:
        sections["categorical_drift"] = categorical
    missing = missing_shares(train, scoring)
    if missing:
        sections["missing_share"] = missing
    return sections


def category_drift(train: pl.DataFrame, scoring: pl.DataFrame, transform: EmbeddingTransform | None) -> dict:
    """Categorical drift of the scored rows against the train split: ``unseen_share`` (cells whose
    category the champion's transform never saw in training, over all categorical cells) and
    ``level_psi`` per column (by the transform's column names, else ``category_<j>`` by position).
    Empty without categorical columns."""
    if "categories" not in scoring.columns or scoring.is_empty():
        return {}
    actual = categories_of(scoring)
    if actual is None:
        return {}
    report: dict = {"cells": int(actual.size)}
    if transform is not None and hasattr(transform, "unseen_categories"):
        report["unseen_share"] = transform.unseen_categories(actual) / actual.size
    expected = categories_of(train)
    preprocessor = getattr(transform, "preprocessor", None)
    names = ([str(name) for name in preprocessor.category_names] if preprocessor is not None
             and len(preprocessor.category_names) == actual.shape[1] else [f"category_{j}" for j in range(actual.shape[1])])
    if expected is not None and expected.shape[1] == actual.shape[1]:
        report["level_psi"] = {names[j]: level_stability(expected[:, j].tolist(), actual[:, j].tolist())
                               for j in range(actual.shape[1])}
    return report


def missing_shares(train: pl.DataFrame, scoring: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Per feature (``feature_<i>``) with any missing value: the share missing in the train split
    and in the scored rows. Empty when nothing is missing."""
    if train.is_empty() or scoring.is_empty():
        return {}
    expected = np.isnan(np.asarray(train["features"].to_list(), dtype=np.float64)).mean(axis=0)
    actual = np.isnan(np.asarray(scoring["features"].to_list(), dtype=np.float64)).mean(axis=0)
    return {f"feature_{i}": {"train": float(expected[i]), "scoring": float(actual[i])}
            for i in range(len(expected)) if expected[i] > 0 or actual[i] > 0}


def score_stream_records(context, *, stream: ScoringStream, warehouse: Warehouse, quantum_backend: QuantumBackend,
                         cost_policy: CostPolicy, band: float) -> dict:
    """Score one batch of stream records.

    What scoring needs (the feature columns, a champion) is read before any record, so a run that
    could not score reads none and counts no delivery against them. Each record is then parsed on
    its own: one that cannot be scored (malformed, over the caps, delivered ``max_deliveries``
    times, or anything else wrong with it) goes to the dead-letter stream with its reason; the others
    are scored like a file (champion, cheap first, shadow), committed, and only then acknowledged."""
    with warehouse.session(read_only=True) as session:
        feature_names, category_names = session.established_columns() or ([], [])
        plan = serving_plan(session.models())
        rows_used = session.quantum_rows_today()
    client = stream.client()
    entries = stream.read(client)
    if not entries:
        return {"records": 0}
    records = [stream.parse(entry, feature_names, category_names) for entry in entries]
    for record in records:
        if record.error:
            stream.reject(client, record)
            context.log.warning(f"stream record {record.entry_id} to {stream.dead_letter}: {record.error}")
    good = {record.sample_id: record for record in records if not record.error}  # a re-sent record: the last wins
    if good:
        rows = pl.DataFrame({"sample_id": list(good),
                             "features": [[r.features[name] for name in feature_names] for r in good.values()],
                             "categories": pl.Series([r.categories or [] for r in good.values()],
                                                     dtype=pl.List(pl.String))})
        frames, summary = score_batch(context, rows, plan, rows_used=rows_used, band=band,
                                      warehouse=warehouse, quantum_backend=quantum_backend, cost_policy=cost_policy,
                                      source=f"stream:{stream.stream}",
                                      received_at=np.array([r.received_at for r in good.values()]))
        with warehouse.session() as session:
            with session.transaction():
                session.upsert_predictions(pl.concat(frames))
    stream.acknowledge(client, [record.entry_id for record in records if not record.error])
    return {"records": len(records), "scored": len(good), "dead_lettered": sum(bool(r.error) for r in records)}
