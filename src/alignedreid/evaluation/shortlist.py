"""Two-stage ranking: a global shortlist of K gallery items per query, the DMLI local distance on the
shortlist only, everything past it kept in global order (docs/architecture.md §4).

A shortlisted distance is held as ``(idx, values)``, both [q, K]: the K gallery items of each query
and their distance. ``shortlist_rows`` turns a block of query rows into q x g rows that rank exactly
so: the shortlisted items carry their value, every other item its global distance plus an offset
that places it after all of them. With K = the gallery size the global + local variant is the
exhaustive distance. The local distance then costs q x K stripe-pair paths instead of q x g
(MSMT17: 11,659 x 200 instead of 11,659 x 82,161), computed pair by pair by one compiled kernel.
Float16 stripes (evaluation.stripe_dtype) are widened to float32 one image at a time inside the
kernels (bit operations the compiler vectorises), so both precisions share the float32 DMLI arithmetic.
"""

from __future__ import annotations

import numba
import numpy as np

from .distance import global_distance_blocks
from .local import _squashed, local_distance
from .stripes import half_bits
from .topk import smallest_k


@numba.njit(inline="always", fastmath=True)
def _dmli(x, y, dist):
    """DMLI distance of stripes x [m, d] and y [n, d] (unit length), ``dist`` [m, n] scratch."""
    m, d = x.shape
    n = y.shape[0]
    for a in range(m):
        for b in range(n):
            s = np.float32(0.0)
            for c in range(d):
                t = x[a, c] - y[b, c]
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
    return dist[m - 1, n - 1]


@numba.njit(parallel=True, cache=True, fastmath=True)
def _pair_kernel(x, y, idx, out):
    """out[i, k] = DMLI distance of x[i] and y[idx[i, k]] (unit-length stripes, float32)."""
    nq, kk = idx.shape
    for i in numba.prange(nq):
        dist = np.empty((x.shape[1], y.shape[1]), dtype=np.float32)
        for k in range(kk):
            out[i, k] = _dmli(x[i], y[idx[i, k]], dist)


