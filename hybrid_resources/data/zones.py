"""Reading a zone's files: regular files only, never through a link, each read exactly once.

- :func:`open_zone_file` opens a name of a local zone with ``O_NOFOLLOW`` (a link is refused, not
  followed), refuses anything ``fstat`` does not call a regular file (a FIFO is opened
  non-blocking, so it cannot hang the reader) and checks that the real path is the zone's own.
- :func:`stage_zone_file` copies a zone file once into a private staging folder (mode 0700, the
  copy 0600), hashing the bytes as it copies them. Whatever judges the file (parse, contract,
  quarantine) reads that copy, so the recorded hash is always the hash of the bytes judged, even
  when the original is rewritten meanwhile.
- A refusal is a :class:`ZoneRefusal`, a :class:`ContractViolation` with check ``symlink``,
  ``not_regular_file`` or ``outside_zone``: it is recorded, never read and never copied.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hybrid_resources.data.contract import ContractViolation
from hybrid_resources.data.paths import REFUSED_KINDS, is_local, printable_name

_CHUNK = 1 << 20
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class ZoneRefusal(ContractViolation):
    """A name in a zone that is not a regular file of that zone; nothing of it was read."""


def refusal(kind: str, name: str) -> ZoneRefusal:
    """The refusal of ``name`` for ``kind`` (a key of ``REFUSED_KINDS``, or "outside_zone")."""
    why = REFUSED_KINDS.get(kind, "its real path is outside the zone's folder, so it was not read")
    return ZoneRefusal(kind, f"{printable_name(name)!r} is {why}" if kind in REFUSED_KINDS
                       else f"{printable_name(name)!r}: {why}", {"kind": kind})


def plain_name(name: str) -> str:
    """The name a copy of a zone file gets on disk (staging, quarantine): its own, unless that is
    not a plain file name. Spaces and non-ASCII letters are fine and keep the file recognisable;
    an empty name, '.', '..', one with a path separator or NUL, one that is not UTF-8 or one too
    long for a prefix and a sidecar suffix becomes ``renamed-<16 hex of its bytes' hash><suffix>``."""
    raw = os.fsencode(name)
    plain = (name not in ("", ".", "..") and b"/" not in raw and b"\\" not in raw and b"\x00" not in raw
             and printable_name(name) == name and len(raw) <= 200)
    if plain:
        return name
    suffix = Path(printable_name(name)).suffix.lower()
    suffix = suffix if suffix[1:].isalnum() and len(suffix) <= 10 else ""
    return f"renamed-{hashlib.sha256(raw).hexdigest()[:16]}{suffix}"


def open_zone_file(folder: str | os.PathLike[str], name: str) -> int:
    """A read-only descriptor of the regular file ``name`` directly in the local ``folder``, or
    :class:`ZoneRefusal`: a link (``O_NOFOLLOW``), anything but a regular file, or a real path
    outside ``folder``. The caller closes it."""
    path = os.path.join(os.fspath(folder), name)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # never open a device or FIFO at all
            raise refusal("symlink" if os.path.islink(path) else "not_regular_file", name)
        descriptor = os.open(path, _READ_FLAGS)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK):  # the name became a link after the lstat
            raise refusal("symlink", name) from None
        if error.errno == errno.ENXIO:  # a socket
            raise refusal("not_regular_file", name) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise refusal("not_regular_file", name)
        if os.path.realpath(path) != os.path.join(os.path.realpath(folder), name):
            raise refusal("outside_zone", name)
        return descriptor
    except BaseException:
        os.close(descriptor)
        raise


def _open_source(source):
    """A binary reader of a zone file: ``O_NOFOLLOW`` for a local one, the store's own otherwise."""
    if is_local(source):
        return os.fdopen(open_zone_file(Path(source).parent, Path(source).name), "rb")
    return source.open("rb")


def zone_file_sha256(source) -> str:
    """SHA-256 of a zone file (a local Path or any UPath), read once without following a link;
    :class:`ZoneRefusal` when it is not a regular file of its folder."""
    digest = hashlib.sha256()
    with _open_source(source) as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StagedFile:
    """The one private copy of a zone file that is hashed, parsed and (if rejected) quarantined."""

    path: Path  # <staging>/<private folder>/<plain_name(original name)>
    file_hash: str  # SHA-256 of exactly these bytes
    size: int

    def discard(self) -> None:
        """Remove the copy and its private folder."""
        shutil.rmtree(self.path.parent, ignore_errors=True)


def copy_and_hash(reader, target: Path) -> tuple[str, int]:
    """Copy ``reader`` into the new file ``target`` (mode 0600; refused if it exists, even as a
    link), fsynced; returns the SHA-256 and size of the bytes written."""
    digest, size = hashlib.sha256(), 0
    with os.fdopen(os.open(target, _CREATE_FLAGS, 0o600), "wb") as out:
        os.fchmod(out.fileno(), 0o600)  # whatever the umask
        for chunk in iter(lambda: reader.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def stage_zone_file(source, staging_dir: str | os.PathLike[str]) -> StagedFile:
    """Copy the zone file ``source`` (a local Path or any UPath) once into a new private folder of
    ``staging_dir``, hashing it as it is copied. :class:`ZoneRefusal` for a link or anything not a
    regular file (nothing is read or copied then). Call :meth:`StagedFile.discard` when done."""
    Path(staging_dir).mkdir(parents=True, exist_ok=True)
    with _open_source(source) as reader:
        folder = Path(tempfile.mkdtemp(dir=staging_dir, prefix="stage-"))  # mode 0700
        target = folder / plain_name(source.name)
        try:
            file_hash, size = copy_and_hash(reader, target)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return StagedFile(target, file_hash, size)


def remove_from_zone(source, file_hash: str) -> bool:
    """Remove the zone file ``source`` after its judged copy (of hash ``file_hash``) was kept
    elsewhere: a remote one at once; a local one only while it is still a regular file holding
    those bytes (one rewritten meanwhile stays, to be judged again). True when removed."""
    if not is_local(source):
        source.unlink()
        return True
    try:
        if zone_file_sha256(source) != file_hash:
            return False
    except (ZoneRefusal, FileNotFoundError):
        return False
    os.unlink(source)
    return True


def remove_link(path: str | os.PathLike[str]) -> bool:
    """Remove ``path`` if it is (still) a symbolic link; the target is never touched. True when removed."""
    try:
        if not os.path.islink(path):
            return False
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
