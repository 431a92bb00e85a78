"""The DMLI kernel as it was before the evaluation-speed work (float64, one pair at a time: square
root and exponential per stripe pair, then the path recursion), kept only so that
bench/evaluation.py can time it beside the current one in the same run."""

from __future__ import annotations

import math

import numba
import numpy as np

from alignedreid.evaluation.local import _block_rows


@numba.njit(parallel=True, cache=True, fastmath=False)
def _paths_from_gram(gram, xx, yy, m, n, out):
    """gram [Mb*m, Nb*n] = x . y^T of a block, xx/yy squared stripe norms; out [Mb, Nb]."""
    mb, nb = out.shape
    for i in numba.prange(mb):
        dp = np.empty(n, dtype=np.float64)
        for j in range(nb):
            for a in range(m):
                r = i * m + a
                for b in range(n):
                    c = j * n + b
                    sq = xx[r] + yy[c] - 2.0 * gram[r, c]
                    t = math.sqrt(sq) if sq > 0.0 else 0.0
                    e = math.exp(t)
                    v = (e - 1.0) / (e + 1.0)
                    if a == 0:
                        dp[b] = v if b == 0 else dp[b - 1] + v
                    elif b == 0:
                        dp[0] = dp[0] + v
                    else:
                        dp[b] = min(dp[b], dp[b - 1]) + v
            out[i, j] = dp[n - 1]


def previous_local_distance(x, y, block_elems: int = 1 << 24) -> np.ndarray:
    """Same blocking as alignedreid.evaluation.local_distance (not symmetric), previous kernel."""
    x, y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)
    M, m, d = x.shape
    N, n, _ = y.shape
    out = np.empty((M, N), dtype=np.float32)
    xf, yf = x.reshape(M * m, d), y.reshape(N * n, d)
    xx = np.einsum("ij,ij->i", xf, xf, dtype=np.float64)
    yy = np.einsum("ij,ij->i", yf, yf, dtype=np.float64)
    side = int(math.sqrt(block_elems))
    bm = _block_rows(M, 1, m, side)
    bn = _block_rows(N, 1, n, max(side, block_elems // max(1, bm * m)))
    for i0 in range(0, M, bm):
        i1 = min(i0 + bm, M)
        for j0 in range(0, N, bn):
            j1 = min(j0 + bn, N)
            block = np.empty((i1 - i0, j1 - j0), dtype=np.float64)
            _paths_from_gram(xf[i0 * m : i1 * m] @ yf[j0 * n : j1 * n].T, xx[i0 * m : i1 * m], yy[j0 * n : j1 * n], m, n, block)
            out[i0:i1, j0:j1] = block
    return out
