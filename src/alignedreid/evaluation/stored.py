"""The features as evaluate reads them (docs/architecture.md §4, "Evaluation stores"): a split's
feature file written once into a feature store of one part (features/store.py) -- the global
features float32 as computed, the stripes at unit length in ``evaluation.stripe_dtype`` (or none
when no evaluated variant reads them) -- with the images' labels beside it. ``evaluate`` maps the
store's arrays instead of loading them: the pages its kernels touch are the kernel's page cache,
which it can drop under memory pressure, not the stage's own memory (MSMT17: 2.9 GiB of float16
stripes and 0.6 GiB of global features no longer held), and a re-run of ``evaluate`` (new re-ranking
parameters, another variant) reads no feature file and converts nothing."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

from ..features.files import FeatureSet, load_features
from ..features.store import FeatureStore, StoreError
from ..foundation.errors import PipelineError
from ..foundation.io_utils import atomic_directory
from .stripes import CHUNK_ROWS, unit_stripe_chunks

LABELS = "labels.npz"  # pid, camid, path of every row, beside the store's parts


def write_evaluation_store(features_npz, out_dir, stripe_dtype: str, local: bool = True) -> int:
    """Write the store ``out_dir`` of a complete feature file: its global features float32, with
    ``local`` its stripes checked finite, scaled to unit length in float32 and stored as
    ``stripe_dtype`` (float32 or float16) a chunk of rows at a time, and its labels. The folder
    appears complete or not at all. Returns the row count."""
    features_npz = Path(features_npz)
    feats = load_features(features_npz, local=False)
    if not feats.complete:
        raise PipelineError(f"{features_npz}: holds a sample of {len(feats)} rows, evaluation needs every image of the split")
    n = len(feats)
    if local:  # the global features were checked finite by load_features; the stripes chunk by chunk
        chunks = unit_stripe_chunks(features_npz, feats.path)
        first = next(chunks, None)
        stripes, dim = first[1].shape[1:] if first else (0, 0)
        chunks = ((feats.global_[s : s + len(b)], b) for s, b in itertools.chain([first] if first else [], chunks))
    else:
        stripes, dim = 0, 0
        chunks = ((feats.global_[s : s + CHUNK_ROWS], np.zeros((min(CHUNK_ROWS, n - s), 0, 0), np.float32)) for s in range(0, n, CHUNK_ROWS))

    keys = [str(p).encode("utf-8", "surrogateescape") for p in feats.path]
    with atomic_directory(out_dir) as tmp:
        store = FeatureStore.create(tmp, feats.global_.shape[1], stripes, dim, dtype=stripe_dtype, global_dtype="float32")
        with open(tmp / LABELS, "wb") as fh:
            np.savez(fh, pid=feats.pid, camid=feats.camid, path=feats.path)
        store.append_chunks(np.asarray(keys, dtype="S") if keys else np.zeros(0, "S1"), chunks)
    return n


REWRITE = "remove the folder (or run snakemake with --forcerun evaluation_store) to write it again from its feature file"


def open_labelled_store(path) -> tuple[FeatureStore, np.ndarray, np.ndarray, np.ndarray]:
    """(the store, pid, camid, path of each row) of an evaluation store, checked to agree: a damaged
    one is refused naming the file and how to write it again."""
    path = Path(path)
    try:
        store = FeatureStore(path)
        with np.load(path / LABELS, allow_pickle=False) as z:
            pid, camid, names = z["pid"].astype(np.int64), z["camid"].astype(np.int64), z["path"].astype(str)
    except StoreError as e:
        raise StoreError(f"{e}; it is an evaluation store: {REWRITE}") from e
    except (OSError, ValueError, KeyError) as e:
        raise StoreError(f"{path}: not an evaluation store ({e}); expected store.json, one part and {LABELS}; {REWRITE}") from e
    if len(store.parts) != 1 or not (len(pid) == len(camid) == len(names) == len(store)):
        raise StoreError(
            f"{path}: {len(store.parts)} parts of {len(store)} rows with labels of {len(pid)} images; expected one part, one row per label; {REWRITE}"
        )
    return store, pid, camid, names


def open_evaluation_store(path) -> FeatureSet:
    """The FeatureSet of an evaluation store: its global features and unit-length stripes mapped
    (copy-on-write, never written), its labels read."""
    store, pid, camid, names = open_labelled_store(path)
    global_, local = store.mapped("global"), store.mapped("local")
    return FeatureSet(global_, local, pid, camid, names, np.arange(len(pid), dtype=np.int64), unit_local=True)


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an evaluation store (a folder), not a feature file."""
    return Path(path).is_dir()
