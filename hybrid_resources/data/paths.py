"""Where the platform keeps its data: one root, `HYBRID_DATA_DIR` (default `./data`)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write(path: Path, write: Callable[[BinaryIO], object], *, durable: bool = False) -> None:
    """Create or replace ``path`` so readers see the old file (or none) or the whole new one.

    ``write`` fills a temporary file in the same folder (``.<name>.<random>.tmp``) that then
    replaces ``path``; on any error the temporary is removed and the error raised.
    ``durable`` also fsyncs the bytes before the rename (survives a power cut, costs a flush).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class DataLayout:
    """The folders and files under the data root.

    - ``landing/``: files waiting to be ingested (CSV or Parquet)
    - ``scoring/``: unlabelled files to score; ``labels/``: labels of scored rows, arriving later
    - ``predictions/``: a Parquet export of each scored file's predictions
    - ``quarantine/``: rejected files, bytes unchanged, each with a ``.reason.json`` sidecar
    - ``warehouse.duckdb``: raw rows, features, the experiment log, the quarantine table
    - ``artifacts/``: arrays (``.npy``/``.npz``), JSON specs, plots
    """

    root: Path

    @classmethod
    def from_env(cls) -> "DataLayout":
        return cls(Path(os.environ.get("HYBRID_DATA_DIR", "data")).resolve())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def scoring(self) -> Path:
        return self.root / "scoring"

    @property
    def labels(self) -> Path:
        return self.root / "labels"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def kernel_cache(self) -> Path:
        return self.root / "kernel_cache"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def ensure(self) -> "DataLayout":
        for folder in (self.landing, self.scoring, self.labels, self.quarantine, self.artifacts):
            folder.mkdir(parents=True, exist_ok=True)
        return self


ZONES = ("landing", "scoring", "labels")  # training files, files to score, labels arriving later


def zone_files(location, *, suffixes: tuple[str, ...] = ()) -> list:
    """Regular files in a zone's ``location`` (a path or UPath), sorted by name: hidden and
    temporary files (``.tmp``, ``.part``) are skipped, and so are names without one of
    ``suffixes`` when it is given. A missing location holds no files."""
    if not location.exists():
        return []
    return sorted(
        (path for path in location.iterdir()
         if path.is_file() and not path.name.startswith(".") and not path.name.endswith((".tmp", ".part"))
         and (not suffixes or path.name.endswith(suffixes))),
        key=lambda path: path.name,
    )


def zone_location(zone: str = "landing"):
    """Where a zone's files arrive: ``HYBRID_<ZONE>_URI`` (any fsspec/UPath URI, e.g.
    ``s3://bucket/prefix``) or, by default, the local ``$HYBRID_DATA_DIR/<zone>``."""
    from upath import UPath

    if zone not in ZONES:
        raise ValueError(f"unknown zone {zone!r}; one of {ZONES}")
    uri = os.environ.get(f"HYBRID_{zone.upper()}_URI", "").strip()
    return UPath(uri) if uri else UPath(DataLayout.from_env().root / zone)


def landing_location():
    """Where training files arrive (see :func:`zone_location`)."""
    return zone_location("landing")
