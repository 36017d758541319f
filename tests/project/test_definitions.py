"""The one Definitions loads, and its asset graph matches the reviewed snapshot.

After an intended change to the graph, regenerate with ``UPDATE_SNAPSHOTS=1 make test`` and
review the diff of ``tests/snapshots/asset_specs.json`` like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dagster import AssetKey, Definitions

from hybrid_assets.definitions import defs

SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "asset_specs.json"
REPO = Path(__file__).parents[2]


def graph_snapshot() -> dict:
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    specs = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        condition = node.automation_condition
        specs[key.to_user_string()] = {
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "code_version": node.code_version,
            "group": node.group_name,
            "partitioned": node.partitions_def is not None,
            "pools": sorted(node.pools or []),
            "automation": condition.get_label() if condition else None,
            "checks": sorted(
                f"{check_key.name}{' (blocking)' if graph.get(check_key).blocking else ''}"
                for check_key in node.check_keys
            ),
        }
    return {
        "assets": specs,
        "jobs": sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__")),
        "sensors": sorted(sensor.name for sensor in repository.sensor_defs),
        "resources": sorted(repository.get_top_level_resources()),
    }


def test_definitions_load_and_resolve():
    Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("refresh_models") is not None
    assert defs.get_assets_def(AssetKey("model_evaluation")) is not None


def test_asset_graph_matches_reviewed_snapshot():
    current = graph_snapshot()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), "no snapshot yet: run UPDATE_SNAPSHOTS=1 make test and review it"
    assert current == json.loads(SNAPSHOT.read_text()), (
        "The asset graph changed. If intended, run UPDATE_SNAPSHOTS=1 make test and commit the reviewed snapshot."
    )


def test_quantum_steps_run_in_the_quantum_pool():
    snapshot = graph_snapshot()["assets"]
    assert snapshot["quantum_kernel_train"]["pools"] == ["quantum"]
    assert snapshot["quantum_kernel_test"]["pools"] == ["quantum"]
    assert snapshot["raw_samples"]["pools"] == ["warehouse"]


def test_every_pool_is_listed_and_set_explicitly_where_deploys_start():
    from hybrid_assets.executors import POOLS

    used = {pool for spec in graph_snapshot()["assets"].values() for pool in spec["pools"]}
    used |= {node.pool for job in defs.resolve_all_job_defs() for node in job.graph.node_defs
             if getattr(node, "pool", None)}
    assert used == set(POOLS)
    for where in (REPO / "Makefile", REPO / "deploy" / "docker-compose.yaml"):
        assert f"for pool in {' '.join(POOLS)}; do" in where.read_text(), where


def test_pools_without_a_limit_get_the_default_explicitly_and_a_set_limit_is_kept():
    from dagster import instance_for_test

    from hybrid_assets.executors import POOLS, set_missing_pool_limits

    with instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 2}}}) as instance:
        instance.event_log_storage.set_concurrency_slots("quantum", 5)  # raised by hand: kept
        assert set_missing_pool_limits(instance) == [pool for pool in POOLS if pool != "quantum"]
        limits = {pool: instance.event_log_storage.get_concurrency_info(pool).slot_count for pool in POOLS}
        assert limits == {"quantum": 5, "warehouse": 2, "scoring_stream": 2}
        assert set_missing_pool_limits(instance) == []
    with instance_for_test() as instance:  # no default limit: a pool without a row is unlimited
        assert set_missing_pool_limits(instance) == []
        assert not set(POOLS) & instance.event_log_storage.get_concurrency_keys()


def test_settings_come_from_the_environment_through_envvars(monkeypatch):
    from dagster import EnvVar

    from hybrid_assets.resources import resources_from_env

    for name in ("HYBRID_QUANTUM_DEVICE", "HYBRID_QUANTUM_SHOTS", "HYBRID_PRICE_TABLE", "HYBRID_RUN_BUDGET_USD",
                 "HYBRID_SHOT_EMULATION"):
        monkeypatch.delenv(name, raising=False)
    defaults = resources_from_env()
    backend = defaults["quantum_backend"].process_config_and_initialize()
    assert (backend.device_name, backend.shots, backend.shot_emulation) == ("default.qubit", None, False)
    assert defaults["cost_policy"].run_budget_usd == 10.0 and defaults["io_manager"].keep_versions == 5

    monkeypatch.setenv("HYBRID_QUANTUM_DEVICE", "lightning.qubit")
    monkeypatch.setenv("HYBRID_QUANTUM_SHOTS", "250")
    monkeypatch.setenv("HYBRID_RUN_BUDGET_USD", "2.5")
    monkeypatch.setenv("HYBRID_SHOT_EMULATION", "true")
    configured = resources_from_env()
    # The resource config names the variable (what the launchpad shows); the run reads its value.
    assert configured["quantum_backend"].device_name == EnvVar("HYBRID_QUANTUM_DEVICE")
    backend = configured["quantum_backend"].process_config_and_initialize()
    assert (backend.device_name, backend.shots) == ("lightning.qubit", 250)
    assert backend.backend_config().shot_emulation  # kernels draw their shots instead of running circuits
    assert configured["cost_policy"].run_budget_usd == 2.5
    assert configured["cost_policy"].warehouse is configured["warehouse"]  # one warehouse, one ledger
