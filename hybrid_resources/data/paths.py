"""Where the platform keeps its data: one root, `HYBRID_DATA_DIR` (default `./data`).

The root is a local folder or any fsspec URI (``s3://bucket/prefix``): then what hosts share
(artifacts, checkpoints, quarantine, prediction exports, the zones) lives there, and what is
private to one host (staging copies, scratch memory maps, the kernel cache) in a local folder,
``HYBRID_SCRATCH_DIR`` (:attr:`DataLayout.local`). Every write to the root goes through
:func:`atomic_write`, and every pointer that several writers move through :func:`publish_newest`.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

Location = Any  # a Path, or a UPath of any protocol (the same methods: /, open, exists, iterdir, glob)


def location(text: str | os.PathLike[str]) -> Location:
    """``text`` as a Path, or as a UPath when it is a URI with a remote protocol (``s3://...``)."""
    text = os.fspath(text)
    if "://" in text and not text.startswith("file://"):
        from upath import UPath

        return UPath(text)
    return Path(text.removeprefix("file://"))


def remove_tree(folder: Location) -> None:
    """Delete ``folder`` and everything under it (nothing when it is missing)."""
    if is_local(folder):
        shutil.rmtree(folder, ignore_errors=True)
    elif folder.exists():
        folder.fs.rm(folder.path, recursive=True)


def atomic_write(path: Location, write: Callable[[BinaryIO], object], *, durable: bool = False) -> None:
    """Create or replace ``path`` so readers see the old file (or none) or the whole new one.

    Locally, ``write`` fills a temporary file in the same folder (``.<name>.<random>.tmp``) that
    then replaces ``path``; on any error the temporary is removed and the error raised.
    ``durable`` also fsyncs the bytes before the rename (survives a power cut, costs a flush).
    On an object store the bytes are buffered and put in one request, which is atomic there.
    """
    if not is_local(path):
        buffer = io.BytesIO()
        write(buffer)
        path.fs.pipe_file(path.path, buffer.getvalue())
        return
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


def read_whole(path: Location) -> bytes:
    """The bytes of ``path`` as one read. On an object store that is one GET: s3fs's file objects
    fetch ranges pinned to the ETag they saw first and fail (``FileExpired``) when another host
    replaced the object in between, which a moving pointer such as ``latest.json`` is made for."""
    if is_local(path):
        return Path(path).read_bytes()
    return path.fs.cat_file(path.path)


class PointerContention(RuntimeError):
    """A pointer that other writers kept moving while this one tried to publish."""


def publish_newest(pointer: Location, record: dict[str, Any], *, order: str = "written_at_ns",
                   attempts: int = 50) -> bool:
    """Make the JSON file ``pointer`` hold ``record`` unless it already holds a record with a
    larger ``record[order]``; returns whether ``record`` was published.

    Never last-writer-wins: the read and the write are one compare-and-swap. On an object store
    it is a conditional put (``If-None-Match: *`` to create, ``If-Match: <ETag read>`` to
    replace), retried when another writer got in between; locally, both happen under an
    exclusive ``flock`` on a sibling lock file.
    """
    body = json.dumps(record, sort_keys=True).encode()
    if is_local(pointer):
        pointer.parent.mkdir(parents=True, exist_ok=True)
        with open(pointer.with_name(f".{pointer.name}.lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            current = json.loads(pointer.read_text()) if pointer.exists() else None
            if current is not None and current.get(order, 0) > record[order]:
                return False
            atomic_write(pointer, lambda handle: handle.write(body))
            return True
    fs, key = pointer.fs, pointer.path
    for attempt in range(attempts):
        try:
            info = fs.info(key, refresh=True)
        except FileNotFoundError:
            try:
                fs.pipe_file(key, body, mode="create")
                return True
            except FileExistsError:  # created by another writer since: compare with theirs
                continue
        current = json.loads(fs.cat_file(key))
        if current.get(order, 0) > record[order]:
            return False
        try:
            fs.pipe_file(key, body, IfMatch=info["ETag"])
            return True
        except OSError:  # 412 Precondition Failed: replaced since it was read; read it again
            time.sleep(min(0.01 * 2 ** attempt, 0.5))
    raise PointerContention(f"could not publish {pointer} in {attempts} attempts: other writers kept moving it")


@dataclass(frozen=True)
class DataLayout:
    """The folders and files under the data root.

    - ``landing/``: files waiting to be ingested (CSV or Parquet)
    - ``scoring/``: unlabelled files to score; ``labels/``: labels of scored rows, arriving later
    - ``predictions/``: a Parquet export of each scored file's predictions
    - ``quarantine/``: rejected files, bytes unchanged, each with a ``.reason.json`` sidecar
    - ``warehouse.duckdb``: raw rows, features, the experiment log, the quarantine table
    - ``artifacts/``: arrays (``.npy``/``.npz``), JSON specs, plots
    - ``dataset.yaml``: the dataset's contract file (its task, target, categorical columns and
      missing-value policy; optional, ``HYBRID_DATASET_CONTRACT`` names another file)
    """

    root: Location

    @classmethod
    def from_env(cls) -> "DataLayout":
        root = location(os.environ.get("HYBRID_DATA_DIR", "").strip() or "data")
        return cls(root.resolve() if is_local(root) else root)

    @property
    def shared(self) -> bool:
        """Whether the root is on an object store that several hosts share."""
        return not is_local(self.root)

    @property
    def local(self) -> Path:
        """This host's own folder: the root when it is local, else ``HYBRID_SCRATCH_DIR`` (default
        ``<temp>/hybrid-scratch``). Staging copies, scratch files and the kernel cache live here."""
        if not self.shared:
            return self.root
        return Path(os.environ.get("HYBRID_SCRATCH_DIR", "").strip()
                    or Path(tempfile.gettempdir()) / "hybrid-scratch").resolve()

    @property
    def staging(self) -> Path:
        return self.local / "staging"

    @property
    def scratch(self) -> Path:
        return self.local / "scratch"

    def scratch_for(self, run_id: str, step: str | None = None) -> Path:
        """The scratch folder of one run (and one of its steps), on this host."""
        folder = self.scratch / run_id
        return folder / step if step else folder

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
        """The default DuckDB file: under a local root; beside the local folder when the root is
        shared (a DuckDB file cannot live on an object store: set ``HYBRID_WAREHOUSE_URL``)."""
        return self.local / "warehouse.duckdb"

    @property
    def dataset_contract(self) -> Location:
        contract = os.environ.get("HYBRID_DATASET_CONTRACT", "").strip()
        return location(contract) if contract else self.root / "dataset.yaml"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def kernel_cache(self) -> Path:
        """Kernel entries already computed: a cache, so each host keeps its own (see :attr:`local`)."""
        return self.local / "kernel_cache"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def ensure(self) -> "DataLayout":
        if self.shared:  # an object store has no folders to make
            self.local.mkdir(parents=True, exist_ok=True)
            return self
        for folder in (self.landing, self.scoring, self.labels, self.quarantine, self.artifacts):
            folder.mkdir(parents=True, exist_ok=True)
        return self


ZONES = ("landing", "scoring", "labels")  # training files, files to score, labels arriving later

REFUSED_KINDS = {  # what a zone refuses: kind -> why (the check name of its quarantine record)
    "symlink": "a symbolic link: zones hold regular files only, so it was not followed and its target never read",
    "not_regular_file": "not a regular file (a folder, FIFO, socket or device): zones hold regular files only, "
                        "so it was never opened",
}


@dataclass(frozen=True)
class ZoneEntry:
    """One name in a zone, as ``lstat`` saw it (a link is never followed).

    ``kind`` is "file" for a regular file, else a key of :data:`REFUSED_KINDS`. ``name`` is the
    name as the OS gives it (bytes that are not UTF-8 as surrogate escapes: see ``os.fsencode``)."""

    path: Any  # location / name: a Path or UPath
    name: str
    kind: str
    size: int
    mtime_ns: int

    @property
    def refused(self) -> bool:
        return self.kind != "file"


def is_local(location) -> bool:
    """Whether ``location`` (a Path, or a UPath of any protocol) is on the local file system."""
    return getattr(location, "protocol", "") in ("", "file", "local")


def printable_name(name: str) -> str:
    """A file name as text any store takes (DuckDB, Dagster tags and metadata, JSON): bytes that
    are not UTF-8 become ``\\xNN``. For showing and recording only; keys hash ``os.fsencode(name)``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _entry(path) -> ZoneEntry | None:
    """``path`` classified without following a link; None when it vanished meanwhile."""
    try:
        if not is_local(path):  # object stores have neither links nor special files
            if not path.is_file():
                return None
            info = path.stat()
            mtime_ns = getattr(info, "st_mtime_ns", None) or int(float(info.st_mtime) * 1e9)
            return ZoneEntry(path, path.name, "file", int(info.st_size), int(mtime_ns))
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    kind = ("file" if stat.S_ISREG(info.st_mode) else "symlink" if stat.S_ISLNK(info.st_mode)
            else "not_regular_file")
    return ZoneEntry(path, path.name, kind, int(info.st_size), int(info.st_mtime_ns))


def zone_entries(location, *, suffixes: tuple[str, ...] = ()) -> list[ZoneEntry]:
    """Every visible name in a zone's ``location`` (a path or UPath), sorted by name, classified by
    ``lstat``: regular files, and the links and other entries the zone refuses. Hidden and
    temporary names (``.tmp``, ``.part``) are skipped, and so are names without one of
    ``suffixes`` when it is given. A missing location holds nothing."""
    if not location.exists():
        return []
    entries = (_entry(path) for path in location.iterdir()
               if not path.name.startswith(".") and not path.name.endswith((".tmp", ".part"))
               and (not suffixes or path.name.endswith(suffixes)))
    return sorted((entry for entry in entries if entry is not None), key=lambda entry: entry.name)


def zone_files(location, *, suffixes: tuple[str, ...] = ()) -> list:
    """The regular files of :func:`zone_entries` (paths): never a link, a folder or a device."""
    return [entry.path for entry in zone_entries(location, suffixes=suffixes) if not entry.refused]


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
