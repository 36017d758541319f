"""Does the quantum model beat the classical one? A verdict with an interval, not one holdout.

Both tuned models are compared on the same repeated splits of all labelled data (default 5
repeats x 5 folds; stratified by class for classification, plain shuffled folds for a regression
target), scored on the task's judged metric (``tasks.judged_metric``: the policy's metric for
classification, R² for regression; higher is better either way). From the paired per-split differences (quantum minus classical)
the mean and a confidence interval come from the corrected resampled t-test of Nadeau & Bengio
("Inference for the generalization error", Machine Learning 52, 2003): the splits share
training rows, so the plain variance of the differences is too small, and the correction adds
n_test / n_train of it. The verdict is "won" when the interval's lower bound is above the
margin, "lost" when its upper bound is below it, "inconclusive" otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hybrid_assets.training.scale import stratified_sample
from hybrid_assets.training.tuning import Split, map_fits


def repeated_splits(y: np.ndarray, *, repeats: int, folds: int, seed: int) -> list[Split]:
    """``repeats`` x ``folds`` (train, test) splits of all rows of ``y``: stratified for class
    indices (int; folds capped at the smallest class), shuffled k-fold for float regression
    targets (folds capped at the rows)."""
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    y = np.asarray(y)
    if y.dtype.kind == "f":
        folds = max(2, min(folds, len(y)))
        regression = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
        return list(regression.split(np.zeros(len(y))))
    folds = max(2, min(folds, int(np.bincount(y).min())))
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def corrected_interval(differences: Sequence[float], *, test_to_train: float,
                       confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, corrected std, low, high) of the Nadeau-Bengio corrected resampled t-test.

    ``test_to_train`` is n_test / n_train of one split (1 / (folds - 1) for k-fold). The variance
    of the mean is (1/J + n_test/n_train) * s^2 over J splits, with s^2 the sample variance.

    >>> mean, std, low, high = corrected_interval([0.01, 0.03, 0.02, 0.02], test_to_train=0.25)
    >>> round(mean, 4), round(std, 4), round(low, 4), round(high, 4)
    (0.02, 0.0058, 0.0016, 0.0384)
    """
    d = np.asarray(differences, dtype=np.float64)
    J = d.size
    mean = float(d.mean())
    if J < 2:
        return mean, math.inf, -math.inf, math.inf
    from scipy import stats

    std = float(math.sqrt((1.0 / J + test_to_train) * d.var(ddof=1)))
    half = float(stats.t.ppf(0.5 + confidence / 2, J - 1)) * std
    return mean, std, mean - half, mean + half


@dataclass(frozen=True)
class Verdict:
    """The outcome of a paired comparison over repeated splits."""

    outcome: str  # won | lost | inconclusive
    metric: str  # the judged metric (higher is better): accuracy | f1 | roc_auc, or r2 for regression
    mean: float
    std: float
    low: float
    high: float
    confidence: float
    min_margin: float
    n_splits: int
    differences: list[float]
    quantum_scores: list[float]
    classical_scores: list[float]

    @property
    def passed(self) -> bool:
        return self.outcome == "won"

    def message(self, candidate: str = "quantum", baseline: str = "classical") -> str:
        by = {"won": f"won by {self.mean:+.4f}", "lost": f"lost by {-self.mean:.4f}",
              "inconclusive": f"inconclusive ({self.mean:+.4f})"}[self.outcome]
        return (f"{candidate} vs {baseline} on {self.metric}: {by}, {self.confidence:.0%} CI "
                f"[{self.low:+.4f}, {self.high:+.4f}] over {self.n_splits} splits (margin {self.min_margin:+.4f})")

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def judge(quantum_scores: Sequence[float], classical_scores: Sequence[float], *, metric: str, min_margin: float,
          test_to_train: float, confidence: float = 0.95) -> Verdict:
    """Paired verdict: won when the interval's lower bound is above ``min_margin``, lost when its
    upper bound is below it, inconclusive otherwise."""
    differences = [q - c for q, c in zip(quantum_scores, classical_scores, strict=True)]
    mean, std, low, high = corrected_interval(differences, test_to_train=test_to_train, confidence=confidence)
    outcome = "won" if low > min_margin else "lost" if high < min_margin else "inconclusive"
    return Verdict(outcome, metric, mean, std, low, high, confidence, min_margin, len(differences), differences,
                   [float(q) for q in quantum_scores], [float(c) for c in classical_scores])


def compare(quantum: Callable[[np.ndarray, np.ndarray], float], classical: Callable[[np.ndarray, np.ndarray], float],
            splits: Sequence[Split], *, metric: str, min_margin: float, confidence: float = 0.95,
            classical_side_by_side: bool = True) -> Verdict:
    """Score both ``fit_and_score`` functions on every split and judge the paired differences
    (the classical fits one after another when ``classical_side_by_side`` is False, see
    :func:`~hybrid_assets.training.tuning.map_fits`)."""
    quantum_scores = map_fits(lambda split: quantum(*split), list(splits))
    classical_scores = map_fits(lambda split: classical(*split), list(splits), side_by_side=classical_side_by_side)
    train, test = splits[0]
    return judge(quantum_scores, classical_scores, metric=metric, min_margin=min_margin,
                 test_to_train=len(test) / len(train), confidence=confidence)


ADAPTIVE_MIN_ROWS = 500
"""The first sample an adaptive verdict (:func:`narrow_enough`) tries."""


def narrow_enough(verdict_on: Callable[[np.ndarray], Verdict], y: np.ndarray, *, width: float, seed: int,
                  min_rows: int = ADAPTIVE_MIN_ROWS) -> tuple[Verdict, dict]:
    """The verdict on the fewest rows of ``y`` whose interval is at most ``width`` wide (or on
    every row when even they give a wider one), and the stated sample.

    ``verdict_on(rows)`` judges the rows (sorted indices into ``y``). Sizes grow from
    ``min_rows`` by the rule that an interval's width falls as 1/sqrt(rows): the next size is the
    current one times (width now / target)^2, plus 10%. Each sample is seeded and stratified
    (:func:`~hybrid_assets.training.scale.stratified_sample`)."""
    n_all, size, tried = len(y), min(len(y), min_rows), []
    while True:
        rows = stratified_sample(y, size, seed=seed)
        verdict = verdict_on(rows)
        reached = verdict.high - verdict.low
        tried.append({"rows": int(len(rows)), "ci_width": float(reached)})
        if reached <= width or len(rows) >= n_all:
            break
        growth = (reached / width) ** 2 * 1.1 if math.isfinite(reached) else 2.0
        size = min(n_all, max(size + 1, math.ceil(size * growth)))
    note = {"what": "verdict rows (train and test)", "rows": int(len(rows)), "of": int(n_all),
            "sampled": len(rows) < n_all, "seed": seed, "ci_width_target": width, "ci_width": float(reached),
            "tried": tried, "rule": "the fewest rows whose interval is this narrow: grown from "
                                    f"{min_rows} by (width / target)^2, stratified, seeded"}
    return verdict, note
