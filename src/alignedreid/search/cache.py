"""The search's feature cache: one folder per model, append-only shards, keyed by the sha256 of
the bytes decoded; features of images it lacks come from the C++ program."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.images import UnusableImage, normalised_bytes
from ..data.manifests import read_manifest
from ..features.files import load_features, save_features
from ..foundation.errors import PipelineError
from ..foundation.folders import printable
from ..foundation.io_utils import sha256_of
from ..serving.program_settings import ProgramSettings

log = logging.getLogger(__name__)


def _load_shard(shard: Path):
    sha = np.load(shard / "sha256.npy", allow_pickle=False)
    g = np.load(shard / "global.npy", mmap_mode="r", allow_pickle=False)
    loc = np.load(shard / "local.npy", mmap_mode="r", allow_pickle=False)
    if not (len(sha) == len(g) == len(loc)) or g.ndim != 2 or loc.ndim != 3:
        raise ValueError(f"arrays of {len(sha)}, {len(g)} and {len(loc)} rows")
    return sha.astype(str), g, loc


def cache_index(root: Path) -> dict:
    """{sha256: (global rows, local rows, row)} of every shard under ``root`` (memory-mapped). A shard
    that cannot be read is named in the log and removed: its images are computed again."""
    index = {}
    for shard in sorted(Path(root).glob("shard-*")):
        try:
            sha, g, loc = _load_shard(shard)
        except (OSError, ValueError, EOFError) as e:
            log.warning("%s: unreadable feature cache shard (%s): removed, its images are computed again", shard, e)
            shutil.rmtree(shard, ignore_errors=True)
            continue
        for i, h in enumerate(sha):
            index.setdefault(h, (g, loc, i))
    return index


def write_shard(root: Path, keys, g: np.ndarray, loc: np.ndarray) -> Path:
    """A new shard of ``keys`` and their features, appearing complete (renamed into place): concurrent
    writers (queries and gallery, two searches) each add their own and never rewrite another's."""
    root.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
    tmp = root / f".tmp-{name}"
    tmp.mkdir()
    np.save(tmp / "sha256.npy", np.asarray(list(keys), dtype="<U64"))
    np.save(tmp / "global.npy", np.ascontiguousarray(g, np.float32))
    np.save(tmp / "local.npy", np.ascontiguousarray(loc, np.float32))
    target = root / f"shard-{name}"
    os.rename(tmp, target)
    return target


def gather_rows(index: dict, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    g0, l0, _ = index[keys[0]]
    g = np.empty((len(keys), g0.shape[1]), np.float32)
    loc = np.empty((len(keys), *l0.shape[1:]), np.float32)
    by_shard: dict[int, tuple] = {}  # rows of one shard read together, in file order
    for pos, h in enumerate(keys):
        sg, sl, row = index[h]
        _, _, positions, rows = by_shard.setdefault(id(sg), (sg, sl, [], []))
        positions.append(pos)
        rows.append(row)
    for sg, sl, positions, rows in by_shard.values():
        order = np.argsort(rows)
        pos, rows = np.asarray(positions)[order], np.asarray(rows)[order]
        g[pos], loc[pos] = sg[rows], sl[rows]
    return g, loc


def cached_features(manifest_csv, out_npz, cache_dir, exe, model, settings: ProgramSettings, threads: int) -> dict:
    """Features of every manifest row into ``out_npz``. Each image is read once here and keyed by the
    sha256 of exactly those bytes; the images the cache of this model (``cache_dir``/<model key>/)
    lacks go through the C++ program (run with ``settings``) from a copy of those bytes (normalised by the image contract), so
    a file replaced after the listing can never be stored under another file's key."""
    from ..serving.cpp_program import collect_cpp_outputs, preprocess, run_cpp_program

    df = read_manifest(manifest_csv)
    model_files = [Path(model)] + ([Path(model).with_suffix(".bin")] if str(model).endswith(".xml") else [])
    key = hashlib.sha256(
        "".join(sha256_of(p) for p in model_files).encode() + f"{settings.precision} {settings.flip} {settings.height}x{settings.width}".encode()
    ).hexdigest()[:16]
    root = Path(cache_dir) / key
    index = cache_index(root)
    work = Path(cache_dir).parent
    work.mkdir(parents=True, exist_ok=True)
    keys, pending = [], {}
    with tempfile.TemporaryDirectory(dir=work, prefix=".search-") as tmp:
        tmp = Path(tmp)
        for path in df.path:
            try:
                data = Path(path).read_bytes()
            except OSError as e:
                raise PipelineError(f"{printable(path)}: cannot be read any more ({e.strerror}); run the search again to list the folder anew") from e
            h = hashlib.sha256(data).hexdigest()
            keys.append(h)
            if h in index or h in pending:
                continue
            try:
                copy = normalised_bytes(data, printable(path))
            except UnusableImage as e:
                raise PipelineError(f"{e}; it changed since the folder was listed: run the search again") from e
            f = tmp / f"{len(pending):07d}.img"
            f.write_bytes(copy)
            pending[h] = f
        log.info("%d images: %d from the feature cache, %d new through the C++ program", len(df), len(df) - len(pending), len(pending))
        if pending:
            new = pd.DataFrame({"path": [str(f) for f in pending.values()], "pid": 0, "camid": 0})
            new.to_csv(tmp / "new.csv", index=False)
            preprocess(tmp / "new.csv", tmp / "new.u8", settings.height, settings.width, threads, "packed")
            run_cpp_program(exe, model, tmp / "new.u8", tmp / "out", settings, threads)
            collect_cpp_outputs(tmp / "new.csv", tmp / "out", tmp / "new.npz", model=model)  # non-finite: refused before caching
            feats = load_features(tmp / "new.npz")
            shard = write_shard(root, pending, feats.global_, feats.local)
            index.update({h: (feats.global_, feats.local, i) for i, h in enumerate(pending)})
            log.info("cached %d new images in %s", len(pending), shard)
    g, loc = gather_rows(index, keys)
    save_features(out_npz, g, loc, df.pid, df.camid, df.path, model=model)
    return {"images": len(df), "computed": len(pending), "cache": str(root)}
