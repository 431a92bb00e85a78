"""The feature store (docs/architecture.md §3, "Feature store"): features on disk, written once and
appended part by part, read in blocks -- never loaded whole, never rewritten.

A store is a folder::

    store.json              global_dim, stripes, stripe_dim, dtype (float32 or float16) and, where
                            the global features are held otherwise, global_dtype
    part-<time>-<id>/       one append: key.npy [n] (bytes, e.g. a sha256), global.npy [n, G], local.npy [n, S, D]

A part appears complete (renamed into place) or not at all, so concurrent writers (the shards of one
search) each add their own. Rows are numbered across parts in name order, and a part is named and
renamed under the store's lock (``.lock``, flock) with a time after every part already there, so an
append never moves the rows a reader already holds. Streamed blocks are read one ahead by a second
thread; scattered rows (``gather``) by READ_THREADS threads at once. Reads go through ``os.pread`` into private buffers, not
memory maps: pages read stay in the kernel's cache, not in the reader's resident set, so a million-row
store is streamed with memory bounded by the block, not by the store.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from ..foundation.errors import PipelineError
from .files import require_finite

log = logging.getLogger(__name__)
DTYPES = ("float32", "float16")
META = "store.json"
BLOCK_ROWS = 65536  # rows per block of a streamed read (global: 256 MB of float32 at 2048-d)
READ_THREADS = 16  # reads in flight while gathering scattered rows (a disk serves many at once faster)


def blocks_read_ahead(n: int, rows: int, fetch):
    """(start, fetch(start, stop)) of consecutive blocks of ``rows`` of ``n`` rows, the next block
    fetched by a second thread while the caller works on this one (reading and converting a block
    overlaps the matrix product that consumes the previous one)."""
    with ThreadPoolExecutor(1) as reader:
        ahead = reader.submit(fetch, 0, min(n, rows)) if n else None
        for start in range(0, n, rows):
            block = ahead.result()
            nxt = start + rows
            ahead = reader.submit(fetch, nxt, min(n, nxt + rows)) if nxt < n else None
            yield start, block


class StoreError(PipelineError):
    """A store that cannot be read or does not match what is appended to it."""


@numba.njit(parallel=True, cache=True)
def _half_to_float(half_bits, out_bits, out_float):
    """IEEE half-precision values (as uint16 bits) -> float32, written through two views of one
    float32 buffer (its bits, and itself for the subnormals). NumPy 1.26 converts float16 without
    SIMD (~0.3 G values/s here); this runs ~6x faster, so a float16 store streams faster than float32."""
    for i in numba.prange(half_bits.size):
        x = np.uint32(half_bits[i])
        sign = (x & np.uint32(0x8000)) << np.uint32(16)
        em = x & np.uint32(0x7FFF)
        if em >= np.uint32(0x7C00):  # inf or NaN (refused when appended; kept as such)
            out_bits[i] = sign | np.uint32(0x7F800000) | ((em & np.uint32(0x3FF)) << np.uint32(13))
        elif em >= np.uint32(0x0400):  # normal: rebias the exponent (127 - 15) << 23
            out_bits[i] = sign | ((em << np.uint32(13)) + np.uint32(0x38000000))
        else:  # zero or subnormal: em x 2^-24, exact in float32
            v = np.float32(em) * np.float32(5.9604644775390625e-08)
            out_float[i] = -v if sign else v


def to_float32(values: np.ndarray, out: np.ndarray) -> None:
    """``values`` (float16 or float32) into the C-contiguous float32 array ``out`` of the same size."""
    flat = out.reshape(-1)
    if values.dtype == np.float16:
        _half_to_float(np.ascontiguousarray(values).reshape(-1).view(np.uint16), flat.view(np.uint32), flat)
    else:
        flat[:] = values.reshape(-1)


def _npy_layout(path: Path) -> tuple[int, tuple, np.dtype]:
    """(offset of the data, shape, dtype) of an .npy file, read from its header."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        shape, fortran, dtype = np.lib.format._read_array_header(fh, version)
        if fortran:
            raise StoreError(f"{path}: Fortran-ordered array; expected C order")
        return fh.tell(), shape, dtype


