"""When automation refreshes an asset: on new data, never on a re-materialization that changed nothing.

Dagster's ``AutomationCondition.eager()`` fires whenever a dependency is materialized again. Here
a dependency counts only when its *data version* changed since the last tick (an identical
re-ingest or a recomputation that gives the same content does not), and a landing run that
added no rows (a quarantined or duplicate file, tagged ``landing/new_data=false`` by
``raw_samples``) does not count at all. So nothing is sent to a device and no model version is
created unless the data changed. The rest is eager's: a new asset runs once, and nothing runs
while a dependency is missing or in progress.
"""

from dagster import AutomationCondition

NO_NEW_DATA_TAG = "landing/new_data"


def on_new_data() -> AutomationCondition:
    """Refresh when a dependency's data version changed (or it is being refreshed in this tick)."""
    new_data = (
        AutomationCondition.data_version_changed()
        & ~AutomationCondition.executed_with_root_target()
        & ~AutomationCondition.all_new_updates_have_run_tags(tag_values={NO_NEW_DATA_TAG: "false"})
    ).with_label("data_version_changed")
    return (
        AutomationCondition.in_latest_time_window()
        & (AutomationCondition.newly_missing()
           | AutomationCondition.any_deps_match(new_data | AutomationCondition.will_be_requested())
           ).since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("on_new_data")


ON_NEW_DATA = on_new_data()
