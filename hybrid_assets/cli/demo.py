"""``hybrid-demo`` (``make demo``): materialize the whole pipeline on the landing data against the
local instance, print the results and say where to look.

What it runs and prints: :mod:`hybrid_assets.cli.demo_run`. Pattern 3 does not depend on the
models, so by default it runs beside them: a second process, started before this one imports the
pipeline, materializes the portfolio and max-cut jobs on the same instance while the models
refresh, and its lines are printed in their place.
``HYBRID_DEMO_PATTERN3=after`` runs it in this process after the scoring instead (one process,
the order of earlier releases); ``off`` skips it. This module imports only what parsing the arguments needs, so
``--help`` answers at once and the second process starts early.
"""

from __future__ import annotations

import argparse
import sys

from hybrid_assets.cli.pattern3_process import start_beside
from hybrid_assets.common.examples import TASK_EXAMPLES

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="hybrid-demo", description=__doc__.split("\n\n")[0].replace("``", "`"),
        epilog="Settings come from the environment: DAGSTER_HOME (the instance), HYBRID_DATA_DIR (the data root, "
               "default ./data), HYBRID_RUN_CONFIG (a run config for refresh_models), HYBRID_DEMO_PATTERN3 (beside, "
               "the default: pattern 3 in a second process while the models refresh; after: in this process, after "
               "the scoring; off: not at all); see docs/configuration.md.")
    cli.add_argument("--example", choices=["breast_cancer", *TASK_EXAMPLES], default="breast_cancer",
                     help="the example written into an empty landing zone (one per task; docs/tasks.md); "
                          "default breast_cancer (binary)")
    return cli


def main(argv: list[str] | None = None) -> None:
    example = parser().parse_args(argv).example
    beside = start_beside()
    from hybrid_assets.cli.demo_run import run_demo  # the pipeline's imports, while the second process starts

    sys.exit(run_demo(example, beside))


if __name__ == "__main__":
    main()
