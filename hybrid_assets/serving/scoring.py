"""Scoring new rows: cheap first, expensive later, for every learning task.

The classical model screens every row (the champion itself when it is classical, else the newest
classical version). Rows it is unsure of go to the quantum model, within the day's quota in rows
and in dollars; rows over the quota keep the classical decision and are flagged with the reason.
A shadow challenger scores beside the champion the same way, its outputs logged but never acted on.

"Unsure" is one rule for every task: a row goes to the quantum model when the screen's
*uncertainty score* (:func:`uncertainty`, unitless or in decision units, smaller = less sure) is
below ``band``:

- binary: |decision value|, exactly as before (it is the margin between the two classes' scores,
  the decision being the score of class index 1 against 0 for class index 0);
- multiclass: the margin between the two highest class scores (:func:`top_two_margin`); for K = 2
  it equals the binary rule, so ``band`` means the same thing for both;
- regression: the row's *relative sharpness* ``reference / difficulty(x)`` under locally weighted
  split-conformal prediction (:class:`ConformalInterval`). Plain split conformal gives every row
  the same half-width ``q`` (a constant per model cannot rank rows), so the nonconformity score is
  the absolute residual divided by a residual-free difficulty ``difficulty(x)``: the mean distance
  from the row's embedding to its k nearest train embeddings, plus a tenth of the train rows'
  median spacing (so no row gets a zero width) (Papadopoulos, Vovk & Gammerman 2011; the locally weighted form of Lei et al. 2018,
  §5.2). The interval is ``pred ± q·difficulty(x)``, with ``q`` the ceil((n+1)·0.9)/n empirical
  quantile of the normalized residuals of the classical screen on the held-out test split, so it
  keeps the finite-sample 90% marginal coverage of split conformal. ``reference`` is the median
  difficulty of those calibration rows: sharpness 1 is a typical row, and ``band`` = 0.25 sends
  rows whose interval is over 4 times wider than a typical one (band 0: none; a huge band: all).

Regression rows store the interval (``lower``, ``upper``) of the classical model that decided
them; a row the quantum model decided has none (null): its residuals are not calibrated (that
would need the quantum kernel of the test split, which scoring never loads). Multiclass rows store
the margin as ``score``, the winning class as ``decision`` and every class's score
(``class_scores``, in the order of the model's ``classes``). Binary rows are unchanged.

Models are loaded from the registry's content-addressed artifacts (:func:`load_scorer`), re-hashed
on every load, so a rollback takes effect on the next run without recomputing anything and a
tampered file never scores.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import polars as pl

from hybrid_assets.training.embeddings import EmbeddingTransform
from hybrid_assets.training.models import classical_decision, support_decision
from hybrid_assets.training.tasks import task_of
from hybrid_resources.data.artifacts import ArtifactStore, info_of
from hybrid_resources.quantum.backends import BackendConfig, SubmissionLedger
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.kernels import KernelSpec, compute_kernel, kernel_spec


@dataclass
class Scorer:
    """A registered model ready to score: its arrays, the embedding it was trained on, its classes."""

    version_id: str
    asset: str
    model: dict[str, np.ndarray]
    transform: EmbeddingTransform
    classes: np.ndarray
    support: np.ndarray | None = None  # quantum: the support vectors' (or Nyström landmarks') embeddings (n, d)
    spec: KernelSpec | None = None
    task: str = "binary"  # tasks.TASKS: what its decisions mean (tasks.task_of of its embeddings)
    interval: "ConformalInterval | None" = None  # regression, classical models: calibrated on the test split

    @property
    def is_quantum(self) -> bool:
        return self.asset == "quantum_svm"

    @property
    def circuits_per_row(self) -> int:
        """Compute-uncompute circuits one row costs on a shot device: one per support vector (per
        landmark for a Nyström model)."""
        return 0 if self.support is None else len(self.support)

    def embed(self, features: np.ndarray, categories: np.ndarray | None = None) -> np.ndarray:
        """Raw rows -> the (n, d) embedding the model was trained on. ``features`` (n, p) float64,
        NaN where missing (imputed by the transform); ``categories`` (n, c) the categorical
        columns' values, or None when the dataset has none."""
        if categories is None or np.asarray(categories).shape[-1] == 0:
            return self.transform.encode(features)
        return self.transform.encode(features, categories)

    def classical(self, X: np.ndarray) -> np.ndarray:
        """The task's decisions (tasks.py): (n,) binary, (n, K) multiclass, (n,) values for regression."""
        return classical_decision(info_of(self.model)["kind"], self.model, X)

    def quantum(self, X: np.ndarray, backend: BackendConfig, *, ledger: SubmissionLedger | None = None,
                cache: KernelCache | None = None) -> np.ndarray:
        """Decision values from the kernel between X and the support vectors (the m landmarks of a
        Nyström model: a new row needs only those entries), on ``backend``."""
        kernel = compute_kernel(X, self.support, spec=self.spec, backend=backend, ledger=ledger, cache=cache).matrix
        return support_decision(self.model, kernel)


