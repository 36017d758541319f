"""The landing sensor's decision logic (pure): stable files go, growing files wait."""

from hybrid_assets.sensors import MAX_RUNS_PER_TICK, LandedFile, plan_landing


def test_a_new_file_waits_one_tick_then_is_submitted_once():
    listing = [LandedFile("a.csv", 10, 1)]
    first = plan_landing(listing, {})
    assert first.to_submit == [] and first.waiting == ["a.csv"]
    second = plan_landing(listing, first.cursor)
    assert [f.name for f in second.to_submit] == ["a.csv"]
    third = plan_landing(listing, second.cursor)
    assert third.to_submit == [] and third.waiting == []


def test_a_growing_file_waits_until_it_stops_changing():
    cursor = plan_landing([LandedFile("big.csv", 10, 1)], {}).cursor
    growing = plan_landing([LandedFile("big.csv", 20, 2)], cursor)
    assert growing.to_submit == [] and growing.waiting == ["big.csv"]
    stable = plan_landing([LandedFile("big.csv", 20, 2)], growing.cursor)
    assert [f.size for f in stable.to_submit] == [20]


def test_a_changed_file_is_submitted_again_and_a_vanished_name_is_forgotten():
    listing = [LandedFile("a.csv", 10, 1)]
    cursor = plan_landing(listing, plan_landing(listing, {}).cursor).cursor
    changed = [LandedFile("a.csv", 12, 5)]
    cursor = plan_landing(changed, cursor).cursor
    assert [f.size for f in plan_landing(changed, cursor).to_submit] == [12]
    gone = plan_landing([], cursor).cursor
    assert gone == {"seen": {}, "submitted": {}}


def test_submissions_per_tick_are_capped_and_the_rest_wait():
    listing = [LandedFile(f"f{i:03d}.csv", 1, 1) for i in range(MAX_RUNS_PER_TICK + 5)]
    plan = plan_landing(listing, plan_landing(listing, {}).cursor)
    assert len(plan.to_submit) == MAX_RUNS_PER_TICK and len(plan.waiting) == 5
    rest = plan_landing(listing, plan.cursor)
    assert len(rest.to_submit) == 5
