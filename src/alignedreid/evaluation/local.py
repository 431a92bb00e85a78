"""DMLI local distance (AlignedReID): shortest path through the stripe-to-stripe distance matrix.

For features x [M, m, d] and y [N, n, d], stripe distances are Euclidean, squashed by
(e^t - 1) / (e^t + 1) (= tanh(t / 2)), and the distance of a pair is the cheapest path from
stripe (0, 0) to (m-1, n-1) moving down or right. The stripe distances of a block of pairs
come from one matrix product; a compiled kernel turns the product into distances and runs
the path recursion for every pair of the block, so memory stays bounded by the block size.
"""

from __future__ import annotations

import math

import numba
import numpy as np


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


def _block_rows(count: int, stripes_other: int, stripes: int, budget: int) -> int:
    return max(1, min(count, budget // max(1, stripes * stripes_other)))


def local_distance(x, y, block_elems: int = 1 << 24, symmetric: bool | None = None) -> np.ndarray:
    """DMLI distance between every pair: x [M, m, d], y [N, n, d] -> float32 [M, N].

    Works block by block (a block's stripe Gram matrix holds at most ``block_elems`` float32
    values, 64 MiB by default). When ``y is x`` (or ``symmetric=True``) only blocks on and
    above the diagonal are computed and mirrored, halving the work.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.float32)
    if x.ndim != 3 or y.ndim != 3 or x.shape[2] != y.shape[2]:
        raise ValueError(f"local_distance: expected x [M, m, d] and y [N, n, d], got {x.shape} and {y.shape}")
    M, m, d = x.shape
    N, n, _ = y.shape
    if symmetric is None:
        symmetric = y is x or (x.shape == y.shape and np.shares_memory(x, y))
    out = np.empty((M, N), dtype=np.float32)
    if M == 0 or N == 0:
        return out
    xf, yf = x.reshape(M * m, d), y.reshape(N * n, d)
    xx = np.einsum("ij,ij->i", xf, xf, dtype=np.float64)
    yy = xx if symmetric else np.einsum("ij,ij->i", yf, yf, dtype=np.float64)
    side = int(math.sqrt(block_elems))
    bm = _block_rows(M, 1, m, side)
    bn = _block_rows(N, 1, n, max(side, block_elems // max(1, bm * m)))
    if symmetric:
        bn = bm  # square blocks so that mirrored blocks line up
    for i0 in range(0, M, bm):
        i1 = min(i0 + bm, M)
        xb = xf[i0 * m : i1 * m]
        for j0 in range(i0 if symmetric else 0, N, bn):
            j1 = min(j0 + bn, N)
            gram = xb @ yf[j0 * n : j1 * n].T
            block = np.empty((i1 - i0, j1 - j0), dtype=np.float64)
            _paths_from_gram(gram, xx[i0 * m : i1 * m], yy[j0 * n : j1 * n], m, n, block)
            out[i0:i1, j0:j1] = block
            if symmetric and j0 != i0:
                out[j0:j1, i0:i1] = block.T
    return out
