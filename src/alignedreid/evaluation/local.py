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

# tanh(u) = u * P(u^2) on [0, 1], P of degree 6: coefficients fitted by least squares on this
# interval (float32 evaluation error about 1e-7, the float32 resolution). u = t / 2 with t the
# Euclidean distance of two stripes; L2-normalised stripes (the contract) have t <= 2, so u <= 1.
# Larger distances (inputs that are not normalised) are recomputed exactly.
_U = np.linspace(1e-3, 1.0, 4000)
_TANH_COEFFS = np.polynomial.polynomial.polyfit(_U**2, np.tanh(_U) / _U, 6)
C0, C1, C2, C3, C4, C5, C6 = (np.float32(c) for c in _TANH_COEFFS)


@numba.njit(parallel=True, cache=True, fastmath=True)
def _squash(gram, xx, yy, n, v, far):
    """gram [R, Nb*n] -> v [R, n, Nb] = (e^t - 1) / (e^t + 1) of the stripe distances t (pairs
    innermost, for the path kernel); far[r] = largest squared distance of row r (> 4: not normalised)."""
    rows, nb = v.shape[0], v.shape[2]
    for r in numba.prange(rows):
        worst = np.float32(0.0)
        for b in range(n):
            for j in range(nb):
                sq = max(xx[r] + yy[j * n + b] - np.float32(2.0) * gram[r, j * n + b], np.float32(0.0))
                worst = max(worst, sq)
                u = np.float32(0.5) * np.sqrt(min(sq, np.float32(4.0)))
                u2 = u * u
                v[r, b, j] = u * (C0 + u2 * (C1 + u2 * (C2 + u2 * (C3 + u2 * (C4 + u2 * (C5 + u2 * C6))))))
        far[r] = worst


@numba.njit(parallel=True, cache=True)
def _squash_exact_rows(gram, xx, yy, n, v, far):
    """Exact squashing for the rows holding a squared distance above 4 (not normalised inputs)."""
    rows, nb = v.shape[0], v.shape[2]
    for r in numba.prange(rows):
        if far[r] <= 4.0:
            continue
        for b in range(n):
            for j in range(nb):
                sq = max(np.float64(xx[r]) + yy[j * n + b] - 2.0 * gram[r, j * n + b], 0.0)
                e = math.exp(math.sqrt(sq))
                v[r, b, j] = (e - 1.0) / (e + 1.0)


@numba.njit(parallel=True, cache=True, fastmath=True)
def _shortest_paths(v, m, n, out):
    """v [Mb*m, n, Nb] squashed distances -> out [Mb, Nb]: cheapest down/right path from stripe
    (0, 0) to (m-1, n-1), for all pairs of a row at once (the pair axis is innermost)."""
    mb, nb = out.shape
    for i in numba.prange(mb):
        dp = np.empty((n, nb), dtype=np.float32)
        for a in range(m):
            row = v[i * m + a]
            if a == 0:
                for j in range(nb):
                    dp[0, j] = row[0, j]
                for b in range(1, n):
                    for j in range(nb):
                        dp[b, j] = dp[b - 1, j] + row[b, j]
            else:
                for j in range(nb):
                    dp[0, j] += row[0, j]
                for b in range(1, n):
                    for j in range(nb):
                        dp[b, j] = min(dp[b, j], dp[b - 1, j]) + row[b, j]
        for j in range(nb):
            out[i, j] = dp[n - 1, j]


def _paths_from_gram(gram, xx, yy, m, n, out):
    """gram [Mb*m, Nb*n] = x . y^T of a block, xx/yy squared stripe norms (float32) -> out [Mb, Nb]."""
    v = np.empty((gram.shape[0], n, gram.shape[1] // n), dtype=np.float32)
    far = np.empty(gram.shape[0], dtype=np.float32)
    _squash(gram, xx, yy, n, v, far)
    if far.max(initial=0.0) > 4.0:
        _squash_exact_rows(gram, xx, yy, n, v, far)
    _shortest_paths(v, m, n, out)


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
    xx = np.einsum("ij,ij->i", xf, xf, dtype=np.float64).astype(np.float32)
    yy = xx if symmetric else np.einsum("ij,ij->i", yf, yf, dtype=np.float64).astype(np.float32)
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
            block = np.empty((i1 - i0, j1 - j0), dtype=np.float32)
            _paths_from_gram(gram, xx[i0 * m : i1 * m], yy[j0 * n : j1 * n], m, n, block)
            out[i0:i1, j0:j1] = block
            if symmetric and j0 != i0:
                out[j0:j1, i0:i1] = block.T
    return out
