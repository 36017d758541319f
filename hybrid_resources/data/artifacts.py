"""Versioned, content-addressed artifacts without pickle: arrays as ``.npy``/``.npz``, the rest JSON.

Each materialization's output is stored under its data version, which is the content hash of
the value (:func:`content_hash`), so an old version stays loadable after newer ones::

    <root>/<asset key>/[<partition>/]<version>/value.(npy|npz|json)
    <root>/<asset key>/[<partition>/]<version>/written.json     run id and time of the last write
    <root>/<asset key>/[<partition>/]<version>/pinned-by-*.json  kept whatever the retention says
    <root>/<asset key>/[<partition>/]latest.json                 the version written last

- ``np.ndarray``            -> ``.npy``
- ``dict[str, np.ndarray]`` -> ``.npz`` (a bundle: embeddings with their fitted transform, a model);
  its memory-mapped arrays (a kernel too large for memory) as ``value.<name>.npy`` beside it,
  read back as read-only memory maps (:mod:`hybrid_resources.data.big_arrays`);
  a bundle may carry JSON facts about itself (:func:`with_info`): ``"info"``, part of its content
  (hyperparameters, holdout metrics), and ``"telemetry"``, how this copy was computed (wall time,
  cache hits, circuits run, cost), which the content hash leaves out: the same data computed
  again, or served from a cache, keeps its data version
- JSON-safe ``dict``        -> ``.json``; its ``"telemetry"`` key, if any, is likewise left out of
  the content hash (an evaluation's measured latencies)

The root is a local folder or an object store (``s3://bucket/prefix/artifacts``, see
:mod:`hybrid_resources.data.paths`). Files are written whole or not at all (a temporary name and
a rename locally, one put on an object store), so a crash never leaves half an artifact. Versions
are ordered by their write time on the store's clock (``clock``; the warehouse server's when the
warehouse is PostgreSQL, so hosts' clocks never decide), and ``latest.json`` moves only forward,
by compare-and-swap (:func:`~hybrid_resources.data.paths.publish_newest`). Retention keeps the
last ``keep_versions`` versions of each asset, the latest always, and every version pinned by a
promoted model. Materializations record the version, not a path, so any host resolves it against
its own configured root (:func:`recorded_base`).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from pydantic import Field

from hybrid_resources.data.big_arrays import (
    iter_row_blocks,
    load_mapped,
    store_mapped,
    stored_name,
)
from hybrid_resources.data.paths import (
    DataLayout,
    Location,
    atomic_write,
    is_local,
    location,
    publish_newest,
    read_whole,
    remove_tree,
)
from hybrid_resources.data.warehouse import PostgresWarehouse, Warehouse

ArrayBundle = dict[str, np.ndarray]
INFO_KEY = "info"
TELEMETRY_KEY = "telemetry"


def content_hash(value: np.ndarray | ArrayBundle | dict[str, Any]) -> str:
    """SHA-256 of an artifact's content (names, dtypes, shapes and bytes; or canonical JSON).

    Stable across processes and independent of file timestamps, so it serves as the
    Dagster data version of the asset that produced ``value``. The telemetry of a bundle or of a
    JSON dict is not content (see the module docstring).
    """
    digest = hashlib.sha256()
    if isinstance(value, np.ndarray):
        value = {"": value}
    if all(isinstance(item, np.ndarray) for item in value.values()):
        for name in sorted(set(value) - {TELEMETRY_KEY}):
            array = value[name] if isinstance(value[name], np.memmap) else np.ascontiguousarray(value[name])
            digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
            if isinstance(array, np.memmap):  # the same bytes in the same order, one block in memory at a time
                for _, block in iter_row_blocks(array):
                    digest.update(memoryview(np.ascontiguousarray(block)).cast("B") if block.size else b"")
            else:
                digest.update(memoryview(array).cast("B") if array.size else b"")  # no copy of big arrays
    else:
        content = {name: item for name, item in value.items() if name != TELEMETRY_KEY}
        digest.update(json.dumps(content, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def with_info(arrays: dict[str, np.ndarray], info: dict[str, Any],
              telemetry: dict[str, Any] | None = None) -> ArrayBundle:
    """An array bundle that also carries JSON facts about itself (each stored as one text array):
    ``info`` is part of its content, ``telemetry`` is not."""
    bundle = {**arrays, INFO_KEY: np.array(json.dumps(info, sort_keys=True, default=_plain))}
    if telemetry:
        bundle[TELEMETRY_KEY] = np.array(json.dumps(telemetry, sort_keys=True, default=_plain))
    return bundle


def info_of(bundle: ArrayBundle) -> dict[str, Any]:
    """The facts :func:`with_info` stored in a bundle ({} when it has none)."""
    return json.loads(str(bundle[INFO_KEY])) if INFO_KEY in bundle else {}


def telemetry_of(bundle: ArrayBundle) -> dict[str, Any]:
    """How this copy of a bundle was computed ({} when not recorded)."""
    return json.loads(str(bundle[TELEMETRY_KEY])) if TELEMETRY_KEY in bundle else {}


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _is_bundle(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, np.ndarray) for v in value.values())


def write_artifact(base: Location, value: np.ndarray | ArrayBundle | dict[str, Any]) -> Location:
    """Write ``value`` next to ``base`` (suffix chosen by type), atomically. Returns the file."""
    if isinstance(value, np.ndarray):
        path, write = base.with_suffix(".npy"), lambda f: np.save(f, value, allow_pickle=False)
    elif _is_bundle(value):
        mapped = {name: array for name, array in value.items() if isinstance(array, np.memmap)}
        for name, array in mapped.items():  # beside the bundle first: the bundle's file marks it complete
            store_mapped(stored_name(base, name), array)
        in_memory = {name: array for name, array in value.items() if name not in mapped}
        path, write = base.with_suffix(".npz"), lambda f: np.savez(f, **in_memory)
    elif isinstance(value, dict):
        path, write = base.with_suffix(".json"), lambda f: f.write(json.dumps(value, indent=2, sort_keys=True).encode())
    else:
        raise TypeError(f"cannot store {type(value).__name__} without pickle; use arrays or JSON dicts")
    atomic_write(path, write)
    return path


def read_artifact(base: Location) -> np.ndarray | ArrayBundle | dict[str, Any]:
    """Read what :func:`write_artifact` wrote for ``base``; arrays never unpickle.

    From an object store, each file is one whole GET (:func:`read_whole`): two hosts that
    materialize the same content both write its version, and an ``.npz`` differs in its zip
    timestamps, so a read in ranges pinned to the first ETag failed (412 Precondition Failed)
    when the other host's copy replaced it in between."""
    for suffix in (".npy", ".npz", ".json"):
        path = base.with_suffix(suffix)
        try:
            handle = path.open("rb") if is_local(path) else io.BytesIO(read_whole(path))
        except FileNotFoundError:
            continue
        with handle:
            if suffix == ".npy":
                return np.load(handle, allow_pickle=False)
            if suffix == ".npz":
                with np.load(handle, allow_pickle=False) as bundle:
                    copies = None if is_local(base) else DataLayout.from_env().local / "artifact_copies"
                    return {**{name: bundle[name] for name in bundle.files}, **load_mapped(base, copies)}
            return json.loads(handle.read())
    raise FileNotFoundError(f"no artifact at {base}.(npy|npz|json); materialize the upstream asset first")