@numba.njit(parallel=True, cache=True, fastmath=True)
def _node_pair_kernel(q, g, rows, cols, out):
    """out[t] = DMLI distance of nodes rows[t] and cols[t]; node i < len(q) is query i, else gallery i - len(q)."""
    nq = q.shape[0]
    per = 256
    for blk in numba.prange((len(rows) + per - 1) // per):
        dist = np.empty((q.shape[1], q.shape[1]), dtype=np.float32)
        for t in range(blk * per, min((blk + 1) * per, len(rows))):
            i, j = rows[t], cols[t]
            x = q[i] if i < nq else g[i - nq]
            y = q[j] if j < nq else g[j - nq]
            out[t] = _dmli(x, y, dist)


@numba.njit(inline="always")
def _widen(bits, scratch, out):
    """out [S, D] float32 = the finite float16 values whose bit patterns are ``bits`` [S, D], without a
    table: the sign, exponent and mantissa moved to float32's places (``scratch``, uint32 [S, D],
    is ``out``'s memory) read as a float 2^112 too small, then scaled -- exact for normal and
    subnormal halves alike, and vectorised by the compiler (a table lookup is not)."""
    for a in range(bits.shape[0]):
        for c in range(bits.shape[1]):
            h = np.uint32(bits[a, c])
            scratch[a, c] = ((h & np.uint32(0x8000)) << np.uint32(16)) | ((h & np.uint32(0x7FFF)) << np.uint32(13))
    for a in range(bits.shape[0]):
        for c in range(bits.shape[1]):
            out[a, c] *= np.float32(5.192296858534828e33)  # 2^112: the exponent bias 127 - 15


@numba.njit(parallel=True, cache=True, fastmath=True)
def _pair_kernel_half(x, y, idx, out):
    """_pair_kernel on float16 stripes given as bit patterns (uint16), widened image by image."""
    nq, kk = idx.shape
    for i in numba.prange(nq):
        dist = np.empty((x.shape[1], y.shape[1]), dtype=np.float32)
        xs = np.empty((x.shape[1], x.shape[2]), dtype=np.uint32)
        ys = np.empty((y.shape[1], y.shape[2]), dtype=np.uint32)
        xf, yf = xs.view(np.float32), ys.view(np.float32)
        _widen(x[i], xs, xf)
        for k in range(kk):
            _widen(y[idx[i, k]], ys, yf)
            out[i, k] = _dmli(xf, yf, dist)


@numba.njit(parallel=True, cache=True, fastmath=True)
def _node_pair_kernel_half(q, g, rows, cols, out):
    """_node_pair_kernel on float16 stripes given as bit patterns (uint16)."""
    nq = q.shape[0]
    per = 256
    for blk in numba.prange((len(rows) + per - 1) // per):
        dist = np.empty((q.shape[1], q.shape[1]), dtype=np.float32)
        xs = np.empty((q.shape[1], q.shape[2]), dtype=np.uint32)
        ys = np.empty((q.shape[1], q.shape[2]), dtype=np.uint32)
        xf, yf = xs.view(np.float32), ys.view(np.float32)
        last = -1
        for t in range(blk * per, min((blk + 1) * per, len(rows))):
            i, j = rows[t], cols[t]
            if i != last:  # pairs come grouped by their first node: widen it once per group
                _widen(q[i] if i < nq else g[i - nq], xs, xf)
                last = i
            _widen(q[j] if j < nq else g[j - nq], ys, yf)
            out[t] = _dmli(xf, yf, dist)


@numba.njit(inline="always")
def _scale_to_unit(y):
    """Each stripe (row) of the float32 [S, D] scratch ``y`` divided by its length (floored at 1e-12), in place."""
    for a in range(y.shape[0]):
        s = np.float32(0.0)
        for c in range(y.shape[1]):
            s += y[a, c] * y[a, c]
        n = max(np.sqrt(s), np.float32(1e-12))
        for c in range(y.shape[1]):
            y[a, c] /= n


@numba.njit(parallel=True, cache=True, fastmath=True)
def _pair_kernel_half_scaled(x, y, idx, out):
    """_pair_kernel for float32 unit query stripes x and float16 gallery stripes y (bit patterns) of any
    length: each gallery image is widened and scaled to unit stripes in a scratch buffer as it is read."""
    nq, kk = idx.shape
    for i in numba.prange(nq):
        dist = np.empty((x.shape[1], y.shape[1]), dtype=np.float32)
        ys = np.empty((y.shape[1], y.shape[2]), dtype=np.uint32)
        yf = ys.view(np.float32)
        for k in range(kk):
            _widen(y[idx[i, k]], ys, yf)
            _scale_to_unit(yf)
            out[i, k] = _dmli(x[i], yf, dist)


def local_on_shortlist_scaled(q_unit: np.ndarray, g_half: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """[nq, K] DMLI distance of query i (float32 unit stripes) to gallery item idx[i, k], the gallery's
    float16 stripes scaled to unit length inside the kernel: how search reads a float16 store without
    a float32 copy of the candidates' stripes (half the bytes moved, no conversion pass)."""
    out = np.empty(idx.shape, dtype=np.float32)
    _pair_kernel_half_scaled(_f32(q_unit), half_bits(np.asarray(g_half, np.float16)), np.ascontiguousarray(idx, np.int64), out)
    return out


def _halves(q_local, g_local):
    """Both sides as float16 bit patterns when either is float16 (else None): the kernels' input."""
    if np.float16 not in (q_local.dtype, g_local.dtype):
        return None
    return half_bits(q_local.astype(np.float16, copy=False)), half_bits(g_local.astype(np.float16, copy=False))


def _f32(a):
    return np.ascontiguousarray(a, np.float32)


def local_on_shortlist(q_local: np.ndarray, g_local: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """[nq, K] DMLI distance of query i to gallery item idx[i, k] (stripes of at most unit length)."""
    out = np.empty(idx.shape, dtype=np.float32)
    idx = np.ascontiguousarray(idx, np.int64)
    halves = _halves(q_local, g_local)
    if halves:
        _pair_kernel_half(*halves, idx, out)
    else:
        _pair_kernel(_f32(q_local), _f32(g_local), idx, out)
    return out


def local_on_pairs(q_local: np.ndarray, g_local: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """DMLI distance of node pairs (rows[t], cols[t]) over the queries followed by the gallery
    (node i < len(q_local) is a query, else gallery item i - len(q_local)); both sides need the same stripe count."""
    if q_local.shape[1:] != g_local.shape[1:]:
        raise ValueError(f"local_on_pairs: query stripes {q_local.shape[1:]} and gallery stripes {g_local.shape[1:]} differ")
    out = np.empty(len(rows), dtype=np.float32)
    rows, cols = np.ascontiguousarray(rows, np.int64), np.ascontiguousarray(cols, np.int64)
    halves = _halves(q_local, g_local)
    if halves:
        _node_pair_kernel_half(*halves, rows, cols, out)
    else:
        _node_pair_kernel(_f32(q_local), _f32(g_local), rows, cols, out)
    return out


def global_local_shortlist(global_dist: np.ndarray, q_local: np.ndarray, g_local: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(idx, values) [q, K]: each query's K nearest gallery items by the global distance and their global + local distance."""
    idx = smallest_k(global_dist, min(int(k), global_dist.shape[1]))
    return idx, np.take_along_axis(global_dist, idx, axis=1) + local_on_shortlist(q_local, g_local, idx)


def shortlist_rows(global_rows: np.ndarray, idx: np.ndarray, values: np.ndarray, copy: bool = True) -> np.ndarray:
    """q x g rows: ``values`` at ``idx``, every other item its global distance shifted past the row's
    largest value (``copy=False``: written over ``global_rows`` when it is float32)."""
    offset = values.max(axis=1) - global_rows.min(axis=1) + 1.0  # every item past the shortlist ranks after it
    out = global_rows.astype(np.float32, copy=copy)
    out += offset[:, None].astype(np.float32)
    np.put_along_axis(out, idx, values.astype(np.float32), axis=1)
    return out


def shortlist_blocks(query_global: np.ndarray, gallery_global: np.ndarray, idx: np.ndarray, values: np.ndarray, rows: int = 512):
    """(start, q x g rows) blocks of a shortlisted distance; the global rows past the shortlist are
    recomputed from the features a block at a time, so no q x g matrix is held."""
    for s, glob in global_distance_blocks(query_global, gallery_global, rows):
        e = s + len(glob)
        yield s, shortlist_rows(glob, idx[s:e], values[s:e], copy=False)  # glob is this block's own


def two_stage_global_local(global_dist: np.ndarray, q_local: np.ndarray, g_local: np.ndarray, k: int) -> np.ndarray:
    """The global + local distance on each query's K nearest (global) gallery items; the rest in global order after them."""
    if min(int(k), global_dist.shape[1]) == global_dist.shape[1]:
        return global_dist + local_distance(q_local, g_local)
    idx, values = global_local_shortlist(global_dist, q_local, g_local, k)
    return shortlist_rows(global_dist, idx, values)
