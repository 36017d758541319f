"""Subprocess target for the SIGKILL/resume test: trains a VQC with checkpoints until killed.

Usage: ``python tests/vqc_worker.py DATA.npz CONFIG_JSON CHECKPOINT_DIR LINEAGE [SLEEP_S]``

- ``DATA.npz``: arrays ``X_train, y_train, X_val, y_val`` (written by the test);
- ``CONFIG_JSON``: ``VqcConfig`` fields as a JSON object;
- ``SLEEP_S``: seconds slept after every optimiser step (default 0.05). It only slows the
  run so the test can kill it mid-training; it does not touch the numerics.

Prints one JSON line ``{"done": true, "steps_run": ...}`` if it ever finishes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

# Runs as a plain script: make the repository importable without relying on an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_resources.quantum.vqc import VqcConfig, train_vqc  # noqa: E402


def main(argv: list[str]) -> int:
    data_path, config_json, checkpoint_dir, lineage = argv[:4]
    sleep_s = float(argv[4]) if len(argv) > 4 else 0.05
    config = VqcConfig(**json.loads(config_json))
    with np.load(data_path, allow_pickle=False) as data:
        X_train, y_train, X_val, y_val = (np.array(data[k]) for k in ("X_train", "y_train", "X_val", "y_val"))
    result = train_vqc(
        X_train, y_train, config,
        checkpoint_dir=Path(checkpoint_dir), lineage=lineage, X_val=X_val, y_val=y_val,
        on_step=lambda _info: time.sleep(sleep_s),
    )
    print(json.dumps({"done": True, "steps_run": result.steps_run}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
