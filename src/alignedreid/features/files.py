"""Feature files (docs/architecture.md §3): global [N, 2048], local [N, S, D], pid, camid, path, and
for a sample of a split the manifest rows it holds (``row``)."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..foundation.errors import PipelineError
from ..foundation.io_utils import atomic_path

REQUIRED = {"global": 2, "local": 3, "pid": 1, "camid": 1, "path": 1}
FINITE_CHECK_ROWS = 2048  # rows per block of the finiteness check (bounded temporaries at MSMT17 scale)


class NonFiniteFeatures(PipelineError):
    """Features hold NaN or inf: the stage that made them (or read them) stops, naming the images."""


def non_finite_rows(global_, local) -> np.ndarray:
    """Boolean per row: whether its global or local features hold a NaN or an inf (checked in blocks of rows)."""
    n = len(global_)
    bad = np.zeros(n, dtype=bool)
    for start in range(0, n, FINITE_CHECK_ROWS):
        stop = min(n, start + FINITE_CHECK_ROWS)
        bad[start:stop] = ~np.isfinite(np.asarray(global_[start:stop])).reshape(stop - start, -1).all(axis=1)
        if np.size(local):
            bad[start:stop] |= ~np.isfinite(np.asarray(local[start:stop])).reshape(stop - start, -1).all(axis=1)
    return bad


def require_finite(global_, local, paths, where: str) -> None:
    """Raise NonFiniteFeatures naming ``where`` (the file and the model), how many images and the first
    ones, when any feature is NaN or inf."""
    bad = np.flatnonzero(non_finite_rows(global_, local))
    if len(bad):
        names = ", ".join(str(paths[i]) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        parts = []
        for label, arr in (("global", global_), ("local", local)):
            if np.size(arr):
                sub = np.asarray(arr[bad[:256]])
                parts.append(f"{label}: {int(np.isnan(sub).sum())} NaN, {int(np.isinf(sub).sum())} inf in the first {min(len(bad), 256)} such rows")
        raise NonFiniteFeatures(f"{where}: {len(bad)} of {len(global_)} images have non-finite features ({'; '.join(parts)}): {names}")


@dataclass
class FeatureSet:
    global_: np.ndarray
    local: np.ndarray
    pid: np.ndarray
    camid: np.ndarray
    path: np.ndarray
    row: np.ndarray  # manifest row of each feature: 0..N-1 for a complete file, the sampled rows otherwise
    sampled: bool = False  # the file holds a sample of its split (it has a 'row' array)
    unit_local: bool = False  # the stripes are already at unit length (an evaluation store's, mapped read-only)

    def __len__(self):
        return len(self.pid)

    @property
    def complete(self) -> bool:
        return not self.sampled


def load_features(path: str | os.PathLike, local: bool = True) -> FeatureSet:
    """Read and check a feature file. ``local=False`` leaves the local features on disk (an empty
    [N, 0, 0] array in their place): evaluation of the global variants only never holds them
    (MSMT17's gallery stripes alone are ~5 GB)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: feature file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            # an .npz member is read only when indexed: skip the stripes unless asked for
            arrays = {k: z[k] for k in z.files if local or k != "local"}
            if not local and "local" in z.files:
                arrays["local"] = np.zeros((len(z["pid"]), 0, 0), np.float32)
    except Exception as e:
        raise PipelineError(f"{path}: not a readable .npz feature file ({e})") from e
    for key, ndim in REQUIRED.items():
        if key not in arrays:
            raise PipelineError(f"{path}: missing array {key!r}; expected {sorted(REQUIRED)}")
        if arrays[key].ndim != ndim:
            raise PipelineError(f"{path}: array {key!r} has {arrays[key].ndim} dimensions, expected {ndim}")
    n = len(arrays["pid"])
    for key in REQUIRED:
        if len(arrays[key]) != n:
            raise PipelineError(f"{path}: array {key!r} has {len(arrays[key])} rows, 'pid' has {n}")
    row = arrays["row"].astype(np.int64) if "row" in arrays else np.arange(n, dtype=np.int64)
    if len(row) != n:
        raise PipelineError(f"{path}: array 'row' has {len(row)} rows, 'pid' has {n}")
    # no NaN or inf reaches evaluation, parity, search or the report, whoever wrote the file
    require_finite(arrays["global"], arrays["local"], arrays["path"], f"{path}")
    return FeatureSet(
        arrays["global"].astype(np.float32, copy=False),
        arrays["local"].astype(np.float32, copy=False),
        arrays["pid"].astype(np.int64),
        arrays["camid"].astype(np.int64),
        arrays["path"].astype(str),
        row,
        "row" in arrays,
    )


def save_features(path: str | os.PathLike, global_, local, pid, camid, paths, row=None, model=None) -> None:
    """Write a feature file; ``row`` (the manifest rows, for a sample) is stored only when given.
    Non-finite features are refused before anything is written (NonFiniteFeatures names the file,
    ``model`` -- what computed them -- and the images)."""
    require_finite(global_, local, list(paths), f"{path}" + (f" (model {model})" if model else ""))
    extra = {} if row is None else {"row": np.asarray(row, np.int64)}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                **{
                    "global": np.asarray(global_, np.float32),
                    "local": np.asarray(local, np.float32),
                    "pid": np.asarray(pid, np.int64),
                    "camid": np.asarray(camid, np.int64),
                    "path": np.asarray(paths, dtype=str),
                    **extra,
                },
            )


