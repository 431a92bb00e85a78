"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), built for Market scale.

Computes the same result as the authors' published algorithm:
  original = d^2 over all (q+g) x (q+g) pairs, each column divided by its maximum (then
  transposed, so row i holds column i); initial ranks = each row's ascending order;
  R(i)  = k1-reciprocal neighbours of i among its k1+1 nearest;
  R*(i) = R(i) united with R_{k1/2}(c) of every c in R(i) that shares more than 2/3 of it with R(i);
  V[i, R*(i)] = softmax(-original[i, R*(i)]); local query expansion: V[i] = mean of V over i's
  k2 nearest; Jaccard distance 1 - sum min(V_i, V_j) / (2 - sum min(V_i, V_j));
  final = (1 - lambda) * jaccard + lambda * original, query rows, gallery columns.

Differences of construction, not of result: neighbour lists come from a partial sort of each
row (only the k1+1 nearest are ever used), V is a sparse matrix, the (q+g)^2 matrix is never
materialised (rows are assembled from the three blocks, a chunk at a time), and the Jaccard
sums run over the sparse entries, a chunk of queries at a time.
Peak memory beyond the inputs: about ``chunk * (q+g) * 4`` bytes for the row chunks plus the
output ``q * g * 4`` bytes and the sparse V (a few hundred entries per row).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..foundation.contracts import RERANK_K1, RERANK_K2, RERANK_LAMBDA
from .distance import distance_from_unit, l2_normalise
from .topk import smallest_k


class _Columns:
    """Columns of the squared (q+g) x (q+g) distance matrix, read from the three blocks."""

    def __init__(self, q_g, q_q, g_g):
        self.q_g, self.q_q, self.g_g = q_g, q_q, g_g
        self.nq, self.ng = q_g.shape
        self.n = self.nq + self.ng

    def squared(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop of original^T before normalisation, i.e. columns of d^2, as
        float32 [stop-start, n] (squared in the input dtype, then cast, as the reference)."""
        nq = self.nq
        parts = []
        if start < nq:  # query columns: [q_q[:, c]; q_g[c, :]]
            s, e = start, min(stop, nq)
            parts.append(np.concatenate([self.q_q[:, s:e].T, self.q_g[s:e, :]], axis=1))
        if stop > nq:  # gallery columns: [q_g[:, c]; g_g[:, c]]
            s, e = max(start, nq) - nq, stop - nq
            parts.append(np.concatenate([self.q_g[:, s:e].T, self.g_g[:, s:e].T], axis=1))
        block = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        return np.power(block, 2).astype(np.float32)

    def query_gallery(self, start: int, stop: int) -> np.ndarray:
        """Squared query-gallery distances of queries start..stop, float32."""
        return np.power(self.q_g[start:stop], 2).astype(np.float32)

    def gather(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Entries (rows[t], cols[t]) of original^T before normalisation, i.e. d^2[cols, rows]."""
        nq = self.nq
        out = np.empty(len(rows), dtype=np.float32)
        rq, cq = rows < nq, cols < nq
        for sel, block, r_off, c_off, transpose in (
            (rq & cq, self.q_q, 0, 0, True),
            (rq & ~cq, self.q_g, 0, nq, False),
            (~rq & cq, self.q_g, nq, 0, True),
            (~rq & ~cq, self.g_g, nq, nq, True),
        ):
            r, c = rows[sel] - r_off, cols[sel] - c_off
            vals = block[c, r] if transpose else block[r, c]
            out[sel] = np.power(vals, 2).astype(np.float32)
        return out


class FeatureColumns:
    """The same interface as _Columns, computed from global features: d^2 of the global variant
    is the squared Euclidean distance of L2-normalised features (evaluation.distance), which is
    symmetric, so a column block is the row block 2 - 2 f[rows] . f^T."""

    def __init__(self, query_global, gallery_global):
        self.nq, self.ng = len(query_global), len(gallery_global)
        self.n = self.nq + self.ng
        self.f = np.empty((self.n, np.shape(query_global)[1]), np.float32)  # queries, then the gallery: no concatenated copy
        l2_normalise(np.asarray(query_global, np.float32), out=self.f[: self.nq])
        l2_normalise(np.asarray(gallery_global, np.float32), out=self.f[self.nq :])

    def squared(self, start: int, stop: int) -> np.ndarray:
        return distance_from_unit(self.f[start:stop], self.f)

    def query_gallery(self, start: int, stop: int) -> np.ndarray:
        return distance_from_unit(self.f[start:stop], self.f[self.nq :])

    def gather(self, rows: np.ndarray, cols: np.ndarray, pairs: int = 1 << 14) -> np.ndarray:
        out = np.empty(len(rows), dtype=np.float32)
        for s in range(0, len(rows), pairs):
            e = min(s + pairs, len(rows))
            dots = np.einsum("ij,ij->i", self.f[rows[s:e]], self.f[cols[s:e]])
            out[s:e] = np.clip(2.0 - 2.0 * dots, 0.0, 4.0)
        return out


def _reciprocal_mask(ranks: np.ndarray) -> np.ndarray:
    """mask[i, a] = ranks[i, a] has i among its own neighbour list ranks[ranks[i, a]]."""
    n = len(ranks)
    out = np.empty(ranks.shape, dtype=bool)
    for s in range(0, n, 4096):
        e = min(s + 4096, n)
        back = ranks[ranks[s:e]]  # [b, k, k]
        out[s:e] = (back == np.arange(s, e)[:, None, None]).any(axis=2)
    return out


def _expansion_pairs(ranks: np.ndarray, recip: np.ndarray, half: np.ndarray, half_recip: np.ndarray):
    """(row, col) pairs of R*(i) for every row i, unique per row."""
    n, k = ranks.shape
    rows_list, cols_list = [], []
    r_idx = np.nonzero(recip)
    rows_list.append(r_idx[0])
    cols_list.append(ranks[r_idx])
    for s in range(0, n, 2048):
        e = min(s + 2048, n)
        R = np.where(recip[s:e], ranks[s:e], -1)  # [b, k] R(i), -1 where not reciprocal
        cand_sets = half[R.clip(0)]  # [b, k, kh] R_{k1/2}(c) for every candidate c
        cand_mask = half_recip[R.clip(0)] & (R >= 0)[:, :, None]
        inter = (cand_sets[:, :, :, None] == R[:, None, None, :]).any(axis=3) & cand_mask
        size = cand_mask.sum(axis=2)
        take = inter.sum(axis=2) > (2.0 / 3.0) * size  # [b, k]
        sel = cand_mask & take[:, :, None]
        b_i, c_i, h_i = np.nonzero(sel)
        rows_list.append(b_i + s)
        cols_list.append(cand_sets[b_i, c_i, h_i])
    rows = np.concatenate(rows_list).astype(np.int64)
    cols = np.concatenate(cols_list).astype(np.int64)
    key = np.unique(rows * n + cols)
    return key // n, key % n


def _check_params(k1, k2, lambda_value) -> None:
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"re_ranking: need k1 >= 1, k2 >= 1, 0 <= lambda <= 1; got k1={k1}, k2={k2}, lambda={lambda_value}")


