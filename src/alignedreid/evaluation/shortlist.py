"""Two-stage ranking: a global shortlist of K gallery items per query, the DMLI local distance on the
shortlist only, everything past it kept in global order (docs/architecture.md §4).

``two_stage_global_local`` returns a q x g matrix that ranks exactly so: the shortlisted items carry
their global + local distance, every other item its global distance plus an offset that places it
after all of them. With K = the gallery size it is the exhaustive global + local distance. The local
distance then costs q x K stripe-pair paths instead of q x g (MSMT17: 11,659 x 100 instead of
11,659 x 82,161), computed pair by pair by one compiled kernel.
"""

from __future__ import annotations

import numba
import numpy as np

from .local import _squashed, local_distance
from .topk import smallest_k


@numba.njit(parallel=True, cache=True, fastmath=True)
def _pair_kernel(x, y, idx, out):
    """out[i, k] = DMLI distance of x[i] and y[idx[i, k]] (unit-length stripes, float32)."""
    nq, kk = idx.shape
    m, d = x.shape[1], x.shape[2]
    n = y.shape[1]
    for i in numba.prange(nq):
        dist = np.empty((m, n), dtype=np.float32)
        for k in range(kk):
            j = idx[i, k]
            for a in range(m):
                for b in range(n):
                    s = np.float32(0.0)
                    for c in range(d):
                        t = x[i, a, c] - y[j, b, c]
                        s += t * t
                    dist[a, b] = _squashed(s)
            for a in range(m):  # cheapest path from (0, 0) to (m-1, n-1), moving down or right
                for b in range(n):
                    if a == 0 and b > 0:
                        dist[a, b] += dist[a, b - 1]
                    elif b == 0 and a > 0:
                        dist[a, b] += dist[a - 1, b]
                    elif a > 0 and b > 0:
                        dist[a, b] += min(dist[a - 1, b], dist[a, b - 1])
            out[i, k] = dist[m - 1, n - 1]


def local_on_shortlist(q_local: np.ndarray, g_local: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """[nq, K] DMLI distance of query i to gallery item idx[i, k] (stripes of at most unit length)."""
    out = np.empty(idx.shape, dtype=np.float32)
    _pair_kernel(np.ascontiguousarray(q_local, np.float32), np.ascontiguousarray(g_local, np.float32), np.ascontiguousarray(idx, np.int64), out)
    return out


def two_stage_global_local(global_dist: np.ndarray, q_local: np.ndarray, g_local: np.ndarray, k: int) -> np.ndarray:
    """The global + local distance on each query's K nearest (global) gallery items; the rest in global order after them."""
    k = min(int(k), global_dist.shape[1])
    if k == global_dist.shape[1]:
        return global_dist + local_distance(q_local, g_local)
    idx = smallest_k(global_dist, k)
    combined = np.take_along_axis(global_dist, idx, axis=1) + local_on_shortlist(q_local, g_local, idx)
    out = global_dist.astype(np.float32, copy=True)
    out += np.float32(combined.max() - global_dist.min() + 1.0)  # every item past the shortlist ranks after it
    np.put_along_axis(out, idx, combined.astype(np.float32), axis=1)
    return out
