"""Subprocess target for the SIGKILL/resume test: optimises QAOA parameters with checkpoints until killed.

Usage: ``python tests/qaoa_worker.py PROBLEM_JSON CONFIG_JSON CHECKPOINT_DIR LINEAGE [SLEEP_S]``

``SLEEP_S`` (default 0.05) is slept after every optimiser step so the test can kill the run
midway; it does not touch the numerics. Prints ``{"done": true, "steps_run": ...}`` if it finishes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_resources.optimization.portfolio import PortfolioProblem
from hybrid_resources.optimization.qaoa import (
    QaoaCircuit,
    QaoaConfig,
    optimize_parameters,
)


def main(argv: list[str]) -> int:
    problem_path, config_json, checkpoint_dir, lineage = argv[:4]
    sleep_s = float(argv[4]) if len(argv) > 4 else 0.05
    problem = PortfolioProblem.from_dict(json.loads(Path(problem_path).read_text()))
    config = QaoaConfig(**json.loads(config_json))
    circuit = QaoaCircuit(problem.qubo(penalty=0), config.mixer, config.p, problem.k)
    result = optimize_parameters(circuit, config, checkpoint_dir=Path(checkpoint_dir), lineage=lineage,
                                 on_step=lambda _info: time.sleep(sleep_s))
    print(json.dumps({"done": True, "steps_run": result.steps_run}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