def recorded_base(metadata: dict[str, Any], key: Sequence[str], partition: str | None = None) -> Location | None:
    """Where a materialization stored its artifact (without the suffix), from its plain metadata
    values: key / [partition /] ``artifact_version`` / value under this host's configured
    artifacts root when that holds the version (the recorded ``artifact_root`` may be another
    host's folder), else under ``artifact_root``; materializations recorded before the root and
    the version were split name the file in ``artifact_path``."""
    root, version = metadata.get("artifact_root"), metadata.get("artifact_version")
    if version:
        here = ArtifactStore(DataLayout.from_env().artifacts).folder(key, partition) / version
        if here.exists() or not root:
            return here / "value"
        return ArtifactStore(location(root)).folder(key, partition) / version / "value"
    legacy = metadata.get("artifact_path")
    return location(legacy).with_suffix("") if legacy else None


class ArtifactIntegrityError(RuntimeError):
    """A stored artifact whose content no longer hashes to the version it is stored as."""


class ArtifactStore:
    """The versions of every asset's artifacts under one root (see the module docstring).

    ``clock``: nanoseconds since the epoch on the clock that orders writes (default this host's;
    :meth:`~hybrid_resources.data.warehouse.Warehouse.clock_ns` when several hosts write).
    ``readers``: a PostgreSQL warehouse through which every read holds a lease on the version it
    reads, from any host, and retention skips versions leased (None: one host, nothing to hold)."""

    def __init__(self, root: Location | str, clock: Callable[[], int] = time.time_ns,
                 readers: Warehouse | None = None):
        self.root = location(root) if isinstance(root, str) else root
        self.clock = clock
        self.readers = readers

    @classmethod
    def at(cls, root: Location) -> ArtifactStore:
        """The store at ``root`` as hosts share it: on an object store, ordered by the warehouse's
        clock and, with the warehouse on PostgreSQL, with reader leases; locally, one host's."""
        if is_local(root):
            return cls(root)
        warehouse = Warehouse()
        return cls(root, clock=warehouse.clock_ns,
                   readers=warehouse if isinstance(warehouse.target, PostgresWarehouse) else None)

    @staticmethod
    def lease_name(key: Sequence[str], version: str, partition: str | None = None) -> str:
        """The lease a reader of ``version`` of ``key`` holds while it reads."""
        return f"artifact:{'/'.join(key)}{'/' + partition if partition else ''}@{version}"

    def folder(self, key: Sequence[str], partition: str | None = None) -> Location:
        folder = self.root.joinpath(*key)
        return folder / partition if partition else folder

    def write(self, key: Sequence[str], value: Any, *, version: str, run_id: str = "",
              partition: str | None = None) -> Location:
        """Store ``value`` as ``version`` of ``key`` and make it the latest unless a newer write
        (by :attr:`clock`) already is; returns the file."""
        folder = self.folder(key, partition)
        path = write_artifact(folder / version / "value", value)
        written = {"run_id": run_id, "written_at_ns": self.clock()}
        atomic_write(folder / version / "written.json", lambda f: f.write(json.dumps(written).encode()))
        publish_newest(folder / "latest.json", {"version": version, "written_at_ns": written["written_at_ns"]})
        return path

    def latest_version(self, key: Sequence[str], partition: str | None = None) -> str | None:
        try:
            return json.loads(read_whole(self.folder(key, partition) / "latest.json"))["version"]
        except FileNotFoundError:
            return None

    def read(self, key: Sequence[str], version: str | None = None, partition: str | None = None) -> Any:
        """Version ``version`` of ``key`` (default: the latest written)."""
        folder = self.folder(key, partition)
        version = version or self.latest_version(key, partition)
        if version is None:
            if any(folder.glob("value.*")):  # written before artifacts were versioned
                return read_artifact(folder / "value")
            raise FileNotFoundError(f"no artifact for {'/'.join(key)} under {self.root}; "
                                    "materialize the upstream asset first")
        release = self.readers.lease(self.lease_name(key, version, partition), shared=True) if self.readers else None
        try:
            return read_artifact(folder / version / "value")
        except FileNotFoundError as missing:
            raise FileNotFoundError(f"version {version[:12]} of {'/'.join(key)} is no longer stored under "
                                    f"{self.root} (removed by retention, or written elsewhere)") from missing
        finally:  # what was read is in memory, or mapped from a local copy: the stored files may go
            if release is not None:
                release()

    def read_verified(self, key: Sequence[str], version: str, partition: str | None = None) -> Any:
        """Version ``version`` of ``key``, re-hashed: raises ArtifactIntegrityError when the stored
        file's content no longer hashes to ``version`` (changed or swapped after it was written)."""
        value = self.read(key, version, partition)
        actual = content_hash(value)
        if actual != version:
            raise ArtifactIntegrityError(
                f"the stored artifact {'/'.join(key)} version {version[:12]} under {self.root} now hashes to "
                f"{actual[:12]}: its file was changed or swapped after it was written; refusing to use it "
                "(restore the file, or re-materialize and register a new version)")
        return value

    def versions(self, key: Sequence[str], partition: str | None = None) -> list[str]:
        """Stored versions of ``key``, oldest write first."""
        folder = self.folder(key, partition)
        stamped = []
        for entry in folder.iterdir() if folder.exists() else ():
            try:
                stamped.append((json.loads(read_whole(entry / "written.json"))["written_at_ns"], entry.name))
            except (FileNotFoundError, NotADirectoryError):  # latest.json, or a version being written
                continue
        return [name for _, name in sorted(stamped)]

    def pin(self, key: Sequence[str], version: str, holder: str, partition: str | None = None) -> None:
        """Keep ``version`` of ``key`` whatever the retention says, on behalf of ``holder``."""
        folder = self.folder(key, partition) / version
        if folder.exists():
            safe = hashlib.sha256(holder.encode()).hexdigest()[:16]
            atomic_write(folder / f"pinned-by-{safe}.json", lambda f: f.write(json.dumps({"holder": holder}).encode()))

    def prune(self, key: Sequence[str], keep: int, partition: str | None = None) -> list[str]:
        """Remove all but the newest ``keep`` versions of ``key``; the latest, pinned ones and those
        a reader holds (:attr:`readers`) stay."""
        latest = self.latest_version(key, partition)
        versions = self.versions(key, partition)
        candidates = versions[: max(0, len(versions) - keep)]
        read_now = set()
        if self.readers is not None and candidates:
            with self.readers.session(read_only=True) as session:
                held = session.leased([self.lease_name(key, version, partition) for version in candidates])
            read_now = {version for version in candidates if self.lease_name(key, version, partition) in held}
        removed = []
        for version in candidates:
            folder = self.folder(key, partition) / version
            if version != latest and version not in read_now and not any(folder.glob("pinned-by-*.json")):
                remove_tree(folder)
                removed.append(version)
        return removed


