"""Incremental on-disk cache of kernel entries (and exact feature states). No pickle.

One exchange per kernel request (see :mod:`hybrid_resources.quantum.kernel_engine`):

1. :meth:`KernelCache.lookup` copies every cached entry of the request into the result and
   says, once, what it holds: a :class:`CachedEntries` with the ``known`` mask, the states
   it can serve (:meth:`CachedEntries.states`), and a journal for work in progress;
2. the engine computes what is missing;
3. :meth:`KernelCache.store` takes the :class:`KernelUpdate` back, once: it writes the new
   panels and states, compacts what the request read, and folds the journal away.

Layout under ``root`` (the caller passes ``HYBRID_DATA_DIR/kernel_cache``)::

    <namespace>/namespace.json            what produced the entries: spec dict + backend key
    <namespace>/panels/<id>.npy           float64 (len(rows), len(cols)) kernel values
    <namespace>/panels/<id>.json          {"rows": [key, ...], "cols": [key, ...] or null (= rows)}
    <namespace>/states/<id>.npy           (len(keys), 2**n) statevectors (exact path only)
    <namespace>/states/<id>.json          {"keys": [key, ...]}
    <namespace>/journal/<id>.jsonl        shot-path entries of a request still running (or killed):
                                          one {"r": [key...], "c": [key...], "v": [value...]} per batch

``namespace`` = sha256 of (feature-map spec hash, backend cache key): a different circuit
version, device, shot count or seed lands in a different folder, so nothing stale is reused.
Keys are per-sample content hashes. A panel is written once and never modified (the .npy
first, then the .json that makes it visible, each via a temp file and ``os.replace``), so
readers never see a half-written panel and concurrent writers cannot corrupt each other.
Compaction may delete a panel whose entries another panel now holds (the .json first); a
reader that listed it just skips it. Entries are symmetric: k(a, b) is also used for k(b, a).
The journal is what lets a killed shot-based request resume without sending its finished
circuits again: each batch is appended (and flushed) as soon as the device returns it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pathlib
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from hybrid_resources.data.paths import atomic_write
from hybrid_resources.quantum.kernel_request import KernelRequest

FORMAT_VERSION = 2  # 2: a square panel stores its keys once
MAX_FILES_PER_REQUEST = 6  # panels or states files one request may read before they are compacted
_MAX_BLOCK_COPIES = 1024  # above this many run x run blocks, one fancy-indexed copy is cheaper


def namespace_id(spec_hash: str, backend_key: dict[str, Any]) -> str:
    """sha256 hex (first 32 chars) of the canonical JSON of spec hash + backend key."""
    payload = json.dumps(
        {"format": FORMAT_VERSION, "spec_hash": spec_hash, "backend": backend_key},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


Index = slice | np.ndarray  # a contiguous run as a slice (cheap block copies), else intp indices


def as_slice(idx: np.ndarray) -> Index:
    """A slice when ``idx`` is a contiguous increasing run, else ``idx`` itself."""
    if idx.size and idx[-1] - idx[0] == idx.size - 1 and (idx.size < 2 or np.all(np.diff(idx) == 1)):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def take_block(a: np.ndarray, r: Index, c: Index) -> np.ndarray:
    """a[rows][:, cols]; a view when both are slices."""
    if isinstance(r, slice) and isinstance(c, slice):
        return a[r, c]
    if isinstance(r, slice):
        return a[r][:, c]
    if isinstance(c, slice):
        return a[:, c][r]
    return a[np.ix_(r, c)]


def put_block(a: np.ndarray, r: Index, c: Index, v: Any) -> None:
    """a[rows][:, cols] = v, in place."""
    if isinstance(r, slice) or isinstance(c, slice):
        a[r, c] = v  # basic + advanced indexing on distinct axes assigns the block
    else:
        a[np.ix_(r, c)] = v


# ---------------------------------------------------------------------------------------
# What goes back and forth between the engine and the cache
# ---------------------------------------------------------------------------------------


@dataclass
class StateLookup:
    """Statevectors for ``keys``: rows found in the cache are filled; the engine fills the rest.

    ``states`` (len(keys), 2**n); ``found`` bool (len(keys),); ``files`` the cached files read.
    """

    keys: list[str]
    states: np.ndarray
    found: np.ndarray
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class KernelUpdate:
    """What the engine computed for a request, handed back to the cache once.

    ``matrix`` is the finished (R, C) result; ``blocks`` the (row indices, column indices)
    rectangles it computed (each entry of them is final in ``matrix``); ``states`` the state
    lookups it made, with the rows it simulated filled in.
    """

    matrix: np.ndarray
    blocks: Sequence[tuple[np.ndarray, np.ndarray]] = ()
    states: Sequence[StateLookup] = ()


@dataclass
class CachedEntries:
    """What the cache holds for one request, said once by :meth:`KernelCache.lookup`.

    ``known`` (R, C) bool marks the entries already copied into the result (from panels and
    from journals of earlier, interrupted requests); ``from_cache`` counts them, the diagonal
    of a symmetric request excluded (it is 1 by definition).
    """

    cache: KernelCache
    request: KernelRequest
    namespace: str
    known: np.ndarray
    from_cache: int
    panels_read: list[str]
    journals_read: list[pathlib.Path]
    _journal: pathlib.Path | None = None

    def states(self, indices: np.ndarray, side: str, dtype: np.dtype, width: int) -> StateLookup:
        """Cached states of the request's rows (``side="rows"``) or columns at ``indices``."""
        keys = self.request.row_keys if side == "rows" else self.request.col_keys
        wanted = [keys[i] for i in indices]
        lookup = StateLookup(wanted, np.empty((len(wanted), width), dtype=dtype), np.zeros(len(wanted), dtype=bool))
        self.cache._load_states(self.namespace, lookup)
        return lookup

    def record_progress(self, pairs: np.ndarray, values: np.ndarray) -> None:
        """Append finished (row, col) entries to this request's journal, flushed to disk at once,
        so a killed request resumes without computing (or paying for) them again."""
        if self._journal is None:
            self._journal = self.cache.root / self.namespace / "journal" / f"{os.getpid()}-{uuid.uuid4().hex}.jsonl"
            self._journal.parent.mkdir(parents=True, exist_ok=True)
        rows, cols = self.request.row_keys, self.request.col_keys
        line = json.dumps({"r": [rows[i] for i in pairs[:, 0]], "c": [cols[j] for j in pairs[:, 1]],
                           "v": [float(v) for v in values]})
        with open(self._journal, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())


