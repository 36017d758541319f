"""The demo's pattern 3 in a process of its own, beside the model refresh (``HYBRID_DEMO_PATTERN3``).

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
from typing import IO

__all__ = ["PATTERN3_PLACES", "PATTERN3_VARIABLE", "Pattern3Beside", "pattern3_place", "start_pattern3"]

PATTERN3_VARIABLE = "HYBRID_DEMO_PATTERN3"
PATTERN3_PLACES = ("beside", "after", "off")
PATTERN3_NICENESS = 10


@dataclass
class Pattern3Beside:
    """Pattern 3 running in its own process (``python -m hybrid_assets.cli.demo_run``): its lines go
    to ``output``, the last one the JSON ``{"failures": [...]}``; its warnings go to our stderr."""

    process: subprocess.Popen
    output: IO[str]

    def result(self) -> tuple[list[str], list[str]]:
        """Wait for it: (the lines it printed, its failures). A process that ended without its
        failures line failed as a whole, and says so."""
        self.process.wait()
        self.output.seek(0)
        lines = self.output.read().splitlines()
        try:
            return lines[:-1], list(json.loads(lines[-1])["failures"])
        except (IndexError, ValueError, KeyError, TypeError):
            return lines, [f"pattern 3 (its process exited with code {self.process.returncode}; its error is above)"]


def pattern3_place() -> str:
    """``HYBRID_DEMO_PATTERN3``: ``beside`` (unset), ``after`` or ``off`` (the demo skips pattern 3);
    anything else ends the demo before it starts, saying so."""
    place = os.environ.get(PATTERN3_VARIABLE, "").strip() or "beside"
    if place not in PATTERN3_PLACES:
        raise SystemExit(f"hybrid-demo: {PATTERN3_VARIABLE} must be one of {', '.join(PATTERN3_PLACES)}, got {place!r}")
    return place


def start_pattern3() -> Pattern3Beside | None:
    """Start pattern 3 beside the refresh; None unless ``HYBRID_DEMO_PATTERN3`` is ``beside``."""
    if pattern3_place() != "beside":
        return None
    output = tempfile.TemporaryFile("w+")
    # Niced: the refresh is the demo's longest path, and pattern 3 finishes well before it anyway.
    process = subprocess.Popen([sys.executable, "-m", "hybrid_assets.cli.demo_run"], stdout=output,
                               preexec_fn=lambda: os.nice(PATTERN3_NICENESS))
    return Pattern3Beside(process, output)
