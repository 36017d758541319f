"""Arrays larger than memory: written block by block into a ``.npy`` file, stored beside their
bundle, read back as read-only memory maps and walked in row blocks.

A memory-mapped file's pages count towards the process's resident memory once touched, until
the mapping goes. So every walk over a map here copies one block of rows and then gives the
mapping's pages back to the page cache (``madvise(MADV_DONTNEED)``; the data stays in the file
and the page cache, written pages included), which keeps resident memory at about one block,
whatever N is. A bundle's memory-mapped arrays are stored as ``value.<name>.npy`` files next to
its ``value.npz`` (:mod:`hybrid_resources.data.artifacts`).
"""

from __future__ import annotations

import mmap
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from hybrid_resources.data.paths import is_local

SCRATCH_SUFFIX = ".scratch.npy"
DEFAULT_BLOCK_BYTES = 64 * 2**20


def open_kernel_file(path: str | Path, n_rows: int, n_cols: int) -> np.memmap:
    """A new float64 (n_rows, n_cols) ``.npy`` file opened as a writable memmap (``np.load`` reads it)."""
    return open_memmap(Path(path), mode="w+", dtype=np.float64, shape=(n_rows, n_cols))


def scratch_array(folder: Path, n_rows: int, n_cols: int) -> np.memmap:
    """A new float64 (n_rows, n_cols) ``.npy`` file in ``folder``, open as a writable memmap. The
    artifact store moves it into the artifact's version folder when a bundle holding it is
    written (no copy). Its name records this host and process, so scratch files left by a step
    that crashed are removed here too, by the next one on the same host, in any run's folder
    (:func:`remove_orphaned_scratch`; the run-failure sensor ``scratch_cleanup`` is the first way)."""
    folder.mkdir(parents=True, exist_ok=True)
    remove_orphaned_scratch(folder.parent.parent if _is_run_step_folder(folder) else folder)
    name = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex}{SCRATCH_SUFFIX}"
    return open_kernel_file(folder / name, n_rows, n_cols)


def remove_orphaned_scratch(folder: Path) -> None:
    """Delete the scratch files under ``folder`` (named ``<host>.<pid>.<uuid>``, in it or in its
    run and step folders) whose writer was a process on this host that is no longer running, and
    the folders that leaves empty. Files from other hosts and from running processes stay."""
    host = socket.gethostname()
    for path in list(folder.rglob(f"*{SCRATCH_SUFFIX}")):  # listed first: emptied folders go as it removes
        parts = path.name.removesuffix(SCRATCH_SUFFIX).rsplit(".", 2)
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not _process_is_running(int(parts[1])):
            path.unlink(missing_ok=True)
            _drop_emptied(path.parent)


def _process_is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running, as another user
        pass
    return True


def is_scratch(array: np.ndarray) -> bool:
    """Whether ``array`` is a map of a file made by :func:`scratch_array`."""
    return isinstance(array, np.memmap) and str(getattr(array, "filename", "") or "").endswith(SCRATCH_SUFFIX)


def release(array: np.ndarray) -> None:
    """Give a memory map's touched pages back (no-op for in-memory arrays). Safe for written
    pages of a shared file mapping: they stay dirty in the page cache and reach the file."""
    handle = getattr(array, "_mmap", None)
    if isinstance(array, np.memmap) and handle is not None and not handle.closed:
        handle.madvise(mmap.MADV_DONTNEED)


