"""The shot planner: the kernel error in closed form, repeats that stop once the answer is clear,
and test entries drawn only where the refit model reads them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hybrid_assets.training.shot_planner import (
    LadderRung,
    SeedStop,
    ShotPlan,
    ShotRung,
    climb_ladder,
    costs_rise_with_shots,
    emulation_note,
    holdout_score,
    noisy_score,
    priced_rungs,
    recommend,
    repeat_until,
    shot_ladder,
)
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.quantum.kernel_diagnostics import (
    binomial_abs_error,
    emulate_shots,
    estimated_entries,
    expected_shot_errors,
)


def rbf_problem(n_train: int, n_test: int, seed: int, width: float = 1.0, shift: float = 1.2) -> tuple:
    """Two Gaussian classes in 2-D ``shift`` apart on each axis and their RBF kernels (entries in
    (0, 1], unit diagonal)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_train + n_test) % 2
    X = rng.normal(size=(len(y), 2)) + shift * y[:, None]
    kernel = np.exp(-np.sum((X[:, None] - X[None]) ** 2, axis=-1) / (2 * width**2))
    return kernel[:n_train, :n_train], kernel[n_train:, :n_train], y[:n_train], y[n_train:]


@pytest.mark.parametrize("shots", [1, 7, 100, 1000, 10000])
def test_de_moivre_is_the_binomial_mean_absolute_deviation_and_matches_a_large_draw(shots):
    p = np.array([0.0, 1e-4, 0.01, 0.05, 0.3, 0.5, 0.77, 0.95, 0.999, 1.0])
    formula = binomial_abs_error(p, shots)
    k = np.arange(shots + 1)
    summed = np.array([np.sum(stats.binom.pmf(k, shots, pi) * np.abs(k / shots - pi)) for pi in p])
    np.testing.assert_allclose(formula, summed, rtol=1e-9, atol=1e-15)
    assert formula[0] == formula[-1] == 0.0  # p = 0 or 1 is estimated without error
    draws = np.abs(np.random.default_rng(shots).binomial(shots, p, size=(200_000, p.size)) / shots - p)
    standard_error = draws.std(axis=0) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - formula) <= 4 * standard_error + 1e-12)
    if shots >= 1000:  # the normal limit sqrt(2 p q / (pi n)) where n p q is large
        middle = (p > 0.2) & (p < 0.8)
        np.testing.assert_allclose(formula[middle], np.sqrt(2 * p * (1 - p) / (np.pi * shots))[middle], rtol=0.01)


