"""Artifact storage without pickle: arrays as ``.npy``/``.npz``, specs and reports as JSON.

The IO manager stores each asset's output under ``$HYBRID_DATA_DIR/artifacts/<asset key>``:

- ``np.ndarray``            -> ``.npy``
- ``dict[str, np.ndarray]`` -> ``.npz`` (a bundle: embeddings with their fitted transform, a model)
- JSON-safe ``dict``        -> ``.json``

Files are written to a temporary name and renamed, so a crash never leaves half an artifact.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from hybrid_resources.data.paths import DataLayout, atomic_write

ArrayBundle = dict[str, np.ndarray]


def content_hash(value: np.ndarray | ArrayBundle | dict[str, Any]) -> str:
    """SHA-256 of an artifact's content (names, dtypes, shapes and bytes; or canonical JSON).

    Stable across processes and independent of file timestamps, so it serves as the
    Dagster data version of the asset that produced ``value``.
    """
    digest = hashlib.sha256()
    if isinstance(value, np.ndarray):
        value = {"": value}
    if all(isinstance(item, np.ndarray) for item in value.values()):
        for name in sorted(value):
            array = np.ascontiguousarray(value[name])
            digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(array.tobytes())
    else:
        digest.update(json.dumps(value, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _is_bundle(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, np.ndarray) for v in value.values())


def write_artifact(base: Path, value: np.ndarray | ArrayBundle | dict[str, Any]) -> Path:
    """Write ``value`` next to ``base`` (suffix chosen by type), atomically. Returns the file."""
    if isinstance(value, np.ndarray):
        path, write = base.with_suffix(".npy"), lambda f: np.save(f, value, allow_pickle=False)
    elif _is_bundle(value):
        path, write = base.with_suffix(".npz"), lambda f: np.savez(f, **value)
    elif isinstance(value, dict):
        path, write = base.with_suffix(".json"), lambda f: f.write(json.dumps(value, indent=2, sort_keys=True).encode())
    else:
        raise TypeError(f"cannot store {type(value).__name__} without pickle; use arrays or JSON dicts")
    atomic_write(path, write)
    return path


def read_artifact(base: Path) -> np.ndarray | ArrayBundle | dict[str, Any]:
    """Read what :func:`write_artifact` wrote for ``base``; arrays never unpickle."""
    for suffix in (".npy", ".npz", ".json"):
        path = base.with_suffix(suffix)
        if path.exists():
            if suffix == ".npy":
                return np.load(path, allow_pickle=False)
            if suffix == ".npz":
                with np.load(path, allow_pickle=False) as bundle:
                    return {name: bundle[name] for name in bundle.files}
            return json.loads(path.read_text())
    raise FileNotFoundError(f"no artifact at {base}.(npy|npz|json); materialize the upstream asset first")


class ArtifactIOManager(ConfigurableIOManager):
    """Stores asset outputs as files under the artifacts folder (no pickle)."""

    root: str = Field(default="", description="Artifacts folder; empty means $HYBRID_DATA_DIR/artifacts")

    def _base(self, context: OutputContext | InputContext) -> Path:
        root = Path(self.root) if self.root else DataLayout.from_env().artifacts
        base = root.joinpath(*context.asset_key.path)
        if context.has_asset_partitions:
            base = base / context.asset_partition_key
        return base / "value"

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        path = write_artifact(self._base(context), obj)
        context.add_output_metadata({"artifact_path": str(path)})

    def load_input(self, context: InputContext) -> Any:
        return read_artifact(self._base(context))
