"""k-reciprocal re-ranking of the global + local distance on shortlists (docs/architecture.md §4).

The exhaustive re-ranking reads every node's (query or gallery image's) nearest neighbours under
d^2 = global + local over all (q+g)^2 pairs; at MSMT17 scale the local part alone would be 8.8 G
stripe-pair paths and a 25 GB gallery x gallery matrix. Here each node's candidates are its K
nearest by the global distance (computed a block of rows at a time from the features), the local
distance is computed on those n x K pairs only, and the re-ranking runs as published on them:

- each node's nearest neighbours are the first of its candidates ordered by global + local;
- each row's normalising maximum is the largest global + local over its candidates and its
  ``far`` farthest nodes by the global distance (the exhaustive maximum is over every node; the
  farthest by global + local is almost always among the farthest by global);
- the softmax weights read global + local for each pair of R*(i), computed pair by pair;
- the final distance is computed for each query's K nearest gallery items by the global distance
  and for every gallery item whose expanded neighbourhood overlaps the query's (a Jaccard distance
  below 1: the items re-ranking can lift from far down the global order; their local distance is
  computed pair by pair); the rest follow in global order (evaluation.shortlist's contract).

Exact whenever every node's re-ranking neighbours are among its K global candidates and the row
maxima are found; ``bench/evaluation.py --part shortlist`` measures the deviation over K.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .rerank import FeatureColumns, expanded_weights, min_sums, neighbours_needed, query_blocks
from .shortlist import local_on_pairs
from .topk import smallest_k

log = logging.getLogger(__name__)
NODE_CHUNK = 8192  # nodes whose candidate distances are computed and ordered at once (MSMT17: 12 of 93,820)


class _Nodes(FeatureColumns):
    """Global + local distances of node pairs; nodes are the queries followed by the gallery. The
    global part is the streamed re-ranking's (rerank.FeatureColumns: blocks and pairs of the
    L2-normalised global features)."""

    def __init__(self, query_global, gallery_global, query_local, gallery_local):
        super().__init__(query_global, gallery_global)
        self.ql, self.gl = query_local, gallery_local

    def pair_squared(self, rows, cols) -> np.ndarray:
        """d^2 = global + local of each pair (the exhaustive re-ranking squares sqrt(global + local))."""
        return self.gather(rows, cols) + local_on_pairs(self.ql, self.gl, rows, cols)

    def candidates(self, k: int, far: int, chunk: int = 1024):
        """(K nearest nodes of every node by the global distance [n, K], its ``far`` farthest [n, far])."""
        near = np.empty((self.n, k), dtype=np.int64)
        distant = np.empty((self.n, far), dtype=np.int64)
        for s in range(0, self.n, chunk):
            e = min(s + chunk, self.n)
            block = self.squared(s, e)
            near[s:e] = smallest_k(block, k)
            np.negative(block, out=block)
            distant[s:e] = smallest_k(block, far)
        return near, distant


def _ordered(cand: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Each row's candidates by ascending d^2, ties by node index (the exhaustive order)."""
    by_index = np.argsort(cand, axis=1)
    cand, d2 = np.take_along_axis(cand, by_index, 1), np.take_along_axis(d2, by_index, 1)
    return np.take_along_axis(cand, np.argsort(d2, axis=1, kind="stable"), 1)


def re_ranking_shortlist(
    query_global, gallery_global, query_local, gallery_local, idx, values, k: int, k1: int, k2: int, lambda_value: float, far: int = 8
):
    """Re-ranked global + local distance, as (start, q x g rows) blocks of query rows. ``idx`` [q, K]
    is each query's shortlist (gallery indices by the global distance) and ``values`` their global +
    local distances; the neighbourhoods come from global candidate lists of ``k`` images (at least the
    k1 + 1 the re-ranking reads). A query's re-ranked items are its shortlist and every gallery image
    whose expanded neighbourhood overlaps its own (Jaccard distance below 1: how re-ranking lifts a
    match the global distance put far away); the rest follow in global order."""
    need = neighbours_needed(k1, k2)
    nodes = _Nodes(query_global, gallery_global, query_local, gallery_local)
    k = min(int(k), nodes.n)
    if k < min(need, nodes.n):
        raise ValueError(f"re_ranking_shortlist: a shortlist of {k} is shorter than the {need} neighbours re-ranking reads (k1 + 1)")
    t = time.perf_counter()
    cand, distant = nodes.candidates(k, min(far, nodes.n))
    log.info("global candidates of %d nodes: %.1f s", nodes.n, time.perf_counter() - t)
    t = time.perf_counter()
    ranks = np.empty((nodes.n, min(need, k)), np.int64)
    row_max = np.empty(nodes.n, np.float32)
    for s in range(0, nodes.n, NODE_CHUNK):  # row by row, so chunks give the whole's result with bounded temporaries
        e = min(s + NODE_CHUNK, nodes.n)
        d2 = nodes.pair_squared(np.repeat(np.arange(s, e), k), cand[s:e].ravel()).reshape(e - s, k)
        far_d2 = nodes.pair_squared(np.repeat(np.arange(s, e), distant.shape[1]), distant[s:e].ravel()).reshape(e - s, -1)
        row_max[s:e] = np.maximum(d2.max(axis=1), far_d2.max(axis=1))
        ranks[s:e] = _ordered(cand[s:e], d2)[:, :need]
    del cand, distant
    log.info("global + local on %d x %d candidate pairs: %.1f s", nodes.n, k, time.perf_counter() - t)
    t = time.perf_counter()
    V = expanded_weights(ranks, nodes.pair_squared, row_max, k1, k2)
    log.info("expanded neighbourhoods: %.1f s", time.perf_counter() - t)
    yield from _final_blocks(nodes, V, row_max, idx, values, lambda_value)


def _final_blocks(nodes: _Nodes, V, row_max, idx, values, lambda_value: float):
    nq, ng = nodes.nq, nodes.n - nodes.nq
    Vg = V[nq:].tocsc()
    extra_pairs = 0
    for s, e in query_blocks(nq, ng):
        b = np.arange(e - s)[:, None]
        temp_min = min_sums(V, nq, s, e, Vg)
        glob = nodes.query_gallery(s, e)
        listed = np.zeros((e - s, ng), dtype=bool)
        listed[b, idx[s:e]] = True
        d2 = np.zeros((e - s, ng), dtype=np.float32)
        d2[b, idx[s:e]] = values[s:e]
        ri, gj = np.nonzero((temp_min > 0) & ~listed)  # overlapping neighbourhoods past the shortlist
        d2[ri, gj] = glob[ri, gj] + local_on_pairs(nodes.ql, nodes.gl, s + ri, nq + gj)
        extra_pairs += len(ri)
        listed[ri, gj] = True
        final = (1.0 - temp_min / (2.0 - temp_min)) * (1.0 - lambda_value) + (d2 / row_max[s:e, None]) * lambda_value
        top = np.where(listed, final, -np.inf).max(axis=1)
        out = glob + (top - glob.min(axis=1) + 1.0)[:, None].astype(np.float32)  # the rest after every re-ranked item, in global order
        out[listed] = final[listed]
        yield s, out
    log.info(
        "re-ranked beyond the shortlists: %d query-gallery pairs with overlapping neighbourhoods (%.1f per query)",
        extra_pairs,
        extra_pairs / max(nq, 1),
    )