def load_scorer(entry: dict, store: ArtifactStore) -> Scorer:
    """The scorer of a registry entry, from the artifact versions it names, each re-hashed against
    its registered version: a changed or swapped file raises ArtifactIntegrityError (nothing scores)."""
    artifacts = entry["artifacts"]
    model = store.read_verified([entry["asset"]], artifacts[entry["asset"]])
    embeddings = store.read_verified(["reduced_embeddings"], artifacts["reduced_embeddings"])
    transform = EmbeddingTransform.from_bundle(embeddings)
    if transform is None:
        raise ValueError(f"{entry['version_id']}: its embeddings predate stored transforms; refresh the models")
    scorer = Scorer(entry["version_id"], entry["asset"], model, transform, embeddings["classes"],
                    task=task_of(embeddings))
    if scorer.is_quantum:
        scorer.support = model["landmarks"] if "projection" in model else embeddings["X_train"][model["support"]]
        scorer.spec = kernel_spec(store.read_verified(["circuit_artifact"], artifacts["circuit_artifact"])["spec"])
    elif scorer.task == "regression":
        residuals = embeddings["y_test"] - scorer.classical(embeddings["X_test"])
        scorer.interval = ConformalInterval.calibrate(embeddings["X_train"], embeddings["X_test"], residuals)
    return scorer