def test_the_expected_kernel_error_is_what_emulated_kernels_average_to_without_the_diagonal():
    train, test, _, _ = rbf_problem(40, 15, seed=3)
    entries = estimated_entries(train, test)
    assert entries.shape == (40 * 39 // 2 + 15 * 40,) and not np.any(entries == 1.0)
    shots, repeats = 300, 400
    ((mean, worst),) = expected_shot_errors(entries, [shots])
    rng = np.random.default_rng(8)
    errors = np.stack([np.abs(estimated_entries(emulate_shots(train, shots, rng, symmetric=True),
                                                emulate_shots(test, shots, rng, symmetric=False)) - entries)
                       for _ in range(repeats)])
    per_repeat = errors.mean(axis=1)
    assert abs(per_repeat.mean() - mean) <= 4 * per_repeat.std() / np.sqrt(repeats)
    at = int(np.argmax(binomial_abs_error(entries, shots)))
    assert worst == pytest.approx(float(binomial_abs_error(entries, shots)[at]))
    assert abs(errors[:, at].mean() - worst) <= 4 * errors[:, at].std() / np.sqrt(repeats)
    # More shots, less error, at the rate 1 / sqrt(shots) once the binomial is near normal.
    (low, _), (high, _) = expected_shot_errors(entries, [1000, 100_000])
    assert low / high == pytest.approx(10.0, rel=0.05)


def test_the_symmetric_emulation_draws_each_pair_once_in_row_major_order():
    train, _, _, _ = rbf_problem(30, 0, seed=4)
    noisy = emulate_shots(train, 500, np.random.default_rng(5), symmetric=True)
    rng = np.random.default_rng(5)
    upper = np.triu_indices(30, 1)
    # The same draws as one call on the upper triangle's entries: earlier plans stay reproducible.
    np.testing.assert_array_equal(noisy[upper], rng.binomial(500, train[upper]) / 500)
    assert np.array_equal(noisy, noisy.T) and np.all(np.diag(noisy) == 1.0)


def test_a_noisy_repeat_is_the_refit_on_both_kernels_drawn_in_turn_from_its_seed():
    train, test, y_train, y_test = rbf_problem(60, 40, seed=6)
    rng = np.random.default_rng([0, 100, 3])
    # What every ladder drew for (seed 0, 100 shots, repeat 3) before the closed form: the train
    # kernel, then the whole test kernel, from one generator.
    noisy_train = emulate_shots(train, 100, rng, symmetric=True)
    before = holdout_score(noisy_train, emulate_shots(test, 100, rng, symmetric=False), y_train, y_test, C=1.0,
                           metric="accuracy")
    score = noisy_score(train, test, y_train, y_test, shots=100, rng=np.random.default_rng([0, 100, 3]), C=1.0,
                        metric="accuracy", task="binary")
    assert score == before and 0.5 < score <= 1.0


def test_repeats_stop_once_the_side_of_the_tolerance_line_is_clear():
    stop = SeedStop(threshold=0.80, min_seeds=2, resolution=0.01)
    far, near = [0.60, 0.61, 0.60, 0.62, 0.61], [0.79, 0.81, 0.80, 0.82, 0.78]
    assert repeat_until(lambda s: far[s], 5, stop) == far[:3]  # t(2 dof) needs a third repeat
    assert repeat_until(lambda s: near[s], 5, stop) == near  # undecided: every repeat
    assert repeat_until(lambda s: far[s], 5, None) == far
    assert repeat_until(lambda s: far[s], 5, SeedStop(0.80, 4, 0.01)) == far[:4]  # never before min_seeds
    # Identical scores are not certainty: the spread is floored at the resolution.
    assert not SeedStop(0.80, 2, 0.05).clear([0.70, 0.70, 0.70])
    assert SeedStop(0.80, 2, 0.01).clear([0.70, 0.70, 0.70])
    assert not SeedStop(float("nan"), 2, 0.01).clear([0.1, 0.1, 0.1])


def test_stopping_early_keeps_the_draws_and_the_recommendation_of_every_seed():
    train, test, y_train, y_test = rbf_problem(80, 200, seed=2, width=0.3, shift=3.0)
    kwargs = dict(C=10.0, metric="accuracy", ladder=[1, 3, 30, 10000], seeds=5, seed=0)
    exact = holdout_score(train, test, y_train, y_test, C=10.0, metric="accuracy")
    full = shot_ladder(train, test, y_train, y_test, **kwargs)
    early = shot_ladder(train, test, y_train, y_test, stop=SeedStop(exact - 0.02, 2, 1 / len(y_test)), **kwargs)
    assert len(early[0].scores) < 5 and len(early[-1].scores) < 5  # 1 shot clearly out, 10,000 clearly in
    for a, b in zip(full, early):
        assert a.scores[:len(b.scores)] == b.scores and a.kernel_error == b.kernel_error
    def best(ladder):
        rung = recommend(priced_rungs(ladder, {}, 10, CostPolicy()), exact, tolerance=0.02, device="configured")
        return rung.shots if rung else None
    assert best(early) == best(full) == 30
    assert [r.seeds for r in priced_rungs(early, {}, 10, CostPolicy())] == [len(r.scores) for r in early]


def test_a_projected_ladder_measures_its_kernel_error_on_the_draws():
    train, test, y_train, y_test = rbf_problem(30, 20, seed=9)

    def emulate(shots: int, repeat: int) -> tuple[np.ndarray, np.ndarray]:
        # A known perturbation of every estimated entry: 1 / shots, the diagonal kept.
        bump = np.full_like(train, 1.0 / shots)
        np.fill_diagonal(bump, 0.0)
        return train - bump, test - 1.0 / shots

    (rung,) = shot_ladder(train, test, y_train, y_test, C=1.0, metric="accuracy", ladder=[50], seeds=2,
                          emulate=emulate)
    assert isinstance(rung, LadderRung) and len(rung.scores) == 2
    assert rung.kernel_error == pytest.approx((1 / 50, 1 / 50))


def test_the_plan_states_how_its_rungs_were_estimated():
    stop = SeedStop(0.7, 2, 0.001)
    note = emulation_note(seeds=5, stop=stop, measured=False)
    assert "de Moivre" in note["kernel_error"] and "2 to 5 per rung" in note["repeats"]
    assert "measured" in emulation_note(seeds=5, stop=None, measured=True)["kernel_error"]
    rung = ShotRung(100, 0.8, 0.01, 0.02, 0.04, 10, {"configured": None}, 3)
    samples = {"train_sample": {"sampled": False}}
    plan = ShotPlan("accuracy", 0.81, 0.01, 10, samples, {}, [rung], rung, note).to_dict()
    assert plan["emulation"] == note and plan["rungs"][0]["seeds"] == 3 and plan["recommended_shots"] == 100


def test_climbing_emulates_only_the_rungs_the_recommendation_needs():
    means = {100: 0.70, 300: 0.78, 1000: 0.85, 3000: 0.86, 10000: 0.86}
    asked = []

    def scores_of(shots: int) -> list[float]:
        asked.append(shots)
        return [means[shots] - 0.001, means[shots] + 0.001, means[shots]]

    ladder = list(means)
    emulated = climb_ladder(ladder, scores_of, SeedStop(0.84, 2, 0.001))
    assert asked == [10000, 100, 300, 1000] and set(emulated) == {10000, 100, 300, 1000}  # 1000: the first within
    asked.clear()
    assert list(climb_ladder(ladder, scores_of, SeedStop(0.95, 2, 0.001))) == [10000]  # clearly none within
    asked.clear()
    # The top rung below the line but not clearly: every rung is tried, none within.
    assert set(climb_ladder(ladder, scores_of, SeedStop(0.861, 2, 0.01))) == set(ladder)
    assert costs_rise_with_shots([None, 0.5, 0.5, 2.0]) and not costs_rise_with_shots([1.0, None])


def test_a_climbing_ladder_recommends_what_every_rung_would_and_reports_the_rest_as_not_emulated():
    train, test, y_train, y_test = rbf_problem(80, 200, seed=2, width=0.3, shift=3.0)
    kwargs = dict(C=10.0, metric="accuracy", ladder=[1, 3, 30, 300, 10000], seeds=5, seed=0)
    exact = holdout_score(train, test, y_train, y_test, C=10.0, metric="accuracy")
    stop = SeedStop(exact - 0.02, 2, 1 / len(y_test))
    every = priced_rungs(shot_ladder(train, test, y_train, y_test, stop=stop, **kwargs), {}, 10, CostPolicy())
    climbed = priced_rungs(shot_ladder(train, test, y_train, y_test, stop=stop, climb=True, **kwargs), {}, 10,
                           CostPolicy())
    best = [recommend(rungs, exact, tolerance=0.02, device="configured").shots for rungs in (every, climbed)]
    assert best == [30, 30]
    skipped = [r for r in climbed if r.seeds == 0]
    assert [r.shots for r in skipped] == [300] and skipped[0].metric_mean is None
    assert skipped[0].kernel_mean_abs_error == every[3].kernel_mean_abs_error > 0  # closed form: still there
    plan = ShotPlan("accuracy", exact, 0.02, 10, {"kernel_path": "exact", "train_sample": {"sampled": False}}, {},
                    climbed, climbed[2], emulation_note(seeds=5, stop=stop, measured=False, climb=True))
    from hybrid_assets.training.quantum import shot_plan_metadata

    metadata = shot_plan_metadata(plan)
    assert "| 300 shots | not emulated | not emulated | 0 |" in metadata["ladder"].value
    assert metadata["recommended_shots"] == 30 and "top rung first" in metadata["emulation"].value["rungs_emulated"]