def _metadata_value(metadata: dict[str, Any], name: str) -> Any:
    value = metadata.get(name)
    return getattr(value, "value", value)


class ArtifactIOManager(ConfigurableIOManager):
    """Stores each asset output under its data version (content hash), no pickle; loads the
    version Dagster records as the input (so an evaluation can never mix versions).

    The contract with the assets: an output's data version is its content hash, given as the
    output's ``content_hash`` metadata too (``hybrid_assets.common.outputs.artifact_output`` does both).
    A ``references`` metadata entry ({asset: version}) pins those versions against retention.
    """

    root: str = Field(default="", description="Artifacts folder; empty means $HYBRID_DATA_DIR/artifacts")
    keep_versions: int = Field(default=5, ge=1, description="Versions kept per asset (plus the latest and "
                                                            "every version a promoted model references)")

    def store(self) -> ArtifactStore:
        return ArtifactStore.at(location(self.root) if self.root else DataLayout.from_env().artifacts)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        metadata = context.output_metadata
        version = _metadata_value(metadata, "content_hash") or content_hash(obj)
        partition = context.asset_partition_key if context.has_asset_partitions else None
        store, key = self.store(), context.asset_key.path
        store.write(key, obj, version=version, run_id=context.run_id, partition=partition)
        holder = f"{context.asset_key.to_user_string()}@{version}"
        for asset, referenced in (_metadata_value(metadata, "references") or {}).items():
            store.pin(asset.split("/"), referenced, holder)
        store.prune(key, self.keep_versions, partition)
        # The root and the version, not the whole path: a path with a 64-character version in it
        # does not wrap, and would widen the UI's metadata table past the page (see recorded_base).
        context.add_output_metadata({"artifact_root": MetadataValue.path(str(store.root)), "artifact_version": version})

    def load_input(self, context: InputContext) -> Any:
        partition = context.asset_partition_key if context.has_asset_partitions else None
        return self.store().read(context.asset_key.path, _input_version(context), partition)


def _input_version(context: InputContext) -> str | None:
    """The data version Dagster records for this input (None: read the latest written)."""
    try:
        info = context.step_context.maybe_fetch_and_get_input_asset_version_info(context.asset_key)
    except Exception:  # noqa: BLE001 - a context built outside a run (build_input_context) has no step
        return None
    if info is None or info.data_version is None or context.has_asset_partitions:
        return None
    return info.data_version.value
