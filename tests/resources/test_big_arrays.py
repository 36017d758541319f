"""Kernels larger than memory: written block by block into a memory-mapped .npy, stored beside their
bundle, read back as maps, walked in blocks that give their pages back, and the same figures as
the in-memory path (the engine, the artifact's content hash, the Nyström model)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from hybrid_resources.data.artifacts import content_hash, read_artifact, write_artifact
from hybrid_resources.data.big_arrays import (
    SCRATCH_SUFFIX,
    iter_row_blocks,
    map_rows,
    scratch_array,
)
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.kernels import compute_kernel, streamed_kernel
from hybrid_resources.quantum.projected_kernel import ProjectedKernelSpec


def resident_file_mb() -> float:
    """This process's resident memory that maps files (RssFile), in MiB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("RssFile:"))
    return int(line.split()[1]) / 1024


def test_a_mapped_array_is_stored_beside_its_bundle_and_read_back_as_a_map_with_the_same_content_hash(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.uniform(size=(1000, 7))
    mapped = scratch_array(tmp_path / "scratch", 1000, 7)
    mapped[:] = values
    bundle = {"K_nm": mapped, "landmark_indices": np.arange(7)}
    in_memory = {"K_nm": values, "landmark_indices": np.arange(7)}
    assert content_hash(bundle) == content_hash(in_memory)  # the data version does not depend on where it lives

    base = tmp_path / "version" / "value"
    base.parent.mkdir()
    write_artifact(base, bundle)
    assert (tmp_path / "version" / "value.K_nm.npy").exists()
    assert list((tmp_path / "scratch").iterdir()) == []  # the scratch file was moved, not copied
    back = read_artifact(base)
    assert isinstance(back["K_nm"], np.memmap) and not back["K_nm"].flags.writeable
    assert np.array_equal(back["K_nm"], values) and np.array_equal(back["landmark_indices"], np.arange(7))
    assert content_hash(back) == content_hash(in_memory)

    write_artifact(tmp_path / "version" / "copy", back)  # a map that is not scratch is copied
    assert np.array_equal(read_artifact(tmp_path / "version" / "copy")["K_nm"], values)
    assert np.array_equal(read_artifact(base)["K_nm"], values)


def test_walking_a_map_in_blocks_keeps_about_one_block_resident(tmp_path):
    mapped = scratch_array(tmp_path, 25_000, 1000)  # 200 MB
    for rows, _ in iter_row_blocks(mapped, 1000):
        mapped[rows] = rows.start
    mapped.flush()
    stored = np.load(mapped.filename, mmap_mode="r")
    before = resident_file_mb()
    sums = [block.sum() for _, block in iter_row_blocks(stored, 1000)]  # 8 MB blocks
    assert resident_file_mb() - before < 50
    assert sums == [1000.0 * 1000 * start for start in range(0, 25_000, 1000)]
    # What the walk avoids: touching the whole map keeps all of it resident.
    assert float(np.asarray(stored).sum()) == sum(sums)
    assert resident_file_mb() - before > 150
    assert np.array_equal(map_rows(lambda block: block[:, 0], stored, 999), np.repeat(np.arange(0, 25_000, 1000), 1000))


@pytest.mark.parametrize("spec", [FeatureMapSpec("iqp", 4, reps=2), ProjectedKernelSpec(FeatureMapSpec("iqp", 4), gamma=0.7)],
                         ids=["fidelity", "projected"])
def test_a_streamed_kernel_equals_the_engine_for_either_family(tmp_path, spec):
    rng = np.random.default_rng(1)
    X, landmarks = rng.uniform(0, np.pi, size=(230, 4)), rng.uniform(0, np.pi, size=(17, 4))
    out = scratch_array(tmp_path, 230, 17)
    result = streamed_kernel(X, landmarks, spec=spec, out=out, block_rows=50)
    assert result.matrix is out and result.stats.n_rows == 230
    np.testing.assert_allclose(out, compute_kernel(X, landmarks, spec=spec).matrix, atol=1e-12, rtol=0)


def test_a_streamed_kernel_on_a_dask_local_cluster_equals_the_local_blocks(tmp_path):
    from hybrid_resources.compute import DaskCluster

    spec = FeatureMapSpec("iqp", 5, reps=2)
    rng = np.random.default_rng(2)
    X, landmarks = rng.uniform(0, np.pi, size=(400, 5)), rng.uniform(0, np.pi, size=(20, 5))
    local = streamed_kernel(X, landmarks, spec=spec, out=scratch_array(tmp_path, 400, 20), block_rows=64)
    cluster = DaskCluster(enabled=True, n_workers=2)
    with cluster.client_if_enabled() as client:
        assert len(client.scheduler_info()["workers"]) == 2
        on_dask = streamed_kernel(X, landmarks, spec=spec, out=scratch_array(tmp_path, 400, 20), block_rows=64,
                                  client=client)
    np.testing.assert_allclose(on_dask.matrix, local.matrix, atol=1e-12, rtol=0)
    assert cluster.describe()["engine"] == "dask"
    with DaskCluster().client_if_enabled() as nothing:
        assert nothing is None  # disabled: nothing started


def test_a_streamed_kernel_refuses_a_device_that_runs_circuits(tmp_path):
    from hybrid_resources.quantum.backends import BackendConfig

    with pytest.raises(ValueError, match="hybrid-plan"):
        streamed_kernel(np.zeros((3, 2)), np.zeros((2, 2)), spec=FeatureMapSpec("angle", 2),
                        out=scratch_array(tmp_path, 3, 2), block_rows=2, backend=BackendConfig(shots=100))


def test_scratch_files_left_by_a_crashed_step_on_this_host_are_removed_by_the_next_one(tmp_path):
    folder = tmp_path / ".scratch"
    folder.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid, host = int(finished.stdout), socket.gethostname()
    orphan = folder / f"{host}.{dead_pid}.0123abcd{SCRATCH_SUFFIX}"
    running = folder / f"{host}.{os.getpid()}.4567ef01{SCRATCH_SUFFIX}"  # a step still writing
    elsewhere = folder / f"another-host.{dead_pid}.89ab2345{SCRATCH_SUFFIX}"  # a shared store
    for path in (orphan, running, elsewhere):
        path.write_bytes(b"partial kernel")

    fresh = scratch_array(folder, 3, 2)
    assert not orphan.exists()
    assert running.exists() and elsewhere.exists()
    assert str(fresh.filename).startswith(str(folder / f"{host}.{os.getpid()}."))
