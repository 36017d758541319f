"""Two hosts at once against one host alone: the same demo, the same bundled data.

Not a test. Needs a PostgreSQL server and an S3-compatible server already running, as in
docs/deployment.md ("Several hosts"): ``HYBRID_WAREHOUSE_URL`` names the database (the warehouse
goes in schema ``two_hosts_<pid>``, the instance in its public schema), the ``DAGSTER_POSTGRES_*``
variables the same database, and the ``AWS_*`` variables the object store. Two "hosts" (each its
own ``DAGSTER_HOME``, scratch and process tree) run ``hybrid-demo`` at the same time on a new
prefix of ``--bucket``; then one host alone runs it on a DuckDB file and a local folder. Prints
and records in ``bench/results/two_hosts-<timestamp>.json``: each demo's time, the lock errors in
their output, the rows and predictions in the shared warehouse (lost or duplicated), and whether
the registered model versions (content hashes), the verdict and the scoring line equal the
single-host run's.

    .venv/bin/python bench/two_hosts.py --bucket hybrid-data
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POOLS = ("quantum", "warehouse", "scoring_stream")


def with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "schema"] + [("schema", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def host_env(folder: Path, base: dict[str, str], instance_yaml: str) -> dict[str, str]:
    for sub in ("home", "scratch"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "home" / "dagster.yaml").write_text(instance_yaml)
    return {**base, "DAGSTER_HOME": str(folder / "home"), "HYBRID_SCRATCH_DIR": str(folder / "scratch")}


def outcome(log: str) -> dict[str, str]:
    """What a demo decided: its verdict line and its scoring line (without the export's path)."""
    verdict = next((line for line in log.splitlines() if line.startswith("Verdict:")), "")
    scoring = next((line.split("; export")[0].strip() for line in log.splitlines() if "scoring file" in line), "")
    return {"verdict": verdict, "scoring": scoring}


def registry(env: dict[str, str]) -> list[str]:
    listed = subprocess.run([str(BIN / "hybrid-registry"), "list"], env=env, cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    return sorted(line.split()[0] for line in listed.splitlines() if "@" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bucket", required=True)
    args = parser.parse_args()
    url = os.environ.get("HYBRID_WAREHOUSE_URL", "").strip()
    if not url or not os.environ.get("DAGSTER_POSTGRES_HOST"):
        sys.exit("set HYBRID_WAREHOUSE_URL, DAGSTER_POSTGRES_* and the AWS_* variables (docs/deployment.md)")
    tag = f"two_hosts_{os.getpid()}"
    instance_yaml = (ROOT / "deploy" / "dagster.yaml").read_text() + (ROOT / "deploy" / "compute_logs_s3.yaml").read_text()
    shared = {**os.environ, "HYBRID_DATA_DIR": f"s3://{args.bucket}/{tag}", "DAGSTER_COMPUTE_LOGS_BUCKET": args.bucket,
              "HYBRID_WAREHOUSE_URL": with_schema(url, tag)}
    with tempfile.TemporaryDirectory() as folder:
        hosts = [host_env(Path(folder) / name, shared, instance_yaml) for name in ("host-a", "host-b")]
        for pool in POOLS:  # once, as a deploy does (dagster-io/dagster#33552)
            subprocess.run([str(BIN / "dagster"), "instance", "concurrency", "set", pool, "1"], env=hosts[0],
                           cwd=ROOT, check=True, capture_output=True)
        started = time.perf_counter()
        demos = [subprocess.Popen([str(BIN / "hybrid-demo")], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for env in hosts]
        logs = [demo.communicate()[0] for demo in demos]
        both_s = time.perf_counter() - started
        two_hosts = {"registry": registry(hosts[1]), "outcomes": [outcome(log) for log in logs],
                     "return_codes": [demo.returncode for demo in demos], "wall_s": round(both_s, 1),
                     "lock_errors": sum(len(re.findall(r"\block(ed|s)?\b", log, re.IGNORECASE)) for log in logs)}
        from hybrid_resources.data.warehouse import Warehouse

        with Warehouse(url=with_schema(url, tag)).connect(read_only=True) as connection:
            rows, distinct = connection.execute("SELECT count(*), count(DISTINCT sample_id) FROM raw_rows").fetchone()
            predictions = dict(connection.execute("SELECT role, count(*) FROM predictions GROUP BY role").fetchall())
            duplicated = connection.execute("SELECT count(*) FROM (SELECT sample_id, role, model_version FROM predictions "
                                            "GROUP BY 1, 2, 3 HAVING count(*) > 1)").fetchone()[0]
        two_hosts |= {"raw_rows": rows, "distinct_sample_ids": distinct, "predictions": predictions,
                      "duplicated_predictions": duplicated}

        alone = {name: value for name, value in os.environ.items()
                 if name not in ("HYBRID_DATA_DIR", "HYBRID_WAREHOUSE_URL", "HYBRID_SCRATCH_DIR")}
        local = host_env(Path(folder) / "one-host", {**alone, "HYBRID_DATA_DIR": str(Path(folder) / "one-host" / "data")},
                         (ROOT / "dagster.yaml").read_text())
        subprocess.run([str(BIN / "dagster"), "instance", "concurrency", "set", "quantum", "1"], env=local, cwd=ROOT,
                       check=True, capture_output=True)
        started = time.perf_counter()
        single_log = subprocess.run([str(BIN / "hybrid-demo")], env=local, cwd=ROOT, capture_output=True, text=True).stdout
        one_host = {"registry": registry(local), "outcome": outcome(single_log), "wall_s": round(time.perf_counter() - started, 1)}

    equal = (two_hosts["registry"] == one_host["registry"]
             and all(result == one_host["outcome"] for result in two_hosts["outcomes"]))
    report = {"two_hosts": two_hosts, "one_host": one_host, "equal_to_one_host": equal}
    print(f"two hosts at once: demos {two_hosts['return_codes']} in {two_hosts['wall_s']} s, "
          f"{two_hosts['lock_errors']} lock errors, raw rows {rows} ({distinct} distinct), predictions {predictions}, "
          f"{duplicated} duplicated")
    print(f"models: {two_hosts['registry']} | one host alone ({one_host['wall_s']} s): {one_host['registry']}")
    print(f"verdict, scoring and model versions equal to the single-host run: {equal}")
    out = ROOT / "bench" / "results" / f"two_hosts-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
