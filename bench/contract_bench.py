"""Landing-contract validation speed: a typical file and a very wide one (medians of repeats).

    .venv/bin/python bench/contract_bench.py [--repeats 5]

Prints the figures and writes bench/results/contract_bench-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_resources.data.contract import load_landing_file  # noqa: E402
from tests.bad_files import write_good_csv, write_trailing_blank_lines  # noqa: E402

CASES = {  # name: (rows, feature columns)
    "typical_569x30": (569, 30),
    "wide_60x1000": (60, 1000),
    "tall_200000x30": (200_000, 30),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        load_landing_file(write_good_csv(Path(folder), n_rows=10, name="warmup.csv"))  # GE import
        files = {name: write_good_csv(Path(folder), n_rows=rows, n_features=width, name=f"{name}.csv")
                 for name, (rows, width) in CASES.items()}
        files["blank_lines_20000x5"] = write_trailing_blank_lines(Path(folder), name="blank.csv", n_rows=20_000)
        for name, path in files.items():
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                load_landing_file(path)
                times.append(time.perf_counter() - started)
            results[name] = {"median_s": statistics.median(times), "min_s": min(times), "repeats": args.repeats}
            print(f"{name:>22}: median {results[name]['median_s']:.3f} s (min {results[name]['min_s']:.3f} s)")
    out = Path(__file__).parent / "results" / f"contract_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
