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

With the warehouse on PostgreSQL and a data root on an object store, the journals live there,
where any host can replay a dead host's spend: a ledger's journal is then a folder with one
object per entry (each put whole, durable once it returns), and the proof that its ledger lives
is the ledger's lease on the PostgreSQL server (:meth:`~hybrid_resources.data.warehouse.Warehouse.lease`,
held from before its first entry), which the server drops with a killed process's connection. A
replayer claims a dead ledger's journal by taking that lease itself.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hybrid_resources.data.paths import (
    DataLayout,
    Location,
    atomic_write,
    is_local,
    remove_tree,
)
from hybrid_resources.data.warehouse import PostgresWarehouse, Warehouse

SUFFIX = ".jsonl"
Leased = Callable[[list[str]], set[str]]  # which of these ledger ids some process holds a lease on
Claim = Callable[[str], Any]  # take a ledger id's lease: a handle whose close() gives it back, or None


def journal_dir(warehouse: Warehouse) -> Location:
    """Where the spend journals of ``warehouse`` live: on the object store when the warehouse is
    PostgreSQL and the data root is shared (``<root>/spend-journal/<schema>/``, every host replays
    them), else beside the DuckDB file, or where it would be (``<file>.spend-journal/``)."""
    layout, target = DataLayout.from_env(), warehouse.target
    if isinstance(target, PostgresWarehouse) and layout.shared and not warehouse.path:
        return layout.root / "spend-journal" / target.schema
    return warehouse.file.with_name(warehouse.file.name + ".spend-journal")


def read_entries(path: Location) -> list[dict[str, Any]]:
    """The entries of one journal (a file of JSON lines, or a folder of one JSON object per entry
    on an object store); a torn last line (a write cut off by a kill) is skipped."""
    entries = []
    if not is_local(path):
        for item in sorted(path.iterdir()) if path.exists() else ():
            try:
                entries.append(json.loads(item.read_text()))
            except FileNotFoundError:  # removed by a replayer meanwhile
                continue
        return [entry for entry in entries if isinstance(entry, dict) and entry.get("id")]
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
    """One ledger's journal file, locked for as long as the ledger is open; on an object store, a
    folder of entries, which the ledger's lease (taken before this opens) proves alive."""

    def __init__(self, directory: Location, ledger_id: str):
        self.path = directory / f"{ledger_id}{SUFFIX}"
        self._handle = None
        if not is_local(directory):
            return
        directory.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a", encoding="utf-8")
        if not _try_lock(self._handle):  # a ledger id is a fresh uuid: nobody else can hold it
            raise RuntimeError(f"spend journal {self.path} is held by another ledger")

    def append(self, entry: dict[str, Any]) -> None:
        """Write one entry and fsync it (or put it whole): once this returns, the spend survives a kill."""
        line = json.dumps(entry, sort_keys=True)
        if self._handle is None:
            atomic_write(self.path / f"{entry['id']}.json", lambda handle: handle.write(line.encode()))
            return
        self._handle.write(line + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self, *, recorded: bool) -> None:
        """Release the file: removed when every entry is in the warehouse (``recorded``), else
        left for the next ledger to replay."""
        if self._handle is None:
            if recorded:
                remove_tree(self.path)
            return
        if self._handle.closed:
            return
        if recorded:
            self.path.unlink(missing_ok=True)  # removed while still locked: no replayer can read it half-gone
        self._handle.close()  # closing drops the flock


@dataclass
class ClaimedJournal:
    """A dead ledger's journal, locked by the replayer until its entries are recorded."""

    path: Location
    handle: Any  # its close() gives the journal back: the file (its flock), or the lease's connection
    entries: list[dict[str, Any]] = field(default_factory=list)

    def done(self, *, recorded: bool) -> None:
        if recorded and is_local(self.path):
            self.path.unlink(missing_ok=True)
        elif recorded:
            remove_tree(self.path)
        self.handle.close()


def _ledger_ids(directory: Location) -> list[str]:
    return sorted(path.name[: -len(SUFFIX)] for path in directory.iterdir() if path.name.endswith(SUFFIX))


def claim_dead_journals(directory: Location, claim: Claim | None = None) -> list[ClaimedJournal]:
    """The journal files in ``directory`` that no live ledger holds, each locked for the caller
    (call :meth:`ClaimedJournal.done` after recording, or on failure). On an object store a
    journal is dead when ``claim`` gets its ledger's lease (which then holds it for the caller)."""
    if not is_local(directory):
        claimed = []
        for ledger_id in _ledger_ids(directory) if directory.exists() else []:
            handle = claim(ledger_id) if claim is not None else None
            if handle is not None:
                path = directory / f"{ledger_id}{SUFFIX}"
                claimed.append(ClaimedJournal(path, handle, read_entries(path)))
        return claimed
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


def live_journal_entries(directory: Location, leased: Leased | None = None) -> dict[str, list[dict[str, Any]]]:
    """{ledger id: entries} of the journal files live ledgers hold (their unrecorded spend counts
    at admission); files nobody holds are left out (:func:`claim_dead_journals` takes them). On
    an object store a ledger lives while it holds its lease (``leased``)."""
    if not is_local(directory):
        ids = _ledger_ids(directory) if directory.exists() else []
        alive = leased(ids) if leased is not None and ids else set()
        return {ledger_id: read_entries(directory / f"{ledger_id}{SUFFIX}") for ledger_id in ids if ledger_id in alive}
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
