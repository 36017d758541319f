"""How many shots does the kernel need? Estimated on the exact simulator before paying for any.

Each rung of a shot ladder replaces every exact kernel entry p by a Binomial(shots, p) / shots
draw (:func:`~hybrid_resources.quantum.kernel_diagnostics.emulate_shots`, the exact distribution
of a noiseless compute-uncompute estimate), refits the tuned SVM on the noisy train kernel and
scores it on the noisy test kernel, over several seeds, on the task's judged metric
(``tasks.judged_metric``: the configured one for classification, R² for a regression target). The
recommendation is the cheapest rung whose mean metric is within ``tolerance`` of the exact one
(every judged metric is higher-is-better, so one rule serves R² too, in R² units). A projected kernel's noise is in
its Bloch vectors, not its entries: its ladder passes ``emulate``, which draws those instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from hybrid_assets.training.models import fit_precomputed_svm, precomputed_decision
from hybrid_assets.training.tasks import holdout_metrics, judged_metric
from hybrid_resources.cost_policy import CostPolicy, UnknownPriceError, device_identity
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.kernel_diagnostics import emulate_shots, label_task

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
    return holdout_metrics(y_test, precomputed_decision(model, test), task=task)[judged_metric(task, metric)]


def shot_ladder(train: np.ndarray, test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray, *, C: float,
                metric: str, ladder: Sequence[int] = SHOT_LADDER, seeds: int = 5, seed: int = 0,
                emulate: Callable[[int, int], tuple[np.ndarray, np.ndarray]] | None = None,
                task: str | None = None) -> list[tuple[int, list[float], list[float]]]:
    """For each rung: (shots, judged metric per seed, mean |error| per seed) from emulated shot kernels.

    ``emulate(shots, repeat)`` returns one noisy (train, test) pair; default: every entry of the
    exact kernels drawn as Binomial(shots, p) / shots. ``task`` defaults to what ``y_train`` implies."""
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
            scores.append(holdout_score(noisy_train, noisy_test, y_train, y_test, C=C, metric=metric, task=task))
            errors.append(float(np.mean(np.abs(np.concatenate([(noisy_train - train).ravel(),
                                                                (noisy_test - test).ravel()])))))
        rungs.append((int(shots), scores, errors))
    return rungs


def recommend(rungs: Sequence[ShotRung], exact_metric: float, *, tolerance: float, device: str) -> ShotRung | None:
    """The cheapest rung on ``device`` (then the fewest shots) whose mean metric is within
    ``tolerance`` of the exact one (higher is better: accuracy, F1, ROC-AUC or R², which may be
    negative); None when no rung is close enough or the exact metric is NaN."""
    close = [r for r in rungs if r.metric_mean >= exact_metric - tolerance]
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


def priced_rungs(ladder: Sequence[tuple[int, list[float], list[float]]], devices: dict[str, BackendConfig],
                 circuits: int, cost_policy: CostPolicy) -> list[ShotRung]:
    """The rungs of :func:`shot_ladder`'s output, each with its planned cost on every device."""
    return [ShotRung(shots, float(np.mean(scores)), float(np.std(scores)), float(np.mean(errors)),
                     float(np.max(errors)), circuits, rung_usd(devices, circuits, shots, cost_policy))
            for shots, scores, errors in ladder]


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

    def to_dict(self) -> dict:
        """The shot plan artifact (the samples only when the ladder ran on a sample)."""
        return {"metric": self.metric, "exact": self.exact, "tolerance": self.tolerance, "circuits": self.circuits,
                **({"samples": self.samples} if self.samples["train_sample"]["sampled"] else {}),
                "devices": {name: device_identity(backend) for name, backend in self.devices.items()},
                "rungs": [rung.to_dict() for rung in self.rungs],
                "recommended_shots": self.best.shots if self.best else None}
