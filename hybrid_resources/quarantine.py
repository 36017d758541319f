"""Quarantine: a rejected landing file is kept, byte for byte, beside a sidecar giving the reason.

Order of operations is copy -> verify hash -> write sidecar -> remove from landing, so a crash
at any point leaves the file in landing, in quarantine, or both; never nowhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hybrid_resources.contract import file_sha256

SIDECAR_SUFFIX = ".reason.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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


def safe_partition_key(file_name: str) -> str:
    """A readable, deterministic Dagster partition key for a landing file name.

    Accents are folded to ASCII, runs of other characters (spaces, '/', non-Latin text)
    become '_', and leading dots are dropped, so '..' can never climb out of a folder when
    the key is used in a path. When anything was changed, 8 hex characters of the original
    name's hash are appended, so two names that fold alike keep distinct keys.

    >>> safe_partition_key("batch 1.csv")
    'batch_1.csv-4bca0352'
    >>> safe_partition_key("batch_1.csv")
    'batch_1.csv'
    """
    folded = unicodedata.normalize("NFKD", file_name).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", folded).lstrip(".")
    cleaned = cleaned.replace("..", "_")[:120] or "file"
    if cleaned == file_name:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(file_name.encode()).hexdigest()[:8]}"


def _free_destination(folder: Path, name: str, file_hash: str) -> Path:
    destination = folder / name
    if not destination.exists():
        return destination
    return folder / f"{file_hash[:12]}-{name}"


def quarantine_file(
    path: str | os.PathLike[str], quarantine_dir: str | os.PathLike[str], *,
    check: str, reason: str, details: dict | None = None,
) -> QuarantineRecord:
    """Move ``path`` into ``quarantine_dir`` unchanged, with ``<name>.reason.json`` beside it.

    The copy's SHA-256 must equal the original's before the original is removed; otherwise
    the copy is deleted, the original stays in landing and an ``OSError`` says why.
    """
    source = Path(path)
    folder = Path(quarantine_dir)
    folder.mkdir(parents=True, exist_ok=True)
    file_hash = file_sha256(source)
    # The stored name is made safe too: a name like '..' must not escape the quarantine folder.
    destination = _free_destination(folder, safe_partition_key(source.name), file_hash)
    temporary = destination.with_name(f".{destination.name}.copying")
    shutil.copyfile(source, temporary)
    if file_sha256(temporary) != file_hash:
        temporary.unlink(missing_ok=True)
        raise OSError(f"quarantine copy of {source.name!r} does not match the original; the original was kept in place")
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
    sidecar_temporary = sidecar.with_name(f".{sidecar.name}.tmp")
    sidecar_temporary.write_text(json.dumps({**record.to_dict(), "details": details or {}}, indent=2, default=str))
    os.replace(sidecar_temporary, sidecar)
    source.unlink()
    return record
