"""Scoring new rows: cheap first, expensive later.

The classical model screens every row (the champion itself when it is classical, else the newest
classical version). Rows it is unsure of, |decision value| < ``band``, go to the quantum model,
within the day's quota in rows and in dollars; rows over the quota keep the classical decision
and are flagged with the reason. A shadow challenger scores beside the champion the same way,
its outputs logged but never acted on.

Models are loaded from the registry's content-addressed artifacts (:func:`load_scorer`), re-hashed
on every load, so a rollback takes effect on the next run without recomputing anything and a
tampered file never scores.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import polars as pl

from hybrid_assets.training.embeddings import EmbeddingTransform
from hybrid_assets.training.models import classical_decision, support_decision
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

    @property
    def is_quantum(self) -> bool:
        return self.asset == "quantum_svm"

    @property
    def circuits_per_row(self) -> int:
        """Compute-uncompute circuits one row costs on a shot device: one per support vector (per
        landmark for a Nyström model)."""
        return 0 if self.support is None else len(self.support)

    def embed(self, features: np.ndarray) -> np.ndarray:
        return self.transform.encode(features)

    def classical(self, X: np.ndarray) -> np.ndarray:
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
    scorer = Scorer(entry["version_id"], entry["asset"], model, transform, embeddings["classes"])
    if scorer.is_quantum:
        scorer.support = model["landmarks"] if "projection" in model else embeddings["X_train"][model["support"]]
        scorer.spec = kernel_spec(store.read_verified(["circuit_artifact"], artifacts["circuit_artifact"])["spec"])
    return scorer


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
    """One model's output over a batch: a score per row, who decided it, and why flagged."""

    version_id: str
    role: str
    score: np.ndarray
    decided_by: list[str]
    flagged: list[str | None]
    latency_s: np.ndarray
    quantum_rows: int = 0
    notes: list[str] = field(default_factory=list)


def cascade(features: np.ndarray, screen: Scorer, model: Scorer, *, band: float, allowance: QuantumAllowance,
            run_quantum: Callable[[Scorer, np.ndarray], np.ndarray], role: str) -> ScoredRows:
    """Score rows (raw ``features``, each model embeds them its own way) with ``model`` behind
    the classical ``screen``.

    A classical model scores every row itself. A quantum model scores only the rows the screen
    is unsure of (|screen decision| < band), the first ``allowance.rows`` of them; the others keep
    the screen's decision, flagged with ``allowance.reason``. ``run_quantum(model, rows)`` returns
    decision values or raises; then the uncertain rows keep the screen's decision, flagged.
    """
    n = len(features)
    started = time.perf_counter()
    if not model.is_quantum:
        score = model.classical(model.embed(features))
        per_row = (time.perf_counter() - started) / max(n, 1)
        return ScoredRows(model.version_id, role, score, [model.version_id] * n, [None] * n, np.full(n, per_row))
    screened = screen.classical(screen.embed(features))
    per_row = (time.perf_counter() - started) / max(n, 1)
    score, decided, flagged = screened.copy(), [screen.version_id] * n, [None] * n
    latency = np.full(n, per_row)
    uncertain = np.flatnonzero(np.abs(screened) < band)
    chosen, over = uncertain[:allowance.rows], uncertain[allowance.rows:]
    for i in over:
        flagged[i] = allowance.reason
    result = ScoredRows(model.version_id, role, score, decided, flagged, latency)
    if chosen.size:
        started = time.perf_counter()
        try:
            score[chosen] = run_quantum(model, model.embed(features[chosen]))
        except Exception as error:  # noqa: BLE001 - the classical decision stands, flagged with the cause
            for i in chosen:
                flagged[i] = f"quantum stage failed: {type(error).__name__}: {error}"[:300]
            result.notes.append(str(error))
            return result
        latency[chosen] += (time.perf_counter() - started) / chosen.size
        for i in chosen:
            decided[i] = model.version_id
        result.quantum_rows = int(chosen.size)
    return result


def predictions_frame(sample_ids: list[str], rows: ScoredRows, classes: np.ndarray, *, source: str,
                      run_id: str, quantum_device: str, queue_s: np.ndarray | float) -> pl.DataFrame:
    """The warehouse's prediction rows for one model's output; rows the quantum model decided are
    computed on ``quantum_device``, the others classically. ``queue_s``: seconds each row waited."""
    n = len(sample_ids)
    on_device = [decided == rows.version_id and rows.quantum_rows > 0 for decided in rows.decided_by]
    return pl.DataFrame({
        "sample_id": sample_ids,
        "model_version": [rows.version_id] * n,
        "role": [rows.role] * n,
        "score": rows.score.astype(np.float64),
        "decision": [str(classes[1] if s > 0 else classes[0]) for s in rows.score],
        "decided_by": rows.decided_by,
        "flagged": pl.Series(rows.flagged, dtype=pl.String),
        "latency_s": rows.latency_s.astype(np.float64),
        "backend": [quantum_device if device else "classical" for device in on_device],
        "queue_s": np.broadcast_to(np.asarray(queue_s, dtype=np.float64), (n,)).copy(),
        "source": [source] * n,
        "run_id": [run_id] * n,
    })


def population_stability(expected: np.ndarray, actual: np.ndarray, *, bins: int = 10) -> float:
    """PSI of ``actual`` against ``expected`` over the expected quantile bins (with 1e-4 floors).

    0 means the same distribution; above 0.2 is the usual "significant drift" threshold.

    >>> round(population_stability(np.arange(1000.0), np.arange(1000.0)), 6)
    0.0
    """
    expected, actual = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if expected.size == 0 or actual.size == 0:
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / expected.size
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / actual.size
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))
