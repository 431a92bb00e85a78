"""Market-1501 ranking protocol: CMC and mAP (a numba kernel that sorts only each query's true matches)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..foundation.contracts import JUNK_PID, MAX_RANK


@dataclass
class RankDetails:
    """Per-query results of :func:`rank_details` (queries without a valid match are dropped)."""

    query_index: np.ndarray  # [Qv] indices into the query set of the evaluated queries
    first_match: np.ndarray  # [Qv] 0-based rank of the first correct match among valid gallery items
    ap: np.ndarray  # [Qv] average precision
    cmc: np.ndarray  # [max_rank]
    mAP: float
    inp: np.ndarray | None = None  # [Qv] inverse negative penalty: matches / (rank of the last match + 1)
    mINP: float | None = None  # mean INP (Ye et al., "Deep Learning for Person Re-identification", 2021)


@numba.njit(parallel=True, cache=True)
def _rank_kernel(dist, q_pids, q_camids, g_pids, g_camids, junk, first, ap, n_match, inp):
    """Per query: rank of the first true match among valid gallery items, AP, and the number of
    true matches, without sorting the gallery row. Only the matches are sorted (by distance,
    ties by gallery index, as a stable full sort orders them); every other valid item is placed
    among them by binary search and counted, so a query costs O(g log m) for m matches."""
    nq, ng = dist.shape
    for i in numba.prange(nq):
        qp, qc = q_pids[i], q_camids[i]
        m = 0
        if qp != junk:  # a junk query has no true match
            for j in range(ng):
                if g_pids[j] == qp and g_camids[j] != qc:
                    m += 1
        n_match[i] = m
        if m == 0:
            continue
        md = np.empty(m, dtype=dist.dtype)
        mi = np.empty(m, dtype=np.int64)
        t = 0
        for j in range(ng):
            if g_pids[j] == qp and g_camids[j] != qc:
                md[t] = dist[i, j]
                mi[t] = j
                t += 1
        order = np.argsort(md, kind="mergesort")  # stable: equal distances keep index order
        md, mi = md[order], mi[order]
        before = np.zeros(m + 1, dtype=np.int64)  # before[p]: valid non-matches with p matches ahead
        for j in range(ng):
            gp = g_pids[j]
            if gp == junk or gp == qp:  # junk, a match, or same id and camera (excluded)
                continue
            d = dist[i, j]
            lo, hi = 0, m  # count matches ordered before item j: (md, mi) < (d, j)
            while lo < hi:
                mid = (lo + hi) // 2
                if md[mid] < d or (md[mid] == d and mi[mid] < j):
                    lo = mid + 1
                else:
                    hi = mid
            before[lo] += 1
        acc = 0.0
        ahead = 0
        for k in range(m):
            ahead += before[k]
            pos = k + ahead  # 0-based rank of match k among valid items
            if k == 0:
                first[i] = pos
            if k == m - 1:  # the hardest match: INP = m / its 1-based rank
                inp[i] = m / (pos + 1.0)
            acc += (k + 1.0) / (pos + 1.0)
        ap[i] = acc / m


def _checked(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids).astype(np.int64), np.asarray(g_pids).astype(np.int64)
    q_camids, g_camids = np.asarray(q_camids).astype(np.int64), np.asarray(g_camids).astype(np.int64)
    num_q, num_g = distmat.shape
    if q_pids.shape != (num_q,) or q_camids.shape != (num_q,) or g_pids.shape != (num_g,) or g_camids.shape != (num_g,):
        raise ValueError(
            f"rank: distmat is {distmat.shape} but got q_pids {q_pids.shape}, q_camids {q_camids.shape}, "
            f"g_pids {g_pids.shape}, g_camids {g_camids.shape}"
        )
    if max_rank < 1:
        raise ValueError(f"rank: max_rank must be >= 1, got {max_rank}")
    return distmat, q_pids, g_pids, q_camids, g_camids


def per_query(distmat, q_pids, g_pids, q_camids, g_camids):
    """(first match, AP, number of matches, INP) of every query row of ``distmat``."""
    num_q = distmat.shape[0]
    first = np.zeros(num_q, dtype=np.int64)
    ap = np.zeros(num_q, dtype=np.float64)
    n_match = np.zeros(num_q, dtype=np.int64)
    inp = np.zeros(num_q, dtype=np.float64)
    if not distmat.flags.c_contiguous or distmat.dtype not in (np.float32, np.float64):
        distmat = np.ascontiguousarray(distmat, dtype=np.float64)
    _rank_kernel(distmat, q_pids, q_camids, g_pids, g_camids, JUNK_PID, first, ap, n_match, inp)
    return first, ap, n_match, inp


def summary(first, ap, n_match, inp, max_rank: int) -> RankDetails:
    keep = np.flatnonzero(n_match > 0)
    if not len(keep):
        raise ValueError("rank: no query has a valid gallery match (all were same-camera, junk or absent)")
    first, ap, inp = first[keep], ap[keep], inp[keep]
    cmc = (first[:, None] <= np.arange(max_rank)[None]).mean(0).astype(np.float64)
    return RankDetails(keep, first, ap, cmc, float(ap.mean()), inp, float(inp.mean()))


def rank_details(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = MAX_RANK) -> RankDetails:
    """Like :func:`rank` but also returns per-query first-match ranks and APs."""
    distmat, q_pids, g_pids, q_camids, g_camids = _checked(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    return summary(*per_query(distmat, q_pids, g_pids, q_camids, g_camids), max_rank)


def rank_details_blocks(blocks, q_pids, g_pids, q_camids, g_camids, max_rank: int = MAX_RANK, on_block=None) -> RankDetails:
    """:func:`rank_details` of a distance given as (start, rows) blocks of query rows covering every
    query once (each query is ranked on its own row, so the result equals the whole matrix's);
    ``on_block(start, rows)`` sees each block too (e.g. for top-k lists)."""
    q_pids, g_pids = np.asarray(q_pids).astype(np.int64), np.asarray(g_pids).astype(np.int64)
    q_camids, g_camids = np.asarray(q_camids).astype(np.int64), np.asarray(g_camids).astype(np.int64)
    nq = len(q_pids)
    parts = [np.zeros(nq, np.int64), np.zeros(nq, np.float64), np.full(nq, -1, np.int64), np.zeros(nq, np.float64)]
    for start, rows in blocks:
        stop = start + len(rows)
        rows, *_ = _checked(rows, q_pids[start:stop], g_pids, q_camids[start:stop], g_camids, max_rank)
        for whole, part in zip(parts, per_query(rows, q_pids[start:stop], g_pids, q_camids[start:stop], g_camids)):
            whole[start:stop] = part
        if on_block is not None:
            on_block(start, rows)
    if (parts[2] < 0).any():
        raise ValueError(f"rank: the blocks left {int((parts[2] < 0).sum())} of {nq} queries unranked")
    return summary(*parts, max_rank)


def rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = MAX_RANK):
    """Market-1501 evaluation. For each query, gallery items with the same pid and camera, and
    junk items (pid -1), are removed; queries left with no match are skipped.

    Returns ``(cmc, mAP)``: ``cmc`` float array of length ``max_rank`` (rank-1 first), ``mAP`` in [0, 1].
    """
    d = rank_details(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    return d.cmc, d.mAP
