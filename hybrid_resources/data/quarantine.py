"""Quarantine: a rejected landing file is kept, byte for byte, beside a sidecar giving the reason.

Order of operations is copy -> verify hash -> write sidecar -> remove from landing, so a crash
at any point leaves the file in landing, in quarantine, or both; never nowhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hybrid_resources.data.contract import ContractViolation, file_sha256
from hybrid_resources.data.paths import atomic_write
from hybrid_resources.data.warehouse import WarehouseSession

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


def _stored_name(file_name: str) -> str:
    """The name a quarantined file keeps: its own, unless that is not a plain file name.

    Spaces and non-ASCII letters are fine on disk and keep the file recognisable; an empty
    name, '.', '..', one with a path separator or NUL, or one too long for a prefix and the
    sidecar suffix becomes a hash of the name (the sidecar keeps the original name).
    """
    plain = (
        file_name not in ("", ".", "..")
        and "/" not in file_name and "\\" not in file_name and "\x00" not in file_name
        and len(file_name.encode()) <= 200  # room for a hash prefix and the sidecar suffix
    )
    return file_name if plain else f"renamed-{hashlib.sha256(file_name.encode()).hexdigest()[:16]}"


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


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def quarantine_file(
    path: str | os.PathLike[str], quarantine_dir: str | os.PathLike[str], *,
    check: str, reason: str, details: dict | None = None,
) -> QuarantineRecord:
    """Move ``path`` into ``quarantine_dir`` unchanged, with ``<name>.reason.json`` beside it.

    The file keeps its name (prefixed with 12 hex of its SHA-256 when another file already
    has it). Steps: copy to a hidden temporary name, fsync, verify the copy's SHA-256 equals
    the original's, rename into place, write the sidecar (temporary + rename), and only
    then remove the original. If verification fails the copy is deleted, the original stays
    in landing and an ``OSError`` says why. ``details`` must be JSON-serialisable (other
    values are written with ``str``).
    """
    source = Path(path)
    folder = Path(quarantine_dir)
    folder.mkdir(parents=True, exist_ok=True)
    file_hash = file_sha256(source)
    destination = _destination(folder, _stored_name(source.name), file_hash)
    if destination.resolve().parent != folder.resolve():  # belt and braces against traversal
        raise OSError(f"refusing to quarantine {source.name!r} outside {folder}")
    if not destination.exists():
        temporary = destination.with_name(f".{destination.name}.copying")
        shutil.copyfile(source, temporary)
        _fsync(temporary)
        if file_sha256(temporary) != file_hash:
            temporary.unlink(missing_ok=True)
            raise OSError(f"quarantine copy of {source.name!r} does not match the original; "
                          "the original was kept in place")
        os.replace(temporary, destination)
    sidecar = destination.with_name(destination.name + SIDECAR_SUFFIX)
    record = QuarantineRecord(
        original_name=source.name,
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
    source.unlink()
    return record


def quarantine_and_record(session: WarehouseSession, path: str | os.PathLike[str], quarantine_dir: str | os.PathLike[str],
                          violation: ContractViolation, *, original_name: str | None = None) -> QuarantineRecord:
    """The one way a rejected file leaves a zone: :func:`quarantine_file` (the bytes kept, the reason
    beside them), then a row in the warehouse's ``quarantine`` table in ``session``. The sidecar's
    details are the violation's, plus ``original_name`` (default: the file's own name) when given."""
    name = original_name or Path(path).name
    details = {**violation.details, **({"original_name": original_name} if original_name else {})}
    record = quarantine_file(path, quarantine_dir, check=violation.check, reason=violation.reason, details=details)
    session.record_quarantine(file_hash=record.file_hash, original_name=name, quarantined_path=record.quarantined_path,
                              check=violation.check, reason=violation.reason)
    return record


def read_sidecar(quarantined_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The reason record written beside a quarantined file."""
    path = Path(quarantined_path)
    return json.loads(path.with_name(path.name + SIDECAR_SUFFIX).read_text(encoding="utf-8"))
