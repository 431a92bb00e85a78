"""Two-stage search over a gallery streamed in blocks (docs/architecture.md §5, "Search at scale").

Stage 1 streams the gallery's global features a block at a time (exact GEMM) and keeps each query's
``shortlist`` nearest. Stage 2 reads only those candidates' stripes and adds the DMLI local distance.
Whether that equals the exhaustive global + local ranking is checked per query by a bound: the local
distance is never negative, so a gallery item outside a query's shortlist is at least as far as the
shortlist's farthest global distance; a query whose k-th best total is within it is *certain*.
With ``exact=True`` an uncertain query's gallery is streamed once more for every item whose global
distance alone is below its k-th total, and those are scored too: the result is then the exhaustive
one by construction. (The bound is loose -- DMLI distances of unrelated images are several times the
global ones -- so on real galleries most queries stay uncertain and exact mode streams twice; the
measured agreement of the default mode is in the README, bench/search_scale.py.) The gallery is anything with ``__len__``,
``global_blocks(rows)`` and ``gather(which, rows, as_stored=False)`` (``as_stored``: in the stored
precision, float16 or float32): a feature store, a search view of one
(``search.cache.StoreView``), or features in memory (``InMemoryGallery``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from ..evaluation.distance import distance_from_unit, l2_normalise
from ..evaluation.shortlist import local_on_shortlist, local_on_shortlist_scaled
from ..evaluation.topk import smallest_k

log = logging.getLogger(__name__)
LOCAL_BUDGET_BYTES = 1 << 30  # candidates' stripes held at once in stage 2 (queries are taken in chunks)


@dataclass
class InMemoryGallery:
    """A gallery whose features are arrays (a feature file's), served like a store."""

    global_: np.ndarray
    local: np.ndarray

    def __len__(self) -> int:
        return len(self.global_)

    def global_blocks(self, rows: int):
        for s in range(0, len(self), rows):
            yield s, np.asarray(self.global_[s : s + rows], np.float32)

    def gather(self, which: str, rows, as_stored: bool = False) -> np.ndarray:
        got = (self.global_ if which == "global" else self.local)[np.asarray(rows, np.int64)]
        return np.asarray(got) if as_stored else np.asarray(got, np.float32)


def unit_stripes(local: np.ndarray) -> np.ndarray:
    """Every stripe of ``local`` [N, S, D] (float32) scaled to unit length in place, as DMLI is defined;
    the norms by einsum (several times faster than numpy.linalg.norm on millions of stripes)."""
    sq = np.einsum("ijk,ijk->ij", local, local)
    local /= np.sqrt(np.maximum(sq, np.float32(1e-24)))[:, :, None]
    return local


def global_shortlist(q_unit: np.ndarray, gallery, k: int, block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(global distances, gallery rows) [q, k] of each query's k nearest, the gallery streamed once.
    Ranked by the inner product of unit vectors (distance = 2 - 2 x dot): each block's product with
    the raw gallery rows is divided by their norms (a q x block scaling instead of normalising the
    block's 2048-d rows), and each row's k best are kept by the compiled top-k (ties: the lower
    gallery row), merged with the best so far."""
    best_v = np.zeros((len(q_unit), 0), np.float32)  # -dot of the best so far, ascending
    best_i = np.zeros((len(q_unit), 0), np.int64)
    for first, block in gallery.global_blocks(block_rows):
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        neg = q_unit @ block.T
        neg /= -np.maximum(norms, np.float32(1e-12))[None, :]
        top = smallest_k(neg, k)
        cat_v = np.concatenate([best_v, np.take_along_axis(neg, top, 1)], 1)
        cat_i = np.concatenate([best_i, top + first], 1)
        keep = smallest_k(cat_v, k)
        best_v, best_i = np.take_along_axis(cat_v, keep, 1), np.take_along_axis(cat_i, keep, 1)
    return np.clip(2.0 + 2.0 * best_v, 0.0, 4.0).astype(np.float32), best_i


def _local_scores(q_local_unit: np.ndarray, gallery, rows: np.ndarray) -> np.ndarray:
    """DMLI distance [q, K] of each query to its candidate rows, the candidates' stripes read in chunks of queries."""
    out = np.empty(rows.shape, np.float32)
    if rows.size == 0:
        return out
    per_query = rows.shape[1] * q_local_unit.shape[1] * q_local_unit.shape[2] * 4
    chunk = max(1, LOCAL_BUDGET_BYTES // max(per_query, 1))
    for s in range(0, len(rows), chunk):
        sub = rows[s : s + chunk]
        uniq, pos = np.unique(sub, return_inverse=True)
        stripes = gallery.gather("local", uniq, as_stored=True)
        if stripes.dtype == np.float16:  # widened and scaled pair by pair inside the kernel
            out[s : s + chunk] = local_on_shortlist_scaled(q_local_unit[s : s + chunk], stripes, pos.reshape(sub.shape))
        else:
            out[s : s + chunk] = local_on_shortlist(
                q_local_unit[s : s + chunk], unit_stripes(np.asarray(stripes, np.float32)), pos.reshape(sub.shape)
            )
    return out


def _rows_below(q_unit: np.ndarray, gallery, bound: np.ndarray, block_rows: int) -> list[np.ndarray]:
    """For each query, every gallery row whose global distance is below its ``bound`` (one more stream)."""
    found = [[] for _ in range(len(q_unit))]
    for first, block in gallery.global_blocks(block_rows):
        d = distance_from_unit(q_unit, l2_normalise(block))
        qi, gj = np.nonzero(d < bound[:, None])
        for i, j in zip(qi, gj):
            found[i].append(first + j)
    return [np.asarray(f, np.int64) for f in found]


def two_stage_top_k(
    query_global, query_local, gallery, top_k: int, shortlist: int, block_rows: int = 65536, exact: bool = False
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(rows, distances) [q, top_k] of each query's nearest gallery items by global + local distance
    among its ``shortlist`` nearest by the global distance (``exact``: among all), nearest first, ties by
    gallery row; and counts: queries, certain ones (provably the exhaustive answer), extended ones."""
    n = len(gallery)
    k = min(top_k, n)
    kk = min(max(shortlist, k), n)
    q_unit = l2_normalise(np.asarray(query_global, np.float32))
    q_local = unit_stripes(np.array(query_local, np.float32))
    t0 = time.perf_counter()
    g_d, g_i = global_shortlist(q_unit, gallery, kk, block_rows)
    t1 = time.perf_counter()
    total = g_d + _local_scores(q_local, gallery, g_i)
    t2 = time.perf_counter()
    kth = np.partition(total, k - 1, axis=1)[:, k - 1]
    # items outside a query's shortlist are at least its farthest shortlisted global distance away
    unsure = np.flatnonzero(kth > g_d.max(axis=1)) if kk < n else np.zeros(0, np.int64)
    rows_out, dist_out = [], []
    extra = {}
    if len(unsure) and exact:
        more = _rows_below(q_unit[unsure], gallery, kth[unsure], block_rows)
        for i, cand in zip(unsure, more):
            cand = np.setdiff1d(cand, g_i[i])
            if len(cand):
                glob = distance_from_unit(q_unit[i : i + 1], l2_normalise(gallery.gather("global", cand)))[0]
                extra[i] = (cand, glob + _local_scores(q_local[i : i + 1], gallery, cand[None, :])[0])
    for i in range(len(q_unit)):
        rows, dist = g_i[i], total[i]
        if i in extra:
            rows, dist = np.concatenate([rows, extra[i][0]]), np.concatenate([dist, extra[i][1]])
        order = np.lexsort((rows, dist))[:k]
        rows_out.append(rows[order])
        dist_out.append(dist[order])
    stats = {
        "queries": len(q_unit),
        "gallery": n,
        "shortlist": kk,
        "certain": len(q_unit) - len(unsure),
        "extended": len(unsure) if exact else 0,
        "extra_candidates": int(sum(len(e[0]) for e in extra.values())),
        "global_s": round(t1 - t0, 3),
        "local_s": round(t2 - t1, 3),
    }
    return np.stack(rows_out), np.stack(dist_out), stats