def _checked_inputs(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda_value):
    q_g, q_q, g_g = (np.asarray(a) for a in (q_g_dist, q_q_dist, g_g_dist))
    nq, ng = q_g.shape
    if q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise ValueError(f"re_ranking: shapes do not fit: q_g {q_g.shape}, q_q {q_q.shape}, g_g {g_g.shape}")
    _check_params(k1, k2, lambda_value)
    return q_g, q_q, g_g


def re_ranking(
    q_g_dist, q_q_dist, g_g_dist, k1: int = RERANK_K1, k2: int = RERANK_K2, lambda_value: float = RERANK_LAMBDA, chunk: int = 1024
) -> np.ndarray:
    """k-reciprocal re-ranking. Inputs are distances (they are squared inside, as in the
    published code); returns float32 [num_q, num_g]."""
    q_g, q_q, g_g = _checked_inputs(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda_value)
    return _re_rank(_Columns(q_g, q_q, g_g), k1, k2, lambda_value, chunk)


def re_ranking_features(
    query_global, gallery_global, k1: int = RERANK_K1, k2: int = RERANK_K2, lambda_value: float = RERANK_LAMBDA, chunk: int = 1024
) -> np.ndarray:
    """k-reciprocal re-ranking of the ``global`` variant straight from global features: equal
    (to float rounding) to ``re_ranking`` on the square roots of the three global_distance
    matrices, but the (q+g)^2 distances are computed a block of rows at a time and never held,
    so memory is the output (q x g float32) plus ``chunk x (q+g)`` floats -- what MSMT17's
    11,659 x 82,161 needs (its gallery-gallery matrix alone would be 27 GB)."""
    _check_params(k1, k2, lambda_value)
    if query_global.ndim != 2 or gallery_global.ndim != 2 or query_global.shape[1] != gallery_global.shape[1]:
        raise ValueError(f"re_ranking_features: need [q, D] and [g, D] features, got {query_global.shape} and {gallery_global.shape}")
    return _re_rank(FeatureColumns(query_global, gallery_global), k1, k2, lambda_value, chunk)


def re_ranking_features_blocks(
    query_global, gallery_global, k1: int = RERANK_K1, k2: int = RERANK_K2, lambda_value: float = RERANK_LAMBDA, chunk: int = 1024
):
    """``re_ranking_features`` a block of query rows at a time: yields (start, rows) and never holds
    the q x g result (MSMT17: 3.6 GB saved while the evaluation ranks each block as it comes)."""
    _check_params(k1, k2, lambda_value)
    cols = FeatureColumns(query_global, gallery_global)
    V, row_max = _re_rank_v(cols, k1, k2, chunk)
    yield from _blend_blocks(V, cols, row_max, lambda_value)