@dataclass
class _Array:
    """One .npy file of a part, read row by row with pread."""

    path: Path
    offset: int
    shape: tuple
    dtype: np.dtype

    @classmethod
    def open(cls, path: Path) -> _Array:
        offset, shape, dtype = _npy_layout(path)
        size = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if path.stat().st_size < size:
            raise StoreError(f"{path}: {path.stat().st_size} bytes, its header promises {size} (truncated)")
        return cls(path, offset, tuple(shape), dtype)

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def read(self, fd: int, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows start..stop-1 as a fresh array, or into ``out`` (C-contiguous, float32 or the part's own
        dtype; a part of the same dtype is read straight into it)."""
        n = stop - start
        direct = out is not None and self.dtype == out.dtype
        buf = out if direct else np.empty((n, *self.shape[1:]), self.dtype)
        view, pos = memoryview(buf.reshape(-1)).cast("B"), 0
        while pos < len(view):  # pread may return less than asked
            got = os.preadv(fd, [view[pos:]], self.offset + start * self.row_bytes + pos)
            if got <= 0:
                raise StoreError(f"{self.path}: short read at row {start} (file truncated?)")
            pos += got
        if out is not None and not direct:
            to_float32(buf, out)
        return buf if out is None else out


class FeatureStore:
    """An open store: its parts as they were when opened (or last refreshed)."""

    def __init__(self, root: str | os.PathLike, drop_unreadable: bool = False):
        """``drop_unreadable``: a part that cannot be read is named in the log and removed (a cache,
        whose rows are computed again), instead of stopping with StoreError."""
        self.root = Path(root)
        self.drop_unreadable = drop_unreadable
        meta = self.root / META
        try:
            self.meta = json.loads(meta.read_text())
            self.global_dim, self.stripes, self.stripe_dim = (int(self.meta[k]) for k in ("global_dim", "stripes", "stripe_dim"))
            self.dtype = np.dtype(self.meta["dtype"])
            self.global_dtype = np.dtype(self.meta.get("global_dtype", self.meta["dtype"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StoreError(f"{meta}: not a feature store's description ({e}); expected global_dim, stripes, stripe_dim, dtype") from e
        self.refresh()

    @classmethod
    def create(
        cls,
        root,
        global_dim: int,
        stripes: int,
        stripe_dim: int,
        dtype: str = "float32",
        drop_unreadable: bool = False,
        global_dtype: str | None = None,
    ) -> FeatureStore:
        """Open the store at ``root``, creating it with this shape and dtype if it does not exist; an
        existing store of another shape or dtype is refused (a new model or precision gets its own).
        ``global_dtype``: the global features' dtype where it is not ``dtype`` (evaluate's store keeps
        them float32 beside float16 stripes)."""
        for d in (dtype, global_dtype or dtype):
            if d not in DTYPES:
                raise StoreError(f"feature store dtype {d!r}: expected one of {', '.join(DTYPES)}")
        root = Path(root)
        want = {"version": 1, "global_dim": int(global_dim), "stripes": int(stripes), "stripe_dim": int(stripe_dim), "dtype": dtype}
        if global_dtype and global_dtype != dtype:
            want["global_dtype"] = global_dtype
        if not (root / META).is_file():
            root.mkdir(parents=True, exist_ok=True)
            tmp = root / f".{META}.{uuid.uuid4().hex[:8]}"
            tmp.write_text(json.dumps(want))
            os.replace(tmp, root / META)
        store = cls(root, drop_unreadable)
        have = {k: store.meta.get(k) for k in want}
        if have != want:
            raise StoreError(f"{root / META}: the store holds {have}, asked for {want}; use another folder")
        return store

    def refresh(self) -> None:
        """Re-read the list of parts (another writer may have appended)."""
        self.parts: list[tuple[Path, _Array, _Array, _Array]] = []
        for part in sorted(self.root.glob("part-*")):
            try:
                arrays = tuple(_Array.open(part / f"{name}.npy") for name in ("key", "global", "local"))
                key, g, loc = arrays
                if (
                    not (key.shape[0] == g.shape[0] == loc.shape[0])
                    or g.shape[1:] != (self.global_dim,)
                    or loc.shape[1:] != (self.stripes, self.stripe_dim)
                ):
                    raise StoreError(
                        f"arrays of shapes {key.shape}, {g.shape}, {loc.shape}; expected [n], [n, {self.global_dim}], [n, {self.stripes}, {self.stripe_dim}]"
                    )
            except (OSError, ValueError, StoreError) as e:
                if self.drop_unreadable:
                    log.warning("%s: unreadable part of the feature store (%s): removed, its images are computed again", part, e)
                    shutil.rmtree(part, ignore_errors=True)
                    continue
                raise StoreError(f"{part}: unreadable part of the feature store ({e}); remove that folder to compute its rows again") from e
            self.parts.append((part, *arrays))
        self.starts = np.cumsum([0] + [p[1].shape[0] for p in self.parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def append(self, keys, global_, local) -> Path:
        """One new part of ``keys`` and their features (cast to the store's dtypes), renamed into place
        complete; nothing existing is touched. Non-finite features are refused before anything is written."""
        return self.append_chunks(keys, [(np.asarray(global_), np.asarray(local))])

    def append_chunks(self, keys, chunks) -> Path:
        """:meth:`append` of features given as consecutive (global, local) chunks of rows, written as they
        come (a split of MSMT17's size is never held whole); the part appears only when every chunk was
        written and found finite, holding one row per key."""
        keys = np.asarray(keys, dtype="S")
        names = [k.decode(errors="replace") for k in keys]
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            np.save(tmp / "key.npy", keys)
            files = {}
            for which, dtype, shape in (("global", self.global_dtype, (self.global_dim,)), ("local", self.dtype, (self.stripes, self.stripe_dim))):
                files[which] = open(tmp / f"{which}.npy", "wb")
                header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (len(keys), *shape)}
                np.lib.format.write_array_header_2_0(files[which], header)
            seen = 0
            try:
                for global_, local in chunks:
                    n = len(global_)
                    if (
                        len(local) != n
                        or global_.shape[1:] != (self.global_dim,)
                        or local.shape[1:] != (self.stripes, self.stripe_dim)
                        or seen + n > len(keys)
                    ):
                        raise StoreError(
                            f"{self.root}: appending {len(keys)} keys, global {global_.shape}, local {local.shape} from row {seen}; "
                            f"the store holds [n, {self.global_dim}] and [n, {self.stripes}, {self.stripe_dim}]"
                        )
                    where = f"{self.root} (append)"
                    require_finite(global_, local, names[seen : seen + n], where)
                    with np.errstate(over="ignore"):  # beyond float16's range: inf, refused just below
                        cast = (global_.astype(self.global_dtype, copy=False), local.astype(self.dtype, copy=False))
                    if np.float16 in (self.dtype, self.global_dtype):  # float16 has a smaller range: refuse what it cannot hold
                        require_finite(*cast, names[seen : seen + n], f"{where}, as {self.global_dtype} / {self.dtype}")
                    for which, arr in zip(("global", "local"), cast):
                        files[which].write(np.ascontiguousarray(arr).data)
                    seen += n
            finally:
                for fh in files.values():
                    fh.close()
            if seen != len(keys):
                raise StoreError(f"{self.root}: appending {len(keys)} keys but {seen} rows of features")
            with open(self.root / ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
                target = self.root / f"part-{self._next_time()}-{uuid.uuid4().hex[:8]}"
                os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.refresh()
        return target

    def _next_time(self) -> int:
        """A part name's time: now, or just after the newest part there (a clock behind it must not
        name a part that sorts before rows already handed out). Called under the store's lock."""
        times = (p.name.split("-")[1] for p in self.root.glob("part-*-*"))
        last = max((int(t) for t in times if t.isdigit()), default=0)
        return max(time.time_ns(), last + 1)

    def keys(self) -> np.ndarray:
        """Every row's key, in row order (bytes)."""
        out = []
        for _, key, _, _ in self.parts:
            with open(key.path, "rb") as fh:
                out.append(key.read(fh.fileno(), 0, key.shape[0]))
        return np.concatenate(out) if out else np.zeros(0, "S1")

    def _blocks(self, which: int, start: int, stop: int):
        """(part array, first row in part, last row + 1 in part, first store row) covering rows start..stop-1."""
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        for p in range(max(first, 0), len(self.parts)):
            lo, hi = int(self.starts[p]), int(self.starts[p + 1])
            if lo >= stop:
                break
            a, b = max(start, lo), min(stop, hi)
            if a < b:
                yield self.parts[p][which], a - lo, b - lo, a

    def read_rows(self, which: str, start: int, stop: int, out_dtype=np.float32) -> np.ndarray:
        """Contiguous rows start..stop-1 of ``which`` ('global' or 'local') as ``out_dtype``."""
        k = {"global": 2, "local": 3}[which]
        shape = (self.global_dim,) if which == "global" else (self.stripes, self.stripe_dim)
        out = np.empty((stop - start, *shape), out_dtype)
        for arr, a, b, first in self._blocks(k, start, stop):
            fd = os.open(arr.path, os.O_RDONLY)
            try:
                arr.read(fd, a, b, out[first - start : first - start + b - a])
            finally:
                os.close(fd)
        return out

    def global_blocks(self, rows: int = BLOCK_ROWS):
        """(first row, float32 global features) of consecutive blocks of ``rows`` rows, in order, read one ahead."""
        yield from blocks_read_ahead(len(self), rows, lambda a, b: self.read_rows("global", a, b))

    def gather(self, which: str, rows, as_stored: bool = False) -> np.ndarray:
        """Rows ``rows`` (any order, repeats allowed) of ``which`` ('global' or 'local') as float32 (or,
        ``as_stored``, in the store's dtype): each distinct row read once, in store order, runs of
        consecutive rows in one read, READ_THREADS reads in flight."""
        k = {"global": 2, "local": 3}[which]
        shape = (self.global_dim,) if which == "global" else (self.stripes, self.stripe_dim)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise StoreError(f"{self.root}: rows outside 0..{len(self) - 1}")
        ordered = len(rows) < 2 or bool((np.diff(rows) > 0).all())  # already distinct and sorted: no copy back
        uniq, inverse = (rows, None) if ordered else np.unique(rows, return_inverse=True)
        stored = self.global_dtype if which == "global" else self.dtype
        raw = np.empty((len(uniq), *shape), stored)  # read as stored, converted once at the end
        part_of = np.searchsorted(self.starts, uniq, side="right") - 1
        reads, fds, pos = [], [], 0
        try:
            for p in np.unique(part_of):  # uniq is sorted: parts and runs come in order, filled by slices
                arr = self.parts[p][k]
                local_rows = uniq[part_of == p] - self.starts[p]
                breaks = np.flatnonzero(np.diff(local_rows) != 1) + 1  # runs of consecutive rows
                fds.append(os.open(arr.path, os.O_RDONLY))
                for run in np.split(local_rows, breaks):
                    reads.append((arr, fds[-1], int(run[0]), int(run[-1]) + 1, pos))
                    pos += len(run)

            def one(r):
                arr, fd, a, b, at = r
                arr.read(fd, a, b, raw[at : at + b - a])

            if len(reads) > 1:  # scattered rows: many reads in flight (pread releases the GIL)
                with ThreadPoolExecutor(min(READ_THREADS, len(reads))) as pool:
                    list(pool.map(one, reads))
            elif reads:
                one(reads[0])
        finally:
            for fd in fds:
                os.close(fd)
        if stored == np.float32 or as_stored:
            got = raw
        else:
            got = np.empty(raw.shape, np.float32)
            to_float32(raw, got)
            del raw
        return got if ordered else got[inverse.reshape(-1)]

    def mapped(self, which: str) -> np.ndarray:
        """``which`` ('global' or 'local') of a store of one part, as stored, memory-mapped copy-on-write:
        pages are read when touched and stay the kernel's to drop (evaluate's random reads of stripe
        pairs); writes, which nothing should make, would stay private."""
        if len(self.parts) != 1:
            raise StoreError(f"{self.root}: holds {len(self.parts)} parts; a store is mapped whole only when it has one")
        arr = self.parts[0][{"global": 2, "local": 3}[which]]
        return (
            np.memmap(arr.path, dtype=arr.dtype, mode="c", offset=arr.offset, shape=arr.shape)
            if arr.row_bytes and arr.shape[0]
            else np.zeros(arr.shape, arr.dtype)
        )

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())
