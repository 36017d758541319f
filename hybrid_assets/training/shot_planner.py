"""How many shots does the kernel need? Estimated on the exact simulator before paying for any.

Each rung of a shot ladder replaces every exact kernel entry p by a Binomial(shots, p) / shots
draw (:func:`~hybrid_resources.quantum.kernel_diagnostics.emulate_shots`, the exact distribution
of a noiseless compute-uncompute estimate), refits the tuned SVM on the noisy train kernel and
scores it on the noisy test kernel, over several seeds. The recommendation is the cheapest rung
whose mean metric is within ``tolerance`` of the exact one. A projected kernel's noise is in
its Bloch vectors, not its entries: its ladder passes ``emulate``, which draws those instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hybrid_assets.training.models import (
    fit_precomputed_svm,
    holdout_metrics,
    precomputed_decision,
)
from hybrid_resources.quantum.kernel_diagnostics import emulate_shots

SHOT_LADDER = (100, 300, 1000, 3000, 10000)


@dataclass(frozen=True)
class ShotRung:
    """What ``shots`` shots per circuit give, over seeds: the holdout metric and the kernel error."""

    shots: int
    metric_mean: float
    metric_std: float
    kernel_mean_abs_error: float
    kernel_max_abs_error: float
    circuits: int
    usd: dict[str, float | None]  # planned cost per device (None: no price)

    def to_dict(self) -> dict:
        return asdict(self)


def holdout_score(train: np.ndarray, test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray, *, C: float,
                  metric: str) -> float:
    """The metric of an SVM fit on a precomputed train kernel and scored on the test kernel."""
    model = fit_precomputed_svm(train, y_train, C=C)
    return holdout_metrics(y_test, precomputed_decision(model, test))[metric]


def shot_ladder(train: np.ndarray, test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray, *, C: float,
                metric: str, ladder: Sequence[int] = SHOT_LADDER, seeds: int = 5, seed: int = 0,
                emulate: Callable[[int, int], tuple[np.ndarray, np.ndarray]] | None = None,
                ) -> list[tuple[int, list[float], list[float]]]:
    """For each rung: (shots, metric per seed, mean |error| per seed) from emulated shot kernels.

    ``emulate(shots, repeat)`` returns one noisy (train, test) pair; default: every entry of the
    exact kernels drawn as Binomial(shots, p) / shots."""
    rungs = []
    for shots in ladder:
        scores, errors = [], []
        for s in range(seeds):
            if emulate is not None:
                noisy_train, noisy_test = emulate(int(shots), s)
            else:
                rng = np.random.default_rng([seed, int(shots), s])
                noisy_train = emulate_shots(train, int(shots), rng, symmetric=True)
                noisy_test = emulate_shots(test, int(shots), rng, symmetric=False)
            scores.append(holdout_score(noisy_train, noisy_test, y_train, y_test, C=C, metric=metric))
            errors.append(float(np.mean(np.abs(np.concatenate([(noisy_train - train).ravel(),
                                                                (noisy_test - test).ravel()])))))
        rungs.append((int(shots), scores, errors))
    return rungs


def recommend(rungs: Sequence[ShotRung], exact_metric: float, *, tolerance: float, device: str) -> ShotRung | None:
    """The cheapest rung on ``device`` (then the fewest shots) whose mean metric is within
    ``tolerance`` of the exact one; None when no rung is close enough."""
    close = [r for r in rungs if r.metric_mean >= exact_metric - tolerance]
    priced = [r for r in close if r.usd.get(device) is not None]
    return min(priced or close, key=lambda r: (r.usd.get(device) or 0.0, r.shots), default=None)
