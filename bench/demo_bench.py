"""`make demo` on the bundled data, timed: the figure issue 26 targets (<= 10 s after imports);
with ``--rows N``, on a generated landing file of N rows instead (<= 60 s at 10,000 rows).

Not a test. Each repeat runs the installed ``hybrid-demo`` in a fresh ``DAGSTER_HOME`` (this
repository's ``dagster.yaml``, every pool set to 1 as ``make home`` does) and a fresh data folder,
as a first ``make demo`` on a clean clone does after its install. For each place of pattern 3
(``HYBRID_DEMO_PATTERN3``: ``beside``, the default, and ``after``) it prints and records the
median of the demo's own "Done in ... s (after imports)" line, the median wall time of the whole
command (imports included) and the CPU seconds it used, and checks that the two places print the
same verdict, holdout table, gates, plan, scoring and pattern-3 lines (their timings masked).
``--rows N`` lands ``bench/refresh_profile.py``'s generated file (30 features, 8 informative,
binary) of N rows in each fresh data folder first, as issue 26 measured the demo at 10,000 rows.
Writes ``bench/results/demo_bench-<timestamp>.json``.

    .venv/bin/python bench/demo_bench.py [--repeats 3] [--places beside,after] [--rows 10000]
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEMO = Path(sys.executable).with_name("hybrid-demo")
# What varies from run to run: measured seconds, latencies, the run-specific paths and the one
# gate decided on measured wall times (pattern 3's quantum vs heuristics time to solution: since the
# max-cut heuristics got faster, maxcut's flips between runs).
VARYING = [(re.compile(r"[0-9.]+ ms per sample"), "_ ms per sample"), (re.compile(r"\([0-9.]+ s\)"), "(_ s)"),
           (re.compile(r"(pass|FAIL) quantum_beats_heuristics_time"), "_ quantum_beats_heuristics_time"),
           (re.compile(r", run beside the refresh in a second process:"), ":"), (re.compile(r"/tmp/[^\s)]+"), "_")]


def fresh_home(folder: Path) -> dict[str, str]:
    """A DAGSTER_HOME with this repository's dagster.yaml and every pool at 1, and a data folder."""
    from dagster import DagsterInstance

    from hybrid_assets.executors import POOLS

    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        for pool in POOLS:
            instance.event_log_storage.set_concurrency_slots(pool, 1)
    return {"DAGSTER_HOME": str(home), "HYBRID_DATA_DIR": str(folder / "data")}


def one_demo(place: str, rows: int = 0) -> dict:
    """One ``hybrid-demo`` in a fresh home (with ``rows``, on a generated landing file of that many
    rows): its "after imports" seconds, wall and CPU seconds, and its output with the varying parts
    masked."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, **fresh_home(Path(folder)), "HYBRID_DEMO_PATTERN3": place}
        if rows:
            from refresh_profile import landing_file  # this folder's: the file its refresh profile lands

            (Path(folder) / "data" / "landing").mkdir(parents=True)
            landing_file(Path(folder) / "data" / "landing" / "generated.csv", rows)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        completed = subprocess.run([str(DEMO)], env=env, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise SystemExit(f"hybrid-demo failed ({place}):\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    done = float(re.search(r"Done in ([0-9.]+) s \(after imports\)", completed.stdout).group(1))
    printed = completed.stdout.split("\nDone in", 1)[0]
    for pattern, mask in VARYING:
        printed = pattern.sub(mask, printed)
    return {"after_imports_s": done, "wall_s": round(wall, 2),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2), "printed": printed}


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--repeats", type=int, default=3)
    cli.add_argument("--places", default="beside,after", help="HYBRID_DEMO_PATTERN3 values, comma-separated")
    cli.add_argument("--rows", type=int, default=0, help="a generated landing file of this many rows instead of "
                                                         "the bundled data (issue 26: 10,000; target <= 60 s)")
    args = cli.parse_args()
    places = [place.strip() for place in args.places.split(",") if place.strip()]
    runs = {place: [] for place in places}
    for repeat in range(args.repeats):
        for place in places:  # interleaved: a slow spell of the machine hits both places alike
            runs[place].append(one_demo(place, args.rows))
            run = runs[place][-1]
            print(f"  {place:>6} #{repeat + 1}: {run['after_imports_s']:.1f} s after imports, {run['wall_s']:.1f} s wall, "
                  f"{run['cpu_s']:.1f} s CPU")
    summary = {place: {key: statistics.median(run[key] for run in runs[place])
                       for key in ("after_imports_s", "wall_s", "cpu_s")} for place in places}
    outputs = {run["printed"] for place in places for run in runs[place]}
    data, target = (f"a generated {args.rows:,}-row landing file", 60 if args.rows == 10_000 else None) \
        if args.rows else ("the bundled data", 10)
    print(f"\n`make demo` on {data}, medians of {args.repeats} ({platform.node()}, {os.cpu_count()} cores):")
    for place, figures in summary.items():
        print(f"  HYBRID_DEMO_PATTERN3={place}: {figures['after_imports_s']:.1f} s after imports"
              f"{f' (target <= {target} s)' if target else ''}, {figures['wall_s']:.1f} s wall, "
              f"{figures['cpu_s']:.1f} s CPU")
    print(f"  the same output in every run (timings masked): {len(outputs) == 1}")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"demo_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"repeats": args.repeats, "rows": args.rows or "bundled", "cores": os.cpu_count(),
                                "summary": summary,
                                "same_output": len(outputs) == 1,
                                "runs": {place: [{k: v for k, v in run.items() if k != "printed"} for run in runs[place]]
                                         for place in places}}, indent=2))
    print(f"  written: {path.relative_to(ROOT)}")
    if len(outputs) != 1:
        first, *others = sorted(outputs)
        for other in others:  # what differed, for the next person (a reported gate on wall time can flip)
            sys.stdout.writelines(difflib.unified_diff(first.splitlines(True), other.splitlines(True), n=0))
        raise SystemExit("the demo printed different results across runs or places (timings masked)")


if __name__ == "__main__":
    main()