def block_rows_of(array: np.ndarray, block_bytes: int = DEFAULT_BLOCK_BYTES) -> int:
    """Rows per block so that one block of ``array`` is about ``block_bytes`` (at least 1)."""
    row_bytes = max(int(array.dtype.itemsize * np.prod(array.shape[1:], dtype=np.int64)), 1)
    return max(int(block_bytes // row_bytes), 1)


def row_blocks(n_rows: int, block_rows: int) -> Iterator[slice]:
    """Consecutive slices of at most ``block_rows`` rows covering range(n_rows)."""
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    return (slice(start, min(start + block_rows, n_rows)) for start in range(0, n_rows, block_rows))


def iter_row_blocks(array: np.ndarray, block_rows: int | None = None) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, a copy of array[rows]) for consecutive row blocks; a memory map's pages are given
    back after each block. ``block_rows`` default: about 64 MiB per block."""
    for rows in row_blocks(len(array), block_rows or block_rows_of(array)):
        block = np.array(array[rows])
        release(array)
        yield rows, block


def map_rows(fn, array: np.ndarray, block_rows: int | None = None) -> np.ndarray:
    """``fn`` applied to consecutive row blocks of ``array`` and concatenated along rows (e.g.
    decision values of a kernel against landmarks), resident memory bounded by one block."""
    parts = [fn(block) for _, block in iter_row_blocks(array, block_rows)]
    return np.concatenate(parts) if parts else fn(np.asarray(array[:0]))


def stored_name(base, name: str):
    """Where a bundle's memory-mapped array ``name`` is stored beside ``base`` (``value``)."""
    return base.with_name(f"{base.name}.{name}.npy")


def store_mapped(path, array: np.ndarray) -> None:
    """Put a memory-mapped array at ``path`` (a Path or an object store's UPath) as a ``.npy``
    file: a scratch file is moved there (no copy) or uploaded (then removed), any other map is
    copied block by block."""
    array.flush()
    if not is_local(path):
        if not is_scratch(array):  # a map of a file that is not ours to move: a local copy to upload
            local = scratch_array(Path(array.filename).parent, *array.shape)
            for rows, block in iter_row_blocks(array):
                local[rows] = block
                release(local)
            local.flush()
            array = local
        path.fs.put_file(array.filename, path.path)
        Path(array.filename).unlink(missing_ok=True)
        _drop_emptied(Path(array.filename).parent)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_scratch(array):
        Path(array.filename).replace(path)
        _drop_emptied(Path(array.filename).parent)
        return
    temporary = path.with_name(path.name + ".partial")
    out = open_memmap(temporary, mode="w+", dtype=array.dtype, shape=array.shape)
    for rows, block in iter_row_blocks(array):
        out[rows] = block
        release(out)
    out.flush()
    del out
    temporary.replace(path)


def _is_run_step_folder(folder: Path) -> bool:
    """Whether ``folder`` is ``scratch/<run id>/<step>/`` (:meth:`~hybrid_resources.data.paths.DataLayout.scratch_for`)."""
    return folder.parent.parent.name == "scratch"


def _drop_emptied(folder: Path) -> None:
    """Remove the step folder a scratch file was in, then its run folder, each only when empty."""
    if not _is_run_step_folder(folder):
        return  # a folder the caller chose: left as it is
    for emptied in (folder, folder.parent):
        try:
            emptied.rmdir()
        except OSError:  # not empty (another step's files), or gone
            return


def load_mapped(base, local_copies: Path | None = None) -> dict[str, np.ndarray]:
    """The memory-mapped arrays stored beside ``base`` by :func:`store_mapped`, read-only. On an
    object store each is first downloaded into ``local_copies`` (a map needs a local file; the
    path holds the content-addressed version, so a copy already there is that same content)."""
    prefix = f"{base.name}."
    mapped = {}
    for path in sorted(base.parent.glob(f"{base.name}.*.npy")):
        if not is_local(path):
            if local_copies is None:
                raise ValueError(f"{path} is on an object store: give a local folder to map it from")
            copy = local_copies / path.path
            if not copy.exists() or copy.stat().st_size != path.stat().st_size:
                copy.parent.mkdir(parents=True, exist_ok=True)
                partial = copy.with_name(f".{copy.name}.{os.getpid()}.partial")
                path.fs.get_file(path.path, str(partial))
                partial.replace(copy)
            path = copy
        mapped[path.name[len(prefix):-len(".npy")]] = np.load(path, mmap_mode="r", allow_pickle=False)
    return mapped
