"""One pass over the global distance in blocks of query rows (docs/architecture.md §4).

At MSMT17 scale the q x g global distance is 3.8 GB of float32 (11,659 x 82,161), and everything that
reads it -- the global variant's ranking and top-10 lists, each query's shortlist for the local
variants, the verification metrics -- needs one row at a time. ``global_pass`` computes
``BLOCK_ROWS`` rows at a time from the L2-normalised features and hands each block to all of them,
so the matrix is never held; the results equal the whole-matrix evaluation's (test_run.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..features.files import FeatureSet
from .distance import global_distance_blocks
from .ranking import RankDetails, rank_details_blocks
from .topk import smallest_k
from .verification import Verification

BLOCK_ROWS = 512  # query rows per block: 512 x 82,161 float32 is 168 MB


@dataclass
class GlobalPass:
    ranked: RankDetails  # the global variant's ranking
    top: np.ndarray  # [q, top] each query's nearest gallery items by the global distance
    shortlist: tuple[np.ndarray, np.ndarray] | None  # (idx, global distance) [q, K] when a shortlist was asked for
    verification: dict | None  # metrics.json's verification entry (global distance) when asked for


def global_pass(query: FeatureSet, gallery: FeatureSet, max_rank: int, shortlist: int | None, verification: dict | None, check, top: int = 10):
    """Rank the global distance and collect, in the same pass, the ``top`` lists, the ``shortlist``
    (K nearest and their distance) and, with ``verification`` (the config's evaluation.verification
    section), the verification metrics. ``check(name, start, rows, query)`` sees every block first
    (the evaluation's non-finite guard)."""
    nq, ng = len(query), len(gallery)
    k = min(int(shortlist), ng) if shortlist else 0
    tops = np.empty((nq, min(top, ng)), np.int64)
    idx = np.empty((nq, k), np.int64)
    values = np.empty((nq, k), np.float32)
    collector = Verification(query.pid, gallery.pid, query.camid, gallery.camid, verification["fpr"]) if verification else None

    def on_block(start, rows):
        stop = start + len(rows)
        check("global", start, rows, query)
        near = smallest_k(rows, max(k, top))  # ascending, ties by index: its head is the top list
        tops[start:stop] = near[:, : tops.shape[1]]
        if k:
            idx[start:stop] = near[:, :k]
            values[start:stop] = np.take_along_axis(rows, near[:, :k], axis=1)
        if collector:
            collector.feed(start, rows)

    blocks = global_distance_blocks(query.global_, gallery.global_, BLOCK_ROWS)
    ranked = rank_details_blocks(blocks, query.pid, gallery.pid, query.camid, gallery.camid, max_rank, on_block)
    return GlobalPass(ranked, tops, (idx, values) if k else None, collector.result("global") if collector else None)
