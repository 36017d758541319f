"""The spend journal: an append-only JSON-lines file per ledger, written before the warehouse.

A paid quantum task is billed when the device creates it. The ledger appends one line per billed
task to its own journal file (flushed and fsync'd before the task is handed back), then records
journal entries in the warehouse in batches. A warehouse that is locked by another process (or a
process killed before its batch was written) therefore loses nothing: whatever the journal holds
and the warehouse does not is recorded by the next ledger that opens the warehouse (see
:func:`claim_dead_journals`), and every entry carries an id, so replaying it twice records it
once (``spend_entries`` in the warehouse holds the ids already recorded).

Each open ledger holds an exclusive ``flock`` on its own file. A file nobody holds belongs to a
ledger that closed without recording it, or to a process that died: its entries are replayed and
the file removed. A file that is held belongs to a live ledger in some process: its unrecorded
entries count against the budgets (:func:`live_journal_entries`) but are left to their owner.

The window this cannot close: a process killed between the device's creation of a task and the
journal line (microseconds, no I/O in between but the line itself) loses that one record.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUFFIX = ".jsonl"


def journal_dir(warehouse_file: Path) -> Path:
    """Where the spend journals of ``warehouse_file`` live: ``<file>.spend-journal/`` beside it
    (under the data root for the default warehouse), one folder per warehouse."""
    return warehouse_file.with_name(warehouse_file.name + ".spend-journal")


def read_entries(path: Path) -> list[dict[str, Any]]:
    """The entries of one journal file; a torn last line (a write cut off by a kill) is skipped."""
    entries = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return entries
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("id"):
            entries.append(entry)
    return entries


def _try_lock(handle: Any) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class SpendJournal:
    """One ledger's journal file, locked for as long as the ledger is open."""

    def __init__(self, directory: Path, ledger_id: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{ledger_id}{SUFFIX}"
        self._handle = open(self.path, "a", encoding="utf-8")
        if not _try_lock(self._handle):  # a ledger id is a fresh uuid: nobody else can hold it
            raise RuntimeError(f"spend journal {self.path} is held by another ledger")

    def append(self, entry: dict[str, Any]) -> None:
        """Write one entry and fsync it: once this returns, the spend survives a kill."""
        self._handle.write(json.dumps(entry, sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self, *, recorded: bool) -> None:
        """Release the file: removed when every entry is in the warehouse (``recorded``), else
        left for the next ledger to replay."""
        if self._handle.closed:
            return
        if recorded:
            self.path.unlink(missing_ok=True)  # removed while still locked: no replayer can read it half-gone
        self._handle.close()  # closing drops the flock


@dataclass
class ClaimedJournal:
    """A dead ledger's journal, locked by the replayer until its entries are recorded."""

    path: Path
    handle: Any
    entries: list[dict[str, Any]] = field(default_factory=list)

    def done(self, *, recorded: bool) -> None:
        if recorded:
            self.path.unlink(missing_ok=True)
        self.handle.close()


def claim_dead_journals(directory: Path) -> list[ClaimedJournal]:
    """The journal files in ``directory`` that no live ledger holds, each locked for the caller
    (call :meth:`ClaimedJournal.done` after recording, or on failure)."""
    claimed = []
    for path in sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []:
        try:
            handle = open(path, "r+", encoding="utf-8")
        except FileNotFoundError:  # removed by its owner meanwhile
            continue
        if _try_lock(handle):
            claimed.append(ClaimedJournal(path, handle, read_entries(path)))
        else:
            handle.close()
    return claimed


def live_journal_entries(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """{ledger id: entries} of the journal files live ledgers hold (their unrecorded spend counts
    at admission); files nobody holds are left out (:func:`claim_dead_journals` takes them)."""
    live = {}
    for path in sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []:
        try:
            with open(path, "r", encoding="utf-8") as handle:
                if _try_lock(handle):
                    continue  # dead (closing the handle drops the lock again)
        except FileNotFoundError:
            continue
        live[path.name[: -len(SUFFIX)]] = read_entries(path)
    return live
