"""How many shots does the kernel need? Estimated on the exact simulator before paying for any.

Each rung of a shot ladder answers two questions about ``shots`` shots per circuit:

- the kernel error: every estimated entry p (each off-diagonal train pair once, every test entry;
  the train diagonal is 1 and not estimated) is Binomial(shots, p) / shots on a noiseless device
  (:func:`~hybrid_resources.quantum.kernel_diagnostics.emulate_shots`), so its expected absolute
  error follows from p in closed form
  (:func:`~hybrid_resources.quantum.kernel_diagnostics.expected_shot_errors`): no draw, the mean
  over the entries and the worst entry's;
- the holdout metric: the tuned SVM is refit on an emulated noisy train kernel and scored on an
  emulated noisy test kernel (the same draws, seed by seed, as before the closed form), on the
  task's judged metric (``tasks.judged_metric``: the configured one for classification,
  R² for a regression target). Repeats stop early (:class:`SeedStop`) once the mean is clearly on
  one side of the tolerance line, so a rung far from it costs ``min_seeds`` refits, not ``seeds``.

The recommendation is the cheapest rung whose mean metric is within ``tolerance`` of the exact one
(every judged metric is higher-is-better, so one rule serves R² too, in R² units). A projected
kernel's noise is in its Bloch vectors, not its entries, with no closed form used here: its ladder
passes ``emulate``, which draws those, and its kernel error is measured on the draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

import numpy as np

from hybrid_assets.training.models import fit_precomputed_svm, precomputed_decision
from hybrid_assets.training.tasks import holdout_metric, judged_metric
from hybrid_resources.cost_policy import CostPolicy, UnknownPriceError, device_identity
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.kernel_diagnostics import (
    emulate_shots,
    estimated_entries,
    expected_shot_errors,
    label_task,
)

SHOT_LADDER = (100, 300, 1000, 3000, 10000)


@dataclass(frozen=True)
class ShotRung:
    """What ``shots`` shots per circuit give: the holdout metric over ``seeds`` emulated repeats (0:
    not emulated, the recommendation did not need it),
    the expected mean |error| of the estimated kernel entries and the worst entry's expected
    |error| (closed form; measured on the draws for a projected kernel)."""

    shots: int
    metric_mean: float | None  # None: not emulated (:func:`climb_ladder`)
    metric_std: float | None
    kernel_mean_abs_error: float
    kernel_max_abs_error: float
    circuits: int
    usd: dict[str, float | None]  # planned cost per device (None: no price)
    seeds: int | None = None  # emulated repeats behind the metric (None: not recorded)

    def to_dict(self) -> dict:
        return asdict(self)


class LadderRung(NamedTuple):
    """One rung of :func:`shot_ladder`: the judged metric per repeat and the kernel error
    (mean |error| over the estimated entries, the worst entry's)."""

    shots: int
    scores: list[float]
    kernel_error: tuple[float, float]


@dataclass(frozen=True)
class SeedStop:
    """When a rung has drawn enough repeats: after ``min_seeds`` (at least 2), as soon as a
    two-sided t interval at ``confidence`` around the mean of the scores excludes ``threshold``
    (the exact metric less the tolerance), so more repeats would almost surely leave the rung on
    the same side of it. The scores' std is floored at ``resolution`` (a metric moves by about
    one test row, 1 / test rows): identical scores of a few repeats do not count as certainty."""

    threshold: float
    min_seeds: int
    resolution: float
    confidence: float = 0.99

    def clear(self, scores: Sequence[float]) -> bool:
        """Whether ``scores`` (one per repeat so far) settle the rung's side of ``threshold``."""
        k = len(scores)
        if k < max(2, self.min_seeds) or not np.isfinite(self.threshold):
            return False
        from scipy import stats

        spread = max(float(np.std(scores, ddof=1)), self.resolution)
        t = float(stats.t.ppf(0.5 + self.confidence / 2, k - 1))
        return abs(float(np.mean(scores)) - self.threshold) > t * spread / np.sqrt(k)


def ladder_metric(y: np.ndarray, configured: str, task: str | None = None) -> str:
    """The metric a ladder over labels ``y`` judges: ``tasks.judged_metric`` of ``task`` (default:
    what ``y`` implies, float targets being regression) and the ``configured`` one."""
    return judged_metric(task or label_task(y), configured)


def holdout_score(train: np.ndarray, test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray, *, C: float,
                  metric: str, task: str | None = None) -> float:
    """The judged metric (:func:`ladder_metric` of ``metric``) of ``fit_precomputed_svm`` (a
    classifier, or a regressor for a regression target) fit on a precomputed train kernel and
    scored on the test kernel. ``task`` defaults to what ``y_train`` implies."""
    task = task or label_task(y_train)
    model = fit_precomputed_svm(train, y_train, C=C)
    return holdout_metric(y_test, precomputed_decision(model, test), judged_metric(task, metric), task=task)


def noisy_score(train: np.ndarray, test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray, *, shots: int,
                rng: np.random.Generator, C: float, metric: str, task: str) -> float:
    """One emulated repeat at ``shots`` shots: the judged metric of the SVM refit on a noisy copy
    of the exact (n, n) train kernel, scored on a noisy copy of the (m, n) test kernel, both drawn
    from ``rng`` in that order. Every test entry is drawn although the decision reads only the
    support columns: drawing those alone would be cheaper but would change every realisation, and
    with them a borderline rung's side of the tolerance line, against plans made before."""
    noisy_train = emulate_shots(train, shots, rng, symmetric=True)
    return holdout_score(noisy_train, emulate_shots(test, shots, rng, symmetric=False), y_train, y_test, C=C,
                         metric=metric, task=task)


def repeat_until(draw: Callable[[int], float], seeds: int, stop: SeedStop | None) -> list[float]:
    """``draw(0)``, ``draw(1)``, ... up to ``seeds`` repeats, fewer once ``stop`` is clear."""
    scores: list[float] = []
    for s in range(seeds):
        scores.append(float(draw(s)))
        if stop is not None and stop.clear(scores):
            break
    return scores


def shot_ladder(train: np.ndarray, test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray, *, C: float,
                metric: str, ladder: Sequence[int] = SHOT_LADDER, seeds: int = 5, seed: int = 0,
                emulate: Callable[[int, int], tuple[np.ndarray, np.ndarray]] | None = None,
                task: str | None = None, stop: SeedStop | None = None, climb: bool = False) -> list[LadderRung]:
    """For each rung: (shots, judged metric per repeat, kernel error) from emulated shot kernels.

    Default: the kernel error in closed form from the exact entries and each repeat a
    :func:`noisy_score` seeded by (``seed``, shots, repeat). ``emulate(shots, repeat)`` (a
    projected kernel) returns one noisy (train, test) pair instead, and the kernel error is then
    measured on the draws (:func:`measured_rung`). ``stop``: when a rung may stop short of
    ``seeds`` repeats (None: every rung draws them all); with it, ``climb`` emulates only the
    rungs the recommendation needs (:func:`climb_ladder`; not with ``emulate``, whose kernel
    error needs the draws): the others have no scores. ``task`` defaults to what ``y_train`` implies."""
    task = task or label_task(y_train)
    if emulate is not None:
        return [measured_rung(train, test, y_train, y_test, emulate, int(shots), C=C, metric=metric, task=task,
                              seeds=seeds, stop=stop) for shots in ladder]
    shots_list = [int(shots) for shots in ladder]
    errors = expected_shot_errors(estimated_entries(train, test), shots_list)

    def scores_of(shots: int) -> list[float]:
        def draw(s: int) -> float:
            return noisy_score(train, test, y_train, y_test, shots=shots, rng=np.random.default_rng([seed, shots, s]),
                               C=C, metric=metric, task=task)
        return repeat_until(draw, seeds, stop)

    emulated = (climb_ladder(shots_list, scores_of, stop) if climb and stop is not None
                else {shots: scores_of(shots) for shots in shots_list})
    return [LadderRung(shots, emulated.get(shots, []), error) for shots, error in zip(shots_list, errors)]


def climb_ladder(ladder: Sequence[int], scores_of: Callable[[int], list[float]],
                 stop: SeedStop) -> dict[int, list[float]]:
    """The scores of the rungs the recommendation needs, by shots, when a rung's cost rises with
    its shots: first the top rung, and if it is clearly below ``stop.threshold`` (:meth:`SeedStop.clear`)
    no rung is taken to be within (fewer shots, more noise: the metric does not rise as shots
    fall); otherwise from the fewest shots up to the first rung whose mean is within, the
    cheapest such rung (those above it cannot be recommended). Today's rule on the same scores."""
    top = max(ladder)
    emulated = {top: scores_of(top)}
    if stop.clear(emulated[top]) and float(np.mean(emulated[top])) < stop.threshold:
        return emulated
    for shots in sorted(set(ladder)):
        if shots not in emulated:
            emulated[shots] = scores_of(shots)
        if float(np.mean(emulated[shots])) >= stop.threshold:
            break
    return emulated


def costs_rise_with_shots(usd: Sequence[float | None]) -> bool:
    """Whether planned costs (None: no price, counted as 0), listed by increasing shots, never fall."""
    costs = [cost or 0.0 for cost in usd]
    return all(a <= b for a, b in zip(costs, costs[1:]))


def measured_rung(train: np.ndarray, test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray,
                  emulate: Callable[[int, int], tuple[np.ndarray, np.ndarray]], shots: int, *, C: float, metric: str,
                  task: str, seeds: int, stop: SeedStop | None) -> LadderRung:
    """One rung from ``emulate``'s noisy kernel pairs: the judged metric per repeat and the kernel
    error measured on the estimated entries (the mean |error| over entries and repeats; the
    largest per-entry |error| averaged over the repeats, which overstates the worst entry's
    expected |error| when the repeats are few)."""
    exact = estimated_entries(train, test)
    total = np.zeros_like(exact)

    def draw(s: int) -> float:
        noisy_train, noisy_test = emulate(shots, s)
        total[:] += np.abs(estimated_entries(noisy_train, noisy_test) - exact)
        return holdout_score(noisy_train, noisy_test, y_train, y_test, C=C, metric=metric, task=task)

    scores = repeat_until(draw, seeds, stop)
    mean_error = total / len(scores)
    return LadderRung(shots, scores, (float(np.mean(mean_error)), float(np.max(mean_error, initial=0.0))))


def recommend(rungs: Sequence[ShotRung], exact_metric: float, *, tolerance: float, device: str) -> ShotRung | None:
    """The cheapest rung on ``device`` (then the fewest shots) whose mean metric is within
    ``tolerance`` of the exact one (higher is better: accuracy, F1, ROC-AUC or R², which may be
    negative); None when no rung is close enough or the exact metric is NaN. A rung not emulated
    (``metric_mean`` None) is not a candidate."""
    close = [r for r in rungs if r.metric_mean is not None and r.metric_mean >= exact_metric - tolerance]
    priced = [r for r in close if r.usd.get(device) is not None]
    return min(priced or close, key=lambda r: (r.usd.get(device) or 0.0, r.shots), default=None)


def rung_usd(devices: dict[str, BackendConfig], circuits: int, shots: int, cost_policy: CostPolicy,
             ) -> dict[str, float | None]:
    """The planned cost of ``circuits`` circuits of ``shots`` shots on each device (None: no price)."""
    usd = {}
    for name, backend in devices.items():
        try:
            usd[name] = cost_policy.estimate(cost_policy.with_program_sets(replace(backend, shots=shots)),
                                             circuits, shots).usd
        except UnknownPriceError:
            usd[name] = None
    return usd


def priced_rungs(ladder: Sequence[LadderRung], devices: dict[str, BackendConfig], circuits: int,
                 cost_policy: CostPolicy) -> list[ShotRung]:
    """The rungs of :func:`shot_ladder`'s output, each with its planned cost on every device (the
    metric None where the rung was not emulated)."""
    return [ShotRung(shots, float(np.mean(scores)) if scores else None, float(np.std(scores)) if scores else None,
                     *map(float, error), circuits, rung_usd(devices, circuits, shots, cost_policy), len(scores))
            for shots, scores, error in ladder]


@dataclass(frozen=True)
class ShotPlan:
    """A shot ladder's outcome: the exact metric, the priced rungs, the devices priced, the rows the
    ladder emulated on (``samples``) and the recommended rung (None: none within ``tolerance``)."""

    metric: str
    exact: float
    tolerance: float
    circuits: int
    samples: dict
    devices: dict[str, BackendConfig]
    rungs: list[ShotRung]
    best: ShotRung | None
    emulation: dict = field(default_factory=dict)  # how the rungs were estimated (:func:`emulation_note`)

    def to_dict(self) -> dict:
        """The shot plan artifact (the samples only when the ladder ran on a sample)."""
        return {"metric": self.metric, "exact": self.exact, "tolerance": self.tolerance, "circuits": self.circuits,
                **({"samples": self.samples} if self.samples["train_sample"]["sampled"] else {}),
                **({"emulation": self.emulation} if self.emulation else {}),
                "devices": {name: device_identity(backend) for name, backend in self.devices.items()},
                "rungs": [rung.to_dict() for rung in self.rungs],
                "recommended_shots": self.best.shots if self.best else None}


def emulation_note(*, seeds: int, stop: SeedStop | None, measured: bool, climb: bool = False) -> dict:
    """How a ladder's rungs were estimated, for the artifact and its metadata: the kernel error
    (closed form, or ``measured`` on a projected kernel's draws), the repeats per rung and which
    rungs were emulated (every one, or only those the recommendation needs: ``climb``)."""
    kernel_error = ("measured on the emulated Bloch-vector draws (no closed form for a projected kernel)" if measured
                    else "expected |error| of Binomial(shots, p) / shots over the estimated entries, in closed form "
                         "(de Moivre); the train diagonal is not estimated")
    repeats = (f"{seeds} per rung" if stop is None else
               f"{stop.min_seeds} to {seeds} per rung: stop once a {stop.confidence:.0%} t interval of the mean "
               f"excludes exact - tolerance (std floored at {stop.resolution:.3g})")
    rungs = ("the top rung first (clearly below exact - tolerance: none within, no other rung emulated), then from "
             "the fewest shots up to the first within tolerance (costs rise with shots)" if climb else "every rung")
    return {"kernel_error": kernel_error, "repeats": repeats, "rungs_emulated": rungs,
            "draws": "each repeat's noisy kernels as before the closed form: seed (cv_seed, shots, repeat)"}
