"""Kernel blocks on a real Dask cluster (worker processes), streamed into a .npy memmap."""

from __future__ import annotations

import os

import numpy as np
import pytest
from distributed import LocalCluster

from hybrid_resources.compute import DaskCluster, cluster_facts, dask_client
from hybrid_resources.data.big_arrays import open_kernel_file
from hybrid_resources.quantum.backends import BackendConfig
from hybrid_resources.quantum.dask_kernel import (
    DaskKernel,
    block_rows_for,
    dask_quantum_kernel,
)
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernel_engine import quantum_kernel
from hybrid_resources.quantum.nystrom import EngineKernel, NystromConfig, fit_nystrom

IQP = FeatureMapSpec("iqp", 5, reps=2)
ANGLE = FeatureMapSpec("angle", 5)


@pytest.fixture(scope="module")
def client():
    with dask_client(n_workers=2) as client:
        yield client


def _executed(client) -> dict[str, int]:
    return client.run(lambda dask_worker: dask_worker.state.executed_count)


def test_a_local_cluster_has_one_single_threaded_process_per_worker(client):
    facts = cluster_facts(client)
    assert facts["workers"] == 2 and facts["threads"] == 2
    assert len(set(client.run(os.getpid).values())) == 2


@pytest.mark.parametrize("spec", [IQP, ANGLE], ids=["iqp-complex", "angle-real"])
def test_the_cluster_computes_what_the_single_process_engine_computes(client, spec):
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(0, np.pi, size=(300, 5)), rng.uniform(0, np.pi, size=(170, 5))
    budget = 150_000  # a few dozen rows per block: many block tasks
    assert block_rows_for(budget, spec) < 100
    before = sum(_executed(client).values())
    square = dask_quantum_kernel(X, spec=spec, client=client, block_budget_bytes=budget)
    assert sum(_executed(client).values()) - before > 10
    K = square.matrix
    np.testing.assert_allclose(K, quantum_kernel(X, spec=spec).matrix, atol=1e-12, rtol=0)
    assert np.array_equal(K, K.T) and np.all(np.diag(K) == 1.0)
    assert (square.stats.method, square.stats.states_simulated, square.stats.circuits_executed) == ("statevector", 300, 0)
    rect = dask_quantum_kernel(Y, X, spec=spec, client=client, block_budget_bytes=budget).matrix
    np.testing.assert_allclose(rect, quantum_kernel(Y, X, spec=spec).matrix, atol=1e-12, rtol=0)


def test_a_matrix_larger_than_the_block_budget_streams_into_a_memmap(client, tmp_path):
    X = np.random.default_rng(1).uniform(0, np.pi, size=(700, 5))
    budget = 64 * 2**10
    assert 700 * 700 * 8 > 50 * budget  # the matrix is far larger than one block may be
    out = open_kernel_file(tmp_path / "gram.npy", 700, 700)
    result = dask_quantum_kernel(X, spec=IQP, client=client, out=out, block_budget_bytes=budget)
    assert result.matrix is out
    del out, result
    on_disk = np.load(tmp_path / "gram.npy", mmap_mode="r")
    np.testing.assert_allclose(on_disk, quantum_kernel(X, spec=IQP).matrix, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="below one row"):
        dask_quantum_kernel(X, spec=IQP, client=client, block_budget_bytes=100)


def test_a_scheduler_address_sends_the_work_to_that_cluster(client):
    X = np.random.default_rng(2).uniform(0, np.pi, size=(200, 5))
    local_before = _executed(client)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as remote:
        resource = DaskCluster(scheduler_address=remote.scheduler_address)
        with resource.client() as remote_client:
            assert cluster_facts(remote_client)["scheduler_address"] == remote.scheduler_address
            before = sum(_executed(remote_client).values())
            K = dask_quantum_kernel(X, spec=ANGLE, client=remote_client, block_budget_bytes=100_000).matrix
            ran_there = sum(_executed(remote_client).values()) - before
        assert remote.status.name == "running"  # connecting to a cluster leaves it running
    assert ran_there > 10 and _executed(client) == local_before
    np.testing.assert_allclose(K, quantum_kernel(X, spec=ANGLE).matrix, atol=1e-12, rtol=0)


def test_nystrom_landmark_blocks_on_the_cluster_fit_the_same_model(client):
    rng = np.random.default_rng(3)
    X = rng.uniform(0, np.pi, size=(240, 5))
    y = (X[:, 0] + X[:, 1] > np.pi).astype(int)
    config = NystromConfig(m=30, block_rows=100)
    on_cluster = fit_nystrom(X, y, DaskKernel(IQP, client, block_budget_bytes=200_000), config)
    local = fit_nystrom(X, y, EngineKernel(IQP), config)
    np.testing.assert_array_equal(on_cluster.landmark_indices, local.landmark_indices)
    np.testing.assert_allclose(on_cluster.coef, local.coef, atol=1e-8)
    assert on_cluster.meta["kernel"] == local.meta["kernel"]


def test_shot_backends_are_refused_on_the_cluster(client):
    with pytest.raises(ValueError, match="exact statevector"):
        dask_quantum_kernel(np.zeros((3, 5)), spec=IQP, client=client, backend=BackendConfig(shots=100))
    with pytest.raises(ValueError, match="n_workers"):
        with dask_client(n_workers=-1):
            pass
