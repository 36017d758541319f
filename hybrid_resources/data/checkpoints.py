"""Atomic, pickle-free checkpoint store for long-running training loops.

Layout: ``root/<lineage>/step-000123.npz`` (the arrays) + ``step-000123.json`` (the
metadata and the sha256 of the npz bytes). A checkpoint counts only when both files exist,
the JSON parses, the npz hash matches and the npz loads with ``allow_pickle=False``.

Write protocol (crash-safe against SIGKILL / power loss at any instant):

1. npz bytes -> a ``.*.tmp`` file in the same directory, flush + fsync, ``os.replace`` to its
   final name (:func:`hybrid_resources.data.paths.atomic_write`) (a rename within one directory is atomic on POSIX);
2. the JSON sidecar the same way - written *last*, so a crash between 1 and 2 leaves an
   npz without a sidecar, which :meth:`CheckpointStore.latest` skips;
3. fsync the directory so the renames themselves are durable.

Nothing here uses pickle: arrays go through ``np.savez`` (object arrays are refused) and
everything else through JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hybrid_resources.data.paths import Location, atomic_write, is_local, location, read_whole

FORMAT_VERSION = 1
_STEP_RE = re.compile(r"^step-(\d{6,})\.(npz|json)$")
# Temp files older than this are leftovers of a killed writer, not a write in progress.
_STALE_TMP_S = 3600.0


class CheckpointWarning(UserWarning):
    """A checkpoint on disk was skipped (corrupt, partial, or unreadable)."""


@dataclass(frozen=True)
class Checkpoint:
    """One verified checkpoint.

    ``state`` maps names to arrays exactly as saved (0-d arrays for scalars);
    ``meta`` is the caller's JSON metadata; ``skipped`` lists why newer checkpoints
    were passed over to reach this one (empty when this is the newest on disk).
    """

    step: int
    state: dict[str, np.ndarray]
    meta: dict[str, Any]
    npz_path: Location
    skipped: tuple[str, ...] = field(default=())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    """Make renames inside ``path`` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _npz_bytes(state: Mapping[str, np.ndarray]) -> bytes:
    """Serialise ``state`` to npz bytes; refuses object arrays (they would need pickle)."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise TypeError(f"checkpoint entry {name!r} has dtype object; only plain arrays are allowed")
        arrays[name] = arr
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class CheckpointStore:
    """Checkpoints of one training lineage under ``root / lineage``.

    ``keep`` (>= 1) is how many of the newest checkpoints survive pruning; keeping more
    than one is what lets :meth:`latest` fall back past a corrupt newest file.
    """

    def __init__(self, root: Location | str, lineage: str, keep: int = 3) -> None:
        if not lineage or "/" in lineage or "\\" in lineage or lineage in {".", ".."}:
            raise ValueError(f"lineage must be a plain directory name, got {lineage!r}")
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.root = location(root) if isinstance(root, str) else root
        self.lineage = lineage
        self.keep = keep
        self.directory = self.root / lineage
        # Why the last latest() call skipped files, for callers that report rather than warn.
        self.last_warnings: list[str] = []

    # ------------------------------------------------------------------ paths
    def _paths(self, step: int) -> tuple[Location, Location]:
        stem = f"step-{step:06d}"
        return self.directory / f"{stem}.npz", self.directory / f"{stem}.json"

    def steps_on_disk(self) -> list[int]:
        """Step numbers with any file (npz or json) on disk, ascending; unverified."""
        if not self.directory.is_dir():
            return []
        steps = set()
        for entry in self.directory.iterdir():
            match = _STEP_RE.match(entry.name)
            if match:
                steps.add(int(match.group(1)))
        return sorted(steps)

    # ------------------------------------------------------------------ write
    def save(self, step: int, state: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
        """Atomically write checkpoint ``step`` (>= 0) and prune to the newest ``keep``.

        ``state``: name -> numeric/bool/unicode array (no object dtype).
        ``meta``: JSON-serialisable dict, stored under ``"meta"`` in the sidecar.
        Returns the npz path.
        """
        if step < 0:
            raise ValueError("step must be >= 0")
        local = is_local(self.directory)
        if local:
            self.directory.mkdir(parents=True, exist_ok=True)
        npz_path, json_path = self._paths(step)
        payload = _npz_bytes(state)
        sidecar = {
            "format": FORMAT_VERSION,
            "step": int(step),
            "lineage": self.lineage,
            "npz_file": npz_path.name,
            "npz_sha256": _sha256(payload),
            "npz_bytes": len(payload),
            "saved_at_unix": time.time(),
            "meta": dict(meta),
        }
        # Serialise the JSON before touching disk so a non-JSON meta fails without side effects.
        sidecar_bytes = json.dumps(sidecar, sort_keys=True, indent=1).encode("utf-8")
        atomic_write(npz_path, lambda f: f.write(payload), durable=True)
        # last: its presence marks the checkpoint complete
        atomic_write(json_path, lambda f: f.write(sidecar_bytes), durable=True)
        if local:  # an object store's puts are durable once they return
            _fsync_dir(self.directory)
        self._prune(keep_step=step)
        return npz_path

    def _prune(self, keep_step: int) -> None:
        """Delete all but the newest ``keep`` steps (never ``keep_step``) and stale temp files."""
        steps = self.steps_on_disk()
        doomed = [s for s in steps[: max(0, len(steps) - self.keep)] if s != keep_step]
        for s in doomed:
            for path in self._paths(s)[::-1]:  # json first: a half-pruned step is then 'partial'
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
        now = time.time()
        for entry in self.directory.glob(".tmp-*"):
            try:
                if now - entry.stat().st_mtime > _STALE_TMP_S:
                    entry.unlink()
            except FileNotFoundError:
                pass

    # ------------------------------------------------------------------ read
    def load(self, step: int) -> Checkpoint:
        """Load and verify checkpoint ``step``; raises ``ValueError``/``OSError`` if it is bad."""
        npz_path, json_path = self._paths(step)
        if not json_path.exists():
            raise ValueError(f"{npz_path.name}: no JSON sidecar (write interrupted)")
        try:
            sidecar = json.loads(read_whole(json_path).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{json_path.name}: unreadable JSON ({exc})") from exc
        if not isinstance(sidecar, dict) or "npz_sha256" not in sidecar or "meta" not in sidecar:
            raise ValueError(f"{json_path.name}: not a checkpoint sidecar")
        if sidecar.get("step") != step:
            raise ValueError(f"{json_path.name}: records step {sidecar.get('step')}, expected {step}")
        payload = read_whole(npz_path)
        digest = _sha256(payload)
        if digest != sidecar["npz_sha256"]:
            raise ValueError(
                f"{npz_path.name}: sha256 {digest[:12]}... does not match sidecar "
                f"{str(sidecar['npz_sha256'])[:12]}... (truncated or overwritten)"
            )
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
                state = {name: np.array(npz[name]) for name in npz.files}  # force full read
        except Exception as exc:  # zipfile/ValueError/...: a matching hash makes this unlikely
            raise ValueError(f"{npz_path.name}: npz does not load ({exc})") from exc
        return Checkpoint(step=step, state=state, meta=sidecar["meta"], npz_path=npz_path)

    def latest(self, *, warn: bool = True) -> Checkpoint | None:
        """Newest checkpoint that verifies, falling back past corrupt/partial ones.

        Each skipped step is reported with ``warnings.warn(..., CheckpointWarning)`` (unless
        ``warn=False``), recorded in ``self.last_warnings`` and in ``Checkpoint.skipped``.
        Returns ``None`` when no checkpoint verifies (including an empty/missing directory).
        """
        skipped: list[str] = []
        found: Checkpoint | None = None
        for step in reversed(self.steps_on_disk()):
            try:
                found = self.load(step)
                break
            except (OSError, ValueError) as exc:
                message = f"skipping checkpoint step {step} of lineage {self.lineage}: {exc}"
                skipped.append(message)
                if warn:
                    warnings.warn(message, CheckpointWarning, stacklevel=2)
        self.last_warnings = skipped
        if found is None:
            return None
        return Checkpoint(found.step, found.state, found.meta, found.npz_path, tuple(skipped))