# ---------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    pid: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]


class KernelCache:
    """Content-addressed kernel entries, shared by every run that uses the same root."""

    def __init__(self, root: pathlib.Path):
        self.root = pathlib.Path(root)
        # Panels are immutable once visible, so their key lists can be memoised by id.
        self._panel_memo: dict[tuple[str, str], _Panel] = {}
        self._states_memo: dict[tuple[str, str], tuple[str, ...]] = {}

    # -- the exchange -------------------------------------------------------------------

    def lookup(self, request: KernelRequest, out: np.ndarray) -> CachedEntries:
        """Copy every cached entry of ``request`` into ``out`` (R, C) and say what the cache holds."""
        ns = self.namespace(request.spec, request.backend)
        known = np.zeros(out.shape, dtype=bool)
        panels = self._fill(ns, request.row_keys, request.col_keys, out, known)
        journals = self._replay_journals(ns, request, out, known)
        from_cache = int(np.count_nonzero(known)) - (int(np.trace(known)) if request.symmetric else 0)
        return CachedEntries(self, request, ns, known, from_cache, panels, journals)

    def store(self, held: CachedEntries, update: KernelUpdate) -> None:
        """Persist what the engine computed for ``held.request``, compact what it read, and
        drop the journals its panels now cover."""
        ns, request = held.namespace, held.request
        rows, cols = request.row_keys, request.col_keys
        for r, c in update.blocks:
            self._store_panel(ns, [rows[i] for i in r], [cols[j] for j in c],
                              take_block(update.matrix, as_slice(r), as_slice(c)))
        for lookup in update.states:
            simulated = np.flatnonzero(~lookup.found)
            if simulated.size:
                self._store_states(ns, [lookup.keys[i] for i in simulated], lookup.states[simulated])
            self._compact_states(ns, lookup.keys, lookup.states, lookup.files)
        if held.journals_read:
            # Entries replayed from a journal are in the result but in no block: keep them in a panel.
            self._store_panel(ns, rows, cols, update.matrix)
        self._compact_panels(ns, rows, cols, update.matrix, held.panels_read, symmetric=request.symmetric)
        for journal in [*held.journals_read, *([held._journal] if held._journal else [])]:
            journal.unlink(missing_ok=True)

    # -- per-sample vectors (outside a kernel request) ---------------------------------

    def load_rows(self, spec: Any, backend: Any, keys: Sequence[str], width: int,
                  dtype: np.dtype = np.float64) -> StateLookup:
        """Cached per-sample vectors (len(keys), width) of ``spec`` on ``backend``, e.g. the
        projected kernel's Bloch vectors: the rows found are filled and marked in ``found``."""
        lookup = StateLookup(list(keys), np.empty((len(keys), width), dtype=dtype), np.zeros(len(keys), dtype=bool))
        self._load_states(self.namespace(spec, backend), lookup)
        return lookup

    def store_rows(self, spec: Any, backend: Any, lookup: StateLookup) -> None:
        """Persist the rows of ``lookup`` not found in the cache (filled in by the caller)."""
        ns = self.namespace(spec, backend)
        computed = np.flatnonzero(~lookup.found)
        if computed.size:
            self._store_states(ns, [lookup.keys[i] for i in computed], lookup.states[computed])
        self._compact_states(ns, lookup.keys, lookup.states, lookup.files)

    # -- namespaces ---------------------------------------------------------------------

    def namespace(self, spec: Any, backend: Any) -> str:
        """Namespace id for a FeatureMapSpec + BackendConfig; writes namespace.json once."""
        ns = namespace_id(spec.spec_hash, backend.cache_key())
        meta = self.root / ns / "namespace.json"
        if not meta.exists():
            body = {"format": FORMAT_VERSION, "spec": spec.to_dict(), "spec_hash": spec.spec_hash,
                    "backend": backend.cache_key()}
            atomic_write(meta, lambda f: f.write(json.dumps(body, sort_keys=True, indent=1).encode()))
        return ns

    def namespaces(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "namespace.json").exists())

    # -- kernel panels ------------------------------------------------------------------

    def _panels(self, ns: str) -> list[_Panel]:
        folder = self.root / ns / "panels"
        if not folder.exists():
            return []
        panels = []
        for meta in sorted(folder.glob("*.json")):
            pid = meta.stem
            memo = self._panel_memo.get((ns, pid))
            if memo is None:
                try:
                    d = json.loads(meta.read_text())
                except FileNotFoundError:
                    continue  # compacted away since the listing
                rows = tuple(d["rows"])
                memo = _Panel(pid, rows, rows if d["cols"] is None else tuple(d["cols"]))
                self._panel_memo[(ns, pid)] = memo
            panels.append(memo)
        return panels

    def _store_panel(self, ns: str, row_keys: Sequence[str], col_keys: Sequence[str], values: np.ndarray) -> str:
        """Persist values (len(row_keys), len(col_keys)) float64; returns the panel id."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(row_keys), len(col_keys)):
            raise ValueError(f"values shape {values.shape} != ({len(row_keys)}, {len(col_keys)})")
        if values.size == 0:
            return ""
        pid = _keys_id(row_keys, col_keys)
        folder = self.root / ns / "panels"
        if (folder / f"{pid}.json").exists():
            return pid  # same keys, same namespace => same entries already stored
        _save_npy(folder / f"{pid}.npy", values)
        square = len(row_keys) == len(col_keys) and list(row_keys) == list(col_keys)
        meta = {"rows": list(row_keys), "cols": None if square else list(col_keys)}
        atomic_write(folder / f"{pid}.json", lambda f: f.write(json.dumps(meta).encode()))
        return pid

    def _fill(self, ns: str, row_keys: Sequence[str], col_keys: Sequence[str], out: np.ndarray,
              known: np.ndarray) -> list[str]:
        """Copy every cached entry for (row_keys x col_keys) into ``out``; mark it in ``known``.

        Uses both k(a,b) and k(b,a): a panel is copied both ways round, so for a symmetric
        request (``col_keys is row_keys``) ``known`` comes back symmetric. Returns the ids of
        the panels copied from (for compaction).
        """
        used: list[str] = []
        rreq = tuple(row_keys)
        creq = rreq if col_keys is row_keys else tuple(col_keys)
        rpos = {k: i for i, k in enumerate(rreq)}
        cpos = rpos if creq is rreq else {k: i for i, k in enumerate(creq)}
        for panel in self._panels(ns):
            mm: np.ndarray | None = None
            square = panel.rows is panel.cols or panel.rows == panel.cols
            for prow, pcol, transpose in ((panel.rows, panel.cols, False), (panel.cols, panel.rows, True)):
                if transpose and square:
                    break  # a square panel over one key list is symmetric already
                rs, rd, nr = _match(prow, rreq, rpos)
                if nr == 0:
                    continue
                cs, cd, nc = (rs, rd, nr) if (square and cpos is rpos) else _match(pcol, creq, cpos)
                if nc == 0:
                    continue
                if mm is None:
                    try:
                        mm = _load_mapped(self.root / ns / "panels" / f"{panel.pid}.npy")
                    except FileNotFoundError:
                        break  # compacted away since the listing: its entries are elsewhere or get computed
                    used.append(panel.pid)
                src = mm.T if transpose else mm
                row_runs, col_runs = _runs(rs, rd), _runs(cs, cd)
                if len(row_runs) * len(col_runs) <= _MAX_BLOCK_COPIES:
                    # Block copies, even for interleaved keys: far cheaper than a fancy scatter.
                    for r_src, r_dst in row_runs:
                        for c_src, c_dst in col_runs:
                            out[r_dst, c_dst] = src[r_src, c_src]
                            known[r_dst, c_dst] = True
                else:
                    put_block(out, rd, cd, take_block(src, rs, cs))
                    put_block(known, rd, cd, True)
        return used

    # -- the journal of requests in progress ---------------------------------------------

    def _replay_journals(self, ns: str, request: KernelRequest, out: np.ndarray, known: np.ndarray) -> list[pathlib.Path]:
        """Copy journaled entries of ``request`` into ``out``; returns the journals wholly inside it
        (their entries end up in this request's panels, so :meth:`store` can delete them)."""
        folder = self.root / ns / "journal"
        if not folder.exists():
            return []
        rpos = {k: i for i, k in enumerate(request.row_keys)}
        cpos = rpos if request.symmetric else {k: i for i, k in enumerate(request.col_keys)}
        covered = []
        for journal in sorted(folder.glob("*.jsonl")):
            inside = True
            for entry in _journal_entries(journal):
                for rk, ck, value in zip(entry["r"], entry["c"], entry["v"]):
                    hit = False
                    for a, b in ((rk, ck), (ck, rk)):
                        i, j = rpos.get(a), cpos.get(b)
                        if i is not None and j is not None:
                            out[i, j], known[i, j], hit = value, True, True
                    inside = inside and hit
            if inside:
                covered.append(journal)
        return covered

    # -- exact feature states -----------------------------------------------------------

    def _store_states(self, ns: str, keys: Sequence[str], states: np.ndarray) -> str:
        """Persist (len(keys), 2**n) statevectors for the exact path."""
        if len(keys) == 0:
            return ""
        sid = _keys_id(keys)
        folder = self.root / ns / "states"
        if (folder / f"{sid}.json").exists():
            return sid
        _save_npy(folder / f"{sid}.npy", states)
        atomic_write(folder / f"{sid}.json", lambda f: f.write(json.dumps({"keys": list(keys)}).encode()))
        return sid

    def _load_states(self, ns: str, lookup: StateLookup) -> None:
        """Fill the rows of ``lookup.states`` that the cache holds; mark them in ``lookup.found``
        and name the files read in ``lookup.files``."""
        folder = self.root / ns / "states"
        if not folder.exists() or len(lookup.keys) == 0:
            return
        out, found = lookup.states, lookup.found
        request = tuple(lookup.keys)
        pos = {k: i for i, k in enumerate(request)}
        for meta in sorted(folder.glob("*.json")):
            sid = meta.stem
            skeys = self._states_memo.get((ns, sid))
            if skeys is None:
                try:
                    skeys = tuple(json.loads(meta.read_text())["keys"])
                except FileNotFoundError:
                    continue  # compacted away since the listing
                self._states_memo[(ns, sid)] = skeys
            src, dst, count = _match(skeys, request, pos)
            if count == 0:
                continue
            if not isinstance(dst, slice) or found[dst].any():
                # Keep the first copy of each state (a key may sit in several files).
                src_i, dst_i = np.arange(len(skeys))[src], np.arange(len(request))[dst]
                keep = ~found[dst_i]
                if not keep.any():
                    continue
                src, dst = as_slice(src_i[keep]), as_slice(dst_i[keep])
            try:
                mm = _load_mapped(folder / f"{sid}.npy")
            except FileNotFoundError:
                continue
            if mm.shape[1] != out.shape[1]:
                continue
            for rows_src, rows_dst in _runs(src, dst):
                out[rows_dst] = mm[rows_src]
            found[dst] = True
            lookup.files.append(sid)
            if found.all():
                break

    # -- compaction ---------------------------------------------------------------------
    #
    # Every refresh adds a panel (new rows x all columns) and a states file, and each one
    # read costs a little, so a growing dataset would slow refreshes down linearly. After a
    # request that read more than MAX_FILES_PER_REQUEST of either, they are rewritten as
    # two: the largest one ("base") and one file with everything else the request holds,
    # or as one file once that rest outgrows half the base. Then every file inside the
    # request is deleted (json first, so readers that listed it skip it).

    def _compact_panels(self, ns: str, row_keys: Sequence[str], col_keys: Sequence[str], matrix: np.ndarray,
                        used: Sequence[str], *, symmetric: bool) -> list[str]:
        """Rewrite the panels that served a finished request; returns the ids kept ([] if none needed).

        ``matrix`` (len(row_keys), len(col_keys)) holds every entry of the request; ``used`` the
        panels the lookup read. A symmetric request keeps its largest square panel and adds one
        strip (keys outside it x all keys); together with its mirror that covers the request.
        """
        if len(used) <= MAX_FILES_PER_REQUEST:
            return []
        with self._compacting(ns) as alone:
            if not alone:
                return []
            panels = {p.pid: p for p in self._panels(ns)}  # listed under the lock: nothing vanishes now
            squares = [panels[pid] for pid in used if pid in panels and panels[pid].rows == panels[pid].cols]
            base = max(squares, key=lambda p: len(p.rows), default=None) if symmetric else None
            rest = _outside(row_keys, base.rows if base else ())
            if base is not None and rest.size <= len(base.rows) // 2:
                keep = [base.pid, self._store_panel(ns, [row_keys[i] for i in rest], col_keys,
                                                    take_block(matrix, as_slice(rest), slice(None)))]
            else:
                keep = [self._store_panel(ns, row_keys, col_keys, matrix)]
            rows, cols = set(row_keys), set(col_keys)
            for panel in panels.values():
                inside = ((rows.issuperset(panel.rows) and cols.issuperset(panel.cols))
                          or (cols.issuperset(panel.rows) and rows.issuperset(panel.cols)))
                if inside and panel.pid not in keep:
                    _remove(self.root / ns / "panels", panel.pid)
            return keep

    def _compact_states(self, ns: str, keys: Sequence[str], states: np.ndarray, used: Sequence[str]) -> list[str]:
        """Rewrite the states files that served a lookup; ``states`` (len(keys), 2**n) holds all of
        its states and ``used`` the files it read. Returns the ids kept ([] if none needed)."""
        if len(used) <= MAX_FILES_PER_REQUEST:
            return []
        folder = self.root / ns / "states"
        with self._compacting(ns) as alone:
            if not alone:
                return []
            files = {sid: self._states_memo[(ns, sid)] for sid in used
                     if (ns, sid) in self._states_memo and (folder / f"{sid}.json").exists()}
            base = max(files, key=lambda sid: len(files[sid]), default=None)
            rest = _outside(keys, files[base] if base else ())
            if base is not None and rest.size <= len(files[base]) // 2:
                keep = [base, self._store_states(ns, [keys[i] for i in rest], states[rest])]
            else:
                keep = [self._store_states(ns, keys, states)]
            wanted = set(keys)
            for sid, skeys in files.items():
                if sid not in keep and wanted.issuperset(skeys):
                    _remove(folder, sid)
            return keep

    @contextmanager
    def _compacting(self, ns: str) -> Iterator[bool]:
        """Whether this process may compact ``ns`` now: an exclusive, non-blocking flock on its
        namespace.json. One compactor at a time means none deletes what another one keeps;
        a busy lock just skips this round (compaction only saves time)."""
        with open(self.root / ns / "namespace.json", "rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------
# Files and key matching
# ---------------------------------------------------------------------------------------


def _keys_id(*key_lists: Sequence[str]) -> str:
    h = hashlib.sha256()
    for keys in key_lists:
        h.update(f"{len(keys)}\0".encode())
        h.update("\0".join(keys).encode())
        h.update(b"\1")
    return h.hexdigest()[:32]


def _save_npy(path: pathlib.Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


def _load_mapped(path: pathlib.Path) -> np.ndarray:
    """A .npy file memory-mapped read-only, as a plain ndarray view (slicing an np.memmap
    runs Python code per slice, which adds up over many block copies)."""
    return np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)


def _journal_entries(path: pathlib.Path) -> Iterator[dict[str, list]]:
    """The complete lines of a journal (a line torn by a kill is skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if len(entry.get("r", ())) == len(entry.get("c", ())) == len(entry.get("v", ())):
            yield entry


def _outside(keys: Sequence[str], stored: Sequence[str]) -> np.ndarray:
    """Indices of ``keys`` not among ``stored``."""
    have = set(stored)
    return np.fromiter((i for i, k in enumerate(keys) if k not in have), dtype=np.intp)


def _remove(folder: pathlib.Path, file_id: str) -> None:
    """Delete a stored panel or states file: its json first, so it disappears from listings."""
    (folder / f"{file_id}.json").unlink(missing_ok=True)
    (folder / f"{file_id}.npy").unlink(missing_ok=True)


def _runs(src: Index, dst: Index) -> list[tuple[slice, slice]]:
    """Split matched index pairs (``src[k]`` goes to ``dst[k]``) into maximal runs that are
    contiguous on both sides, as (src slice, dst slice) pairs."""
    if isinstance(src, slice) and isinstance(dst, slice):
        return [(src, dst)]
    s = np.arange(src.start, src.stop) if isinstance(src, slice) else src
    d = np.arange(dst.start, dst.stop) if isinstance(dst, slice) else dst
    starts = np.concatenate(([0], np.flatnonzero((np.diff(s) != 1) | (np.diff(d) != 1)) + 1))
    ends = np.append(starts[1:], s.size)
    return [(slice(int(s[a]), int(s[a]) + int(b - a)), slice(int(d[a]), int(d[a]) + int(b - a)))
            for a, b in zip(starts, ends)]


def _match(stored: tuple[str, ...], request: tuple[str, ...], pos: dict[str, int]) -> tuple[Index, Index, int]:
    """(indices into ``stored``, indices into ``request``, count) of the keys in both.

    ``pos`` maps each request key to its index. The usual layouts (a stored run inside the
    request, e.g. old rows before new ones, or the request inside a stored run) are found
    by comparing whole key runs, without a per-key Python loop.
    """
    m, n = len(stored), len(request)
    if m == 0 or n == 0:
        return slice(0, 0), slice(0, 0), 0
    j0 = pos.get(stored[0])
    if j0 is not None and request[j0 : j0 + m] == stored:
        return slice(0, m), slice(j0, j0 + m), m
    if n <= m and request[0] in stored:
        i0 = stored.index(request[0])
        if stored[i0 : i0 + n] == request:
            return slice(i0, i0 + n), slice(0, n), n
    dst = np.fromiter((pos.get(k, -1) for k in stored), dtype=np.intp, count=m)
    src = np.flatnonzero(dst >= 0)
    dst = dst[src]
    return as_slice(src), as_slice(dst), int(src.size)
