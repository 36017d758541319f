"""Scratch is per run and step on this host, and a failed run's is removed by the run-failure
sensor (what a run killed mid-step leaves behind once run monitoring marks it failed)."""

from __future__ import annotations

import numpy as np
from dagster import build_run_status_sensor_context, job, op

from hybrid_assets.common.scratch import scratch_cleanup_sensor
from hybrid_resources.data.big_arrays import scratch_array


@op
def fails() -> None:
    raise RuntimeError("the step died")


@job
def failing_job():
    fails()


def test_a_failed_runs_scratch_is_removed_and_other_runs_keep_theirs(data_layout, instance):
    failed = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    left = scratch_array(data_layout.scratch_for(failed.run_id, "quantum_kernel_train"), 4, 3)
    left[:] = np.ones((4, 3))
    left.flush()
    running = scratch_array(data_layout.scratch_for("another-run", "quantum_kernel_train"), 2, 2)
    context = build_run_status_sensor_context(sensor_name="scratch_cleanup", dagster_instance=instance,
                                              dagster_run=failed.dagster_run,
                                              dagster_event=failed.get_run_failure_event()).for_run_failure()
    scratch_cleanup_sensor(context)
    assert not data_layout.scratch_for(failed.run_id).exists()
    assert data_layout.scratch_for("another-run", "quantum_kernel_train").exists() and running.filename
    skipped = scratch_cleanup_sensor(context)  # nothing left: says so
    assert "left no scratch" in skipped.skip_message


def test_a_stored_scratch_file_leaves_no_empty_run_folder(data_layout):
    from hybrid_resources.data.artifacts import ArtifactStore, content_hash

    kernel = scratch_array(data_layout.scratch_for("run-1", "quantum_kernel_train"), 5, 2)
    kernel[:] = np.arange(10.0).reshape(5, 2)
    bundle = {"kernel": kernel}
    ArtifactStore(data_layout.artifacts).write(["quantum_kernel_train"], bundle, version=content_hash(bundle))
    assert list(data_layout.scratch.iterdir()) == []  # moved into the store, then its folders went


def test_the_next_streamed_kernel_on_a_host_removes_what_a_killed_process_left_in_any_run(data_layout):
    import socket
    import subprocess
    import sys

    from hybrid_resources.data.big_arrays import SCRATCH_SUFFIX

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = data_layout.scratch_for("killed-run", "quantum_kernel_train")
    killed.mkdir(parents=True)
    (killed / f"{socket.gethostname()}.{int(finished.stdout)}.0123abcd{SCRATCH_SUFFIX}").write_bytes(b"partial")
    scratch_array(data_layout.scratch_for("next-run", "quantum_kernel_train"), 2, 2)
    assert not data_layout.scratch_for("killed-run").exists()  # the file, then its emptied folders
