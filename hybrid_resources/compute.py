"""Where heavy array work runs: a Dask cluster, local by default, a scheduler address in production.

docs/scale.md: blocks run on a Dask cluster (a ``LocalCluster`` by default, a scheduler
address in production) and stream to disk; Dagster's executors run the steps. Nothing here
schedules work itself: :func:`dask_client` only opens a ``distributed.Client``.

A local cluster has one worker process per core with one thread each: kernel blocks are
numpy/BLAS calls, so processes give the parallelism, and Dask's nanny sets ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` to 1 in each worker (its
``distributed.nanny.pre-spawn-environ`` default) so the BLAS pools do not oversubscribe the cores.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from dagster import ConfigurableResource
from pydantic import Field

if TYPE_CHECKING:  # distributed is imported when a cluster is used: it costs about 0.3 s per process
    from distributed import Client


@contextmanager
def dask_client(scheduler_address: str = "", n_workers: int = 0) -> Iterator[Client]:
    """A ``distributed.Client``, closed on exit.

    ``scheduler_address`` (e.g. "tcp://scheduler:8786"): connect to that running cluster and
    leave it running. Empty: start a ``LocalCluster`` of ``n_workers`` worker processes
    (0 = one per core, ``os.cpu_count()``), one thread each, its HTTP server on a free port (so
    several can run side by side); it is shut down on exit.
    """
    from distributed import Client, LocalCluster

    if n_workers < 0:
        raise ValueError(f"n_workers must be >= 0 (0 = one per core), got {n_workers}")
    if scheduler_address:
        with Client(scheduler_address) as client:
            yield client
        return
    workers = n_workers or os.cpu_count() or 1
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            yield client


def cluster_facts(client: Client) -> dict[str, Any]:
    """Where work ran, for metadata: the scheduler address, workers and their threads."""
    workers = client.scheduler_info()["workers"]
    return {"scheduler_address": client.scheduler.address, "workers": len(workers),
            "threads": sum(int(w["nthreads"]) for w in workers.values())}


class DaskCluster(ConfigurableResource):
    """The Dask cluster kernel blocks run on (see :func:`dask_client`): the blocks of a Nyström
    kernel too large for memory (``gate_policy.kernel_ram_budget_mb``) when ``enabled``; they run
    as local blocks in the step's process otherwise. ``HYBRID_DASK=true`` enables a LocalCluster
    per step; ``HYBRID_DASK_SCHEDULER`` names a running cluster (and enables it)."""

    enabled: bool = Field(default=False, description="Run large kernels' blocks on this cluster")
    scheduler_address: str = Field(
        default="", description="Address of a running Dask scheduler (tcp://host:8786); empty: a LocalCluster per step")
    n_workers: int = Field(default=0, ge=0, description="LocalCluster worker processes; 0 = one per core")

    @contextmanager
    def client(self) -> Iterator[Client]:
        """A client for this step (a local cluster is started and stopped with it)."""
        with dask_client(self.scheduler_address, self.n_workers) as client:
            yield client

    @contextmanager
    def client_if_enabled(self) -> Iterator[Client | None]:
        """:meth:`client` when ``enabled``, else None (nothing is started)."""
        if not self.enabled:
            yield None
            return
        with self.client() as client:
            yield client

    def describe(self) -> dict[str, Any]:
        """Where large kernels' blocks run, for metadata (no secrets: an address at most)."""
        if not self.enabled:
            return {"engine": "local blocks in the step's process"}
        if self.scheduler_address:
            return {"engine": "dask", "scheduler_address": self.scheduler_address}
        return {"engine": "dask", "scheduler_address": "a LocalCluster per step", "n_workers": self.n_workers or
                "one per core"}
