"""Subprocess target for the canary test: ingests landing files through the job ``ingest_landing_file``,
as the landing sensor's runs do, in a process whose environment holds what the test planted.

Usage: ``python tests/ingest_worker.py FILE_NAME...`` with ``DAGSTER_HOME`` and ``HYBRID_DATA_DIR``
set. Each name becomes its partition (``safe_partition_key``) and one run of the job. Prints
``{"environ_holds_canary": ..., "statuses": {name: status}}``: whether this process's
``/proc/self/environ`` (what a link may point at) really holds ``$CANARY``, and each run's status.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# The repository root instead of tests/ (whose platform/ would shadow the standard library's platform).
sys.path[0] = str(Path(__file__).resolve().parents[1])

from dagster import DagsterInstance

from hybrid_assets.common.partitions import landing_files_partitions, safe_partition_key
from hybrid_assets.definitions import defs


def main(names: list[str]) -> int:
    canary = os.environ.get("CANARY", "")
    environ = Path("/proc/self/environ").read_bytes()
    statuses = {}
    with DagsterInstance.get() as instance:
        for name in names:
            key = safe_partition_key(name)
            instance.add_dynamic_partitions(landing_files_partitions.name, [key])
            result = defs.resolve_job_def("ingest_landing_file").execute_in_process(
                instance=instance, partition_key=key, raise_on_error=False)
            statuses[name] = (result.asset_materializations_for_node("raw_samples")[-1].metadata["status"].value
                              if result.success else "failed")
    print(json.dumps({"environ_holds_canary": bool(canary) and canary.encode() in environ, "statuses": statuses}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
