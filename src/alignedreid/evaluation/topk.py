"""The k smallest entries of each row, in the order a stable full sort gives, without the sort."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def _top_k_kernel(rows, k, out):
    """out[i] = indices of the k smallest entries of rows[i], ascending, ties by lower index
    (the order a stable full sort gives). One pass per row with a sorted buffer of k."""
    b, n = rows.shape
    for i in numba.prange(b):
        vals = np.empty(k, dtype=rows.dtype)
        idx = np.empty(k, dtype=np.int64)
        filled = 0
        for j in range(n):
            v = rows[i, j]
            if filled == k and not v < vals[k - 1]:
                continue
            pos = filled if filled < k else k - 1
            while pos > 0 and v < vals[pos - 1]:
                if pos < k:
                    vals[pos] = vals[pos - 1]
                    idx[pos] = idx[pos - 1]
                pos -= 1
            vals[pos] = v
            idx[pos] = j
            if filled < k:
                filled += 1
        for a in range(k):
            out[i, a] = idx[a]


def smallest_k(rows: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest entries of each row, in ascending order (ties by index)."""
    k = min(k, rows.shape[1])
    out = np.empty((rows.shape[0], k), dtype=np.int64)
    _top_k_kernel(np.ascontiguousarray(rows), k, out)
    return out