def join_feature_files(parts, out, n_rows: int) -> int:
    """The feature files of a split's shards, in order, as one file ``out``: complete (no ``row``
    array) when their rows are the split's ``n_rows`` manifest rows in order, a sample otherwise.
    Shards whose rows overlap or go backwards are refused, naming them. Returns the row count."""
    sets = [(p, load_features(p)) for p in parts]
    sets = [(p, f) for p, f in sets if len(f)]  # an empty shard holds nothing to join
    if not sets:
        raise PipelineError(f"{', '.join(map(str, parts))}: every shard is empty; expected the features of {n_rows} rows")
    row = np.concatenate([f.row for _, f in sets])
    if np.any(np.diff(row) <= 0):
        raise PipelineError(f"{', '.join(str(p) for p, _ in sets)}: the shards' manifest rows overlap or are out of order; expected increasing rows")
    cat = {k: np.concatenate([getattr(f, k) for _, f in sets]) for k in ("global_", "local", "pid", "camid", "path")}
    complete = len(row) == n_rows and row[-1] == n_rows - 1
    save_features(out, cat["global_"], cat["local"], cat["pid"], cat["camid"], cat["path"], row=None if complete else row)
    return len(row)


def npz_row_chunks(path: str | os.PathLike, key: str, rows: int):
    """Yield (start, array) chunks of ``rows`` leading-axis rows of the .npz member ``key``, read
    from the archive's stream (stored or deflated) without loading the member whole: how evaluate
    reads MSMT17's 5 GB of float32 stripes into a float16 array. A missing key, a malformed
    header or a member shorter than its header says raises PipelineError naming the file and key."""
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                fh = zf.open(f"{key}.npy")
            except KeyError:
                raise PipelineError(f"{path}: missing array {key!r}") from None
            with fh:
                version = np.lib.format.read_magic(fh)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read_header is None:
                    raise PipelineError(f"{path}: array {key!r} has .npy format version {version}, expected 1.0 or 2.0")
                shape, fortran, dtype = read_header(fh)
                if fortran or dtype.hasobject or not shape:
                    raise PipelineError(f"{path}: array {key!r} is not a C-ordered numeric array with rows")
                row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
                for start in range(0, shape[0], rows):
                    n = min(rows, shape[0] - start)
                    buf = fh.read(n * row_bytes)
                    if len(buf) != n * row_bytes:
                        raise PipelineError(
                            f"{path}: array {key!r} ends after {start + len(buf) // max(row_bytes, 1)} of {shape[0]} rows (truncated file)"
                        )
                    yield start, np.frombuffer(buf, dtype=dtype).reshape((n, *shape[1:]))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise PipelineError(f"{path}: array {key!r} could not be read ({e})") from e