def conformal_quantile(scores: np.ndarray, coverage: float = 0.9) -> float:
    """The split-conformal quantile of calibration ``scores`` (n,): the ceil((n+1)·coverage)-th
    smallest, i.e. their ceil((n+1)·coverage)/n empirical quantile; +inf when n is too small for
    ``coverage`` (then no finite interval has that guarantee)."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    rank = math.ceil((scores.size + 1) * coverage)
    return float(scores[rank - 1]) if 1 <= rank <= scores.size else math.inf


def knn_mean_distance(train: np.ndarray, X: np.ndarray, k: int, *, chunk: int = 512) -> np.ndarray:
    """Mean Euclidean distance from each row of X (n, d) to its k nearest rows of ``train`` (N, d);
    (n,), computed ``chunk`` rows at a time so memory stays O(chunk · N)."""
    k = max(1, min(k, len(train)))
    out = np.empty(len(X))
    for start in range(0, len(X), chunk):
        block = X[start:start + chunk]
        squared = (block ** 2).sum(1)[:, None] - 2.0 * block @ train.T + (train ** 2).sum(1)[None, :]
        nearest = np.partition(np.maximum(squared, 0.0), k - 1, axis=1)[:, :k]
        out[start:start + chunk] = np.sqrt(nearest).mean(axis=1)
    return out


@dataclass(frozen=True)
class ConformalInterval:
    """Locally weighted split-conformal intervals of a regression model (see the module docstring).

    ``difficulty(x) = floor + mean distance from x to its k nearest ``train`` rows`` (``floor``:
    a tenth of the train rows' median spacing; no residual in it, so it is fixed before calibration); ``quantile``: the conformal quantile of
    |residual| / difficulty on the calibration rows; ``reference``: their median difficulty.
    ``interval(pred, X)`` holds the true value with probability >= ``coverage`` for a row
    exchangeable with the calibration rows.
    """

    train: np.ndarray
    k: int
    floor: float
    quantile: float
    reference: float
    coverage: float

    @classmethod
    def calibrate(cls, train: np.ndarray, X_cal: np.ndarray, residuals: np.ndarray, *, coverage: float = 0.9,
                  k: int = 10) -> "ConformalInterval":
        """From held-out rows X_cal (n, d) and the model's residuals on them (n,), none used to fit it."""
        train = np.asarray(train, dtype=np.float64)
        # The floor keeps a row on top of train rows from getting a zero-width interval. It comes from
        # train rows only (their distance to their k nearest other train rows, each row itself being
        # at distance 0 among its k + 1 nearest), so the score is fixed before calibration.
        some = train[np.linspace(0, len(train) - 1, min(len(train), 500)).astype(np.int64)]
        spacing = knn_mean_distance(train, some, k + 1) * (k + 1) / max(min(k, len(train) - 1), 1)
        floor = max(0.1 * float(np.median(spacing)), 1e-9)
        difficulty = floor + knn_mean_distance(train, X_cal, k)
        quantile = conformal_quantile(np.abs(residuals) / difficulty, coverage)
        return cls(train, k, floor, quantile, float(np.median(difficulty)), coverage)

    def difficulty(self, X: np.ndarray) -> np.ndarray:
        return self.floor + knn_mean_distance(self.train, X, self.k)

    def half_width(self, X: np.ndarray) -> np.ndarray:
        """(n,) the interval's half-width per row, in target units."""
        return self.quantile * self.difficulty(X)

    def sharpness(self, X: np.ndarray) -> np.ndarray:
        """(n,) > 0: a typical calibration row's half-width over this row's; 1 is typical, small is unsure."""
        return self.reference / self.difficulty(X)

    def interval(self, predicted: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper), each (n,), around the predicted values (n,) of the rows X (n, d)."""
        half = self.half_width(X)
        return predicted - half, predicted + half


def top_two_margin(decision: np.ndarray) -> np.ndarray:
    """(n,) >= 0: the margin between the two highest class scores; |decision| for a binary (n,)
    decision (class index 0 scores 0 against it). Infinite when there is one class."""
    decision = np.asarray(decision, dtype=np.float64)
    if decision.ndim == 1:
        return np.abs(decision)
    if decision.shape[1] < 2:
        return np.full(len(decision), math.inf)
    top = np.partition(decision, -2, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def uncertainty(scorer: Scorer, decision: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n,) the screen's uncertainty score per row, smaller = less sure: the top-two margin for
    classification, the conformal sharpness for regression (X: the rows' embeddings)."""
    if scorer.task == "regression":
        if scorer.interval is None:
            raise ValueError(f"{scorer.version_id}: a regression screen needs its conformal calibration")
        return scorer.interval.sharpness(X)
    return top_two_margin(decision)


@dataclass
class QuantumAllowance:
    """How many rows the quantum model may still score today, and why no more."""

    rows: int
    reason: str = ""  # the flag of the rows over it

    @classmethod
    def for_today(cls, *, rows_quota: int, rows_used: int, usd_per_row: float, usd_left: float) -> "QuantumAllowance":
        by_rows = max(rows_quota - rows_used, 0)
        by_usd = math.inf if usd_per_row <= 0 else max(int(usd_left // usd_per_row), 0)
        if by_usd < by_rows:
            return cls(int(by_usd), f"over the daily budget (${usd_left:.2f} left, ${usd_per_row:.4f} per row)")
        return cls(by_rows, f"over the daily quota of {rows_quota} quantum rows")


@dataclass
class ScoredRows:
    """One model's output over a batch: a decision per row (the task's shape: (n,), or (n, K) for
    multiclass), who decided it, and why flagged; for regression the conformal interval of the
    classical model that decided each row (NaN where the quantum model did)."""

    version_id: str
    role: str
    score: np.ndarray
    decided_by: list[str]
    flagged: list[str | None]
    latency_s: np.ndarray
    quantum_rows: int = 0
    notes: list[str] = field(default_factory=list)
    task: str = "binary"
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None


def cascade(features: np.ndarray, screen: Scorer, model: Scorer, *, band: float, allowance: QuantumAllowance,
            run_quantum: Callable[[Scorer, np.ndarray], np.ndarray], role: str,
            categories: np.ndarray | None = None) -> ScoredRows:
    """Score rows (raw ``features`` (n, p) and ``categories`` (n, c) or None; each model embeds them
    its own way) with ``model`` behind the classical ``screen``.

    A classical model scores every row itself. A quantum model scores only the rows the screen
    is unsure of (:func:`uncertainty` < band), the first ``allowance.rows`` of them; the others keep
    the screen's decision, flagged with ``allowance.reason``. ``run_quantum(model, rows)`` returns
    decisions or raises; then the uncertain rows keep the screen's decision, flagged.
    """
    n = len(features)
    started = time.perf_counter()
    first = model if not model.is_quantum else screen
    X = first.embed(features, categories)
    score = first.classical(X)
    per_row = (time.perf_counter() - started) / max(n, 1)
    result = ScoredRows(model.version_id, role, score, [first.version_id] * n, [None] * n, np.full(n, per_row),
                        task=model.task)
    if first.interval is not None:
        result.lower, result.upper = first.interval.interval(score, X)
    if not model.is_quantum:
        return result
    uncertain = np.flatnonzero(uncertainty(screen, score, X) < band)
    chosen, over = uncertain[:allowance.rows], uncertain[allowance.rows:]
    for i in over:
        result.flagged[i] = allowance.reason
    if chosen.size:
        quantum_stage(result, model, chosen, features, categories, run_quantum)
    return result


def quantum_stage(result: ScoredRows, model: Scorer, chosen: np.ndarray, features: np.ndarray,
                  categories: np.ndarray | None, run_quantum: Callable[[Scorer, np.ndarray], np.ndarray]) -> None:
    """The quantum model's decisions replace the screen's on the ``chosen`` rows of ``result``
    (their interval, the screen's, goes with them); if it raises, they keep the screen's, flagged."""
    started = time.perf_counter()
    try:
        decided = run_quantum(model, model.embed(features[chosen], None if categories is None else categories[chosen]))
    except Exception as error:  # noqa: BLE001 - the classical decision stands, flagged with the cause
        for i in chosen:
            result.flagged[i] = f"quantum stage failed: {type(error).__name__}: {error}"[:300]
        result.notes.append(str(error))
        return
    result.score[chosen] = decided
    result.latency_s[chosen] += (time.perf_counter() - started) / chosen.size
    for i in chosen:
        result.decided_by[i] = model.version_id
    if result.lower is not None:
        result.lower[chosen], result.upper[chosen] = np.nan, np.nan
    result.quantum_rows = int(chosen.size)


def task_columns(rows: ScoredRows, classes: np.ndarray) -> dict[str, pl.Series]:
    """``score`` and ``decision`` of the rows, and the task's extra columns: binary ``score`` the
    decision value, ``decision`` its class (unchanged); multiclass ``score`` the top-two margin,
    ``decision`` the winning class, ``class_scores`` every class's score (order of ``classes``);
    regression ``score`` and ``decision`` the value (a number and its text), ``lower``/``upper``
    the 90% conformal interval (null where no calibrated model decided)."""
    score = np.asarray(rows.score, dtype=np.float64)
    if rows.task == "regression":
        bounds = {name: pl.Series(name, np.full(len(score), np.nan) if values is None else values,
                                  dtype=pl.Float64).fill_nan(None)
                  for name, values in (("lower", rows.lower), ("upper", rows.upper))}
        return {"score": pl.Series(score), "decision": pl.Series([str(float(v)) for v in score], dtype=pl.String),
                **bounds}
    if score.ndim == 2:
        return {"score": pl.Series(top_two_margin(score)),
                "decision": pl.Series([str(classes[i]) for i in score.argmax(axis=1)], dtype=pl.String),
                "class_scores": pl.Series(score.tolist(), dtype=pl.List(pl.Float64))}
    return {"score": pl.Series(score),
            "decision": pl.Series([str(classes[1] if s > 0 else classes[0]) for s in score], dtype=pl.String)}


def predictions_frame(sample_ids: list[str], rows: ScoredRows, classes: np.ndarray, *, source: str,
                      run_id: str, quantum_device: str, queue_s: np.ndarray | float) -> pl.DataFrame:
    """The warehouse's prediction rows for one model's output; rows the quantum model decided are
    computed on ``quantum_device``, the others classically. ``queue_s``: seconds each row waited.
    Binary rows have exactly the columns below; other tasks add theirs (:func:`task_columns`)."""
    n = len(sample_ids)
    on_device = [decided == rows.version_id and rows.quantum_rows > 0 for decided in rows.decided_by]
    columns = task_columns(rows, classes)
    return pl.DataFrame({
        "sample_id": sample_ids,
        "model_version": [rows.version_id] * n,
        "role": [rows.role] * n,
        "score": columns.pop("score"),
        "decision": columns.pop("decision"),
        "decided_by": rows.decided_by,
        "flagged": pl.Series(rows.flagged, dtype=pl.String),
        "latency_s": rows.latency_s.astype(np.float64),
        "backend": [quantum_device if device else "classical" for device in on_device],
        "queue_s": np.broadcast_to(np.asarray(queue_s, dtype=np.float64), (n,)).copy(),
        "source": [source] * n,
        "run_id": [run_id] * n,
        **columns,
    })


def population_stability(expected: np.ndarray, actual: np.ndarray, *, bins: int = 10) -> float:
    """PSI of ``actual`` against ``expected`` over the expected quantile bins (with 1e-4 floors);
    missing (NaN) values are left out of both (the monitor reports their share apart).

    0 means the same distribution; above 0.2 is the usual "significant drift" threshold.

    >>> round(population_stability(np.arange(1000.0), np.arange(1000.0)), 6)
    0.0
    """
    expected, actual = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    expected, actual = expected[np.isfinite(expected)], actual[np.isfinite(actual)]  # missing values: not a bin
    if expected.size == 0 or actual.size == 0:
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / expected.size
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / actual.size
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def level_stability(expected: list[str | None], actual: list[str | None]) -> float:
    """PSI of the levels of one categorical column: ``actual`` against ``expected`` over the union of
    their levels (missing values, None, are a level of their own), with the same 1e-4 floors.

    >>> level_stability(["a", "b"] * 50, ["b", "a"] * 50)
    0.0
    """
    if not expected or not actual:
        return float("nan")
    before, after = Counter(map(str, expected)), Counter(map(str, actual))
    levels = sorted(before | after)
    e = np.array([before[level] for level in levels]) / len(expected)
    a = np.array([after[level] for level in levels]) / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))
