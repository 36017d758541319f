"""The folder sensor's decision logic (pure), the same for every zone: stable files go, growing files wait."""

from hybrid_assets.common.folder_sensor import MAX_RUNS_PER_TICK, ZoneFile, plan_zone


def test_a_new_file_waits_one_tick_then_is_submitted_once():
    listing = [ZoneFile("a.csv", 10, 1)]
    first = plan_zone(listing, {})
    assert first.to_submit == [] and first.waiting == ["a.csv"]
    second = plan_zone(listing, first.cursor)
    assert [f.name for f in second.to_submit] == ["a.csv"]
    third = plan_zone(listing, second.cursor)
    assert third.to_submit == [] and third.waiting == []


def test_a_growing_file_waits_until_it_stops_changing():
    cursor = plan_zone([ZoneFile("big.csv", 10, 1)], {}).cursor
    growing = plan_zone([ZoneFile("big.csv", 20, 2)], cursor)
    assert growing.to_submit == [] and growing.waiting == ["big.csv"]
    stable = plan_zone([ZoneFile("big.csv", 20, 2)], growing.cursor)
    assert [f.size for f in stable.to_submit] == [20]


def test_a_changed_file_is_submitted_again_and_a_vanished_name_is_forgotten():
    listing = [ZoneFile("a.csv", 10, 1)]
    cursor = plan_zone(listing, plan_zone(listing, {}).cursor).cursor
    changed = [ZoneFile("a.csv", 12, 5)]
    cursor = plan_zone(changed, cursor).cursor
    assert [f.size for f in plan_zone(changed, cursor).to_submit] == [12]
    gone = plan_zone([], cursor).cursor
    assert gone == {"seen": {}, "submitted": {}}


def test_submissions_per_tick_are_capped_and_the_rest_wait():
    listing = [ZoneFile(f"f{i:03d}.csv", 1, 1) for i in range(MAX_RUNS_PER_TICK + 5)]
    plan = plan_zone(listing, plan_zone(listing, {}).cursor)
    assert len(plan.to_submit) == MAX_RUNS_PER_TICK and len(plan.waiting) == 5
    rest = plan_zone(listing, plan.cursor)
    assert len(rest.to_submit) == 5
