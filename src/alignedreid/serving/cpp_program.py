"""Files exchanged with the C++ program (docs/architecture.md §3): preprocessed inputs and its raw outputs
(the program itself runs in ``cpp_run``).

Two layouts (``infer.io``): ``packed`` (default) is one uint8 [N, H, W, 3] file per split in, one
float32 file per model output out; ``files`` is the model zoo's one float32 ``{row:06d}.bin`` per
image in and ``{row:06d}_{0,1}.bin`` out. Both hold the tensors MindSpore's eval pipeline produces.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data.manifests import read_manifest
from ..features.files import save_features
from ..foundation.errors import PipelineError
from ..foundation.io_utils import atomic_directory, atomic_path
from .cpp_run import RAN_ON
from .shards import shard_rows

log = logging.getLogger(__name__)


def _batches(df, height, width, workers, normalise, desc):
    # imported here: MindSpore's dataset pipeline takes a second or more to import, and the jobs that
    # only run the program or gather its outputs (infer_cpp, features_cpp: one per shard) never use it
    from ..data.loader import eval_dataset

    data = eval_dataset(df, height, width, batch_size=64, workers=workers, normalise=normalise)
    it = data.create_tuple_iterator(num_epochs=1, output_numpy=True)
    for images, _ in tqdm(it, total=data.get_dataset_size(), desc=desc, mininterval=5):
        yield images


def preprocess(manifest_csv, out, height: int, width: int, workers: int, layout: str, rows: range | None = None) -> int:
    """The C++ program's inputs for every manifest row (or the rows ``rows`` of one shard, see
    ``shards.shard_rows``), in manifest order (docs/architecture.md §3).

    ``packed``: one file ``out`` of uint8 [N, H, W, 3], the resized pixels before normalisation
    (the program normalises), 96 KiB per image at 256x128. ``files``: a folder ``out`` with one
    float32 [3, H, W] ``{row:06d}.bin`` per image (numbered from 0 in each shard), normalised (384 KiB
    each). Written atomically; an empty shard is an empty file or folder."""
    if layout not in ("packed", "files"):
        raise ValueError(f"infer.io: expected 'packed' or 'files', got {layout!r}")
    df = read_manifest(manifest_csv)
    if rows is not None:
        df = df.iloc[rows.start : rows.stop].reset_index(drop=True)
    desc = f"preprocess {Path(manifest_csv).stem}" + (f" rows {rows.start}-{rows.stop - 1}" if rows else "")
    n = 0
    if df.empty:
        with atomic_directory(out) if layout == "files" else atomic_path(out) as tmp:
            if layout == "packed":
                Path(tmp).write_bytes(b"")
    elif layout == "packed":
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            for images in _batches(df, height, width, workers, False, desc):
                fh.write(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
                n += len(images)
    elif layout == "files":
        with atomic_directory(out) as tmp:
            for images in _batches(df, height, width, workers, True, desc):
                for img in images:
                    np.ascontiguousarray(img, dtype=np.float32).tofile(tmp / f"{n:06d}.bin")
                    n += 1
    if n != len(df):
        raise PipelineError(f"{manifest_csv}: wrote {n} inputs for {len(df)} manifest rows")
    return n


def _packed_shape(output_dir: Path, n_rows: int) -> tuple[int, int] | None:
    """(channels, stripes) of a packed output folder holding ``n_rows`` rows, checked against the file
    sizes; None for the per-image layout."""
    packed = [output_dir / f"output_{k}.f32" for k in (0, 1)]
    if not (packed[0].is_file() or packed[1].is_file()):
        return None
    sizes = [p.stat().st_size if p.is_file() else None for p in packed]
    if any(size is None or size % (4 * n_rows) for size in sizes):
        raise PipelineError(f"{output_dir}: output_0.f32 / output_1.f32 missing or not holding {n_rows} rows")
    channels, per_row = sizes[0] // (4 * n_rows), sizes[1] // (4 * n_rows)
    if per_row % channels:
        raise PipelineError(f"{output_dir}: output_1.f32 holds {sizes[1] // 4} values, not {n_rows} rows of stripes of {channels} channels")
    return channels, per_row // channels


def _read_into(path: Path, array: np.ndarray) -> None:
    """Fill the C-contiguous ``array`` with the bytes of ``path`` (sized to fit: see _packed_shape)."""
    view, done = memoryview(array).cast("B"), 0
    with open(path, "rb") as fh:
        while done < len(view):
            got = fh.readinto(view[done:])
            if not got:
                raise PipelineError(f"{path}: ended after {done} of {len(view)} bytes")
            done += got


def _check_ran_on(output_dir: Path, n_rows: int) -> None:
    """A shard cut elsewhere than the gather expects is refused: run_cpp_program records beside the
    outputs how many images the program read."""
    ran = output_dir / RAN_ON
    if ran.is_file():
        images = json.loads(ran.read_text())["images"]
        if images != n_rows:
            raise PipelineError(
                f"{output_dir}: the C++ program ran on {images} images, where {n_rows} manifest rows are expected "
                "(infer.shards or infer.batch_size changed since it ran?)"
            )


def _read_packed_into(output_dir: Path, g: np.ndarray, l: np.ndarray) -> None:
    """Read a shard's packed outputs straight into its rows of the split's arrays (global [n, C], stripes
    [n, C, S]): the gather copies nothing twice. Outputs of another shape are refused, named."""
    shape = _packed_shape(output_dir, len(g))
    if shape is None:  # never leave the split's rows of this shard unfilled
        raise PipelineError(f"{output_dir}: no output_0.f32 / output_1.f32, where the first shard's outputs are packed")
    if l.shape[1:] != shape:
        raise PipelineError(
            f"{output_dir}: outputs of {shape[0]} channels x {shape[1]} stripes, where the first shard's are {l.shape[1]} x {l.shape[2]}"
        )
    _read_into(output_dir / "output_0.f32", g)
    _read_into(output_dir / "output_1.f32", l)


def _read_per_image(output_dir: Path, n_rows: int, paths) -> tuple[np.ndarray, np.ndarray]:
    """(global [N, C], stripes [N, C, S]) from the per-image layout (``infer.io: files``)."""
    glob_, loc = [], []
    for i in range(n_rows):
        g_path, l_path = output_dir / f"{i:06d}_0.bin", output_dir / f"{i:06d}_1.bin"
        if not g_path.is_file() or not l_path.is_file():
            raise PipelineError(f"{output_dir}: missing C++ output for row {i} ({paths[i]}); expected {g_path.name} and {l_path.name}")
        g = np.fromfile(g_path, dtype=np.float32)
        l = np.fromfile(l_path, dtype=np.float32)
        if l.size % g.size:
            raise PipelineError(f"{l_path}: {l.size} values are not a multiple of the global feature size {g.size}")
        glob_.append(g)
        loc.append(l.reshape(g.size, -1))
    return np.stack(glob_), np.stack(loc)


def collect_cpp_outputs(manifest_csv, output_dirs, out_npz, model=None, batch: int | None = None) -> dict:
    """The C++ outputs of one split (packed or per-image files) -> a feature file. ``output_dirs``: the
    output folder of each shard, in shard order (one folder: one shard); the rows of each are those
    ``shards.shard_rows`` gives for the program's ``batch`` (needed with several shards). ``model`` (the file the program ran) is named
    when an output is NaN or inf, and nothing is written then."""
    df = read_manifest(manifest_csv)
    dirs = [Path(output_dirs)] if isinstance(output_dirs, (str, Path)) else [Path(d) for d in output_dirs]
    if len(dirs) > 1 and batch is None:
        raise ValueError("collect_cpp_outputs: the outputs of several shards need the program's batch")
    shards = shard_rows(len(df), len(dirs), batch or 1)
    parts = [(d, rows) for d, rows in zip(dirs, shards) if rows]
    for d, rows in parts:
        _check_ran_on(d, len(rows))
    shape = _packed_shape(parts[0][0], len(parts[0][1]))
    if shape is not None:  # the split's arrays, each shard read into its rows
        g, l = np.empty((len(df), shape[0]), np.float32), np.empty((len(df), *shape), np.float32)
        for d, rows in parts:
            _read_packed_into(d, g[rows.start : rows.stop], l[rows.start : rows.stop])
    else:
        read = [_read_per_image(d, len(rows), df.path[rows.start : rows.stop].tolist()) for d, rows in parts]
        g, l = read[0] if len(read) == 1 else (np.concatenate([p[0] for p in read]), np.concatenate([p[1] for p in read]))
    output_dir = dirs[0] if len(dirs) == 1 else f"{dirs[0]} .. {dirs[-1]} ({len(dirs)} shards)"
    save_features(out_npz, g, l.transpose(0, 2, 1), df.pid, df.camid, df.path, model=f"{model or 'the C++ program'}, outputs in {output_dir}")
    return {"rows": len(df), "global_dim": int(g.shape[1]), "stripes": int(l.shape[2])}
