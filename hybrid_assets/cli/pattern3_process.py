"""The demo's second process, beside the model refresh (``HYBRID_DEMO_PATTERN3=beside``): pattern 3,
then the refresh's noise spread and the kernel routes' plan.

Light on purpose: ``hybrid-demo`` starts this process before it imports the pipeline, and the
process (``python -m hybrid_assets.cli.demo_run``) imports it itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, NamedTuple

__all__ = ["PATTERN3_PLACES", "PATTERN3_VARIABLE", "BesideOutput", "BesideRefresh", "pattern3_place", "start_beside"]

PATTERN3_VARIABLE = "HYBRID_DEMO_PATTERN3"
PATTERN3_PLACES = ("beside", "after", "off")
PATTERN3_NICENESS = 10


class BesideOutput(NamedTuple):
    """What the second process printed: pattern 3's lines, the route plan's lines (None when it did
    not plan: no refresh to follow, or the refresh ended before it materialized what the plan reads)
    and the failures of its runs."""

    pattern3: list[str]
    route_plan: list[str] | None
    failures: list[str]


@dataclass
class BesideRefresh:
    """The second process (``python -m hybrid_assets.cli.demo_run``): its lines go to ``output``, the
    last one the JSON ``{"failures": [...], "route_plan": [...] | null}``; its warnings go to our
    stderr. It reads the refresh's run id from its standard input (:meth:`follow`)."""

    process: subprocess.Popen
    output: IO[str]

    def follow(self, run_id: str) -> None:
        """Hand it the refresh run ``run_id``: after pattern 3, once that run has materialized what
        noisy_kernel_spread and the route plan read, it materializes them."""
        try:
            self.process.stdin.write(run_id + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):  # it has ended (a broken pipe), or its input was closed: result() says how
            pass

    def result(self) -> BesideOutput:
        """Wait for it. A process that ended without its last line failed as a whole, and says so."""
        if self.process.stdin is not None:
            self.process.stdin.close()  # no refresh to follow, if none was handed to it
        self.process.wait()
        self.output.seek(0)
        lines = self.output.read().splitlines()
        try:
            last = json.loads(lines[-1])
            return BesideOutput(lines[:-1], last.get("route_plan"), list(last["failures"]))
        except (IndexError, ValueError, KeyError, TypeError, AttributeError):
            return BesideOutput(lines, None, [f"the demo's second process (exited with code "
                                              f"{self.process.returncode}; its error is above)"])


def pattern3_place() -> str:
    """``HYBRID_DEMO_PATTERN3``: ``beside`` (unset), ``after`` or ``off`` (the demo skips pattern 3);
    anything else ends the demo before it starts, saying so."""
    place = os.environ.get(PATTERN3_VARIABLE, "").strip() or "beside"
    if place not in PATTERN3_PLACES:
        raise SystemExit(f"hybrid-demo: {PATTERN3_VARIABLE} must be one of {', '.join(PATTERN3_PLACES)}, got {place!r}")
    return place


def start_beside() -> BesideRefresh | None:
    """Start the second process; None unless ``HYBRID_DEMO_PATTERN3`` is ``beside``."""
    if pattern3_place() != "beside":
        return None
    output = tempfile.TemporaryFile("w+")
    # Niced: while the refresh runs it is the demo's longest path; by the time the demo waits for
    # this process, the refresh is over and each has a core.
    process = subprocess.Popen([sys.executable, "-m", "hybrid_assets.cli.demo_run"], stdout=output,
                               stdin=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(PATTERN3_NICENESS))
    return BesideRefresh(process, output)
