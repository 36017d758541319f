"""Quarantine: a rejected zone file is kept, byte for byte (mode 0600), beside a sidecar giving the reason.

Order of operations is copy -> verify hash -> write sidecar -> remove from the zone, so a crash
at any point leaves the file in the zone, in quarantine, or both; never nowhere. The copy is read
with ``O_NOFOLLOW`` (:mod:`hybrid_resources.data.zones`): a link is never read through. A link or
anything else that is not a regular file is refused instead (:func:`refuse_and_record`): its name
and reason are recorded, nothing of it is read or kept, and a link is removed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hybrid_resources.data.contract import ContractViolation, file_sha256
from hybrid_resources.data.paths import atomic_write, is_local, location, printable_name
from hybrid_resources.data.warehouse import WarehouseSession
from hybrid_resources.data.zones import (
    ZoneRefusal,
    copy_and_hash,
    open_zone_file,
    plain_name,
    remove_from_zone,
    remove_link,
)

SIDECAR_SUFFIX = ".reason.json"


@dataclass(frozen=True)
class QuarantineRecord:
    """Where a rejected file went and why."""

    original_name: str
    quarantined_path: str
    sidecar_path: str
    file_hash: str
    check: str
    reason: str
    quarantined_at: str  # ISO 8601, UTC

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _destination(folder: Path, name: str, file_hash: str) -> Path:
    """A free path in ``folder`` for these bytes, or the path that already holds them.

    Reusing an identical copy makes a retry after a crash (copied, not yet unlinked)
    idempotent instead of filling quarantine with duplicates.
    """
    candidates = [name, f"{file_hash[:12]}-{name}"] + [f"{file_hash[:12]}-{n}-{name}" for n in range(1, 1000)]
    for candidate in candidates:
        destination = folder / candidate
        if not destination.exists() or file_sha256(destination) == file_hash:
            return destination
    raise OSError(f"no free quarantine name for {name!r} in {folder}")


def _keep_copy(source: Path, folder, expected: str | None) -> tuple[Any, str]:
    """Copy ``source`` (read once, ``O_NOFOLLOW``) into ``folder`` under a free name (0600, fsynced),
    verified against the hash of the bytes read (and ``expected`` when given); returns where and the hash.
    Locally the copy is made in ``folder`` and renamed into place; for an object store it is made
    beside ``source``, uploaded in one put (atomic there) and the object re-hashed."""
    local = is_local(folder)
    temporary = (folder if local else source.parent) / f".{plain_name(source.name)}.{os.getpid()}.copying"
    temporary.unlink(missing_ok=True)
    reader = os.fdopen(open_zone_file(source.parent, source.name), "rb")  # before the temporary exists
    try:
        with reader:
            file_hash, _ = copy_and_hash(reader, temporary)
        if file_sha256(temporary) != file_hash or (expected is not None and file_hash != expected):
            raise OSError(f"quarantine copy of {printable_name(source.name)!r} does not match the original; "
                          "the original was kept in place")
        destination = _destination(folder, plain_name(source.name), file_hash)
        if local and destination.resolve().parent != folder.resolve():  # belt and braces against traversal
            raise OSError(f"refusing to quarantine {printable_name(source.name)!r} outside {folder}")
        if not destination.exists():  # else the same bytes, kept by an earlier try
            if local:
                os.replace(temporary, destination)
            else:
                folder.fs.put_file(str(temporary), destination.path)
        if not local and file_sha256(destination) != file_hash:
            raise OSError(f"the uploaded quarantine copy {destination} does not match {printable_name(source.name)!r}; "
                          "the original was kept in place")
        return destination, file_hash
    finally:
        temporary.unlink(missing_ok=True)


def quarantine_file(
    path: str | os.PathLike[str], quarantine_dir: str | os.PathLike[str], *,
    check: str, reason: str, details: dict | None = None, expected_hash: str | None = None,
) -> QuarantineRecord:
    """Move the local file ``path`` into ``quarantine_dir`` unchanged, with ``<name>.reason.json`` beside it.

    The file keeps its name (prefixed with 12 hex of its SHA-256 when another file already
    has it; see ``zones.plain_name`` for names that are not plain). Steps: read ``path`` once
    with ``O_NOFOLLOW`` (a link or other non-regular file raises ``ZoneRefusal`` and nothing is
    copied) into a hidden temporary (mode 0600), hashing it, fsync; verify the copy's SHA-256
    (and ``expected_hash``: the hash of the bytes judged, when given); rename into place; write the
    sidecar (0600, temporary + rename); then remove ``path`` only while it still holds those bytes
    (a file rewritten meanwhile stays where it is). If verification fails the copy is deleted, the
    original stays and an ``OSError`` says why. ``details`` must be JSON-serialisable (other values
    are written with ``str``).
    """
    source = Path(path)
    folder = location(quarantine_dir) if isinstance(quarantine_dir, str) else quarantine_dir
    if is_local(folder):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
    destination, file_hash = _keep_copy(source, folder, expected_hash)
    sidecar = destination.with_name(destination.name + SIDECAR_SUFFIX)
    record = QuarantineRecord(
        original_name=printable_name(source.name),
        quarantined_path=str(destination),
        sidecar_path=str(sidecar),
        file_hash=file_hash,
        check=check,
        reason=reason,
        quarantined_at=datetime.now(timezone.utc).isoformat(),
    )
    payload = {**record.to_dict(), "details": details or {}}
    text = json.dumps(payload, indent=2, default=str, ensure_ascii=False)
    atomic_write(sidecar, lambda handle: handle.write(text.encode("utf-8")), durable=True)
    remove_from_zone(source, file_hash)
    return record


def quarantine_and_record(session: WarehouseSession, path: str | os.PathLike[str], quarantine_dir: str | os.PathLike[str],
                          violation: ContractViolation, *, original_name: str | None = None,
                          original: Any = None, expected_hash: str | None = None) -> QuarantineRecord:
    """The one way a rejected file leaves a zone: :func:`quarantine_file` (the bytes kept, the reason
    beside them), then a row in the warehouse's ``quarantine`` table in ``session``. The sidecar's
    details are the violation's, plus ``original_name`` (default: the file's own name) when given.

    ``path`` may be the staged copy that was judged (``zones.stage_zone_file``, of hash
    ``expected_hash``); ``original`` is then the zone's file itself, removed afterwards while it
    still holds those bytes (``zones.remove_from_zone``)."""
    name = printable_name(original_name or Path(path).name)
    details = {**violation.details, **({"original_name": name} if original_name else {})}
    record = quarantine_file(path, quarantine_dir, check=violation.check, reason=violation.reason, details=details,
                             expected_hash=expected_hash)
    session.record_quarantine(file_hash=record.file_hash, original_name=name, quarantined_path=record.quarantined_path,
                              check=violation.check, reason=violation.reason)
    if original is not None:
        remove_from_zone(original, record.file_hash)
    return record


def refuse_and_record(session: WarehouseSession, path: str | os.PathLike[str], refusal: ZoneRefusal) -> None:
    """The one way a refused zone entry (a link, a folder, a FIFO...: see ``zones.ZoneRefusal``) is
    recorded: a row in the warehouse's ``quarantine`` table with its name and reason, no hash and no
    kept path, since nothing of it was read. A link is removed (never its target); anything else
    is left where it is (a folder may hold someone's files)."""
    session.record_quarantine(file_hash="", original_name=printable_name(Path(path).name), quarantined_path="",
                              check=refusal.check, reason=refusal.reason)
    if refusal.check == "symlink":
        remove_link(path)


def read_sidecar(quarantined_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The reason record written beside a quarantined file."""
    path = location(quarantined_path)
    return json.loads(path.with_name(path.name + SIDECAR_SUFFIX).read_text(encoding="utf-8"))
