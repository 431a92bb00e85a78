"""The search's feature cache: one feature store per model (features/store.py: append-only parts),
keyed by the sha256 of the bytes decoded; features of images it lacks come from the C++ program.
A search folder's features are a view of the store (its rows in the manifest's order), never a copy."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.images import UnusableImage, normalised_bytes
from ..data.manifests import read_manifest
from ..features.files import FeatureSet, load_features
from ..features.store import META, FeatureStore, blocks_read_ahead
from ..foundation.errors import PipelineError
from ..foundation.folders import printable
from ..foundation.io_utils import atomic_path, sha256_of
from ..serving.program_settings import ProgramSettings

log = logging.getLogger(__name__)


VIEW_ARRAYS = ("row", "pid", "camid", "path", "store")


def model_store(cache_dir, model, settings: ProgramSettings, dtype: str) -> Path:
    """The store of one model's features (``cache_dir``/<key>/): keyed by the model files' bytes, the
    precision, flip and input size the program runs with, and the store's dtype."""
    model_files = [Path(model)] + ([Path(model).with_suffix(".bin")] if str(model).endswith(".xml") else [])
    key = hashlib.sha256(
        "".join(sha256_of(p) for p in model_files).encode() + f"{settings.precision} {settings.flip} {settings.height}x{settings.width}".encode()
    ).hexdigest()[:16]
    return Path(cache_dir) / (key if dtype == "float32" else f"{key}-{dtype}")


def key_rows(store: FeatureStore) -> dict[str, int]:
    """{image sha256: store row} (the first row of a key appended twice by concurrent writers)."""
    rows: dict[str, int] = {}
    for i, k in enumerate(store.keys()):
        rows.setdefault(k.decode(), i)
    return rows


@dataclass
class StoreView:
    """Rows of a feature store in a manifest's order, with the manifest's pid, camid and path: what
    search_features writes (``write_view``) instead of copying features (64 KB per image)."""

    store: FeatureStore
    rows: np.ndarray
    pid: np.ndarray
    camid: np.ndarray
    path: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def global_blocks(self, rows: int):
        yield from blocks_read_ahead(len(self), rows, lambda a, b: self.store.gather("global", self.rows[a:b]))

    def gather(self, which: str, rows, as_stored: bool = False) -> np.ndarray:
        return self.store.gather(which, self.rows[np.asarray(rows, np.int64)], as_stored)

    def features(self) -> FeatureSet:
        """Every row's features in memory (the queries: a few thousand)."""
        idx = np.arange(len(self))
        return FeatureSet(self.gather("global", idx), self.gather("local", idx), self.pid, self.camid, self.path, idx, False)


def write_view(out, store_root, rows, pid, camid, paths) -> None:
    """A view of the store at ``store_root``: its ``rows`` with the manifest's pid, camid and path."""
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                row=np.asarray(rows, np.int64),
                pid=np.asarray(pid, np.int64),
                camid=np.asarray(camid, np.int64),
                path=np.asarray(paths, dtype=str),
                store=np.asarray(os.path.relpath(Path(store_root).resolve(), Path(out).resolve().parent)),  # the view moves with results/
            )


def _view_arrays(path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in VIEW_ARRAYS}
    except Exception as e:
        raise PipelineError(f"{path}: not a search view of a feature store ({e}); expected arrays {', '.join(VIEW_ARRAYS)}") from e


def concat_views(views, out) -> int:
    """The views of a search folder's shards (search.shards), in order, as one view ``out`` of their
    store; views of different stores (another model or precision) are refused, naming them. Returns
    the row count."""
    parts = [(Path(v), _view_arrays(v)) for v in views]
    roots = {(p.resolve().parent / str(a["store"])).resolve() for p, a in parts}
    if len(roots) != 1:
        raise PipelineError(f"{', '.join(str(p) for p, _ in parts)}: shard views of {len(roots)} different feature stores; expected one")
    cat = {k: np.concatenate([a[k] for _, a in parts]) for k in ("row", "pid", "camid", "path")}
    write_view(out, roots.pop(), cat["row"], cat["pid"], cat["camid"], cat["path"])
    return len(cat["row"])


def is_view(path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return "store" in z.files
    except Exception:  # not a readable .npz: load_view or load_features names the problem
        return False


def load_view(path) -> StoreView:
    """A view written by ``write_view``, its store opened (rows beyond it refused, naming the file)."""
    arrays = _view_arrays(path)
    store = FeatureStore(Path(path).resolve().parent / str(arrays["store"]))
    rows = arrays["row"].astype(np.int64)
    if len(rows) and rows.max() >= len(store):
        raise PipelineError(f"{path}: rows up to {rows.max()} in a store of {len(store)} ({store.root}): run search_features again")
    return StoreView(store, rows, arrays["pid"].astype(np.int64), arrays["camid"].astype(np.int64), arrays["path"].astype(str))


def cached_features(
    manifest_csv, out_view, cache_dir, exe, model, settings: ProgramSettings, threads: int, dtype: str, rows: range | None = None
) -> dict:
    """The features of the manifest's ``rows`` (every row when None, else a shard's rows: see
    serving.shards), as a view (``out_view``) of the feature store of this model (``model_store``).
    Each image is read once here and keyed by the sha256 of exactly those bytes; the images the store
    lacks go through the C++ program (run with ``settings``) from a copy of those bytes (normalised by
    the image contract), so a file replaced after the listing can never be stored under another file's
    key, and are appended as one new part: nothing is rewritten."""
    from ..serving.cpp_program import collect_cpp_outputs, preprocess
    from ..serving.cpp_run import run_cpp_program

    df = read_manifest(manifest_csv)
    if rows is not None:
        df = df.iloc[rows.start : rows.stop]
    root = model_store(cache_dir, model, settings, dtype)
    store = FeatureStore(root, drop_unreadable=True) if (root / META).is_file() else None
    index = key_rows(store) if store else {}
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
            if store is None:
                store = FeatureStore.create(root, feats.global_.shape[1], *feats.local.shape[1:], dtype=dtype, drop_unreadable=True)
            part = store.append(list(pending), feats.global_, feats.local)
            index = key_rows(store)  # other writers' parts included
            log.info("cached %d new images in %s", len(pending), part)
    write_view(out_view, root, [index[h] for h in keys], df.pid, df.camid, df.path)
    return {"images": len(df), "computed": len(pending), "cache": str(root)}
