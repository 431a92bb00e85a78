"""The local features as evaluate holds them (docs/architecture.md §4): float32 as written, or
float16 (evaluation.stripe_dtype) to halve the largest array of the stage -- MSMT17's 93,820 x 8 x
2048 stripes are 6.1 GB in float32, 3.1 GB in float16. The float16 stripes are read from the
feature file a chunk of rows at a time (never the whole float32 member), checked finite, scaled to
unit length in float32 and only then rounded; the DMLI kernels widen them back to float32 pair by
pair (shortlist.py), so the distance arithmetic is float32 on the rounded values."""

from __future__ import annotations

import numpy as np

from ..features.files import FeatureSet, NonFiniteFeatures, npz_row_chunks
from ..foundation.errors import PipelineError
from .distance import unit_stripes_

CHUNK_ROWS = 2048  # images per chunk while reading float16 stripes (128 MB of float32 at 8 x 2048)


def half_bits(values: np.ndarray) -> np.ndarray:
    """A float16 array's bit patterns (uint16, no copy): what the compiled kernels widen."""
    return np.ascontiguousarray(values).view(np.uint16)


def unit_stripe_chunks(path, paths, rows: int = CHUNK_ROWS):
    """(start, float32 stripes at unit length) of the feature file's ``local`` member, ``rows`` images
    at a time (never the whole float32 member), one row per entry of ``paths`` (the images' names).
    Non-finite rows are yielded zeroed and, after the last chunk, refused with NonFiniteFeatures
    naming every one; a member of another row count is refused naming the file."""
    n, bad, seen = len(paths), [], 0
    for start, chunk in npz_row_chunks(path, "local", rows):
        if chunk.ndim != 3:
            raise PipelineError(f"{path}: array 'local' has {chunk.ndim} dimensions, expected 3")
        if start + len(chunk) > n:
            raise PipelineError(f"{path}: array 'local' has more rows than 'pid' ({n})")
        block = chunk.astype(np.float32)  # a copy: the chunk is the archive's read-only buffer
        finite = np.isfinite(block).reshape(len(block), -1).all(axis=1)
        bad.extend(start + np.flatnonzero(~finite))
        block[~finite] = 0.0  # refused below, after every row was read (the error names them all)
        yield start, unit_stripes_(block)
        seen = start + len(chunk)
    if seen != n:
        raise PipelineError(f"{path}: array 'local' does not have one row per image ({n} expected)")
    if bad:
        names = ", ".join(str(paths[i]) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise NonFiniteFeatures(f"{path}: {len(bad)} of {n} images have non-finite stripes: {names}")


def load_half_stripes(path, features: FeatureSet) -> FeatureSet:
    """``features`` (read with local=False) with its stripes read from ``path`` as float16 at unit
    length. Non-finite stripes are refused naming the images, as load_features does."""
    out = None
    for start, block in unit_stripe_chunks(path, features.path):
        if out is None:
            out = np.empty((len(features), *block.shape[1:]), np.float16)
        out[start : start + len(block)] = block
    features.local = out
    return features
