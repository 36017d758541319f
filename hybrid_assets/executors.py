"""Which executor runs the steps of a run: ``HYBRID_EXECUTOR`` (read when the code location loads).

- ``in_process`` (default): one process per run. Each step is seconds of work at the sizes a
  laptop lands, and a fresh step process would pay the pennylane/dagster imports again.
- ``multiprocess``: one process per step on the run's host, at most ``HYBRID_MAX_CONCURRENT_STEPS``
  (default 2) at once. Safe with the DuckDB warehouse: every process opens the file briefly and
  retries DuckDB's "Could not set lock" error with backoff (``open_warehouse``, up to 120 s;
  no step holds the file while it computes); the ingest steps sit in pool ``warehouse`` and the steps that submit circuits in pool
  ``quantum`` (docs/configuration.md, "Pools"). Measured (``bench/executor_check.py --rows 300 --max-concurrent 4``, no pool limits):
  the refresh succeeded with no failed step and the same models and verdict as in process, but
  took 328 s against 58 s in process on 2 shared cores: each step process pays the imports
  again. It pays off only where steps are long (large N, the exact path's kernels, the VQC).
- ``k8s``: one Kubernetes Job per step (dagster-k8s ``k8s_job_executor``), configured by
  ``deploy/executors/k8s_job_executor.yaml``; see that file for the volume the warehouse needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from dagster import DagsterInstance, ExecutorDefinition, in_process_executor, multiprocess_executor

EXECUTORS = ("in_process", "multiprocess", "k8s")
# Every pool a step of ours sits in. Deploying sets each one's limit explicitly, once, before runs
# start (`make home`, the compose file's daemon): a pool left to dagster.yaml's default_limit gets
# its row on first use, and two hosts doing that at once on a PostgreSQL instance collide
# (dagster-io/dagster#33552: the run fails with a UniqueViolation).
POOLS = ("quantum", "warehouse", "scoring_stream")
K8S_EXECUTOR_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "executors" / "k8s_job_executor.yaml"


def set_missing_pool_limits(instance: DagsterInstance) -> list[str]:
    """Give every pool of :data:`POOLS` that has no limit yet the instance's ``default_limit``,
    explicitly, as deploying does; returns the pools it set. For a process that may be the first to
    use a fresh instance beside another (``hybrid-demo`` and its pattern-3 process, under their
    instance lock): left to first use, both would insert the pool's row. Nothing is set when the
    instance has no default limit (a pool without a row is then unlimited)."""
    default = instance.global_op_concurrency_default_limit
    if default is None:
        return []
    storage = instance.event_log_storage
    limited = storage.get_concurrency_keys()
    missing = [pool for pool in POOLS if pool not in limited]
    for pool in missing:
        storage.set_concurrency_slots(pool, default)
    return missing


def k8s_executor_config(path: Path = K8S_EXECUTOR_CONFIG) -> dict:
    """The ``execution: config:`` block of the k8s executor's file."""
    return yaml.safe_load(path.read_text())["execution"]["config"]


def executor_from_env() -> ExecutorDefinition:
    """The executor ``HYBRID_EXECUTOR`` names (see the module docstring)."""
    name = os.environ.get("HYBRID_EXECUTOR", "").strip() or "in_process"
    if name == "in_process":
        return in_process_executor
    if name == "multiprocess":
        steps = int(os.environ.get("HYBRID_MAX_CONCURRENT_STEPS", "").strip() or 2)
        return multiprocess_executor.configured({"max_concurrent": steps}, name="multiprocess")
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(k8s_executor_config(), name="k8s")
    raise ValueError(f"HYBRID_EXECUTOR must be one of {EXECUTORS}, got {name!r}")