def _re_rank(cols, k1: int, k2: int, lambda_value: float, chunk: int) -> np.ndarray:
    V, row_max = _re_rank_v(cols, k1, k2, chunk)
    final = np.empty((cols.nq, cols.ng), dtype=np.float32)
    for s, block in _blend_blocks(V, cols, row_max, lambda_value):
        final[s : s + len(block)] = block
    return final


def neighbours_needed(k1: int, k2: int) -> int:
    """How many nearest nodes of each row the re-ranking reads (itself included)."""
    return max(k1 + 1, k2, int(np.around(k1 / 2.0)) + 1)


def _re_rank_v(cols, k1: int, k2: int, chunk: int):
    """(V, row maxima): the expanded neighbour weights of every row and each row's normalising maximum."""
    n = cols.n
    kk = neighbours_needed(k1, k2)

    # pass 1: nearest neighbours and normalising maximum of every row
    ranks = np.empty((n, min(kk, n)), dtype=np.int64)
    row_max = np.empty(n, dtype=np.float32)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        sq = cols.squared(s, e)
        row_max[s:e] = sq.max(axis=1)
        sq /= row_max[s:e, None]
        ranks[s:e] = smallest_k(sq, kk)
        del sq
    return expanded_weights(ranks, cols.gather, row_max, k1, k2), row_max


def expanded_weights(ranks: np.ndarray, gather, row_max: np.ndarray, k1: int, k2: int):
    """V [n, n] sparse: per row i, softmax(-d^2 / row_max[i]) over R*(i) (from ``ranks``, each row's
    nearest nodes ascending, itself first), then averaged over each row's k2 nearest (query
    expansion). ``gather(rows, cols)`` returns d^2 of node pairs."""
    n = len(ranks)
    k_half = int(np.around(k1 / 2.0)) + 1
    r1 = ranks[:, : k1 + 1]
    rh = ranks[:, :k_half]
    rows, cols_idx = _expansion_pairs(r1, _reciprocal_mask(r1), rh, _reciprocal_mask(rh))

    # V: softmax of the negated normalised distances over each row's expanded neighbour set
    weights = np.exp(-(gather(rows, cols_idx) / row_max[rows]))
    row_sum = np.bincount(rows, weights=weights, minlength=n).astype(np.float32)
    V = sp.csr_matrix(((weights / row_sum[rows]).astype(np.float32), (rows, cols_idx)), shape=(n, n))

    if k2 != 1:  # local query expansion: mean of V over each row's k2 nearest
        qe_rows = np.repeat(np.arange(n), k2)
        A = sp.csr_matrix((np.full(n * k2, 1.0 / k2, dtype=np.float32), (qe_rows, ranks[:, :k2].ravel())), shape=(n, n))
        V = (A @ V).tocsr()
        V.eliminate_zeros()
    return V


def query_blocks(nq: int, ng: int):
    """(start, stop) of the query-row blocks the Jaccard sums are computed in (about 4 M gallery entries each)."""
    step = max(1, (1 << 22) // max(ng, 1))
    return [(s, min(s + step, nq)) for s in range(0, nq, step)]


def min_sums(V, nq: int, start: int, stop: int, Vg=None) -> np.ndarray:
    """sum_k min(V[q, k], V[nq + g, k]) for queries start..stop and every gallery row g, [stop - start, ng]."""
    Vg = V[nq:].tocsc() if Vg is None else Vg
    ng = Vg.shape[0]
    sub = V[start:stop].tocoo()
    col_len = np.diff(Vg.indptr)[sub.col]
    rep_row = np.repeat(sub.row, col_len)
    rep_val = np.repeat(sub.data, col_len)
    starts_g = np.repeat(Vg.indptr[sub.col], col_len)
    offs = np.arange(col_len.sum()) - np.repeat(np.cumsum(col_len) - col_len, col_len)
    gi = Vg.indices[starts_g + offs]
    mins = np.minimum(rep_val, Vg.data[starts_g + offs])
    return np.bincount(rep_row * ng + gi, weights=mins, minlength=(stop - start) * ng).reshape(stop - start, ng).astype(np.float32)


def _blend_blocks(V, cols, row_max, lambda_value: float):
    """(start, rows) of (1 - lambda) * Jaccard distance of V's query and gallery rows + lambda * original, [q, g]."""
    nq = cols.nq
    Vg = V[nq:].tocsc()
    for s, e in query_blocks(nq, cols.ng):
        temp_min = min_sums(V, nq, s, e, Vg)
        jaccard = 1.0 - temp_min / (2.0 - temp_min)
        original = cols.query_gallery(s, e) / row_max[s:e, None]
        yield s, jaccard * (1.0 - lambda_value) + original * lambda_value
