"""DMLI local distance (AlignedReID): shortest path through the stripe-to-stripe distance matrix.

For features x [M, m, d] and y [N, n, d], stripe distances are Euclidean, squashed by
(e^t - 1) / (e^t + 1) (= tanh(t / 2)), and the distance of a pair is the cheapest path from
stripe (0, 0) to (m-1, n-1) moving down or right. The stripe distances of a block of pairs
come from one matrix product (the other side's stripes ordered stripe-major, so that each
stripe's distances to all pairs of the block are contiguous); one compiled pass turns them into
squashed distances and runs the path recursion for all pairs of a row at once, vectorised over
pairs, so memory stays bounded by the block size and nothing is written between the two.
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


@numba.njit(inline="always", fastmath=True)
def _squashed(sq):
    """tanh(sqrt(sq) / 2) = (e^t - 1) / (e^t + 1) of t = sqrt(sq), float32, for 0 <= sq <= 4
    (clamped into that range: rounding can step just outside it)."""
    u = np.float32(0.5) * np.sqrt(min(max(sq, np.float32(0.0)), np.float32(4.0)))
    u2 = u * u
    return u * (C0 + u2 * (C1 + u2 * (C2 + u2 * (C3 + u2 * (C4 + u2 * (C5 + u2 * C6))))))


@numba.njit(parallel=True, cache=True, fastmath=True)
def _paths_fused(gram, xx, yy_t, m, n, out):
    """gram [Mb*m, n*Nb] = x . y^T of a block with the y stripes ordered stripe-major (column
    b*Nb + j is stripe b of pair j), xx [Mb*m] and yy_t [n, Nb] squared norms -> out [Mb, Nb]:
    the squashed stripe distances are computed and consumed by the path recursion in one pass,
    the pair axis innermost and contiguous, so the loops compile to SIMD over pairs (no
    reduction or branch inside them) and nothing is written in between. Valid for stripes of
    at most unit length (squared distance <= 4); local_distance sends other rows to _paths_exact."""
    mb, nb = out.shape
    two = np.float32(2.0)
    for i in numba.prange(mb):
        dp = np.empty((n, nb), dtype=np.float32)
        for a in range(m):
            r = i * m + a
            xr = xx[r]
            for b in range(n):
                g = gram[r, b * nb : (b + 1) * nb]
                yb = yy_t[b]
                cur = dp[b]
                if a == 0 and b == 0:
                    for j in range(nb):
                        cur[j] = _squashed(xr + yb[j] - two * g[j])
                elif a == 0:
                    prev = dp[b - 1]
                    for j in range(nb):
                        cur[j] = prev[j] + _squashed(xr + yb[j] - two * g[j])
                elif b == 0:
                    for j in range(nb):
                        cur[j] += _squashed(xr + yb[j] - two * g[j])
                else:
                    prev = dp[b - 1]
                    for j in range(nb):
                        cur[j] = min(cur[j], prev[j]) + _squashed(xr + yb[j] - two * g[j])
        for j in range(nb):
            out[i, j] = dp[n - 1, j]


@numba.njit(parallel=True, cache=True)
def _paths_exact(gram, xx, yy_t, m, n, out, rows):
    """The same in float64 with the exact squashing, for the row blocks with rows[i] set."""
    mb, nb = out.shape
    for i in numba.prange(mb):
        if not rows[i]:
            continue
        dp = np.empty((n, nb), dtype=np.float64)
        for a in range(m):
            r = i * m + a
            for b in range(n):
                for j in range(nb):
                    sq = max(np.float64(xx[r]) + yy_t[b, j] - 2.0 * gram[r, b * nb + j], 0.0)
                    e = math.exp(math.sqrt(sq))
                    val = (e - 1.0) / (e + 1.0)
                    if a == 0 and b == 0:
                        dp[b, j] = val
                    elif a == 0:
                        dp[b, j] = dp[b - 1, j] + val
                    elif b == 0:
                        dp[b, j] += val
                    else:
                        dp[b, j] = min(dp[b, j], dp[b - 1, j]) + val
        for j in range(nb):
            out[i, j] = dp[n - 1, j]


def _paths_from_gram(gram, xx, yy_t, m, n, out, exact_rows):
    """gram [Mb*m, n*Nb] (y stripes stripe-major), xx [Mb*m], yy_t [n, Nb] -> out [Mb, Nb];
    ``exact_rows`` [Mb] marks rows that involve a stripe longer than unit length."""
    _paths_fused(gram, xx, yy_t, m, n, out)
    if exact_rows.any():
        _paths_exact(gram, xx, yy_t, m, n, out, exact_rows)


# a stripe counts as unit length up to this slack in its squared norm (float32 rounding of an
# L2 normalisation); the clamp to [0, 4] in _squashed absorbs the resulting excess
UNIT_SLACK = 1e-5


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
    x_long = (xx.reshape(M, m) > 1.0 + UNIT_SLACK).any(axis=1)  # |x - y|^2 <= (|x| + |y|)^2 <= 4 otherwise
    y_long = x_long if symmetric else (yy.reshape(N, n) > 1.0 + UNIT_SLACK).any(axis=1)
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
            y_t = np.ascontiguousarray(y[j0:j1].transpose(1, 0, 2)).reshape(n * (j1 - j0), d)  # stripe-major
            gram = xb @ y_t.T
            block = np.empty((i1 - i0, j1 - j0), dtype=np.float32)
            yy_t = np.ascontiguousarray(yy[j0 * n : j1 * n].reshape(j1 - j0, n).T)
            exact = x_long[i0:i1] | y_long[j0:j1].any()
            _paths_from_gram(gram, xx[i0 * m : i1 * m], yy_t, m, n, block, exact)
            out[i0:i1, j0:j1] = block
            if symmetric and j0 != i0:
                out[j0:j1, i0:i1] = block.T
    return out
